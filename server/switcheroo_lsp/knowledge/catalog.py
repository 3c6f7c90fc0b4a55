"""The torch.optim -> Optax knowledge, as data.

One row per torch optimizer: its signature (torch 2.13.0, defaults made explicit), what each
argument becomes, the Optax chain that reproduces its trajectory (spec/optax-mapping.md,
measured), and the notes that messages and hovers show. The emitter (`emit.py`), the hover,
docs/optimizers.md and the numerical tests (tests/numerics/) all read these rows; adding an
optimizer is adding a row.

Templates: `{arg}` is the torch argument's source text (the user's expression, or torch's
default). Derived values such as `b1` (from `betas[0]`) are declared in `derived`; a tuple
argument that is an expression (`betas=cfg.betas`) becomes `cfg.betas[0]`, `cfg.betas[1]`.
A keyword whose template is exactly `{x}` is left out when the user did not write `x` and
torch's default equals Optax's (`Kw.optax_default`, checked against optax's signatures by the
tests); every other keyword is always written, because the defaults differ (AdamW
weight_decay 0.01 vs 1e-4, RMSprop 0.99 vs 0.9, ...).

Conditions (`when`) are `(argument, wanted)` pairs that must all hold: a literal value, or one
of the markers below. A boolean condition on an argument given as an expression
(`amsgrad=cfg.amsgrad`) makes the emitter write both recipes, `(A if cfg.amsgrad else B)`.

Numbers that notes quote about the *naive* translations are `Claim`s: the tests re-run them
(tests/numerics/test_claims.py), so a message never states a number that is not true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUIRED = object()   # an Optax keyword with no default: always emitted
NONZERO = object()    # `when` value: not a literal 0 / 0.0 / False / None (an expression counts)
ZERO = object()       # `when` value: a literal 0 / 0.0 / False / None (given, or torch's default)
ANY = object()        # `when` value: given at all, whatever its value
EXPR = object()       # `when` value: given as an expression (not a literal, not a schedule)
KNOWN_NONZERO = object()  # `when` value: a literal other than 0 / False / None, or a schedule
CHANGED = object()        # `when` value: given, and not a literal equal to the default (an expression counts)
BY_HAND = object()        # `when` value: the loop sets it by hand (`param_group["momentum"] = ...`)
FIXED = object()          # `when` value: the loop does not set it by hand

# The helper transforms module the rewrites import where plain Optax is not exact.
HELPERS = "switcheroo_optax"


@dataclass(frozen=True)
class Kw:
    name: str
    template: str
    optax_default: Any = REQUIRED
    # When the learning rate follows a schedule (OPX104 folds `lr` into a callable): a
    # template to use instead, or `schedulable=False` when the transform needs a number.
    schedule_template: str | None = None
    schedulable: bool = True
    always: bool = False      # written even when torch's default equals the recorded default


def _hk(name: str, template: str, default: Any, **kw) -> Kw:
    """A keyword of a switcheroo_optax helper: its default is torch's, and it is always written,
    so that the rewrite shows every hyperparameter torch used."""
    return Kw(name, template, default, always=True, **kw)


@dataclass(frozen=True)
class Tx:
    """One transform call in the emitted chain; `when` gates it on torch argument values."""
    func: str
    kws: tuple[Kw, ...] = ()
    when: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Claim:
    """A measured difference that a note quotes: torch vs an Optax expression that is *not*
    the rewrite (the naive translation), in a reference setup of tests/numerics (float64,
    50 steps, max |p_torch - p_optax|). `setup`: "quadratic" (spec/verify_torch_optax.py's
    problem), "sparse_rows" (an embedding, 3 of 10 rows looked up per step), "lbfgs" (the
    quadratic without noise, one `step(closure)` per step), "large" (10,240 parameters in
    float32: bitsandbytes' 8-bit states, tests/numerics/numerics_large.py)."""
    torch: str
    optax: str
    diff: float
    setup: str = "quadratic"


@dataclass(frozen=True)
class Variant:
    """A faithful recipe, chosen by the torch arguments' literal values (`when`)."""
    chain: tuple[Tx, ...] = ()
    when: tuple[tuple[str, Any], ...] = ()
    l2_weight_decay: bool = True       # prepend add_decayed_weights(weight_decay) when nonzero
    exact: bool = True
    difference: str = ""               # measured, when not exact
    notes: tuple[str, ...] = ()
    problem: str = ""                  # no faithful rewrite at all: OPX201 without a fix
    claims: tuple[Claim, ...] = ()     # numbers the problem/difference text quotes


@dataclass(frozen=True)
class Note:
    text: str
    when: tuple[tuple[str, Any], ...] = ()   # all must hold; () = always
    claims: tuple[Claim, ...] = ()           # numbers the text quotes


@dataclass(frozen=True)
class Unsupported:
    """Code elsewhere in the file that the rewrite cannot keep working (a regex on the text)."""
    pattern: str
    problem: str


@dataclass(frozen=True)
class OptimizerRow:
    torch: str                                      # the class's name ('Adam', 'AdamW8bit')
    signature: tuple[tuple[str, Any], ...]          # after `params`, positional order
    keyword_only: tuple[tuple[str, Any], ...]
    variants: tuple[Variant, ...]
    derived: dict[str, str] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()
    arguments: tuple[tuple[str, str], ...] = ()     # torch argument -> what it becomes (docs, hover)
    unsupported: tuple[Unsupported, ...] = ()
    # Rows beyond torch.optim (knowledge/libraries.py): where the class lives, the other paths it
    # is imported by, the distribution the proof ran (docs), and how it was proven: "run" (the
    # package against the rewrite), or "documented" (not installable on CPU: the rewrite follows
    # the package's documented math, proven against torch's optimizer with that math).
    module: str = "torch.optim"
    aliases: tuple[str, ...] = ()
    package: str = "torch"
    proof: str = "run"
    flags: tuple[str, ...] = ()                     # the row's own implementation-only arguments
    precision: str = "float64"                      # "float32": the package computes in float32 whatever the dtype

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.torch}"

    @property
    def key(self) -> str:
        """How OPTIMIZERS (and an Identity's `name`) know the row: torch's short class name, or a
        library class's qualified name."""
        return self.torch if self.module == "torch.optim" else self.qualified

    @property
    def implementation_flags(self) -> tuple[str, ...]:
        return IMPLEMENTATION_FLAGS + self.flags

    def defaults(self) -> dict[str, Any]:
        return dict(self.signature + self.keyword_only)


# Flags that change how torch computes, not what: dropped with a note.
IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")

BETAS = {"b1": "{betas}[0]", "b2": "{betas}[1]"}

_LR = Kw("learning_rate", "{lr}")
_SCALE_LR = Tx("optax.scale_by_learning_rate", (_LR,))
_ADAM_KWS = (_LR, Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.999), Kw("eps", "{eps}", 1e-8))
_BETA_KWS = (_hk("b1", "{b1}", 0.9), _hk("b2", "{b2}", 0.999), _hk("eps", "{eps}", 1e-8))
# eps / sqrt(1 - b2^t): torch adds eps to sqrt(v), Optax to the bias-corrected sqrt(v_hat).
_EPS_OVER_BC2 = "lambda count: {eps} / jnp.sqrt(1 - {b2} ** (count + 1))"
_DECAY = Tx("optax.add_decayed_weights", (Kw("weight_decay", "{weight_decay}"),), when=(("weight_decay", NONZERO),))

# torch Adam(amsgrad=True) keeps the max of the *raw* second moment and bias-corrects after;
# optax.amsgrad maxes the bias-corrected one (0.15 apart after 50 steps).
_AMSGRAD_CORE = Tx(f"{HELPERS}.scale_by_torch_amsgrad", _BETA_KWS)
_AMSGRAD_CLAIM = Claim("torch.optim.Adam(params, lr=0.01, amsgrad=True)", "optax.amsgrad(0.01)", 0.146)
_AMSGRAD_NOTE = Note("amsgrad: torch keeps the maximum of the raw second moment, optax.amsgrad the maximum of "
                     "the bias-corrected one (0.15 apart), so switcheroo_optax.scale_by_torch_amsgrad is used",
                     when=(("amsgrad", True),), claims=(_AMSGRAD_CLAIM,))
_ADAM_ARGS = (
    ("lr", "learning_rate"),
    ("betas", "b1, b2 (an expression `cfg.betas` becomes `cfg.betas[0]`, `cfg.betas[1]`)"),
    ("eps", "eps"),
)
_MAXIMIZE_ARG = ("maximize", "optax.scale(-1.0) first")
_L2_ARG = ("weight_decay", "optax.add_decayed_weights(weight_decay) first (L2 on the gradient)")

OPTIMIZERS: dict[str, OptimizerRow] = {}
# Every path a catalog class is imported by -> its row's key (torch.optim's submodules included).
CLASSES: dict[str, str] = {}


def _row(row: OptimizerRow) -> None:
    register(row)


def register(row: OptimizerRow) -> None:
    OPTIMIZERS[row.key] = row
    for path in (row.qualified,) + row.aliases:
        CLASSES[path] = row.key


def qualified_name(key: str) -> str:
    """The class an optimizer key names, as the messages print it ('torch.optim.Adam')."""
    row = OPTIMIZERS.get(key)
    if row is not None:
        return row.qualified
    return key if "." in key else f"torch.optim.{key}"


# -- SGD ------------------------------------------------------------------------------------------
_SGD_BY_HAND_NOTE = (
    "its momentum is set by hand: switcheroo_optax.torch_sgd keeps torch's momentum buffer, which starts (the gradient "
    "itself) at the first step whose momentum is not 0 and rests while it is 0; optax.sgd's trace accumulates from "
    "the first update, so a momentum raised from 0 later trains a different model (0.2 apart after 50 steps)")
_DAMPENING = "lambda count: jnp.where(count == 0, 1.0, 1.0 - {dampening})"
_row(OptimizerRow(
    torch="SGD",
    signature=(("lr", 0.001), ("momentum", 0), ("dampening", 0), ("weight_decay", 0), ("nesterov", False)),
    keyword_only=(("maximize", False), ("foreach", None), ("differentiable", False), ("fused", None)),
    variants=(
        # A momentum the loop changes: torch starts its buffer at the first step whose momentum is
        # not 0, which optax.sgd's trace (accumulating from the first update) does not.
        Variant(when=(("momentum", BY_HAND),), chain=(
            Tx(f"{HELPERS}.torch_sgd", (_LR, _hk("momentum", "{momentum}", 0.0),
                                        Kw("dampening", "{dampening}", 0.0), Kw("nesterov", "{nesterov}", False))),
        ), notes=(_SGD_BY_HAND_NOTE,)),
        Variant(chain=(
        # torch's first momentum buffer is the undampened gradient; later ones are scaled by
        # 1 - dampening (a plain scale(1 - d) is 0.13 off). With momentum an expression that
        # may be 0 at run time, torch does not dampen at all then.
        Tx("optax.scale_by_schedule",
           (Kw("step_size_fn", "lambda count: jnp.where((count == 0) | ({momentum} == 0), 1.0, 1.0 - {dampening})"),),
           when=(("momentum", EXPR), ("dampening", NONZERO))),
        Tx("optax.scale_by_schedule", (Kw("step_size_fn", _DAMPENING),),
           when=(("momentum", KNOWN_NONZERO), ("dampening", NONZERO))),
        Tx("optax.sgd", (_LR, Kw("momentum", "{momentum}", None), Kw("nesterov", "{nesterov}", False))),
    ))),
    notes=(
        Note("torch's SGD keeps the first momentum buffer undampened; the schedule reproduces that "
             "(a plain optax.scale(1 - dampening) is 0.13 apart)",
             when=(("momentum", NONZERO), ("dampening", NONZERO), ("momentum", FIXED)),
             claims=(Claim("torch.optim.SGD(params, lr=0.01, momentum=0.9, dampening=0.5)",
                           "optax.chain(optax.scale(0.5), optax.sgd(0.01, momentum=0.9))", 0.131),)),
    ),
    arguments=(
        ("lr", "learning_rate"),
        ("momentum", "momentum (torch's 0 is optax's None: no trace); set by hand, switcheroo_optax.torch_sgd's"),
        ("dampening", "optax.scale_by_schedule(1 at the first update, 1 - dampening after) before sgd "
                      "(switcheroo_optax.torch_sgd's dampening where the momentum is set by hand)"),
        _L2_ARG,
        ("nesterov", "nesterov"),
        _MAXIMIZE_ARG,
    ),
))

# -- Adam -----------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="Adam",
    signature=(("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0), ("amsgrad", False)),
    keyword_only=(("foreach", None), ("maximize", False), ("capturable", False), ("differentiable", False),
                  ("fused", None), ("decoupled_weight_decay", False)),
    derived=BETAS,
    variants=(
        Variant(when=(("amsgrad", True), ("decoupled_weight_decay", True)), l2_weight_decay=False,
                chain=(_AMSGRAD_CORE, _DECAY, _SCALE_LR)),
        Variant(when=(("amsgrad", True),), chain=(_AMSGRAD_CORE, _SCALE_LR)),
        Variant(when=(("decoupled_weight_decay", True),), l2_weight_decay=False, chain=(
            Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),)),)),
        Variant(chain=(Tx("optax.adam", _ADAM_KWS),)),
    ),
    notes=(
        Note("torch's Adam weight_decay is L2 on the gradient (add_decayed_weights before adam), not "
             "adamw's decoupled decay (0.076 apart after 50 steps)",
             when=(("weight_decay", NONZERO), ("decoupled_weight_decay", False)),
             claims=(Claim("torch.optim.Adam(params, lr=0.01, weight_decay=0.1)",
                           "optax.adamw(0.01, weight_decay=0.1)", 0.0755),)),
        _AMSGRAD_NOTE,
    ),
    arguments=_ADAM_ARGS + (
        ("weight_decay", "optax.add_decayed_weights(weight_decay) first (L2); with "
                         "decoupled_weight_decay=True, adamw's weight_decay"),
        ("amsgrad", "switcheroo_optax.scale_by_torch_amsgrad, then optax.scale_by_learning_rate"),
        ("decoupled_weight_decay", "optax.adamw (or add_decayed_weights after the amsgrad direction)"),
        _MAXIMIZE_ARG,
    ),
))

# -- AdamW ----------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="AdamW",
    signature=(("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0.01), ("amsgrad", False)),
    keyword_only=(("maximize", False), ("foreach", None), ("capturable", False), ("differentiable", False),
                  ("fused", None)),
    derived=BETAS,
    variants=(
        Variant(when=(("amsgrad", True),), l2_weight_decay=False, chain=(
            _AMSGRAD_CORE, Tx("optax.add_decayed_weights", (Kw("weight_decay", "{weight_decay}"),)), _SCALE_LR)),
        # weight_decay always written: torch's default is 0.01, optax's 1e-4 (7.7e-3 apart).
        Variant(l2_weight_decay=False, chain=(Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),)),)),
    ),
    notes=(
        Note("torch's AdamW defaults to weight_decay=0.01, optax's adamw to 1e-4: made explicit "
             "(0.0077 apart if omitted)",
             claims=(Claim("torch.optim.AdamW(params, lr=0.01)", "optax.adamw(0.01)", 0.00774),)),
        _AMSGRAD_NOTE,
    ),
    arguments=_ADAM_ARGS + (
        ("weight_decay", "weight_decay, always written (torch 0.01, optax 1e-4)"),
        ("amsgrad", "switcheroo_optax.scale_by_torch_amsgrad, add_decayed_weights, scale_by_learning_rate"),
        _MAXIMIZE_ARG,
    ),
))

# -- Adagrad --------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="Adagrad",
    signature=(("lr", 0.01), ("lr_decay", 0), ("weight_decay", 0), ("initial_accumulator_value", 0),
               ("eps", 1e-10), ("foreach", None)),
    keyword_only=(("maximize", False), ("differentiable", False), ("fused", None)),
    variants=(Variant(chain=(
        Tx(f"{HELPERS}.scale_by_torch_adagrad",
           (_hk("initial_accumulator_value", "{initial_accumulator_value}", 0.0), _hk("eps", "{eps}", 1e-10))),
        Tx("optax.scale_by_learning_rate", (_LR,), when=(("lr_decay", ZERO),)),
        Tx("optax.scale_by_learning_rate",
           (Kw("learning_rate", "lambda count: {lr} / (1 + count * {lr_decay})",
               schedule_template="lambda count: ({lr})(count) / (1 + count * {lr_decay})"),),
           when=(("lr_decay", NONZERO),)),
    )),),
    notes=(
        Note("torch's Adagrad starts the accumulator at 0 and adds eps outside the square root; optax.adagrad "
             "starts at 0.1 and puts eps inside (0.01 apart with its defaults, 1.3e-06 even with "
             "initial_accumulator_value=0, eps=1e-10), so switcheroo_optax.scale_by_torch_adagrad is used",
             claims=(Claim("torch.optim.Adagrad(params, lr=0.01)",
                           "optax.adagrad(0.01, initial_accumulator_value=0.0, eps=1e-10)", 1.34e-6),
                     Claim("torch.optim.Adagrad(params, lr=0.01)", "optax.adagrad(0.01)", 9.98e-3))),
        Note("lr_decay: torch's step size is lr / (1 + (step - 1) * lr_decay), a schedule on the update count",
             when=(("lr_decay", NONZERO),)),
    ),
    arguments=(
        ("lr", "optax.scale_by_learning_rate(lr)"),
        ("lr_decay", "learning rate schedule `lambda count: lr / (1 + count * lr_decay)`"),
        _L2_ARG,
        ("initial_accumulator_value", "switcheroo_optax.scale_by_torch_adagrad(initial_accumulator_value=)"),
        ("eps", "switcheroo_optax.scale_by_torch_adagrad(eps=) (outside the square root)"),
        _MAXIMIZE_ARG,
    ),
))

# -- RMSprop --------------------------------------------------------------------------------------
_RMS_KWS = (Kw("decay", "{alpha}"), Kw("eps", "{eps}", 1e-8), Kw("eps_in_sqrt", "False"))
_row(OptimizerRow(
    torch="RMSprop",
    signature=(("lr", 0.01), ("alpha", 0.99), ("eps", 1e-8), ("weight_decay", 0), ("momentum", 0),
               ("centered", False), ("capturable", False), ("foreach", None), ("maximize", False),
               ("differentiable", False)),
    keyword_only=(),
    variants=(
        # With momentum and a schedule, optax.rmsprop scales by the learning rate before the
        # momentum trace, torch after it (0.74 apart): spell the chain out in torch's order.
        Variant(when=(("__schedule__", True), ("momentum", NONZERO), ("centered", True)), chain=(
            Tx("optax.scale_by_stddev", _RMS_KWS), Tx("optax.trace", (Kw("decay", "{momentum}"),)),
            Tx("optax.scale_by_learning_rate", (_LR,)))),
        Variant(when=(("__schedule__", True), ("momentum", NONZERO)), chain=(
            Tx("optax.scale_by_rms", _RMS_KWS), Tx("optax.trace", (Kw("decay", "{momentum}"),)),
            Tx("optax.scale_by_learning_rate", (_LR,)))),
        Variant(chain=(
            Tx("optax.rmsprop", (_LR,) + _RMS_KWS + (Kw("centered", "{centered}", False),
                                                      Kw("momentum", "{momentum}", None))),
        )),
    ),
    notes=(
        Note("decay=alpha: torch's default is 0.99, optax's 0.9; eps_in_sqrt=False: torch adds eps "
             "outside the square root (0.58 and 0.048 apart otherwise)",
             claims=(Claim("torch.optim.RMSprop(params, lr=0.01)", "optax.rmsprop(0.01)", 0.580),
                     Claim("torch.optim.RMSprop(params, lr=0.01)", "optax.rmsprop(0.01, decay=0.99)", 0.0479))),
        Note("with momentum and a learning-rate schedule the chain is spelled out in torch's order "
             "(rms, momentum trace, then the scheduled learning rate): optax.rmsprop would apply the "
             "schedule before the trace", when=(("__schedule__", True), ("momentum", NONZERO))),
    ),
    arguments=(
        ("lr", "learning_rate"),
        ("alpha", "decay (always written: torch 0.99, optax 0.9)"),
        ("eps", "eps, with eps_in_sqrt=False"),
        _L2_ARG,
        ("momentum", "momentum (with a schedule: scale_by_rms, trace(momentum), scale_by_learning_rate)"),
        ("centered", "centered (scale_by_stddev in the spelled-out chain)"),
        _MAXIMIZE_ARG,
    ),
))

# -- Adadelta -------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="Adadelta",
    signature=(("lr", 1.0), ("rho", 0.9), ("eps", 1e-6), ("weight_decay", 0), ("foreach", None)),
    keyword_only=(("capturable", False), ("maximize", False), ("differentiable", False)),
    variants=(Variant(l2_weight_decay=False, chain=(
        Tx("optax.adadelta", (_LR, Kw("rho", "{rho}", 0.9), Kw("eps", "{eps}", 1e-6),
                              Kw("weight_decay", "{weight_decay}", 0.0))),
    )),),
    notes=(
        Note("learning_rate is always written: optax.adadelta's default None never flips the update's "
             "sign and climbs the loss (0.49 apart)",
             claims=(Claim("torch.optim.Adadelta(params)", "optax.adadelta()", 0.485),)),
    ),
    arguments=(
        ("lr", "learning_rate, always written (optax's default None ascends)"),
        ("rho", "rho"),
        ("eps", "eps"),
        ("weight_decay", "weight_decay (optax.adadelta's is L2 on the gradient too)"),
        _MAXIMIZE_ARG,
    ),
))

# -- Adamax ---------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="Adamax",
    signature=(("lr", 0.002), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0), ("foreach", None)),
    keyword_only=(("maximize", False), ("differentiable", False), ("capturable", False)),
    derived=BETAS,
    variants=(Variant(chain=(Tx("optax.adamax", _ADAM_KWS),)),),
    arguments=_ADAM_ARGS + (_L2_ARG, _MAXIMIZE_ARG),
))

# -- NAdam ----------------------------------------------------------------------------------------
_NADAM_CORE = Tx(f"{HELPERS}.scale_by_torch_nadam", _BETA_KWS + (_hk("momentum_decay", "{momentum_decay}", 0.004),))
_row(OptimizerRow(
    torch="NAdam",
    signature=(("lr", 0.002), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0),
               ("momentum_decay", 0.004), ("decoupled_weight_decay", False)),
    keyword_only=(("foreach", None), ("maximize", False), ("capturable", False), ("differentiable", False)),
    derived=BETAS,
    variants=(
        Variant(when=(("decoupled_weight_decay", True),), l2_weight_decay=False,
                chain=(_NADAM_CORE, _DECAY, _SCALE_LR)),
        Variant(chain=(_NADAM_CORE, _SCALE_LR)),
    ),
    notes=(
        Note("torch's NAdam schedules its momentum with momentum_decay; optax.nadam is the limit "
             "momentum_decay -> inf (0.063 apart at torch's 0.004), so switcheroo_optax.scale_by_torch_nadam is used",
             claims=(Claim("torch.optim.NAdam(params, lr=0.01)", "optax.nadam(0.01)", 0.0628),)),
    ),
    arguments=_ADAM_ARGS + (
        ("weight_decay", "optax.add_decayed_weights first (L2); decoupled: after the direction, "
                         "before the learning rate"),
        ("momentum_decay", "switcheroo_optax.scale_by_torch_nadam(momentum_decay=)"),
        ("decoupled_weight_decay", "add_decayed_weights between the direction and scale_by_learning_rate"),
        _MAXIMIZE_ARG,
    ),
))

# -- RAdam ----------------------------------------------------------------------------------------
_RADAM_KWS = (Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.999), Kw("eps", _EPS_OVER_BC2))
_row(OptimizerRow(
    torch="RAdam",
    signature=(("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0),
               ("decoupled_weight_decay", False)),
    keyword_only=(("foreach", None), ("maximize", False), ("capturable", False), ("differentiable", False)),
    derived=BETAS,
    variants=(
        Variant(when=(("decoupled_weight_decay", True),), l2_weight_decay=False, chain=(
            Tx("optax.inject_hyperparams(optax.scale_by_radam)", _RADAM_KWS), _DECAY, _SCALE_LR)),
        Variant(chain=(Tx("optax.inject_hyperparams(optax.radam)", (_LR,) + _RADAM_KWS),)),
    ),
    notes=(
        Note("torch adds eps to sqrt(v), optax.radam to the bias-corrected sqrt(v_hat): eps becomes the "
             "schedule eps / sqrt(1 - b2^t) through optax.inject_hyperparams (plain radam is 2.8e-09 apart "
             "at eps=1e-8, 0.00027 at eps=1e-3)",
             claims=(Claim("torch.optim.RAdam(params, lr=0.01)", "optax.radam(0.01)", 2.77e-9),
                     Claim("torch.optim.RAdam(params, lr=0.01, eps=1e-3)", "optax.radam(0.01, eps=1e-3)", 2.73e-4))),
    ),
    arguments=_ADAM_ARGS[:2] + (
        ("eps", "eps as the schedule `lambda count: eps / jnp.sqrt(1 - b2 ** (count + 1))`"),
        ("weight_decay", "optax.add_decayed_weights first (L2); decoupled: after scale_by_radam"),
        ("decoupled_weight_decay", "scale_by_radam, add_decayed_weights, scale_by_learning_rate"),
        _MAXIMIZE_ARG,
    ),
))

# -- Rprop ----------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="Rprop",
    signature=(("lr", 0.01), ("etas", (0.5, 1.2)), ("step_sizes", (1e-6, 50))),
    keyword_only=(("capturable", False), ("foreach", None), ("maximize", False), ("differentiable", False)),
    derived={"eta_minus": "{etas}[0]", "eta_plus": "{etas}[1]",
             "min_step_size": "{step_sizes}[0]", "max_step_size": "{step_sizes}[1]"},
    variants=(Variant(chain=(
        Tx(f"{HELPERS}.torch_rprop", (_hk("learning_rate", "{lr}", 0.01, schedulable=False),
                                      _hk("eta_minus", "{eta_minus}", 0.5), _hk("eta_plus", "{eta_plus}", 1.2),
                                      _hk("min_step_size", "{min_step_size}", 1e-6),
                                      _hk("max_step_size", "{max_step_size}", 50.0))),
    )),),
    notes=(
        Note("optax.rprop returns the previous step's update (its first update is zero) and does not clip the "
             "first step size (1.4 apart), so switcheroo_optax.torch_rprop is used; lr is the initial step size",
             claims=(Claim("torch.optim.Rprop(params, lr=0.01)", "optax.rprop(0.01)", 1.40),)),
    ),
    arguments=(
        ("lr", "learning_rate: the initial step size (not a scale; no schedule)"),
        ("etas", "eta_minus, eta_plus"),
        ("step_sizes", "min_step_size, max_step_size"),
        _MAXIMIZE_ARG,
    ),
))

# -- ASGD -----------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="ASGD",
    signature=(("lr", 0.01), ("lambd", 1e-4), ("alpha", 0.75), ("t0", 1e6), ("weight_decay", 0),
               ("foreach", None), ("maximize", False), ("differentiable", False), ("capturable", False)),
    keyword_only=(),
    variants=(Variant(l2_weight_decay=False, chain=(
        # torch: param *= 1 - lambd * eta, then param -= eta * (grad + weight_decay * param),
        # with eta = lr / (1 + lambd * lr * (t - 1)) ** alpha.
        Tx("optax.add_decayed_weights", (Kw("weight_decay", "{weight_decay} + {lambd}"),),
           when=(("weight_decay", NONZERO),)),
        Tx("optax.add_decayed_weights", (Kw("weight_decay", "{lambd}"),), when=(("weight_decay", ZERO),)),
        Tx("optax.sgd", (Kw("learning_rate", "lambda count: {lr} / (1 + {lambd} * {lr} * count) ** {alpha}"),)),
    )),),
    notes=(
        Note("the parameters follow torch's ASGD exactly; its averaged copy (optimizer.state[p]['ax'], averaged "
             "from step t0 on) has no Optax equivalent and is not kept"),
        Note("plain optax.sgd(lr) is not ASGD: torch always decays the parameters by lambd and anneals the "
             "step size (5.5e-05 apart)",
             claims=(Claim("torch.optim.ASGD(params, lr=0.01)", "optax.sgd(0.01)", 5.54e-5),)),
    ),
    arguments=(
        ("lr", "the step-size schedule `lambda count: lr / (1 + lambd * lr * count) ** alpha`"),
        ("lambd", "optax.add_decayed_weights(weight_decay + lambd) and the step-size schedule"),
        ("alpha", "the step-size schedule's power"),
        ("t0", "only starts the averaged copy ax, which is not kept"),
        ("weight_decay", "optax.add_decayed_weights(weight_decay + lambd)"),
        _MAXIMIZE_ARG,
    ),
    unsupported=(
        Unsupported(r"""\[\s*['"]ax['"]\s*\]""",
                    "this file reads ASGD's averaged parameters (state[...]['ax']), which Optax does not keep: "
                    "port the averaging by hand"),
    ),
))

# -- Adafactor ------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="Adafactor",
    signature=(("lr", 0.01), ("beta2_decay", -0.8), ("eps", (None, 1e-3)), ("d", 1.0), ("weight_decay", 0.0)),
    keyword_only=(("foreach", None), ("maximize", False)),
    derived={"eps1": "{eps}[0]", "eps2": "{eps}[1]"},
    variants=(Variant(l2_weight_decay=False, chain=(
        Tx(f"{HELPERS}.torch_adafactor", (_hk("learning_rate", "{lr}", 0.01, schedulable=False),
                                          _hk("beta2_decay", "{beta2_decay}", -0.8), _hk("eps1", "{eps1}", None),
                                          _hk("eps2", "{eps2}", 1e-3), _hk("d", "{d}", 1.0),
                                          _hk("weight_decay", "{weight_decay}", 0.0))),
    )),),
    notes=(
        Note("optax.adafactor has other defaults altogether (0.34 apart) and factors the two largest dims of a "
             ">2-D parameter where torch factors the last two; switcheroo_optax.torch_adafactor follows torch "
             "for every shape",
             claims=(Claim("torch.optim.Adafactor(params, lr=0.01)", "optax.adafactor(0.01)", 0.341),)),
    ),
    arguments=(
        ("lr", "learning_rate: rho = min(lr, 1/sqrt(t)) and the decoupled weight decay (no schedule)"),
        ("beta2_decay", "beta2_decay"),
        ("eps", "eps1, eps2 (eps1=None: the dtype's machine epsilon)"),
        ("d", "d (update clipping threshold)"),
        ("weight_decay", "weight_decay (decoupled: param * (1 - lr * weight_decay))"),
        _MAXIMIZE_ARG,
    ),
))

# -- SparseAdam -----------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="SparseAdam",
    signature=(("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("maximize", False)),
    keyword_only=(),
    derived=BETAS,
    variants=(Variant(chain=(Tx(f"{HELPERS}.scale_by_torch_sparse_adam", _BETA_KWS), _SCALE_LR)),),
    notes=(
        Note("torch updates only the rows present in the sparse gradient; switcheroo_optax.scale_by_torch_sparse_adam "
             "updates the rows whose gradient is not all zero (JAX's gradient of a lookup), so a looked-up row "
             "with an exactly zero gradient is the one case that differs. optax.adam decays every row's moments "
             "(0.12 apart with 3 of 10 rows per step, even with torch's eps placement)",
             claims=(Claim("torch.optim.SparseAdam(params, lr=0.01)",
                           "optax.inject_hyperparams(optax.adam)(learning_rate=0.01, "
                           "eps=lambda count: 1e-8 / jnp.sqrt(1 - 0.999 ** (count + 1)))", 0.116, "sparse_rows"),)),
    ),
    arguments=(
        ("lr", "optax.scale_by_learning_rate(lr)"),
        ("betas", "b1, b2"),
        ("eps", "eps (added to sqrt(v), as torch)"),
        _MAXIMIZE_ARG,
    ),
))

# -- LBFGS ----------------------------------------------------------------------------------------
_row(OptimizerRow(
    torch="LBFGS",
    signature=(("lr", 1), ("max_iter", 20), ("max_eval", None), ("tolerance_grad", 1e-7),
               ("tolerance_change", 1e-9), ("history_size", 100), ("line_search_fn", None)),
    keyword_only=(),
    variants=(
        Variant(when=(("line_search_fn", None),), chain=(
            Tx(f"{HELPERS}.torch_lbfgs", (
                _hk("learning_rate", "{lr}", 1.0, schedulable=False), _hk("max_iter", "{max_iter}", 20),
                _hk("max_eval", "{max_eval}", None), _hk("tolerance_grad", "{tolerance_grad}", 1e-7),
                _hk("tolerance_change", "{tolerance_change}", 1e-9), _hk("history_size", "{history_size}", 100))),
        ), notes=(
            "one update is one torch step(closure): call opt.update(grads, opt_state, params, value_fn=loss_fn) "
            "(loss_fn(params) -> loss, what the closure computes); it runs up to max_iter iterations with torch's "
            "early exits (max_iter=1 needs no value_fn)",
            "optax.lbfgs(linesearch=None) differs from torch in the first step's scaling (0.49 apart) and has no "
            "inner iterations",
        ), claims=(Claim("torch.optim.LBFGS(params, lr=1, max_iter=1, history_size=10)",
                         "optax.lbfgs(1.0, memory_size=10, linesearch=None)", 0.490, "lbfgs"),)),
        Variant(when=(("line_search_fn", "strong_wolfe"),),
                problem="line_search_fn='strong_wolfe' has no Optax equivalent: optax.lbfgs's zoom line search "
                        "takes other steps (0.87 apart after 50 steps); port it by hand",
                claims=(Claim("torch.optim.LBFGS(params, lr=1, max_iter=1, history_size=10, "
                              "line_search_fn='strong_wolfe')", "optax.lbfgs(memory_size=10)", 0.867, "lbfgs"),)),
        Variant(problem="line_search_fn is not a literal: torch's strong_wolfe line search has no Optax "
                        "equivalent, and without one switcheroo_optax.torch_lbfgs applies; decide by hand"),
    ),
    arguments=(
        ("lr", "learning_rate (the step length; no schedule)"),
        ("max_iter", "max_iter: iterations per update, as per torch step(closure)"),
        ("max_eval", "max_eval"),
        ("tolerance_grad", "tolerance_grad (early exit)"),
        ("tolerance_change", "tolerance_change (early exits)"),
        ("history_size", "history_size"),
        ("line_search_fn", "None only: 'strong_wolfe' has no equivalent (OPX201, no fix)"),
    ),
))

# Notes every row shares.
MAXIMIZE_NOTE = "maximize=True: torch negates the gradient first, so optax.scale(-1.0) comes first"
L2_NOTE_GENERIC = "torch's weight_decay adds weight_decay * param to the gradient (L2): optax.add_decayed_weights first"
FLAG_NOTE = "{flags}: implementation flags of torch with no effect on the numbers, dropped"
