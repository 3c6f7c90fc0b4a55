"""The rest of a training loop: LR schedulers and gradient clipping, folded into the optimizer.

A scheduler's schedule becomes the optimizer's `learning_rate` (OPX104, its `.step()` OPX105);
`clip_grad_norm_` / `clip_grad_value_` before a step becomes the first transform of the
optimizer's chain (OPX106). Which loop a scheduler counts follows where torch steps it: in the
same loop body as `optimizer.step()` it counts updates; in an enclosing loop it counts epochs,
`count // steps_per_epoch`, with `steps_per_epoch` read off the inner loop when evident.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from ..knowledge import catalog, factories, schedules
from ..knowledge.emit import STAR, Extras
from .arguments import arg_value, call_arguments, one_line
from .choices import strings
from .facts import ReceiverUse, StmtContext, children, dotted
from .findings import Finding, Site
from .portable import portable, same_scope, visible_at
from .tracing import Identity, argument, keyword, positional

if TYPE_CHECKING:
    from .constructions import Builder as _Builder

PLACEHOLDER = "steps_per_epoch"
CLIP_NOTE = ("torch divides by norm + 1e-6, optax.clip_by_global_norm by the norm: while clipping is "
             "active the parameters drift apart by ~1e-6 over 60 steps")


def scheduler_findings(b: "_Builder") -> None:
    absorbed = _sequential_members(b)
    for ident in b.tracer.identities:
        if ident.kind == "scheduler" and ident not in absorbed and b.program.in_primary(ident.ctx):
            _scheduler(b, ident, absorbed)


def scheduler_name(key: str) -> str:
    """How messages name a scheduler: 'torch.optim.lr_scheduler.StepLR', 'transformers.optimization.get_scheduler'."""
    row = schedules.SCHEDULERS.get(key)
    if row is not None:
        return row.qualified
    factory = factories.SCHEDULE_FACTORIES.get(key)
    return factory.qualified if factory is not None else f"torch.optim.lr_scheduler.{key}"


def _sequential_members(b: "_Builder") -> set[Identity]:
    """Schedulers listed in a SequentialLR belong to it: they get no finding of their own."""
    members = set()
    for ident in b.tracer.identities:
        if ident.kind == "scheduler" and ident.name == "SequentialLR":
            for sub in _sub_schedulers(b, ident) or []:
                members.add(sub)
    return members


def _sub_schedulers(b: "_Builder", ident: Identity) -> list[Identity] | None:
    node = argument(ident.call, 1, "schedulers")
    if not isinstance(node, (cst.List, cst.Tuple)):
        return None
    subs = []
    for element in node.elements:
        if not isinstance(element, cst.Element):
            return None
        ids = b.tracer.value_ids(element.value, ident.ctx.scope, at=ident.ctx)
        if not isinstance(ids, frozenset) or len(ids) != 1:
            return None
        sub = next(iter(ids))
        if sub.kind != "scheduler":
            return None
        subs.append(sub)
    return subs


def _optimizer_of(b: "_Builder", ident: Identity) -> Identity | None:
    # get_scheduler(name, optimizer, ...) takes it second
    node = argument(ident.call, 1 if ident.name in factories.SCHEDULE_FACTORIES else 0, "optimizer")
    ids = b.tracer.value_ids(node, ident.ctx.scope, at=ident.ctx) if node is not None else None
    if isinstance(ids, frozenset) and len(ids) == 1:
        opt = next(iter(ids))
        if opt.kind in ("torch", "optax"):
            return opt
    return None


def learning_rate_of(b: "_Builder", opt: Identity) -> str | None:
    """The optimizer's learning rate as source text (torch's default made explicit)."""
    call = opt.call
    if opt.kind == "torch":
        row = catalog.OPTIMIZERS.get(opt.name)
        lr = argument(call, 1, "lr")
        if lr is not None:
            return arg_value(lr).source
        return repr(row.defaults()["lr"]) if row else None
    found = learning_rate_arg(call)
    return one_line(found[1].value) if found is not None else None


def _plain_learning_rate(call: cst.Call) -> bool:
    """Is the `learning_rate=` of this Optax construction a plain value of an optax transform?"""
    found = learning_rate_arg(call)
    if found is None:
        return False
    owner, arg = found
    func = dotted(owner.func.func if isinstance(owner.func, cst.Call) else owner.func) or []
    return catalog.HELPERS not in func and not isinstance(arg.value, cst.Lambda)


def learning_rate_arg(call: cst.Call) -> tuple[cst.Call, cst.Arg] | None:
    """The first `learning_rate=` argument in an Optax expression, and the call it is in."""
    stack = [call]
    while stack:
        node = stack.pop(0)
        if isinstance(node, cst.Call):
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "learning_rate":
                    return node, arg
        stack.extend(children(node))
    return None


def _scheduler(b: "_Builder", ident: Identity, absorbed: set[Identity]) -> None:
    call, ctx = ident.call, ident.ctx
    span = b.span(call, ctx)
    noqa, ignore = b.lines(call, ctx)
    qualified = scheduler_name(ident.name)
    factory = factories.SCHEDULE_FACTORIES.get(ident.name)
    row = schedules.SCHEDULERS.get(ident.name) or schedules.SchedulerRow(ident.name, (), kind="factory")
    opt = _optimizer_of(b, ident)
    site = Site(None, ctx, opt, sched=ident)

    def unmapped(why: str, code: str = "OPX201") -> None:
        f = Finding(code, span, f"{qualified}: {why}", "unmapped" if code == "OPX201" else "manual", noqa, ignore)
        b.add(f, site)

    if opt is None:
        return unmapped("the optimizer it drives cannot be traced: fold the schedule into it by hand", "OPX202")
    lr = learning_rate_of(b, opt)
    if lr is None:
        return unmapped("the optimizer has no learning_rate to schedule")
    count, spe_missing = _counting(b, ident, opt)
    if factory is not None:
        schedule = _from_factory(b, ident, factory, lr, count)
    elif row.kind == "proxy":
        schedule = _proxy(b, ident, opt, lr)
    elif row.kind == "sequential":
        schedule = _sequential(b, ident, lr, count)
    elif row.kind == "unsupported":
        schedule = schedules.build(row, {}, lr, count)
    else:
        args, _, problems = schedules.bind(row, *call_arguments(call, ctx.chunk.cache))
        schedule = schedules.build(row, args, lr, count)
        schedule.problems[:0] = problems
    site.schedule = schedule
    if not schedule.ok:
        return unmapped("; ".join(schedule.problems))
    late = _late_arguments(b, ident, opt) if row.kind != "plateau" and schedule.kind not in ("constant", "proxy") \
        else []
    if late:
        line = b.span(opt.call, opt.ctx).start.line + 1
        return unmapped(f"its arguments read {', '.join(late)}, not yet bound where the optimizer is built (line "
                        f"{line}), where the schedule folds in: build the optimizer after them, or fold it by hand")
    steps = b.uses(ident)
    plateau_problem = b.target.steps_of(frozenset({opt.kind})).plateau_problem
    if row.kind == "plateau" and plateau_problem:
        return unmapped(plateau_problem, "OPX202")
    if row.kind == "plateau":
        site.names = b.names_for(opt, opt.target, scope=opt.ctx.scope)
        site.plateau_state = _plateau_state(b, ident)
        b.plateaus[opt] = site
        message = (f"{qualified} → {schedule.text}, a separate state that scales the updates "
                   f"({schedule.notes[0]})")
    elif schedule.kind in ("constant", "proxy"):
        # Nothing reaches the optimizer: its learning rate stays as it is.
        message = f"{qualified} → removed: the optimizer's learning_rate stays {schedule.text} ({schedule.notes[0]})"
    else:
        extras = Extras(learning_rate=schedule.text, momentum=schedule.momentum or None)
        if opt.kind == "torch":
            trial = b.emission(opt, extras)
            if trial is None or trial.problems:
                return unmapped("; ".join(trial.problems) if trial else "its optimizer has no Optax equivalent")
        elif schedule.momentum:
            return unmapped("momentum cycling on an optimizer already converted to Optax: rebuild it with "
                            "optax.inject_hyperparams by hand")
        elif not _plain_learning_rate(opt.call):
            # The same verdict as on the torch side: a helper's rate, or a rate that is already a
            # formula (ASGD's annealing, Adagrad's lr_decay), cannot simply take a schedule.
            return unmapped("the optimizer's learning rate is not a plain value here (a helper's, or a "
                            "formula): fold the schedule in by hand")
        counted = "epochs" if count != "count" else "updates"
        message = f"{qualified} → learning_rate={schedule.text} in the optimizer (counts {counted})"
        if schedule.notes:
            message += f" ({schedule.notes[0]})"
    site.absorbed = [m.ctx for m in (_sub_schedulers(b, ident) or []) if m.ctx.stmt is not ctx.stmt]
    site.steps_per_epoch_missing = spe_missing
    f = Finding("OPX104", span, message, "schedule", noqa, ignore, fixable=True,
                data={"torch": qualified, "schedule": schedule.text})
    b.add(f, site)
    b.handled[id(call)] = frozenset({ident, opt})      # folded into its optimizer: one flow
    for member in _sub_schedulers(b, ident) or []:     # SequentialLR's members fold in with it
        b.handled[id(member.call)] = frozenset({member, opt})
    if spe_missing:
        w = Finding("OPX203", span, f"{qualified} is stepped once per epoch, and the updates per epoch are not "
                    f"evident here: define {PLACEHOLDER} where the optimizer is built", "schedule_undefined",
                    noqa, ignore, fixable=True)
        b.add(w, Site(w, ctx, opt, sched=ident, schedule=schedule, names=site.names,
                      absorbed=site.absorbed, steps_per_epoch_missing=True,
                      plateau_state=site.plateau_state))
    for use in steps:
        _scheduler_step(b, use, ident, schedule, site)


def _from_factory(b: "_Builder", ident: Identity, factory: factories.ScheduleFactory, lr: str,
                  count: str) -> schedules.Schedule:
    """`get_scheduler(name, optimizer, ...)`: the named function's schedule for a literal name; the
    library's own choice in switcheroo_optax for a name chosen at run time."""
    out = schedules.Schedule(factory.qualified, "schedule")
    positional, keywords = call_arguments(ident.call, ident.ctx.chunk.cache)
    names = [n for n, _ in factory.signature]
    args = {}
    for i, value in enumerate(positional):
        if value is STAR or i >= len(names):
            out.problems.append("arguments passed with * cannot be mapped statically")
            return out
        args[names[i]] = value
    for name, value in keywords:
        if name is None or name not in names:
            out.problems.append("arguments passed with ** cannot be mapped statically" if name is None else
                                f"unknown argument {name!r} for {factory.qualified}")
            return out
        args[name] = value
    name_arg = args.pop("name", None)
    args.pop("optimizer", None)
    if name_arg is None:
        out.problems.append("no scheduler name is passed")
        return out
    if isinstance(name_arg.literal, str):
        return _named_schedule(factory, name_arg.literal, args, lr, count)
    return _runtime_schedule(b, ident, factory, name_arg, args, lr, count)


def _named_schedule(factory, name: str, args: dict, lr: str, count: str) -> schedules.Schedule:
    out = schedules.Schedule(factory.qualified, "schedule")
    named = factory.names.get(name)
    if named is None:
        out.problems.append(f"{name!r} is not a name {factory.qualified} accepts")
        return out
    if named.row is None:
        out.problems.append(f"get_scheduler({name!r}): {named.why}")
        return out
    row = schedules.SCHEDULERS[named.row]
    row_args = {dst: args[src] for src, dst in named.passes + factory.default_passes if src in args}
    if factory.extra and factory.extra in args:
        extra = args[factory.extra]
        items = _dict_items(extra)
        if items is None:
            out.problems.append(f"{factory.extra} is not a dict written out here: its items cannot be read statically")
            return out
        allowed = {n for n, _ in row.signature}
        for key, value in items:
            if key not in allowed:
                out.problems.append(f"{row.torch} takes no {key!r} (from {factory.extra})")
                return out
            row_args[key] = value
    for arg, default in row.signature:
        if default is schedules.REQUIRED and arg not in row_args:
            out.problems.append(f"get_scheduler({name!r}) needs {arg}")
            return out
    schedule = schedules.build(row, row_args, lr, count)
    schedule.notes.insert(0, f"get_scheduler({name!r}) builds {row.qualified}")
    return schedule


def _runtime_schedule(b: "_Builder", ident: Identity, factory, name_arg, args: dict, lr: str,
                      count: str) -> schedules.Schedule:
    """A name chosen at run time: every name it may hold must have a schedule; then the library's
    choice is made in Optax too (switcheroo_optax.<library>_schedule(name, ...))."""
    out = schedules.Schedule(factory.qualified, "schedule")
    choices = strings(name_arg.node, ident.ctx.scope, b.tracer, b.program)
    candidates = choices.values if choices.complete else sorted(factory.names)
    where = f" ({choices.origin})" if choices.origin else ""
    unknown = [n for n in candidates if n not in factory.names]
    blocked = [n for n in candidates if n in factory.names and factory.names[n].row is None]
    out.candidates = [(n, f"get_scheduler({n!r})" + ("" if n in factory.names and factory.names[n].row else
                                                    " (no rewrite)")) for n in candidates]
    if unknown or blocked:
        why = "; ".join([f"{n!r} is not a name it accepts" for n in unknown] +
                        [f"{n!r}: {factory.names[n].why}" for n in blocked])
        scope = "may hold any name get_scheduler accepts" if not choices.complete else \
            f"may be {', '.join(repr(n) for n in candidates)}{where}"
        out.problems.append(f"the name {name_arg.source} is chosen at run time and {scope}; {why}")
        return out
    if "last_epoch" in args and args["last_epoch"].literal != -1:
        out.problems.append("last_epoch resumes the schedule mid-way: start the Optax schedule at that count by hand")
        return out
    parts = [name_arg.source, f"learning_rate={schedules._wrap(lr)}"]
    parts += [f"{n}={args[n].source}" for n, _ in factory.signature if n in args and n != "last_epoch"]
    text = f"{factory.runtime}({', '.join(parts)})"
    out.text = text if count == "count" else f"lambda count: {text}({count})"
    out.notes.append(f"{name_arg.source} chooses the schedule at run time"
                     + (f" among {', '.join(repr(n) for n in candidates)}{where}" if choices.complete else
                        f" among every name {factory.qualified} accepts")
                     + f": {factory.runtime} makes the same choice")
    return out


def _dict_items(value) -> list | None:
    """The items of a `{"key": value, ...}` or `dict(key=value)` written out, as (key, ArgValue)."""
    node = value.node
    if node is None:
        return None
    if isinstance(node, cst.Dict):
        items = []
        for element in node.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(element.key, cst.SimpleString):
                return None
            items.append((element.key.evaluated_value, arg_value(element.value)))
        return items
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "dict":
        if any(a.keyword is None for a in node.args):
            return None
        return [(a.keyword.value, arg_value(a.value)) for a in node.args]
    if isinstance(node, cst.Name) and node.value == "None":
        return []
    return None


def _proxy(b: "_Builder", ident: Identity, opt: Identity, lr: str) -> schedules.Schedule:
    """transformers' AdafactorSchedule: it reports Adafactor's own step size, and sets nothing the
    training uses while Adafactor computes its step (relative_step=True)."""
    out = schedules.Schedule(ident.name, "proxy", text=lr, notes=list(schedules.SCHEDULERS[ident.name].notes))
    if opt.kind != "torch" or opt.name != "transformers.optimization.Adafactor":
        out.problems.append("it reports transformers' Adafactor's step size: its optimizer is not one")
        return out
    relative = keyword(opt.call, "relative_step")
    if relative is not None and arg_value(relative).literal is not True:
        out.problems.append("with relative_step=False, AdafactorSchedule writes Adafactor's step size into the "
                            "learning rate it then uses: port it by hand")
    return out


def _late_arguments(b: "_Builder", sched: Identity, opt: Identity) -> list[str]:
    """The scheduler's arguments that cannot be read where the optimizer is built (they are bound
    after it, or only in the scheduler's scope): the folded schedule would read them there."""
    if opt.ctx is None or opt.kind != "torch":
        return []
    optimizer = argument(sched.call, 1 if sched.name in factories.SCHEDULE_FACTORIES else 0, "optimizer")
    members = argument(sched.call, 1, "schedulers") if sched.name == "SequentialLR" else None
    late = []
    for sub in (_sub_schedulers(b, sched) or []) if members is not None else []:
        late.extend(n for n in _late_arguments(b, sub, opt) if n not in late)   # SequentialLR: its members'
    for arg in sched.call.args:
        if arg.value is optimizer or arg.value is members or arg.star:
            continue
        for name in _free_names(arg.value):
            if not _same_value_at(b, name, sched.ctx, opt.ctx) and name.value not in late:
                late.append(name.value)
    return late


def _same_value_at(b: "_Builder", name: cst.Name, used: StmtContext, built: StmtContext) -> bool:
    """Does `name` read where the scheduler is built hold what it holds where the optimizer is built?"""
    bindings = b.tracer.lookup(name.value, used.scope)
    if not bindings:
        return True                  # a builtin (max, len), or a name nothing here binds: the same there
    if not same_scope(used.scope, built.scope):
        return visible_at(b, name, used.scope, built) == name.value
    start, end = b.program.order(built), b.program.order(used)
    before = between = False
    for x in bindings:
        if x.kind == "param" or x.ctx is None or x.ctx.chunk is None:
            before = True
            continue
        at = b.program.order(x.ctx)
        before = before or at < start
        between = between or start <= at < end
    return before and not between


def _free_names(expr, bound: frozenset = frozenset()) -> list[cst.Name]:
    """The names an expression reads (a lambda's parameters and attribute names excluded)."""
    if isinstance(expr, cst.Name):
        return [] if expr.value in bound else [expr]
    if isinstance(expr, cst.Lambda):
        params = {p.name.value for p in expr.params.params + expr.params.posonly_params + expr.params.kwonly_params}
        return _free_names(expr.body, bound | params)
    if isinstance(expr, cst.Attribute):
        return _free_names(expr.value, bound)
    if isinstance(expr, cst.Arg):
        return _free_names(expr.value, bound)
    out = []
    for child in children(expr):
        out.extend(_free_names(child, bound))
    return out


def _plateau_state(b: "_Builder", ident: Identity) -> str:
    t = ident.target
    if isinstance(t, cst.Attribute):
        return f"{one_line(t)}_state"
    return f"{ident.var}_state" if ident.target is not None else "plateau_state"


def _scheduler_step(b: "_Builder", use: ReceiverUse, ident: Identity, schedule, sched_site) -> None:
    node, ctx = use.node, use.ctx
    span = b.span(node, ctx)
    noqa, ignore = b.lines(node, ctx)
    recv = b.text(use.receiver, ctx)
    is_stmt = isinstance(ctx.stmt, cst.Expr) and ctx.stmt.value is node
    site = Site(None, ctx, sched_site.identity, sched=ident, schedule=schedule, receiver=recv,
                plateau_state=sched_site.plateau_state, names=sched_site.names)
    b.handled[id(node)] = frozenset({ident})
    if schedule.kind == "plateau":
        metric = argument(node, 0, "metrics")
        if metric is None or not is_stmt:
            f = Finding("OPX202", span, f"{recv}.step(): pass the metric as the first argument to convert it",
                        "manual", noqa, ignore)
            b.add(f, site)
            return
        value = one_line(metric)
        site.metric = f"-{_paren(value)}" if schedule.mode_max else value
        message = (f"{recv}.step({value}) → _, {site.plateau_state} = {recv}.update(updates=params, "
                   f"state={site.plateau_state}, value={site.metric})")
        f = Finding("OPX105", span, message, "sched_step", noqa, ignore, fixable=True)
    elif is_stmt:
        f = Finding("OPX105", span, f"{recv}.step() → removed: the schedule lives in the optimizer's "
                    "learning_rate and advances with every update", "sched_step", noqa, ignore, fixable=True)
    else:
        f = Finding("OPX202", span, f"the value of {recv}.step() is used: rewrite it by hand", "manual", noqa, ignore)
    b.add(f, site)


def _paren(text: str) -> str:
    return text if text.replace("_", "").replace(".", "").isalnum() else f"({text})"


def _sequential(b: "_Builder", ident: Identity, lr: str, count: str) -> schedules.Schedule:
    out = schedules.Schedule("SequentialLR", "schedule")
    subs = _sub_schedulers(b, ident)
    milestones = argument(ident.call, 2, "milestones")
    if subs is None or milestones is None:
        out.problems.append("list the schedulers inline (or as names bound to them) to join them")
        return out
    parts = []
    for sub in subs:
        row = schedules.SCHEDULERS[sub.name]
        if row.kind != "schedule":
            out.problems.append(f"{sub.name} inside SequentialLR has no Optax schedule here")
            return out
        args, _, problems = schedules.bind(row, *call_arguments(sub.call, sub.ctx.chunk.cache))
        s = schedules.build(row, args, lr, "count")
        if problems or not s.ok or s.momentum:
            out.problems.extend(problems + s.problems or [f"{sub.name} cannot be joined"])
            return out
        parts.append(s.text)
        out.notes.extend(n for n in s.notes if n not in out.notes)
    joined = f"optax.join_schedules([{', '.join(parts)}], {one_line(milestones)})"
    out.text = joined if count == "count" else f"lambda count: {joined}{count}"
    out.needs_jnp = "jnp." in out.text
    return out


# -- which loop a scheduler counts ------------------------------------------------------------------

def _counting(b: "_Builder", sched: Identity, opt: Identity) -> tuple[str, bool]:
    """("count", _) when the scheduler steps with every update; else ("(count // N)", missing)."""
    sched_steps, opt_steps = b.uses(sched), b.uses(opt)
    if not sched_steps or not opt_steps:
        return "count", False
    s, o = sched_steps[0].ctx, opt_steps[0].ctx
    if same_scope(s.scope, o.scope) and s.loops and o.loops and s.loops[-1] is o.loops[-1]:
        return "count", False
    if same_scope(s.scope, o.scope) and not s.loops and not o.loops:
        return "count", False
    n = _loop_length(b, o, opt.ctx)
    if n is None:
        return f"(count // {PLACEHOLDER})", True
    return f"(count // {n})", False


def _loop_length(b: "_Builder", step_ctx: StmtContext, construction: StmtContext) -> str | None:
    """How many updates one pass of the step's innermost loop makes, as an expression that can be
    evaluated where the optimizer is built; None when that is not evident."""
    if not step_ctx.loops or not isinstance(step_ctx.loops[-1], cst.For):
        return None
    it = step_ctx.loops[-1].iter
    while _calls(it, ("enumerate", "tqdm", "iter")) and positional(it):
        it = positional(it)[0]
    if _calls(it, ("range",)) and len(it.args) == 1 and len(positional(it)) == 1:
        inner, wrap = it.args[0].value, "{}"
    elif isinstance(it, (cst.Name, cst.Attribute)):
        inner, wrap = it, "len({})"
    else:
        return None
    text = visible_at(b, inner, step_ctx.scope, construction)
    return wrap.format(text) if text is not None else None


def _calls(node, names: tuple[str, ...]) -> bool:
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in names


# -- clipping -------------------------------------------------------------------------------------------

def clip_findings(b: "_Builder") -> None:
    for site_call, kind in b.tracer.clips:
        call, ctx = site_call.call, site_call.ctx
        if not b.program.in_primary(ctx):
            continue                    # another file's: reported there
        step = _next_step(b, ctx)
        if step is None:
            continue            # not before a traced step: nothing to fold into
        stepped, ids = b.step_target(step)
        opt = next(iter(ids)) if len(ids) == 1 else None
        span = b.span(call, ctx)
        noqa, ignore = b.lines(call, ctx)
        name = "clip_grad_norm_" if kind == "norm" else "clip_grad_value_"
        site = Site(None, ctx, opt)
        limit = argument(call, 1, "max_norm" if kind == "norm" else "clip_value")
        problems = []
        if limit is None:
            problems.append("no limit is passed")
        norm_type = keyword(call, "norm_type")
        if norm_type is None and len(positional(call)) > 2:
            norm_type = positional(call)[2]
        other_norm = kind == "norm" and norm_type is not None and arg_value(norm_type).literal not in (2, 2.0)
        if problems or opt is None:
            f = Finding("OPX201", span, f"torch.nn.utils.{name}: {'; '.join(problems) or 'the optimizer is ambiguous'}",
                        "unmapped", noqa, ignore)
            b.add(f, site)
            continue
        # The limit as it reads where the optimizer is built (`self.grad_clip` -> `1.0`).
        limit_text = portable(b, limit, ctx.scope, opt.ctx) if opt.ctx is not None else None
        movable = limit_text is not None
        limit_text = limit_text or one_line(limit)
        if other_norm:
            # Optax has only the 2-norm; the helper takes torch's norm_type (and its + 1e-6).
            transform = (f"{catalog.HELPERS}.torch_clip_grad_norm({limit_text}, "
                         f"norm_type={one_line(norm_type)})")
        else:
            transform = f"optax.{'clip_by_global_norm' if kind == 'norm' else 'clip'}({limit_text})"
        site.clip = transform
        stmt = ctx.stmt
        value_used = not (isinstance(stmt, cst.Expr) and stmt.value is call)
        if value_used and not (isinstance(stmt, cst.Assign) and stmt.value is call and kind == "norm"
                               and len(stmt.targets) == 1):
            f = Finding("OPX202", span, f"the value of {name}() is used here: rewrite it by hand", "manual", noqa, ignore)
            b.add(f, site)
            continue
        if value_used:
            grads = b.names_for(opt, stepped).grads
            site.norm_target = one_line(stmt.targets[0].target)
            site.norm_grads = grads
        why = "" if movable else (f"its limit {one_line(limit)} is not available where the optimizer is built: "
                                  "fold it in there by hand")   # the limit only exists here
        if movable and opt.kind == "torch":
            trial = b.emission(opt, Extras(prefix=(transform,)))
            state = b.hyper_state(opt)
            if trial is None or trial.problems:
                movable = False
                why = ("the optimizer has no Optax rewrite to fold it into" if trial is None else
                       f"folded into the optimizer's chain, {'; '.join(trial.problems)}")
            elif state is not None and len(state.paths) == 1 and trial.injected_path != state.paths[0]:
                # The values the loop sets by hand would move to another link of the state than
                # the one its writes are addressed to (RAdam's own injected link, behind the clipping).
                movable = False
                why = ("folded into the optimizer's chain, it would move the values the loop sets by hand into the "
                       "state of the chain's next link: fold it in by hand")
        message = f"torch.nn.utils.{name} → {transform} first in the optimizer's chain"
        if kind == "norm" and not other_norm:
            message += f" ({CLIP_NOTE})"
        if not movable:
            message += f"; {why}"
        f = Finding("OPX106" if movable else "OPX202", span, message, "clip" if movable else "manual", noqa, ignore,
                    fixable=movable, data={"transform": transform})
        b.add(f, site)


def _next_step(b: "_Builder", ctx: StmtContext) -> ReceiverUse | None:
    """The first traced optimizer step after `ctx` in the same block (or nested in it)."""
    best = None
    here = b.program.order(ctx)
    for use in b.steps_in(ctx.scope):
        if b.program.order(use.ctx) <= here or use.ctx.loops[:len(ctx.loops)] != ctx.loops:
            continue
        _, ids = b.step_target(use)
        kinds = ("optax",) if use.member == "update" else ("torch", "optax", "annotated")
        if ids and all(i.kind in kinds for i in ids) and (
                best is None or b.program.order(use.ctx) < b.program.order(best.ctx)):
            best = use
    return best


__all__ = ["scheduler_findings", "clip_findings", "learning_rate_of", "learning_rate_arg", "same_scope"]
