"""What the rewrites write: the API a converted program uses. One module per target behind
the `Target` interface (base.py); the analysis and the transforms ask the target, never spell
the API themselves. `optax` (the default) threads `opt_state` and `params` by hand."""

from .base import Target
from .optax import OPTAX

TARGETS: dict[str, Target] = {OPTAX.name: OPTAX}


def target_named(name: str | None) -> Target:
    return TARGETS.get(name or OPTAX.name, OPTAX)


__all__ = ["Target", "TARGETS", "target_named", "OPTAX"]
