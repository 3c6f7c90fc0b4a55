"""Catalog rows under a learning-rate scheduler: where torch's `lr` enters a formula (Adagrad's
lr_decay) or the recipe changes with a schedule (RMSprop with momentum), the rewrite the
pipeline writes for the whole loop still trains like torch. Tolerance 5e-6: optax evaluates
schedules on an int32 count, in float32 (spec/optax-mapping.md); formula errors are >= 1e-3.
Rows whose lr is not a plain scale (Rprop's initial step, ASGD's and Adafactor's formulas,
LBFGS) get OPX201 on the scheduler instead of a silent nearest thing."""

from __future__ import annotations

import ast

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")
pytest.importorskip("optax")

import numerics_harness as harness
from numerics_cases import SCHEDULED, UNSCHEDULABLE
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

pytestmark = pytest.mark.numerics
SCHEDULE_TOL = 5e-6

LOOP = """import torch


def train(params, loader, loss):
    opt = {call}
    sched = {sched}
    for batch in loader:
        opt.zero_grad()
        loss(batch).backward()
        opt.step()
        sched.step()
"""


def _fixed(call: str, sched: str):
    program = LOOP.format(call=call, sched=sched)
    analysis = analyze(program)
    return analysis, apply(program, analysis.fix_all())


def _optimizer_from(fixed: str):
    """Execute the rewritten program's imports, then the `opt = ...` expression it wrote."""
    tree = ast.parse(fixed)
    namespace: dict = {}
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(imports, []), "<fixed imports>", "exec"), namespace)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    assign = next(s for s in fn.body if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "opt")
    return ast.get_source_segment(fixed, assign.value), namespace


@pytest.mark.parametrize("call,sched", SCHEDULED, ids=[f"{c} + {s.rsplit('.', 1)[-1]}" for c, s in SCHEDULED])
def test_scheduled_row_trains_like_torch(call, sched):
    analysis, fixed = _fixed(call, sched)
    codes = {f.code for f in analysis.findings}
    assert "OPX104" in codes and "OPX201" not in codes, [f.message for f in analysis.findings]
    assert "sched.step()" not in fixed and "lr_scheduler" not in fixed, fixed
    expression, namespace = _optimizer_from(fixed)
    with harness.precision("float64") as dt:
        tx = eval(expression, namespace)
        t = harness.run_torch(call, dt, scheduler=sched, sparse=call.startswith("torch.optim.SparseAdam("))
        j = harness.run_optax(tx, dt)
    diff = float(np.max(np.abs(t - j)))
    assert diff <= SCHEDULE_TOL, f"{diff:.2e}\n{expression}"


@pytest.mark.parametrize("call", UNSCHEDULABLE)
def test_unschedulable_row_is_opx201_not_a_silent_schedule(call):
    analysis, fixed = _fixed(call, "torch.optim.lr_scheduler.ExponentialLR(opt, 0.95)")
    flagged = [f for f in analysis.findings if f.code == "OPX201"]
    assert flagged and "by hand" in flagged[0].message
    assert "sched.step()" in fixed           # the scheduler is left for a person
    assert "exponential_decay" not in fixed  # and not folded into a formula it does not fit
