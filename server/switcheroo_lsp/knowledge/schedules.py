"""torch.optim.lr_scheduler -> Optax schedules, as data (spec/optax-mapping.md, table 2).

A schedule is passed as the optimizer's `learning_rate` and called with the update count, from
0. Templates: `{lr}` is the optimizer's learning rate (parenthesized where it is an expression;
`{lr_arg}` as it is, for a keyword's value), `{count}` the count the schedule sees
(`count`, or `(count // steps_per_epoch)` when torch steps the scheduler once per epoch; `{count_arg}`
without those parentheses, as a call's only argument), other
`{name}`s are the scheduler's arguments (the user's expressions, or torch's defaults).
ReduceLROnPlateau is not a schedule but a separate state (`kind="plateau"`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from .emit import STAR, UNKNOWN, ArgValue

REQUIRED = object()


@dataclass(frozen=True)
class Variant:
    template: str
    when: tuple[tuple[str, Any], ...] = ()     # argument -> literal value
    callable_template: bool = False           # a `lambda count: ...` that takes {count} itself


@dataclass(frozen=True)
class SchedulerRow:
    torch: str                                  # the class's (or function's) name
    signature: tuple[tuple[str, Any], ...]      # after `optimizer`, in torch's order
    variants: tuple[Variant, ...] = ()
    kind: str = "schedule"                      # "schedule" | "plateau" | "sequential" | "unsupported" |
                                                # "constant" (the learning rate stays as it is)
    unsupported: tuple[tuple[str, Any, str], ...] = ()   # (argument, value, why): no faithful rewrite
    notes: tuple[str, ...] = ()
    momentum: str | None = None                 # OneCycleLR: the beta1 / momentum schedule
    # The libraries' schedules (transformers, diffusers): where the function lives, its other paths,
    # the switcheroo_optax function that is its Optax schedule (called with `learning_rate=` and
    # the arguments the user gave, under the same names unless `renames` maps one to a template),
    # and the package the proof ran.
    module: str = "torch.optim.lr_scheduler"
    aliases: tuple[str, ...] = ()
    call: str | None = None
    renames: tuple[tuple[str, str], ...] = ()
    package: str = "torch"
    why: str = ""                               # kind "unsupported": the reason, when not the generic one

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.torch}"

    @property
    def key(self) -> str:
        return self.torch if self.module == "torch.optim.lr_scheduler" else self.qualified

    def defaults(self) -> dict[str, Any]:
        return dict(self.signature)


_COS = "(1 + jnp.cos(jnp.pi * {count} / {T_max})) / 2"

SCHEDULERS: dict[str, SchedulerRow] = {}
SCHEDULER_CLASSES: dict[str, str] = {}       # every path a library schedule is imported by -> its key


def _row(row: SchedulerRow) -> None:
    SCHEDULERS[row.key] = row
    if row.module != "torch.optim.lr_scheduler":
        for path in (row.qualified,) + row.aliases:
            SCHEDULER_CLASSES[path] = row.key


_row(SchedulerRow("StepLR", (("step_size", REQUIRED), ("gamma", 0.1), ("last_epoch", -1)), (
    Variant("optax.exponential_decay(init_value={lr_arg}, transition_steps={step_size}, decay_rate={gamma}, "
            "staircase=True)"),)))
_row(SchedulerRow("MultiStepLR", (("milestones", REQUIRED), ("gamma", 0.1), ("last_epoch", -1)), (
    Variant("optax.piecewise_constant_schedule(init_value={lr_arg}, "
            "boundaries_and_scales={{m: {gamma} for m in {milestones}}})"),),
    notes=("torch multiplies by gamma once per repeated milestone; list each milestone once",)))
_row(SchedulerRow("ExponentialLR", (("gamma", REQUIRED), ("last_epoch", -1)), (
    Variant("optax.exponential_decay(init_value={lr_arg}, transition_steps=1, decay_rate={gamma})"),)))
_row(SchedulerRow("CosineAnnealingLR", (("T_max", REQUIRED), ("eta_min", 0.0), ("last_epoch", -1)), (
    # The closed form, not cosine_decay_schedule: past T_max torch's cosine climbs back up,
    # optax's stays at the floor.
    Variant("lambda count: {lr} * " + _COS, when=(("eta_min", 0.0),), callable_template=True),
    Variant("lambda count: {eta_min} + ({lr} - {eta_min}) * " + _COS, callable_template=True),
)))
_row(SchedulerRow("LinearLR", (("start_factor", 1.0 / 3), ("end_factor", 1.0), ("total_iters", 5),
                               ("last_epoch", -1)), (
    Variant("optax.linear_schedule(init_value={lr} * {start_factor}, end_value={lr} * {end_factor}, "
            "transition_steps={total_iters})"),)))
_row(SchedulerRow("ConstantLR", (("factor", 1.0 / 3), ("total_iters", 5), ("last_epoch", -1)), (
    Variant("optax.piecewise_constant_schedule(init_value={lr} * {factor}, "
            "boundaries_and_scales={{{total_iters}: 1 / {factor}}})"),)))
_row(SchedulerRow("PolynomialLR", (("total_iters", 5), ("power", 1.0), ("last_epoch", -1)), (
    Variant("optax.polynomial_schedule(init_value={lr_arg}, end_value=0.0, power={power}, "
            "transition_steps={total_iters})"),)))
_row(SchedulerRow("LambdaLR", (("lr_lambda", REQUIRED), ("last_epoch", -1)), (
    Variant("lambda count: {lr} * {lr_lambda}({count_arg})", callable_template=True),),
    notes=("lr_lambda is called on the update count inside JAX: it must be traceable (jnp, not math)",)))
_row(SchedulerRow("CosineAnnealingWarmRestarts", (("T_0", REQUIRED), ("T_mult", 1), ("eta_min", 0.0),
                                                  ("last_epoch", -1)), (
    Variant("lambda count: {lr} * (1 + jnp.cos(jnp.pi * ({count} % {T_0}) / {T_0})) / 2",
            when=(("eta_min", 0.0),), callable_template=True),
    Variant("lambda count: {eta_min} + ({lr} - {eta_min}) * (1 + jnp.cos(jnp.pi * ({count} % {T_0}) / {T_0})) / 2",
            callable_template=True),
), unsupported=(("T_mult", "!1", "T_mult > 1 lengthens every cycle: spell the cycles out with optax.sgdr_schedule"),)))
_row(SchedulerRow("OneCycleLR", (
    ("max_lr", REQUIRED), ("total_steps", None), ("epochs", None), ("steps_per_epoch", None), ("pct_start", 0.3),
    ("anneal_strategy", "cos"), ("cycle_momentum", True), ("base_momentum", 0.85), ("max_momentum", 0.95),
    ("div_factor", 25.0), ("final_div_factor", 1e4), ("three_phase", False), ("last_epoch", -1)), (
    # cosine_onecycle_schedule is one step off torch's: interpolate between torch's own knots.
    Variant("optax.schedules.piecewise_interpolate_schedule('{interp}', {max_lr} / {div_factor}, "
            "{{{warm_end}: {div_factor}, {cool_end}: 1 / ({div_factor} * {final_div_factor})}})"),),
    momentum="optax.schedules.piecewise_interpolate_schedule('{interp}', {max_momentum}, "
             "{{{warm_end}: {base_momentum} / {max_momentum}, {cool_end}: {max_momentum} / {base_momentum}}})",
    unsupported=(("three_phase", True, "three_phase=True has no Optax schedule in switcheroo's table"),),
    notes=("OneCycleLR ignores the optimizer's lr: the cycle starts at max_lr / div_factor",
           "cycle_momentum=True (the default) also cycles Adam's beta1 / SGD's momentum between "
           "max_momentum and base_momentum: scheduled with optax.inject_hyperparams")))
_row(SchedulerRow("SequentialLR", (("schedulers", REQUIRED), ("milestones", REQUIRED), ("last_epoch", -1)),
                  kind="sequential"))
_row(SchedulerRow("ReduceLROnPlateau", (
    ("mode", "min"), ("factor", 0.1), ("patience", 10), ("threshold", 1e-4), ("threshold_mode", "rel"),
    ("cooldown", 0), ("min_lr", 0), ("eps", 1e-8)), (
    Variant("optax.contrib.reduce_on_plateau(factor={factor}, patience={patience_plus_1}, rtol=0.0, "
            "atol={threshold}, cooldown={cooldown}{min_scale})", when=(("threshold_mode", "abs"),)),
    Variant("optax.contrib.reduce_on_plateau(factor={factor}, patience={patience_plus_1}, rtol={threshold}, "
            "atol=0.0, cooldown={cooldown}{min_scale})"),
), kind="plateau",
    notes=("optax counts patience differently: patience + 1 reproduces torch's reductions",
           "the plateau state scales the updates (optax.tree.scale(state.scale, updates)); it is stepped "
           "where torch calls scheduler.step(metric)")))
# torch schedulers with no faithful rewrite here: flagged OPX201, never guessed at.
for _name in ("CyclicLR", "MultiplicativeLR", "ChainedScheduler", "LRScheduler"):
    SCHEDULERS[_name] = SchedulerRow(_name, (), kind="unsupported")


# -- transformers 5.25.0 and diffusers 0.42.1: LambdaLRs built by functions ----------------------------
# Each is the library's factor times the optimizer's lr; switcheroo_optax has the same functions as
# Optax schedules (proven against the libraries' own, tests/numerics/test_library_schedules.py).
_H = "switcheroo_optax"
_RESUME = (("last_epoch", "!-1", "last_epoch resumes the schedule mid-way: start the Optax schedule at that "
                                 "count by hand (optax.join_schedules or a shifted count)"),)
_W = ("num_warmup_steps", REQUIRED)
_T = ("num_training_steps", REQUIRED)
_LE = ("last_epoch", -1)
_LIBRARY_SCHEDULES = (
    ("get_constant_schedule", (_LE,), None, (), "constant"),
    ("get_constant_schedule_with_warmup", (_W, _LE), "constant_schedule_with_warmup", (), "schedule"),
    ("get_linear_schedule_with_warmup", (_W, _T, _LE), "linear_schedule_with_warmup", (), "schedule"),
    ("get_cosine_schedule_with_warmup", (_W, _T, ("num_cycles", 0.5), _LE), "cosine_schedule_with_warmup", (),
     "schedule"),
    ("get_cosine_with_hard_restarts_schedule_with_warmup", (_W, _T, ("num_cycles", 1), _LE),
     "cosine_with_hard_restarts_schedule_with_warmup", (), "schedule"),
    ("get_polynomial_decay_schedule_with_warmup", (_W, _T, ("lr_end", 1e-7), ("power", 1.0), _LE),
     "polynomial_decay_schedule_with_warmup", (), "schedule"),
)
_TRANSFORMERS_ONLY = (
    ("get_inverse_sqrt_schedule", (_W, ("timescale", None), _LE), "inverse_sqrt_schedule", (), "schedule"),
    ("get_cosine_with_min_lr_schedule_with_warmup",
     (_W, _T, ("num_cycles", 0.5), _LE, ("min_lr", None), ("min_lr_rate", None)), "cosine_schedule_with_warmup",
     (("min_lr", "min_lr_rate={min_lr} / {lr}"),), "schedule"),
    ("get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
     (_W, _T, ("num_cycles", 0.5), _LE, ("min_lr", None), ("min_lr_rate", None), ("warmup_lr_rate", None)),
     "cosine_with_min_lr_schedule_with_warmup_lr_rate", (("min_lr", "min_lr_rate={min_lr} / {lr}"),), "schedule"),
    ("get_wsd_schedule", (_W, ("num_decay_steps", REQUIRED), ("num_training_steps", None), ("num_stable_steps", None),
                          ("warmup_type", "linear"), ("decay_type", "cosine"), ("min_lr_ratio", 0),
                          ("num_cycles", 0.5), _LE), "wsd_schedule", (), "schedule"),
)
_DIFFUSERS_ONLY = (
    ("get_piecewise_constant_schedule", (("step_rules", REQUIRED), _LE), "piecewise_constant_schedule", (),
     "schedule"),
)


def _library(module: str, aliases: tuple[str, ...], package: str, rows, overrides=None) -> None:
    for name, signature, call, renames, kind in rows:
        signature = (overrides or {}).get(name, signature)
        _row(SchedulerRow(name, signature, (Variant("{lr}", callable_template=True),) if kind == "constant" else (),
                          kind=kind, unsupported=_RESUME, module=module, aliases=tuple(f"{a}.{name}" for a in aliases),
                          call=f"{_H}.{call}" if call else None, renames=renames, package=package,
                          notes=("a constant factor of 1: the optimizer's learning rate stays as it is",)
                          if kind == "constant" else ()))


_library("transformers.optimization", ("transformers",), "transformers 5.25.0", _LIBRARY_SCHEDULES + _TRANSFORMERS_ONLY)
_library("diffusers.optimization", (), "diffusers 0.42.1", _LIBRARY_SCHEDULES + _DIFFUSERS_ONLY, overrides={
    "get_linear_schedule_with_warmup": (_W, _T, _LE, ("f_min", 0.0), ("f_max", 1.0))})
_row(SchedulerRow("get_reduce_on_plateau_schedule", (), kind="unsupported", module="transformers.optimization",
                  aliases=("transformers.get_reduce_on_plateau_schedule",), package="transformers 5.25.0",
                  why="it builds a torch ReduceLROnPlateau from **kwargs: write "
                      "torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, ...) to convert it"))
# transformers' Adafactor keeps its own step size; AdafactorSchedule only reports it (for logging).
_row(SchedulerRow("AdafactorSchedule", (("initial_lr", 0.0),), kind="proxy", module="transformers.optimization",
                  aliases=("transformers.AdafactorSchedule",), package="transformers 5.25.0",
                  notes=("AdafactorSchedule only reports the step size Adafactor computes itself (relative_step=True): "
                         "nothing to fold, the rewrite's hf_adafactor computes it",)))
_row(SchedulerRow("get_adafactor_schedule", (("initial_lr", 0.0),), kind="proxy", module="transformers.optimization",
                  aliases=("transformers.get_adafactor_schedule",), package="transformers 5.25.0",
                  notes=("get_adafactor_schedule only reports the step size Adafactor computes itself "
                         "(relative_step=True): nothing to fold",)))


@dataclass
class Schedule:
    """A scheduler turned into Optax: the schedule text (or the plateau transform)."""
    torch: str
    kind: str
    text: str = ""
    momentum: str = ""
    needs_jnp: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode_max: bool = False               # ReduceLROnPlateau(mode='max'): negate the metric
    candidates: list = field(default_factory=list)   # a name chosen at run time: (name, what it becomes)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.text)


def bind(row: SchedulerRow, positional: list, keywords: list[tuple[str | None, ArgValue]]
         ) -> tuple[dict[str, ArgValue], ArgValue | None, list[str]]:
    """Map a scheduler call's arguments to torch's signature: (args, the optimizer, problems).
    `positional` holds ArgValues (STAR for `*x`), `keywords` (name, ArgValue), None for `**x`."""
    names = ["optimizer"] + [n for n, _ in row.signature]
    args: dict[str, ArgValue] = {}
    problems = []
    for i, value in enumerate(positional):
        if value is STAR or i >= len(names):
            problems.append("arguments passed with * cannot be mapped statically")
            continue
        args[names[i]] = value
    for name, value in keywords:
        if name is None:
            problems.append("arguments passed with ** cannot be mapped statically")
        elif name not in names:
            problems.append(f"unknown argument {name!r} for {row.qualified}")
        else:
            args[name] = value
    optimizer = args.pop("optimizer", None)
    for name, default in row.signature:
        if default is REQUIRED and name not in args:
            problems.append(f"{name} is required")
    return args, optimizer, problems


def _value(row: SchedulerRow, args: dict[str, ArgValue], name: str) -> Any:
    return args[name].literal if name in args else row.defaults().get(name)


def _text(row: SchedulerRow, args: dict[str, ArgValue], name: str) -> str:
    if name in args:
        a = args[name]
        return a.source if a.atomic else f"({a.source})"
    return repr(row.defaults()[name])


def _num(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(value)


def build(row: SchedulerRow, args: dict[str, ArgValue], lr: str, count: str = "count") -> Schedule:
    """The Optax schedule for a torch scheduler whose optimizer's learning rate is `lr`.
    `count` is what the schedule counts: "count" (updates) or "(count // steps_per_epoch)"."""
    out = Schedule(row.torch, row.kind, notes=list(row.notes))
    if row.kind == "unsupported":
        out.problems.append(row.why or f"{row.qualified} has no faithful Optax schedule in switcheroo's table: port "
                                       "it by hand")
        return out
    for name, value, why in row.unsupported:
        actual = _value(row, args, name)
        bad = (actual is not UNKNOWN and actual != int(value[1:])) if isinstance(value, str) and value.startswith("!") \
            else actual == value
        if bad or actual is UNKNOWN:
            out.problems.append(why if actual is not UNKNOWN else f"{name} is an expression: {why}")
    if row.torch == "LambdaLR" and "lr_lambda" in args and args["lr_lambda"].elements is not None:
        out.problems.append("one lr_lambda per parameter group needs optax.multi_transform: port it by hand")
    if row.torch == "ReduceLROnPlateau" and "eps" in args:
        out.notes.append("eps (torch skips reductions smaller than eps) has no Optax equivalent and is dropped")
    if out.problems:
        return out
    # As a call's only argument the count needs no parentheses of its own: `f(count // n)`.
    values = {"lr": lr, "count": count, "count_arg": count[1:-1] if count.startswith("(") else count}
    for name, _ in row.signature:
        values[name] = _text(row, args, name)
    if row.torch == "OneCycleLR":
        _one_cycle_values(row, args, values, out)
        if out.problems:
            return out
    if row.torch == "ReduceLROnPlateau":
        patience = _value(row, args, "patience")
        values["patience_plus_1"] = str(patience + 1) if isinstance(patience, int) else f"{values['patience']} + 1"
        min_lr = _value(row, args, "min_lr")
        values["min_scale"] = "" if min_lr in (0, 0.0) else f", min_scale={values['min_lr']} / {_wrap(lr)}"
        mode = _value(row, args, "mode")
        if mode is UNKNOWN or mode not in ("min", "max"):
            out.problems.append("mode must be 'min' or 'max' as a literal")
            return out
        out.mode_max = mode == "max"
        tm = _value(row, args, "threshold_mode")
        if tm is UNKNOWN or tm not in ("rel", "abs"):
            out.problems.append("threshold_mode must be 'rel' or 'abs' as a literal")
            return out
    values["lr"], values["lr_arg"] = _wrap(lr), lr      # `{lr} * x`, but `init_value={lr_arg}`
    if row.call is not None:
        out.text = _library_call(row, args, values, count)
        return out
    if row.kind == "proxy":
        out.text = lr
        return out
    variant = next(v for v in row.variants if all(_value(row, args, n) == want for n, want in v.when))
    text = variant.template.format(**values)
    if not variant.callable_template and count != "count" and row.kind == "schedule":
        text = f"lambda count: {text}{count}"
    out.text = text
    if row.momentum and _value(row, args, "cycle_momentum") is not False:
        out.momentum = row.momentum.format(**values)
        if count != "count":
            out.momentum = f"lambda count: {out.momentum}{count}"
    out.needs_jnp = "jnp." in text
    return out


def _library_call(row: SchedulerRow, args: dict[str, ArgValue], values: dict[str, str], count: str) -> str:
    """`switcheroo_optax.<function>(learning_rate=lr, <the arguments given>)`, counting `count`."""
    renames = dict(row.renames)
    parts = [f"learning_rate={values['lr']}"]
    for name, default in row.signature:
        if name == "last_epoch" or (name not in args and default is not REQUIRED):
            continue
        parts.append(renames[name].format(**values) if name in renames else f"{name}={values[name]}")
    text = f"{row.call}({', '.join(parts)})"
    return text if count == "count" else f"lambda count: {text}({count})"


def _wrap(text: str) -> str:
    """Parenthesized unless it is a name, an attribute, a call, a subscript or a plain number."""
    try:
        node = cst.parse_expression(text)
    except cst.ParserSyntaxError:
        return f"({text})"
    simple = isinstance(node, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float,
                               cst.SimpleString))
    return text if simple else f"({text})"


def _one_cycle_values(row: SchedulerRow, args, values: dict[str, str], out: Schedule) -> None:
    strategy = _value(row, args, "anneal_strategy")
    if strategy not in ("cos", "linear"):
        out.problems.append("anneal_strategy must be 'cos' or 'linear' as a literal")
        return
    values["interp"] = "cosine" if strategy == "cos" else "linear"
    total = _value(row, args, "total_steps")
    if "total_steps" in args:
        total_text = values["total_steps"]
    elif "epochs" in args and "steps_per_epoch" in args:
        e, s = _value(row, args, "epochs"), _value(row, args, "steps_per_epoch")
        total = e * s if isinstance(e, int) and isinstance(s, int) else UNKNOWN
        total_text = f"{values['epochs']} * {values['steps_per_epoch']}"
    else:
        out.problems.append("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        return
    pct = _value(row, args, "pct_start")
    if isinstance(total, (int, float)) and total is not UNKNOWN and isinstance(pct, (int, float)):
        values["warm_end"] = _num(float(pct) * total - 1)
        values["cool_end"] = _num(total - 1)
    else:
        values["warm_end"] = f"{values['pct_start']} * {_wrap(total_text)} - 1"
        values["cool_end"] = f"{_wrap(total_text)} - 1"
