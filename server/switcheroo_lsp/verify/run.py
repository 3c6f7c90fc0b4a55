"""One resolved construction on every problem: torch, then the target's runner on the same
start and gradients; float64 where both allow, float32 otherwise."""

from __future__ import annotations

import jax
import numpy as np
import torch

from . import compare as K
from . import torch_runner
from .cases import Resolved
from .outcome import Outcome
from .problems import problems
from .targets import runner

ROUNDING_UNIT = {"float64": 1e-15, "float32": 5e-7}
WEAK = 1e-6       # an LBFGS tolerance above this says little: every formula error is 1e-3 or more


def verify_case(res: Resolved, target: str, steps: int) -> Outcome:
    try:
        return _verify(res, target, steps, "float64")
    except (RuntimeError, TypeError, NotImplementedError) as e:
        if "float64" not in str(e).lower() and "double" not in str(e).lower():
            raise
        outcome = _verify(res, target, steps, "float32")     # torch cannot run this in float64
        res.notes.append(f"float32: in float64 torch says {e}")
        return outcome


def _verify(res: Resolved, target: str, steps: int, dtype: str) -> Outcome:
    tol, why = K.tolerance(res, dtype)
    side = runner(target)
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    results, tolerances = [], []
    with jax.enable_x64(dtype == "float64"):
        for problem in problems():
            theirs = torch_runner.run(res, problem, steps, torch_dtype)
            ours = side.run(res, problem, theirs, np.float64 if dtype == "float64" else np.float32)
            lbfgs = theirs.grads is None
            problem_tol = tol
            if lbfgs:
                problem_tol, why = _lbfgs_tolerance(res, problem, steps, torch_dtype, theirs, dtype)
                if problem_tol > WEAK:
                    res.notes.append(f"LBFGS on {problem.name}: torch's own run moves {problem_tol / 10:.0e} when x0 "
                                     "moves by one rounding unit, so this problem cannot tell rounding from a "
                                     "formula error")
            results.append(K.compare(
                problem.name, theirs.params, ours.params, problem_tol,
                K.losses(problem, theirs.params, lbfgs), K.losses(problem, ours.params, lbfgs),
                theirs.lr, ours.lr, theirs.stopped))
            tolerances.append(problem_tol)
    return Outcome(res, target, results, max(tolerances), why, dtype)


def _lbfgs_tolerance(res, problem, steps, torch_dtype, base, dtype) -> tuple[float, str]:
    """Ten times how far torch's own LBFGS moves when x0 moves by a rounding unit."""
    worst = 0.0
    for eps in (ROUNDING_UNIT[dtype], -ROUNDING_UNIT[dtype]):
        other = torch_runner.run(res, problem.perturbed(eps), steps, torch_dtype)
        n = min(len(other.params), len(base.params))
        worst = max(worst, float(np.max(np.abs(other.params[:n] - base.params[:n]))))
    floor = K.EXACT if dtype == "float64" else K.FLOAT32
    return max(floor, 10 * worst), "LBFGS: ten times torch's own sensitivity to a rounding unit in x0"
