"""Arithmetic shared by the transforms, written the way torch's kernels compute it."""

from __future__ import annotations

import jax.numpy as jnp


def lerp(start, end, weight):
    """torch's `start.lerp_(end, weight)`: it switches formula at weight 0.5 for accuracy."""
    diff = end - start
    if isinstance(weight, (int, float)):
        return start + weight * diff if weight < 0.5 else end - diff * (1 - weight)
    return jnp.where(weight < 0.5, start + weight * diff, end - diff * (1 - weight))


def step_number(count):
    """torch's 1-based step, as a float of the default float type (torch's scalar dtype)."""
    return (count + 1).astype(jnp.result_type(float))


def bias_correction(beta, step, like):
    """`1 - beta ** step`, in the dtype of `like` (torch computes it in Python, then the
    kernel casts it to the parameter's dtype)."""
    return (1 - beta ** step).astype(like.dtype)
