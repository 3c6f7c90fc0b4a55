"""What the rewrites write: the API a converted program uses. One module per target behind
the `Target` interface (base.py); the analysis and the transforms ask the target, never spell
the API themselves. `optax` (the default) threads `opt_state` and `params` by hand; `flax-nnx`
wraps the same transform in `nnx.Optimizer`, which updates the module in place."""

from .base import Import, Target, Wrapper
from .flax_nnx import FLAX_NNX
from .optax import OPTAX

TARGETS: dict[str, Target] = {OPTAX.name: OPTAX, FLAX_NNX.name: FLAX_NNX}


def target_named(name: str | None) -> Target:
    return TARGETS.get(name or OPTAX.name, OPTAX)


__all__ = ["Import", "Target", "TARGETS", "Wrapper", "target_named", "OPTAX", "FLAX_NNX"]
