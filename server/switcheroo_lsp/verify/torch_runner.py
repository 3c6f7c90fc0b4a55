"""The torch side: the user's optimizer (and the scheduler and clipping folded into its
rewrite) trains a problem's parameters. It records the parameters after every update, the
learning rate each update used, and the gradients it was fed, which the rewrite then gets too.

The texts evaluated here are the construction's torch calls with every reference already
replaced by a literal (cases.py): they name only torch, math, literals and `_sw_*`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .cases import Resolved
from .literals import SCHEDULER_NAMES
from .problems import Problem, split_groups

_BUILTINS = {n: __builtins__[n] if isinstance(__builtins__, dict) else getattr(__builtins__, n)
             for n in ("float", "int", "abs", "min", "max", "round", "pow", "len", "range", "sum", "bool")}


@dataclass
class Run:
    params: np.ndarray           # (steps + 1, n): the flattened parameters, from the start
    lr: np.ndarray               # (steps,): the learning rate of each update (group 0)
    grads: list[list[np.ndarray]] | None    # per update, per tensor; None for LBFGS (own evaluations)
    stopped: str | None = None   # why the run ended early (a scheduler that ran out)


def namespace(params=None, groups=None) -> dict:
    ns = {"__builtins__": _BUILTINS, "torch": torch, "math": math, "optim": torch.optim,
          "lr_scheduler": torch.optim.lr_scheduler, "nn": torch.nn,
          "_sw_params": params, "_sw_groups": groups}
    ns.update({n: getattr(torch.optim.lr_scheduler, n) for n in SCHEDULER_NAMES if hasattr(torch.optim.lr_scheduler, n)})
    return ns


def signature(name: str) -> list[tuple[str, object]]:
    """Parameter names and defaults of a torch callable named 'torch.optim.SGD'."""
    import inspect
    obj = torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values() if p.name != "self"]


def _flat(params) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in params])


def run(res: Resolved, problem: Problem, steps: int, dtype: torch.dtype) -> Run:
    params = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in problem.init]
    groups = None
    if res.groups is not None:
        groups = [[params[j] for j in idx] for idx in split_groups(len(params), len(res.groups))]
    ns = namespace(params, groups)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)      # state tensors the optimizer creates follow it
    try:
        opt = eval(res.torch_optimizer, ns)
        ns["_sw_opt"] = opt
        sched = eval(res.torch_scheduler, ns) if res.torch_scheduler else None
        clips = [compile(c, "<clip>", "eval") for c in res.torch_clips]
        sign = -1.0 if res.maximize else 1.0        # maximize climbs -f, i.e. still descends f
        lbfgs = isinstance(opt, torch.optim.LBFGS)
        sparse = isinstance(opt, torch.optim.SparseAdam)
        traj, lrs, fed = [_flat(params)], [], []
        stopped = None
        for t in range(steps):
            lrs.append(float(opt.param_groups[0]["lr"]))
            if lbfgs:
                def closure():
                    opt.zero_grad()
                    loss = sign * problem.torch_loss(params, None)
                    loss.backward()
                    for c in clips:
                        eval(c, ns)
                    return loss
                opt.step(closure)
            else:
                grads = torch.autograd.grad(sign * problem.torch_loss(params, t), params)
                fed.append([g.detach().numpy().copy() for g in grads])
                for p, g in zip(params, grads):
                    p.grad = g.to_sparse() if sparse else g.clone()
                for c in clips:
                    eval(c, ns)
                opt.step()
            traj.append(_flat(params))
            if sched is not None and (not res.per_epoch or (t + 1) % res.epoch == 0):
                try:
                    sched.step()
                except ValueError:
                    # OneCycleLR past its total_steps: a torch loop stops here, with an error,
                    # and this last update already used a learning rate past the schedule's end.
                    traj.pop()
                    lrs.pop()
                    if fed:
                        fed.pop()
                    stopped = f"torch's {type(sched).__name__} ends after {t} updates"
                    break
    finally:
        torch.set_default_dtype(old)
    return Run(np.array(traj), np.array(lrs), None if lbfgs else fed, stopped)
