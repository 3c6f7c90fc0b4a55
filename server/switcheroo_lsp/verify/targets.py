"""Which runner executes a rewrite, per `--target`. A target's runner takes the resolved case,
a problem and torch's run (whose gradients it is fed) and returns its own trajectory.

`optax` threads params and opt_state through `tx.update` / `optax.apply_updates`; `flax-nnx`
wraps the same transform in `nnx.Optimizer(model, tx, wrt=nnx.Param)` over an nnx module.
"""

from __future__ import annotations


def runner(target: str):
    """The module that runs rewrites for `target` (imports jax and optax, and flax for NNX)."""
    if target == "flax-nnx":
        from . import nnx_runner
        return nnx_runner
    from . import optax_runner
    return optax_runner
