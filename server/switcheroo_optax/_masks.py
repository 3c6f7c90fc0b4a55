"""Which parameters a library's weight decay applies to, as Optax masks."""

from __future__ import annotations

import fnmatch

import jax


def _name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return ".".join(parts)


def timm_weight_decay_mask(no_weight_decay=()):
    """timm's `create_optimizer_v2(model, weight_decay=wd)` (filter_bias_and_bn=True) decays every
    parameter except those of one dimension or fewer (biases, norm scales), those whose name ends in
    `.bias`, and those `model.no_weight_decay()` names (fnmatch patterns). As an Optax `mask=`: a
    function of the params pytree giving True where the weight decays; a leaf's name is its path
    joined with dots (`blocks.0.attn.qkv.weight` for a pytree keyed like torch's state dict).
    """
    patterns = tuple(no_weight_decay)

    def mask(params):
        def decays(path, p):
            name = _name(path)
            excluded = p.ndim <= 1 or name.endswith(".bias") or name == "bias" or any(
                fnmatch.fnmatch(name, pattern) for pattern in patterns)
            return not excluded
        return jax.tree_util.tree_map_with_path(decays, params)

    return mask
