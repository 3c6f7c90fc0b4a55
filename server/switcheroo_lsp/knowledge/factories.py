"""Library factories, as data: functions that build an optimizer or a schedule from a name.

- `get_scheduler(name, optimizer, ...)` of transformers and diffusers: each name it accepts ->
  the schedule function it calls (a row of schedules.py) and which of get_scheduler's arguments
  reach it. A literal name folds in as that function's schedule; a name chosen at run time
  (`args.lr_scheduler`) folds in as `switcheroo_optax.<library>_schedule(name, ...)`, the same
  choice made in Optax, when every name it may hold has a schedule.
- timm's `create_optimizer_v2(model, opt=..., ...)`: its optimizer names -> classes (catalog rows)
  with the defaults timm adds, and its weight-decay exclusion of biases and norm parameters.

Adding a library is adding rows here (and the functions' rows in schedules.py / the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .emit import ArgValue

REQUIRED = object()


@dataclass(frozen=True)
class Named:
    """One name a factory accepts: the row it builds (None: no rewrite, `why`), and the factory's
    arguments passed on to it (factory argument -> the row's argument)."""
    row: str | None
    passes: tuple[tuple[str, str], ...] = ()
    why: str = ""


@dataclass(frozen=True)
class ScheduleFactory:
    qualified: str
    aliases: tuple[str, ...]
    signature: tuple[tuple[str, Any], ...]          # all of it, `name` and `optimizer` first
    names: dict[str, Named]
    runtime: str                                    # the switcheroo_optax function taking the name at run time
    extra: str | None = None                        # a dict argument whose items reach the row too
    package: str = ""
    default_passes: tuple[tuple[str, str], ...] = field(default=())

    def defaults(self) -> dict[str, Any]:
        return dict(self.signature)


_TF = "transformers.optimization"
_WT = (("num_warmup_steps", "num_warmup_steps"), ("num_training_steps", "num_training_steps"))
_PLATEAU = ("it reacts to a metric (ReduceLROnPlateau): not a schedule; write "
            "torch.optim.lr_scheduler.ReduceLROnPlateau(...) to convert it")
_GREEDY = "GreedyLR raises and lowers the rate from a metric: Optax has no such schedule; port it by hand"

TRANSFORMERS_GET_SCHEDULER = ScheduleFactory(
    qualified="transformers.optimization.get_scheduler", aliases=("transformers.get_scheduler",),
    signature=(("name", REQUIRED), ("optimizer", REQUIRED), ("num_warmup_steps", None), ("num_training_steps", None),
               ("scheduler_specific_kwargs", None)),
    names={
        "linear": Named(f"{_TF}.get_linear_schedule_with_warmup", _WT),
        "cosine": Named(f"{_TF}.get_cosine_schedule_with_warmup", _WT),
        "cosine_with_restarts": Named(f"{_TF}.get_cosine_with_hard_restarts_schedule_with_warmup", _WT),
        "polynomial": Named(f"{_TF}.get_polynomial_decay_schedule_with_warmup", _WT),
        "constant": Named(f"{_TF}.get_constant_schedule"),
        "constant_with_warmup": Named(f"{_TF}.get_constant_schedule_with_warmup", _WT[:1]),
        "inverse_sqrt": Named(f"{_TF}.get_inverse_sqrt_schedule", _WT[:1]),
        "reduce_lr_on_plateau": Named(None, why=_PLATEAU),
        "cosine_with_min_lr": Named(f"{_TF}.get_cosine_with_min_lr_schedule_with_warmup", _WT),
        "cosine_warmup_with_min_lr": Named(f"{_TF}.get_cosine_with_min_lr_schedule_with_warmup_lr_rate", _WT),
        "warmup_stable_decay": Named(f"{_TF}.get_wsd_schedule", _WT),
        "greedy": Named(None, why=_GREEDY),
    },
    runtime="switcheroo_optax.transformers_schedule", extra="scheduler_specific_kwargs",
    package="transformers 5.25.0")

_DF = "diffusers.optimization"
DIFFUSERS_GET_SCHEDULER = ScheduleFactory(
    qualified="diffusers.optimization.get_scheduler", aliases=("diffusers.get_scheduler",),
    signature=(("name", REQUIRED), ("optimizer", REQUIRED), ("step_rules", None), ("num_warmup_steps", None),
               ("num_training_steps", None), ("num_cycles", 1), ("power", 1.0), ("last_epoch", -1)),
    names={
        "linear": Named(f"{_DF}.get_linear_schedule_with_warmup", _WT),
        "cosine": Named(f"{_DF}.get_cosine_schedule_with_warmup", _WT),
        "cosine_with_restarts": Named(f"{_DF}.get_cosine_with_hard_restarts_schedule_with_warmup",
                                      _WT + (("num_cycles", "num_cycles"),)),
        "polynomial": Named(f"{_DF}.get_polynomial_decay_schedule_with_warmup", _WT + (("power", "power"),)),
        "constant": Named(f"{_DF}.get_constant_schedule"),
        "constant_with_warmup": Named(f"{_DF}.get_constant_schedule_with_warmup", _WT[:1]),
        "piecewise_constant": Named(f"{_DF}.get_piecewise_constant_schedule", (("step_rules", "step_rules"),)),
    },
    runtime="switcheroo_optax.diffusers_schedule", package="diffusers 0.42.1",
    default_passes=(("last_epoch", "last_epoch"),))

SCHEDULE_FACTORIES: dict[str, ScheduleFactory] = {}
for _factory in (TRANSFORMERS_GET_SCHEDULER, DIFFUSERS_GET_SCHEDULER):
    for _path in (_factory.qualified,) + _factory.aliases:
        SCHEDULE_FACTORIES[_path] = _factory


# -- timm 1.0.31: create_optimizer_v2(model_or_params, opt="sgd", lr=None, weight_decay=0., momentum=0.9, ...) --
@dataclass(frozen=True)
class OptimizerName:
    """One `opt=` name timm's registry knows: the class it builds (a catalog key; None: no row,
    `why`), the defaults timm adds, and which common keywords it keeps (timm drops `eps` and
    `betas` where the class takes none, and adds `momentum` where it does)."""
    key: str | None
    defaults: tuple[tuple[str, Any], ...] = ()
    momentum: bool = False
    eps: bool = True
    betas: bool = False
    why: str = ""


def _timm_own(cls: str) -> OptimizerName:
    return OptimizerName(None, why=f"timm's {cls} is not in switcheroo's catalog: port it by hand (docs/optimizers.md "
                                   "lists what is)")


TIMM_NAMES: dict[str, OptimizerName] = {
    "sgd": OptimizerName("SGD", (("nesterov", True),), momentum=True, eps=False),
    "momentum": OptimizerName("SGD", (("nesterov", False),), momentum=True, eps=False),
    "adam": OptimizerName("Adam", betas=True),
    "adamw": OptimizerName("AdamW", betas=True),
    "nadam": OptimizerName("NAdam", betas=True),
    "radam": OptimizerName("RAdam", betas=True),
    "radamw": OptimizerName("RAdam", (("decoupled_weight_decay", True),), betas=True),
    "adamax": OptimizerName("Adamax", betas=True),
    "adadelta": OptimizerName("Adadelta"),
    "adagrad": OptimizerName("Adagrad", (("eps", 1e-8),)),
    "rmsprop": OptimizerName("RMSprop", (("alpha", 0.9),), momentum=True),
    "fusedadam": OptimizerName("apex.optimizers.FusedAdam", (("adam_w_mode", False),), betas=True),
    "fusedadamw": OptimizerName("apex.optimizers.FusedAdam", (("adam_w_mode", True),), betas=True),
    "bnbadam": OptimizerName("bitsandbytes.optim.Adam", betas=True),
    "bnbadam8bit": OptimizerName("bitsandbytes.optim.Adam8bit", betas=True),
    "bnbadamw": OptimizerName("bitsandbytes.optim.AdamW", betas=True),
    "bnbadamw8bit": OptimizerName("bitsandbytes.optim.AdamW8bit", betas=True),
}
for _name, _cls in (("sgdp", "SGDP"), ("sgdw", "SGDW"), ("adamwlegacy", "AdamWLegacy"), ("adamp", "AdamP"),
                    ("nadamlegacy", "NAdamLegacy"), ("nadamw", "NAdamW"), ("radamlegacy", "RAdamLegacy"),
                    ("adafactor", "Adafactor"), ("adafactorbv", "AdafactorBigVision"), ("adopt", "Adopt"),
                    ("adoptw", "Adopt"), ("lamb", "Lamb"), ("lambc", "Lamb"), ("lambw", "Lamb"), ("lambcw", "Lamb"),
                    ("lars", "Lars"), ("larc", "Lars"), ("nlars", "Lars"), ("nlarc", "Lars"), ("lion", "Lion"),
                    ("laprop", "LaProp"), ("madgrad", "MADGRAD"), ("madgradw", "MADGRAD"), ("mars", "Mars"),
                    ("muon", "Muon"), ("nmuon", "Muon"), ("kron", "Kron"), ("kronw", "Kron"), ("adan", "Adan"),
                    ("adanw", "Adan"), ("adabelief", "AdaBelief"), ("radabelief", "AdaBelief"),
                    ("adahessian", "Adahessian"), ("rmsproptf", "RMSpropTF"), ("novograd", "NvNovoGrad"),
                    ("nvnovograd", "NvNovoGrad"), ("fusedsgd", "apex FusedSGD"), ("fusedlamb", "apex FusedLAMB"),
                    ("fusednovograd", "apex FusedNovoGrad"), ("bnbsgd", "bitsandbytes SGD"),
                    ("bnbsgd8bit", "bitsandbytes SGD8bit")):
    TIMM_NAMES.setdefault(_name, _timm_own(_cls))

TIMM_FACTORY = "timm.optim.create_optimizer_v2"
TIMM_PATHS = {TIMM_FACTORY, "timm.optim._optim_factory.create_optimizer_v2", "timm.create_optimizer_v2",
              "timm.optim.optim_factory.create_optimizer_v2"}
TIMM_SIGNATURE = (("model_or_params", REQUIRED), ("opt", "sgd"), ("lr", None), ("weight_decay", 0.0),
                  ("momentum", 0.9), ("foreach", None), ("filter_bias_and_bn", True), ("fallback_list", ()),
                  ("fallback_no_weight_decay", False), ("layer_decay", None), ("layer_decay_min_scale", 0.0),
                  ("layer_decay_no_opt_scale", None), ("param_group_fn", None))
TIMM_MASK = "switcheroo_optax.timm_weight_decay_mask()"
TIMM_MASK_NOTE = ("timm keeps weight decay off biases and norm parameters (1-D, or named *.bias) and what "
                  "model.no_weight_decay() names: the weight decay takes switcheroo_optax.timm_weight_decay_mask() "
                  "(pass no_weight_decay=(...) for the model's own list, e.g. ViT's pos_embed and cls_token)")


@dataclass
class FactoryCall:
    """A factory call read as the class it builds: that class's arguments (ArgValues, as a call of
    it would pass them), and what else the rewrite needs."""
    key: str | None = None
    positional: list = field(default_factory=list)
    keywords: list = field(default_factory=list)
    decay_mask: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    name: str = ""


def timm_name(opt: str) -> tuple[OptimizerName | None, str]:
    """timm's reading of `opt`: lower-cased, the part after the last `_` (`lookahead_adamw`)."""
    parts = opt.lower().split("_")
    if len(parts) > 1 and parts[0] == "lookahead":
        return None, "a Lookahead wrapper (lookahead_*) has no rewrite: optax.lookahead differs; port it by hand"
    named = TIMM_NAMES.get(parts[-1])
    if named is None:
        return None, f"{opt!r} is not an optimizer name timm's registry knows"
    return named, ""


def read_timm(positional: list, keywords: list, literal, is_module) -> FactoryCall:
    """`create_optimizer_v2(...)`'s arguments (ArgValues) as the call of the class it builds.
    `literal(value)`: a value's literal (or the UNKNOWN marker); `is_module(value)`: is the first
    argument a module (timm then groups its parameters for weight decay) rather than parameters."""
    out = FactoryCall()
    names = [n for n, _ in TIMM_SIGNATURE]
    args: dict = {}
    kwargs: list = []
    for i, value in enumerate(positional):
        if not hasattr(value, "source") or i >= len(names):
            out.problems.append("arguments passed with * cannot be mapped statically")
            return out
        args[names[i]] = value
    for name, value in keywords:
        if name is None:
            out.problems.append("arguments passed with ** cannot be mapped statically")
            return out
        if name in names:
            args[name] = value
        else:
            kwargs.append((name, value))
    opt = args.get("opt")
    opt_name = literal(opt) if opt is not None else "sgd"
    if not isinstance(opt_name, str):
        out.problems.append(f"opt={opt.source} is chosen at run time")
        return out
    named, why = timm_name(opt_name)
    out.name = opt_name
    if named is None or named.key is None:
        out.problems.append(why or named.why)
        return out
    out.key = named.key
    for unsupported in ("layer_decay", "param_group_fn"):
        if unsupported in args and literal(args[unsupported]) is not None:
            out.problems.append(f"{unsupported}= builds parameter groups of its own: port them by hand "
                                "(optax.multi_transform)")
    if "fallback_list" in args or "fallback_no_weight_decay" in args:
        out.problems.append("fallback optimizers (fallback_list) have no rewrite")
    if out.problems:
        return out
    model = args.get("model_or_params")
    out.positional = [model] if model is not None else []
    class_kwargs = dict(kwargs)
    wd = args.get("weight_decay")
    filtered = literal(args["filter_bias_and_bn"]) is not False if "filter_bias_and_bn" in args else True
    grouped = (model is not None and is_module(model) and wd is not None and literal(wd) not in (0, 0.0)
               and filtered)
    if wd is not None:
        class_kwargs["weight_decay"] = wd
    if grouped:
        out.decay_mask = TIMM_MASK
        out.notes.append(TIMM_MASK_NOTE)
    if "lr" in args and literal(args["lr"]) is not None:
        class_kwargs["lr"] = args["lr"]
    for name, value in named.defaults:
        class_kwargs.setdefault(name, _made(value))
    if named.momentum:
        class_kwargs.setdefault("momentum", args.get("momentum") or _made(0.9))
    if not named.eps:
        class_kwargs.pop("eps", None)
    if not named.betas:
        class_kwargs.pop("betas", None)
    if "foreach" in args:
        class_kwargs.setdefault("foreach", args["foreach"])
    out.keywords = list(class_kwargs.items())
    default_adds = [f"{n}={v!r}" for n, v in named.defaults]
    out.notes.insert(0, f"create_optimizer_v2(opt={opt_name!r}) builds {named.key if '.' in named.key else 'torch.optim.' + named.key}"
                     + (f" with {', '.join(default_adds)}" if default_adds else "")
                     + (" and momentum=0.9 unless given" if named.momentum else ""))
    return out


def _made(value):
    """An argument timm supplies (not the user's): an ArgValue of a literal."""
    return ArgValue(repr(value), value)


# -- torch.distributed.optim.ZeroRedundancyOptimizer(params, optimizer_class, process_group=None, ...) --
ZERO_FACTORY = "torch.distributed.optim.ZeroRedundancyOptimizer"
ZERO_PATHS = {ZERO_FACTORY, "torch.distributed.optim.zero_redundancy_optimizer.ZeroRedundancyOptimizer"}
ZERO_OWN = ("process_group", "parameters_as_bucket_view", "overlap_with_ddp")
ZERO_NOTE = ("ZeroRedundancyOptimizer shards the optimizer state across ranks and updates as its optimizer_class "
             "does: the rewrite is that class's; in JAX, shard the parameters and the optimizer state with "
             "jax.sharding (process_group, parameters_as_bucket_view and overlap_with_ddp have no Optax meaning)")


def read_zero(positional: list, keywords: list, class_key) -> FactoryCall:
    """`ZeroRedundancyOptimizer(params, optimizer_class, **defaults)` as the call of optimizer_class.
    `class_key(value)`: the catalog key of the class an argument names, or None."""
    out = FactoryCall()
    if len(positional) > 2 or any(not hasattr(v, "source") for v in positional):
        out.problems.append("arguments passed with * cannot be mapped statically")
        return out
    params = positional[0] if positional else dict(keywords).get("params")
    cls = positional[1] if len(positional) > 1 else dict(keywords).get("optimizer_class")
    if params is None or cls is None:
        out.problems.append("ZeroRedundancyOptimizer needs params and optimizer_class")
        return out
    out.key = class_key(cls)
    if out.key is None:
        out.problems.append(f"optimizer_class={cls.source} is not an optimizer class switcheroo can trace")
        return out
    out.positional = [params]
    for name, value in keywords:
        if name is None:
            out.problems.append("arguments passed with ** cannot be mapped statically")
            return out
        if name in ("params", "optimizer_class"):
            continue
        if name == "overlap_with_ddp" and value.literal is not False:
            out.problems.append("overlap_with_ddp=True steps inside DDP's communication hook: port it by hand")
            return out
        if name not in ZERO_OWN:
            out.keywords.append((name, value))
    out.notes.append(ZERO_NOTE)
    return out
