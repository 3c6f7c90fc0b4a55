"""schedulefree's AdamWScheduleFree and SGDScheduleFree with a warmup."""

from __future__ import annotations

import jax.numpy as jnp
import optax


def _warmed(learning_rate: float, warmup_steps: int, shift: float):
    """lr * min(1, (count + shift) / warmup_steps), on a float count (an int32 count divided by an
    int would round to float32)."""
    if not warmup_steps:
        return learning_rate
    return lambda count: learning_rate * jnp.minimum(1.0, (count + shift) / warmup_steps)


def torch_schedule_free_adamw(learning_rate: float = 0.0025, warmup_steps: int = 0, b1: float = 0.9,
                              b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                              weight_lr_power: float = 2.0) -> optax.GradientTransformationExtraArgs:
    """schedulefree's `AdamWScheduleFree(lr, betas=(b1, b2), eps, weight_decay, warmup_steps,
    weight_lr_power)` in train mode (the parameters are the y sequence). Needs `params`.

    At step k (from 0), with lr_k = lr * min(1, (k + 1) / warmup_steps)::

        v = b2 * v + (1 - b2) * g²;  d = g / (sqrt(v / (1 - b2^(k+1))) + eps) + weight_decay * y
        lr_max = max(lr_max, lr_k);  c = lr_max^weight_lr_power / sum of those weights so far
        z <- z - lr_k * d;  x <- (1 - c) * x + c * z;  y = b1 * x + (1 - b1) * z

    `optax.contrib.schedule_free_adamw(warmup_steps=...)` warms up its inner AdamW on a count
    that starts one step later than its averaging weights (1.1e-02 apart after 50 steps);
    without a warmup it is exact and the rewrite uses it. Evaluate at
    `optax.contrib.schedule_free_eval_params(state, params)` (torch's `optimizer.eval()`).
    """
    inner = optax.chain(optax.scale_by_adam(b1=0.0, b2=b2, eps=eps), optax.add_decayed_weights(weight_decay),
                        optax.scale_by_learning_rate(_warmed(learning_rate, warmup_steps, 1.0)))
    return optax.contrib.schedule_free(inner, learning_rate=_warmed(learning_rate, warmup_steps, 0.0), b1=b1,
                                       weight_lr_power=weight_lr_power)


def torch_schedule_free_sgd(learning_rate: float = 1.0, warmup_steps: int = 0, momentum: float = 0.9,
                            weight_decay: float = 0.0,
                            weight_lr_power: float = 2.0) -> optax.GradientTransformationExtraArgs:
    """schedulefree's `SGDScheduleFree(lr, momentum, weight_decay, warmup_steps, weight_lr_power)`
    in train mode. Needs `params`.

    At step k (from 0), with lr_k = lr * min(1, (k + 1) / warmup_steps)::

        d = g + weight_decay * y
        lr_max = max(lr_max, lr_k);  c = lr_max^weight_lr_power / sum of those weights so far
        z <- z - lr_k * d;  x <- (1 - c) * x + c * z;  y = momentum * x + (1 - momentum) * z

    `optax.contrib.schedule_free_sgd(warmup_steps=...)` warms its inner SGD up one step late
    (0.17 apart after 50 steps); without a warmup it is exact and the rewrite uses it.
    """
    inner = optax.chain(optax.add_decayed_weights(weight_decay),
                        optax.sgd(_warmed(learning_rate, warmup_steps, 1.0)))
    return optax.contrib.schedule_free(inner, learning_rate=_warmed(learning_rate, warmup_steps, 0.0), b1=momentum,
                                       weight_lr_power=weight_lr_power)
