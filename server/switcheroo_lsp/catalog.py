"""The torch.optim -> Optax knowledge, as data.

One row per torch optimizer: its signature (torch 2.13.0, defaults made explicit), the Optax
chain that reproduces its trajectory (spec/optax-mapping.md, measured), and the notes that
messages and hovers show. The emitter (`emit.py`), the hover, and the numerical tests all read
these rows; adding an optimizer is adding a row.

Templates: `{arg}` is the torch argument's source text (the user's expression, or torch's
default). Derived values such as `b1` (from `betas[0]`) are declared in `derived`.
A keyword whose template is exactly `{x}` is left out when the user did not write `x` and
torch's default equals Optax's (`Kw.optax_default`); every other keyword is always written,
because the defaults differ (AdamW weight_decay 0.01 vs 1e-4, RMSprop 0.99 vs 0.9, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUIRED = object()   # an Optax keyword with no default: always emitted
NONZERO = object()    # `when` value: given, and not the literal 0 / 0.0 / False / None
ANY = object()        # `when` value: given at all, whatever its value

# The helper transforms module the rewrites import where plain Optax is not exact.
HELPERS = "switcheroo_optax"


@dataclass(frozen=True)
class Kw:
    name: str
    template: str
    optax_default: Any = REQUIRED


@dataclass(frozen=True)
class Tx:
    """One transform call in the emitted chain; `when` gates it on torch argument values."""
    func: str
    kws: tuple[Kw, ...] = ()
    when: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Variant:
    """A faithful recipe, chosen by the torch arguments' literal values (`when`)."""
    chain: tuple[Tx, ...]
    when: tuple[tuple[str, Any], ...] = ()
    l2_weight_decay: bool = True       # prepend add_decayed_weights(weight_decay) when nonzero
    exact: bool = True
    difference: str = ""               # measured, when not exact
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    text: str
    when: tuple[tuple[str, Any], ...] = ()   # all must hold; () = always


@dataclass(frozen=True)
class OptimizerRow:
    torch: str
    signature: tuple[tuple[str, Any], ...]          # after `params`, positional order
    keyword_only: tuple[tuple[str, Any], ...]
    variants: tuple[Variant, ...]
    derived: dict[str, str] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()

    @property
    def qualified(self) -> str:
        return f"torch.optim.{self.torch}"

    def defaults(self) -> dict[str, Any]:
        return dict(self.signature + self.keyword_only)


# Flags that change how torch computes, not what: dropped with a note.
IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")

BETAS = {"b1": "{betas}[0]", "b2": "{betas}[1]"}

_LR = Kw("learning_rate", "{lr}")
_ADAM_KWS = (_LR, Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.999), Kw("eps", "{eps}", 1e-8))

# torch Adam(amsgrad=True) keeps the max of the *raw* second moment and bias-corrects after;
# optax.amsgrad maxes the bias-corrected one (0.15 apart after 50 steps).
_AMSGRAD_CORE = Tx(f"{HELPERS}.scale_by_torch_amsgrad",
                   (Kw("b1", "{b1}"), Kw("b2", "{b2}"), Kw("eps", "{eps}")))

OPTIMIZERS: dict[str, OptimizerRow] = {}


def _row(row: OptimizerRow) -> None:
    OPTIMIZERS[row.torch] = row


_row(OptimizerRow(
    torch="SGD",
    signature=(("lr", 0.001), ("momentum", 0), ("dampening", 0), ("weight_decay", 0), ("nesterov", False)),
    keyword_only=(("maximize", False), ("foreach", None), ("differentiable", False), ("fused", None)),
    variants=(Variant(chain=(
        # torch's first momentum buffer is the undampened gradient; later ones are scaled by
        # 1 - dampening (a plain scale(1 - d) is 0.13 off).
        Tx("optax.scale_by_schedule",
           (Kw("step_size_fn", "lambda count: jnp.where(count == 0, 1.0, 1.0 - {dampening})"),),
           when=(("momentum", NONZERO), ("dampening", NONZERO))),
        Tx("optax.sgd", (_LR, Kw("momentum", "{momentum}", None), Kw("nesterov", "{nesterov}", False))),
    )),),
    notes=(
        Note("torch's SGD keeps the first momentum buffer undampened; the schedule reproduces that",
             when=(("momentum", NONZERO), ("dampening", NONZERO))),
    ),
))

_row(OptimizerRow(
    torch="Adam",
    signature=(("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0), ("amsgrad", False)),
    keyword_only=(("foreach", None), ("maximize", False), ("capturable", False), ("differentiable", False),
                  ("fused", None), ("decoupled_weight_decay", False)),
    derived=BETAS,
    variants=(
        Variant(when=(("amsgrad", True), ("decoupled_weight_decay", True)), l2_weight_decay=False, chain=(
            _AMSGRAD_CORE,
            Tx("optax.add_decayed_weights", (Kw("weight_decay", "{weight_decay}"),), when=(("weight_decay", NONZERO),)),
            Tx("optax.scale_by_learning_rate", (Kw("learning_rate", "{lr}"),)),
        )),
        Variant(when=(("amsgrad", True),), chain=(
            _AMSGRAD_CORE, Tx("optax.scale_by_learning_rate", (Kw("learning_rate", "{lr}"),)))),
        Variant(when=(("decoupled_weight_decay", True),), l2_weight_decay=False, chain=(
            Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),)),)),
        Variant(chain=(Tx("optax.adam", _ADAM_KWS),)),
    ),
    notes=(
        Note("torch's Adam weight_decay is L2 on the gradient (add_decayed_weights before adam), not "
             "adamw's decoupled decay (0.076 apart after 50 steps)",
             when=(("weight_decay", NONZERO), ("decoupled_weight_decay", False))),
        Note("amsgrad: torch keeps the maximum of the raw second moment; optax.amsgrad maxes the "
             "bias-corrected one (0.15 apart), so switcheroo_optax.scale_by_torch_amsgrad is used",
             when=(("amsgrad", True),)),
    ),
))

_row(OptimizerRow(
    torch="AdamW",
    signature=(("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0.01), ("amsgrad", False)),
    keyword_only=(("maximize", False), ("foreach", None), ("capturable", False), ("differentiable", False),
                  ("fused", None)),
    derived=BETAS,
    variants=(
        Variant(when=(("amsgrad", True),), l2_weight_decay=False, chain=(
            _AMSGRAD_CORE,
            Tx("optax.add_decayed_weights", (Kw("weight_decay", "{weight_decay}"),)),
            Tx("optax.scale_by_learning_rate", (Kw("learning_rate", "{lr}"),)),
        )),
        # weight_decay always written: torch's default is 0.01, optax's 1e-4 (7.7e-3 apart).
        Variant(l2_weight_decay=False, chain=(Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),)),)),
    ),
    notes=(
        Note("torch's AdamW defaults to weight_decay=0.01, optax's adamw to 1e-4: made explicit"),
        Note("amsgrad: torch keeps the maximum of the raw second moment; optax.amsgrad maxes the "
             "bias-corrected one (0.15 apart), so switcheroo_optax.scale_by_torch_amsgrad is used",
             when=(("amsgrad", True),)),
    ),
))

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
             "outside the square root (0.58 and 0.048 apart otherwise)"),
        Note("with momentum, keep the learning rate constant: optax.rmsprop applies a schedule "
             "before the momentum trace, torch after", when=(("momentum", NONZERO),)),
    ),
))

# Notes every row shares.
MAXIMIZE_NOTE = "maximize=True: torch negates the gradient first, so optax.scale(-1.0) comes first"
L2_NOTE_GENERIC = "torch's weight_decay adds weight_decay * param to the gradient (L2): optax.add_decayed_weights first"
FLAG_NOTE = "{flags}: implementation flags of torch with no effect on the numbers, dropped"
