"""Which runner executes a rewrite, per `--target`. A target's runner takes the resolved case,
a problem and torch's run (whose gradients it is fed) and returns its own trajectory.

`flax-nnx` plugs in here once its rewrite exists (issue 13): a module with the same `run`
as optax_runner, building `nnx.Optimizer(model, tx, wrt=nnx.Param)` around the same problems.
"""

from __future__ import annotations

TARGETS = ("optax", "flax-nnx")


class TargetUnavailable(Exception):
    pass


def runner(target: str):
    """The module that runs rewrites for `target` (imports jax and optax)."""
    if target == "optax":
        from . import optax_runner
        return optax_runner
    if target == "flax-nnx":
        raise TargetUnavailable("verify --target flax-nnx is not available yet: the Flax NNX rewrite "
                                "is still to come; verify the Optax rewrite with --target optax")
    raise TargetUnavailable(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
