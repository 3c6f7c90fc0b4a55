"""The learning-rate schedules of transformers and diffusers (their `get_*_schedule*` functions
and `get_scheduler(name, ...)`), as Optax schedules: functions of the update count.

Each is the library's LambdaLR factor times the optimizer's learning rate, computed on the count
as a float of the default float type (an int32 count divided by an int would round to float32).
Formulas follow transformers 5.25.0 and diffusers 0.42.1; each docstring gives its factor f(c).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

_PI = math.pi


def _c(count):
    return jnp.asarray(count).astype(jnp.result_type(float))


def _warm(c, num_warmup_steps):
    return c / max(1, num_warmup_steps)


def constant_schedule_with_warmup(learning_rate, num_warmup_steps):
    """f(c) = c / max(1, W) before W, then 1 (get_constant_schedule_with_warmup)."""
    def schedule(count):
        c = _c(count)
        return learning_rate * jnp.where(c < num_warmup_steps, c / max(1.0, num_warmup_steps), 1.0)
    return schedule


def linear_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps, f_min=0.0, f_max=1.0):
    """f(c) = f_max * c / max(1, W) before W, then f_min + (f_max - f_min) * max(0, (T - c) / max(1, T - W))
    (get_linear_schedule_with_warmup; f_min, f_max: diffusers' only)."""
    def schedule(count):
        c = _c(count)
        decay = f_min + (f_max - f_min) * jnp.maximum(0.0, (num_training_steps - c) /
                                                      max(1, num_training_steps - num_warmup_steps))
        return learning_rate * jnp.where(c < num_warmup_steps, f_max * _warm(c, num_warmup_steps), decay)
    return schedule


def cosine_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps, num_cycles=0.5,
                                min_lr_rate=0.0):
    """f(c) = c / max(1, W) before W, then max(0, m + (1 - m) * (1 + cos(2 pi n p)) / 2) with
    p = (c - W) / max(1, T - W), n = num_cycles, m = min_lr_rate (get_cosine_schedule_with_warmup;
    transformers' get_cosine_with_min_lr_schedule_with_warmup)."""
    def schedule(count):
        c = _c(count)
        progress = (c - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        factor = 0.5 * (1.0 + jnp.cos(_PI * float(num_cycles) * 2.0 * progress))
        factor = jnp.maximum(0.0, factor * (1 - min_lr_rate) + min_lr_rate)
        return learning_rate * jnp.where(c < num_warmup_steps, _warm(c, num_warmup_steps), factor)
    return schedule


def cosine_with_hard_restarts_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps,
                                                   num_cycles=1):
    """f(c) = c / max(1, W) before W; 0 once p = (c - W) / max(1, T - W) >= 1; else
    max(0, (1 + cos(pi * ((n p) mod 1))) / 2) (get_cosine_with_hard_restarts_schedule_with_warmup)."""
    def schedule(count):
        c = _c(count)
        progress = (c - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        factor = jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(_PI * jnp.mod(float(num_cycles) * progress, 1.0))))
        factor = jnp.where(progress >= 1.0, 0.0, factor)
        return learning_rate * jnp.where(c < num_warmup_steps, _warm(c, num_warmup_steps), factor)
    return schedule


def polynomial_decay_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps, lr_end=1e-7,
                                          power=1.0):
    """lr * c / max(1, W) before W; lr_end after T; else (lr - lr_end) * (1 - (c - W) / (T - W)) ** power
    + lr_end (get_polynomial_decay_schedule_with_warmup)."""
    def schedule(count):
        c = _c(count)
        remaining = jnp.maximum(1 - (c - num_warmup_steps) / (num_training_steps - num_warmup_steps), 0.0)
        decay = (learning_rate - lr_end) * remaining ** power + lr_end
        after = jnp.where(c > num_training_steps, lr_end, decay)
        return jnp.where(c < num_warmup_steps, learning_rate * _warm(c, num_warmup_steps), after)
    return schedule


def inverse_sqrt_schedule(learning_rate, num_warmup_steps, timescale=None):
    """f(c) = c / max(1, W) before W, then 1 / sqrt((c + timescale - W) / timescale); timescale
    defaults to W, or 10,000 without warmup (get_inverse_sqrt_schedule)."""
    if timescale is None:
        timescale = num_warmup_steps or 10_000

    def schedule(count):
        c = _c(count)
        shift = timescale - num_warmup_steps
        decay = 1.0 / jnp.sqrt(jnp.maximum(c + shift, 0.0) / timescale)
        return learning_rate * jnp.where(c < num_warmup_steps, _warm(c, num_warmup_steps), decay)
    return schedule


def cosine_with_min_lr_schedule_with_warmup_lr_rate(learning_rate, num_warmup_steps, num_training_steps,
                                                    num_cycles=0.5, min_lr_rate=0.0, warmup_lr_rate=None):
    """Before W: (c + 1) / max(1, W), or w + (1 - w) * c / max(1, W - 1) with w = warmup_lr_rate;
    then max(0, m + (1 - m) * (1 + cos(2 pi n p)) / 2) with p = (c - W + 1) / max(1, T - W)
    (get_cosine_with_min_lr_schedule_with_warmup_lr_rate)."""
    def schedule(count):
        c = _c(count)
        if warmup_lr_rate is None:
            warm = (c + 1.0) / max(1.0, num_warmup_steps)
        else:
            warm = warmup_lr_rate + (1.0 - warmup_lr_rate) * c / max(1, num_warmup_steps - 1)
        progress = (c - num_warmup_steps + 1.0) / max(1.0, num_training_steps - num_warmup_steps)
        factor = 0.5 * (1.0 + jnp.cos(_PI * num_cycles * 2.0 * progress))
        factor = jnp.maximum(0.0, factor * (1 - min_lr_rate) + min_lr_rate)
        return learning_rate * jnp.where(c < num_warmup_steps, warm, factor)
    return schedule


def _shape(kind, progress, num_cycles, rising):
    if kind == "linear":
        return progress if rising else 1.0 - progress
    if kind == "cosine":
        if rising:
            return 0.5 * (1.0 - jnp.cos(_PI * progress))
        return 0.5 * (1.0 + jnp.cos(_PI * float(num_cycles) * 2.0 * progress))
    if kind == "1-sqrt":
        return 1.0 - jnp.sqrt(jnp.maximum(1.0 - progress, 0.0)) if rising else 1.0 - jnp.sqrt(progress)
    raise ValueError(f"unknown warmup/decay type {kind!r}: 'linear', 'cosine' or '1-sqrt'")


def wsd_schedule(learning_rate, num_warmup_steps, num_decay_steps, num_training_steps=None, num_stable_steps=None,
                 warmup_type="linear", decay_type="cosine", min_lr_ratio=0.0, num_cycles=0.5):
    """Warmup, stable, decay (get_wsd_schedule): before W, m + (1 - m) * warm(c / max(1, W)); 1 for
    the next S steps; then m + (1 - m) * decay((c - W - S) / max(1, D)) for D steps; m after. S
    defaults to T - W - D."""
    if num_stable_steps is None:
        num_stable_steps = num_training_steps - num_warmup_steps - num_decay_steps

    def schedule(count):
        c = _c(count)
        m = min_lr_ratio
        warm = jnp.maximum(0.0, _shape(warmup_type, c / max(1, num_warmup_steps), num_cycles, True) * (1.0 - m) + m)
        progress = (c - num_warmup_steps - num_stable_steps) / max(1, num_decay_steps)
        decay = jnp.maximum(0.0, _shape(decay_type, progress, num_cycles, False) * (1.0 - m) + m)
        factor = jnp.where(c < num_warmup_steps, warm,
                           jnp.where(c < num_warmup_steps + num_stable_steps, 1.0,
                                     jnp.where(c < num_warmup_steps + num_stable_steps + num_decay_steps, decay, m)))
        return learning_rate * factor
    return schedule


def piecewise_constant_schedule(learning_rate, step_rules):
    """diffusers' get_piecewise_constant_schedule: step_rules "1:10,0.1:20,0.01" multiplies the rate
    by 1 before step 10, by 0.1 before step 20, by 0.01 after."""
    rules = step_rules.split(",")
    bounds, values = [], []
    for rule in rules[:-1]:
        value, steps = rule.split(":")
        bounds.append(int(steps))
        values.append(float(value))
    order = sorted(range(len(bounds)), key=lambda i: bounds[i])
    last = float(rules[-1])

    def schedule(count):
        c = _c(count)
        factor = jnp.asarray(last, c.dtype)
        for i in reversed(order):
            factor = jnp.where(c < bounds[i], values[i], factor)
        return learning_rate * factor
    return schedule


def _constant(learning_rate):
    return lambda count: learning_rate * jnp.ones_like(_c(count))


# get_scheduler(name, ...): the names each library accepts -> the schedule they build, from the
# arguments get_scheduler forwards (its `scheduler_specific_kwargs` for transformers).
def transformers_schedule(name, learning_rate, num_warmup_steps=None, num_training_steps=None,
                          scheduler_specific_kwargs=None):
    """transformers' `get_scheduler(name, optimizer, num_warmup_steps, num_training_steps,
    scheduler_specific_kwargs)` for the names that are schedules ("reduce_lr_on_plateau" and
    "greedy" react to a metric: not schedules, they raise here)."""
    name = getattr(name, "value", name)
    extra = dict(scheduler_specific_kwargs or {})
    if name == "constant":
        return _constant(learning_rate)
    if name == "constant_with_warmup":
        return constant_schedule_with_warmup(learning_rate, num_warmup_steps)
    if name == "inverse_sqrt":
        return inverse_sqrt_schedule(learning_rate, num_warmup_steps, **extra)
    if name == "warmup_stable_decay":
        return wsd_schedule(learning_rate, num_warmup_steps, num_training_steps=num_training_steps, **extra)
    if name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        min_lr = extra.pop("min_lr", None)
        if min_lr is not None:
            extra["min_lr_rate"] = min_lr / learning_rate
        if name == "cosine_with_min_lr":
            return cosine_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps, **extra)
        return cosine_with_min_lr_schedule_with_warmup_lr_rate(learning_rate, num_warmup_steps, num_training_steps,
                                                               **extra)
    functions = {"linear": linear_schedule_with_warmup, "cosine": cosine_schedule_with_warmup,
                 "cosine_with_restarts": cosine_with_hard_restarts_schedule_with_warmup,
                 "polynomial": polynomial_decay_schedule_with_warmup}
    if name not in functions:
        raise ValueError(f"transformers' get_scheduler({name!r}) is not a schedule Optax can take")
    return functions[name](learning_rate, num_warmup_steps, num_training_steps, **extra)


def diffusers_schedule(name, learning_rate, step_rules=None, num_warmup_steps=None, num_training_steps=None,
                       num_cycles=1, power=1.0):
    """diffusers' `get_scheduler(name, optimizer, step_rules, num_warmup_steps, num_training_steps,
    num_cycles, power)`: num_cycles reaches only "cosine_with_restarts", power only "polynomial"."""
    name = getattr(name, "value", name)
    if name == "constant":
        return _constant(learning_rate)
    if name == "piecewise_constant":
        return piecewise_constant_schedule(learning_rate, step_rules)
    if name == "constant_with_warmup":
        return constant_schedule_with_warmup(learning_rate, num_warmup_steps)
    if name == "linear":
        return linear_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps)
    if name == "cosine":
        return cosine_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps)
    if name == "cosine_with_restarts":
        return cosine_with_hard_restarts_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps,
                                                              num_cycles)
    if name == "polynomial":
        return polynomial_decay_schedule_with_warmup(learning_rate, num_warmup_steps, num_training_steps, power=power)
    raise ValueError(f"diffusers' get_scheduler({name!r}): not a name diffusers accepts")
