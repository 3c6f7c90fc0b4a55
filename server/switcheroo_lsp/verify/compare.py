"""Two trajectories -> the numbers verify prints, and PASS/FAIL against the catalog's tolerance.

The tolerances are the ones tests/numerics holds every mapping to (float64):
- 1e-12: an exact rewrite; everything it differs by is rounding;
- 5e-6 with a schedule: Optax evaluates schedules on an int32 count, so their values carry
  float32 rounding (every formula error in a schedule is 1e-3 or more);
- 5e-6 with `optax.clip_by_global_norm`: it divides by the norm, torch by norm + 1e-6;
- LBFGS: ten times torch's own sensitivity (how far torch moves when x0 moves by one rounding
  unit), at least 1e-12: its iterations amplify rounding;
- float32 (where float64 is not possible): 1e-5.
Each is relative to the size of the run: the bound after update t is
tolerance * max(1, max |theta_torch_t|, the distance torch's parameters have travelled so far
(the sum of each update's max |step|)). Rounding accumulates along the way (float32-rounded
schedule values by ~6e-8 of each step), formula errors by 1e-3 of each step or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT = 1e-12
ROUNDED = 5e-6
FLOAT32 = 1e-5


def tolerance(res, dtype_name: str) -> tuple[float, str]:
    """The catalog's tolerance for a resolved case, and why it is that."""
    if dtype_name == "float32":
        return FLOAT32, "float32"
    if res.schedule is not None:
        return ROUNDED, "a schedule: Optax evaluates it on an int32 count (float32 rounding)"
    if "clip_by_global_norm" in res.optax:
        return ROUNDED, "clip_by_global_norm divides by the norm, torch by norm + 1e-6"
    return EXACT, "exact: rounding only"


@dataclass
class ProblemResult:
    problem: str
    steps: int
    abs_diff: np.ndarray          # (steps,): max |dtheta| after each update
    rel_diff: np.ndarray          # (steps,): that, relative to max |theta_torch|
    bound: np.ndarray             # (steps,): the tolerance at each update
    torch_loss: np.ndarray
    optax_loss: np.ndarray
    torch_lr: np.ndarray
    optax_lr: np.ndarray | None
    stopped: str | None = None
    tolerance: float = EXACT

    @property
    def max_abs(self) -> float:
        return float(np.max(self.abs_diff)) if self.steps else 0.0

    @property
    def max_rel(self) -> float:
        return float(np.max(self.rel_diff)) if self.steps else 0.0

    @property
    def first_over(self) -> int | None:
        """The first update (1-based) after which |dtheta| exceeds the tolerance."""
        over = np.nonzero(~(self.abs_diff <= self.bound))[0]     # NaN counts as over
        return int(over[0]) + 1 if over.size else None


def compare(name: str, torch_params: np.ndarray, optax_params: np.ndarray, tol: float,
            torch_loss, optax_loss, torch_lr, optax_lr, stopped=None) -> ProblemResult:
    steps = min(len(torch_params), len(optax_params)) - 1
    t, o = torch_params[1:steps + 1], optax_params[1:steps + 1]
    abs_diff = np.max(np.abs(t - o), axis=1)
    size = np.max(np.abs(t), axis=1)
    travelled = np.cumsum(np.max(np.abs(np.diff(torch_params[:steps + 1], axis=0)), axis=1))
    rel = abs_diff / np.maximum(size, np.finfo(float).tiny)
    bound = tol * np.maximum(1.0, np.maximum(size, travelled))
    return ProblemResult(name, steps, abs_diff, rel, bound, np.asarray(torch_loss),
                         np.asarray(optax_loss), np.asarray(torch_lr), optax_lr, stopped, tol)


def losses(problem, params: np.ndarray, full_batch: bool = False) -> np.ndarray:
    """The problem's loss at the parameters each update started from (that update's batch, or
    the whole deterministic loss for LBFGS)."""
    shapes = problem.shapes
    out = []
    for t in range(len(params) - 1):
        flat, parts, i = params[t], [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(flat[i:i + n].reshape(s))
            i += n
        out.append(problem.loss_np(parts, None if full_batch else t))
    return np.array(out)
