"""torch hyperparameters set or read by hand through `param_groups` -> the Optax hyperparameter
`optax.inject_hyperparams` keeps in the optimizer's state (`opt_state.hyperparams[...]`).

`optimizer.param_groups[0]["lr"] = frac * lr` (or a loop writing every group) changes what the
next `step()` uses; `optax.inject_hyperparams(optax.adam)(learning_rate=lr)` keeps the learning
rate in the state, where the loop sets it (`opt_state.hyperparams["learning_rate"] = frac * lr`)
and the next update reads it (measured: tests/numerics/test_hyperparams.py).
"""

from __future__ import annotations

# torch's group key -> the names of the Optax hyperparameters that keep it (`betas` is one tuple in
# torch, b1 and b2 in Optax). Where the rewrite is one transform taking them as its keywords, that
# transform is injected; where it is a chain (Adam's L2 decay, clipping, maximize, a helper and
# scale_by_learning_rate), a factory of the chain whose parameters carry these names, each passed to
# the links the catalog's templates put that torch value in (emit.inject_transforms). Proven in
# tests/numerics/test_hyperparams.py.
INJECTED = {"lr": ("learning_rate",), "weight_decay": ("weight_decay",), "momentum": ("momentum",),
            "eps": ("eps",), "betas": ("b1", "b2")}

# Keywords of an injected factory that are not numbers to keep in the state: a callable mask
# would be read as a schedule.
STATIC_ARGS = ("mask", "weight_decay_mask")

NOTE = "optax.inject_hyperparams keeps it in the optimizer's state, where the next update reads it"

HOVER = ("the learning rate set by hand (`param_groups[...][\"lr\"]`) lives in the optimizer state's "
         "hyperparameters now: `optax.inject_hyperparams` keeps it there, where the loop writes and reads it "
         "(`opt_state.hyperparams[\"learning_rate\"]`; with Flax NNX "
         "`optimizer.opt_state.hyperparams[\"learning_rate\"][...]`; a parameter group's, where the groups became "
         "an `optax.multi_transform`, in its own state: `opt_state.inner_states[\"group1\"].inner_state"
         ".hyperparams[...]`), and the next update uses it. The same holds for `weight_decay`, `momentum`, `eps` "
         "and `betas` (`b1`, `b2`); where the rewrite is a chain (torch Adam's L2 decay is "
         "`optax.add_decayed_weights` before `optax.adam`), the injected transform is a small factory of the "
         "chain, each value passed to the link that reads it")


def optax_names(key: str) -> tuple[str, ...] | None:
    """The Optax hyperparameters a torch group key is ('lr' -> ('learning_rate',), 'betas' -> ('b1',
    'b2')); None: not supported."""
    return INJECTED.get(key)
