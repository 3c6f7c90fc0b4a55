"""Proof by running: the schedules of transformers and diffusers (their `get_*_schedule*` functions
and `get_scheduler(name, ...)`, a literal name or one chosen at run time) folded into the
optimizer's learning_rate by fix-all, against the libraries' own schedulers stepping torch's
optimizer. Tolerance 5e-6 as for torch's schedulers (tests/numerics/test_schedules.py); the
schedule functions themselves agree with the libraries' LambdaLR factors to 1e-15 (below)."""

from __future__ import annotations

import ast
import types

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")
pytest.importorskip("optax")

import numerics_harness as harness
from ecosystem import imports_for, require
from switcheroo_lsp.engine import analyze, apply

pytestmark = pytest.mark.numerics
SCHEDULE_TOL = 5e-6

LOOP = """import argparse
import torch
{imports}
parser = argparse.ArgumentParser()
parser.add_argument("--lr_scheduler", type=str, default={default!r}{choices})


def train(params, loader, loss, args):
    opt = {call}
    sched = {sched}
    for batch in loader:
        opt.zero_grad()
        loss(batch).backward()
        opt.step()
        sched.step()
"""

_T = "transformers.optimization"
_D = "diffusers.optimization"
ADAMW = "torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)"
SCHEDULED = [
    (ADAMW, f"{_T}.get_linear_schedule_with_warmup(opt, 10, 40)"),
    ("torch.optim.SGD(params, lr=0.05, momentum=0.9)", "transformers.get_cosine_schedule_with_warmup(opt, 10, 40)"),
    ("torch.optim.Adam(params, lr=0.01)", f"{_T}.get_cosine_schedule_with_warmup(opt, 5, 40, num_cycles=1.5)"),
    (ADAMW, f"{_T}.get_cosine_with_hard_restarts_schedule_with_warmup(opt, 5, 40, num_cycles=3)"),
    (ADAMW, f"{_T}.get_polynomial_decay_schedule_with_warmup(opt, 5, 40, lr_end=1e-4, power=2.0)"),
    (ADAMW, f"{_T}.get_constant_schedule(opt)"),
    (ADAMW, f"{_T}.get_constant_schedule_with_warmup(opt, 10)"),
    (ADAMW, f"{_T}.get_inverse_sqrt_schedule(opt, 10)"),
    (ADAMW, f"{_T}.get_inverse_sqrt_schedule(opt, 0, timescale=20)"),
    (ADAMW, f"{_T}.get_cosine_with_min_lr_schedule_with_warmup(opt, 5, 40, min_lr=1e-3)"),
    (ADAMW, f"{_T}.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(opt, 5, 40, min_lr_rate=0.1, "
            "warmup_lr_rate=0.2)"),
    (ADAMW, f"{_T}.get_wsd_schedule(opt, 5, 20, num_training_steps=50, decay_type='linear', min_lr_ratio=0.1)"),
    (ADAMW, f"{_D}.get_piecewise_constant_schedule(opt, '1:10,0.5:30,0.1')"),
    (ADAMW, f"{_D}.get_linear_schedule_with_warmup(opt, 5, 40, f_min=0.1, f_max=0.9)"),
    (ADAMW, f"{_D}.get_cosine_schedule_with_warmup(opt, 5, 40)"),
    (ADAMW, f"{_T}.get_scheduler('cosine', opt, num_warmup_steps=5, num_training_steps=40)"),
    (ADAMW, f"{_T}.get_scheduler('polynomial', opt, 5, 40, scheduler_specific_kwargs={{'power': 2.0}})"),
    (ADAMW, f"{_T}.get_scheduler('warmup_stable_decay', opt, 5, 50, scheduler_specific_kwargs=dict(num_decay_steps=20))"),
    (ADAMW, f"{_D}.get_scheduler('cosine_with_restarts', opt, num_warmup_steps=5, num_training_steps=40, num_cycles=2)"),
    (ADAMW, f"{_D}.get_scheduler('constant', opt)"),
    (ADAMW, f"{_D}.get_scheduler('piecewise_constant', opt, step_rules='1:10,0.1')"),
    ("prodigyopt.Prodigy(params, lr=1.0)", f"{_D}.get_scheduler('constant', opt)"),
    ("transformers.optimization.Adafactor(params, lr=0.05, relative_step=False, scale_parameter=False)",
     f"{_T}.get_linear_schedule_with_warmup(opt, 5, 40)"),
]
# get_scheduler(args.lr_scheduler, ...): every name argparse allows, run one by one.
RUNTIME = [
    (f"{_T}.get_scheduler(args.lr_scheduler, opt, num_warmup_steps=5, num_training_steps=40)",
     ["linear", "cosine", "constant", "polynomial", "cosine_with_restarts", "constant_with_warmup", "inverse_sqrt"]),
    (f"{_D}.get_scheduler(args.lr_scheduler, opt, step_rules='1:10,0.2', num_warmup_steps=5, num_training_steps=40, "
     "num_cycles=2, power=2.0)", None),     # no choices: every name diffusers accepts
]
DIFFUSERS_NAMES = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                   "piecewise_constant"]


def _program(call: str, sched: str, default="linear", choices=None) -> str:
    imports = imports_for(call) + imports_for(sched.split("(", 1)[0] + "(")
    extra = f", choices={choices!r}" if choices else ""
    return LOOP.format(imports=imports, default=default, choices=extra, call=call, sched=sched)


def _optimizer(program: str):
    analysis = analyze(program)
    fixed = apply(program, analysis.fix_all())
    tree = ast.parse(fixed)
    namespace: dict = {}
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(imports, []), "<fixed imports>", "exec"), namespace)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    assign = next(s for s in fn.body if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "opt")
    return analysis, fixed, ast.get_source_segment(fixed, assign.value), namespace


def _compare(call: str, sched: str, expression: str, namespace: dict, args=None) -> float:
    with harness.precision("float64") as dt:
        tx = eval(expression, {**namespace, "args": args})
        t = harness.run_torch(call, dt, scheduler=sched.replace("args.lr_scheduler", repr(args.lr_scheduler))
                              if args else sched)
        j = harness.run_optax(tx, dt)
    return float(np.max(np.abs(t - j)))


@pytest.mark.parametrize("call,sched", SCHEDULED, ids=[s.split("(", 1)[0].rsplit(".", 1)[-1] + f" {s[s.index('(')+1:][:50]}"
                                                       for _, s in SCHEDULED])
def test_library_schedule_folds_in_and_trains_like_torch(call, sched):
    analysis, fixed, expression, namespace = _optimizer(_program(call, sched))
    codes = [f.code for f in analysis.findings]
    assert "OPX104" in codes and "OPX105" in codes and "OPX201" not in codes, [f.message for f in analysis.findings]
    assert "sched.step()" not in fixed and "get_" not in fixed.split("def train", 1)[1], fixed
    diff = _compare(call, sched, expression, namespace)
    assert diff <= SCHEDULE_TOL, f"{diff:.2e}\n{expression}"


@pytest.mark.parametrize("sched,choices", RUNTIME, ids=["transformers", "diffusers"])
def test_a_name_chosen_at_run_time_keeps_the_choice(sched, choices):
    analysis, fixed, expression, namespace = _optimizer(_program(ADAMW, sched, choices=choices))
    assert "args.lr_scheduler" in expression and "_schedule(args.lr_scheduler" in expression, expression
    for name in choices or DIFFUSERS_NAMES:
        diff = _compare(ADAMW, sched, expression, namespace, types.SimpleNamespace(lr_scheduler=name))
        assert diff <= SCHEDULE_TOL, f"{name}: {diff:.2e}\n{expression}"


def test_a_name_with_no_schedule_among_the_choices_keeps_the_flow_torch():
    """transformers' get_scheduler also accepts 'reduce_lr_on_plateau' and 'greedy' (metric-driven):
    without argparse choices ruling them out, the scheduler cannot be folded."""
    program = _program(ADAMW, f"{_T}.get_scheduler(args.lr_scheduler, opt, num_warmup_steps=5, num_training_steps=40)")
    analysis = analyze(program)
    sched = next(f for f in analysis.findings if f.message.startswith(f"{_T}.get_scheduler"))
    assert sched.code == "OPX201" and not sched.fixable
    assert "'greedy'" in sched.message and "'reduce_lr_on_plateau'" in sched.message
    assert "sched.step()" in apply(program, analysis.fix_all())


def test_prodigy_under_a_warmup_is_not_folded():
    """prodigyopt skips a step whose learning rate is 0; optax.contrib.prodigy would divide by zero."""
    program = _program("prodigyopt.Prodigy(params, lr=1.0)", f"{_D}.get_scheduler('constant_with_warmup', opt, "
                                                               "num_warmup_steps=10)")
    analysis = analyze(program)
    sched = next(f for f in analysis.findings if f.message.startswith(f"{_D}.get_scheduler"))
    assert sched.code == "OPX201" and not sched.fixable and "prodigyopt skips" in sched.message


def test_the_schedule_functions_are_the_libraries_factors():
    """Each switcheroo_optax schedule against the library's LambdaLR, 300 steps past warmup and end."""
    import jax.numpy as jnp
    import switcheroo_optax as so
    import torch

    transformers = require("transformers")
    diffusers = require("diffusers")
    import diffusers.optimization as D
    import transformers.optimization as T

    cases = [
        (lambda o: T.get_scheduler("linear", o, 20, 200), so.transformers_schedule("linear", 0.1, 20, 200)),
        (lambda o: T.get_scheduler("cosine_with_restarts", o, 20, 200, scheduler_specific_kwargs={"num_cycles": 3}),
         so.transformers_schedule("cosine_with_restarts", 0.1, 20, 200, {"num_cycles": 3})),
        (lambda o: T.get_scheduler("polynomial", o, 20, 200, scheduler_specific_kwargs={"power": 2.0, "lr_end": 1e-4}),
         so.transformers_schedule("polynomial", 0.1, 20, 200, {"power": 2.0, "lr_end": 1e-4})),
        (lambda o: T.get_scheduler("inverse_sqrt", o, 20), so.transformers_schedule("inverse_sqrt", 0.1, 20)),
        (lambda o: T.get_scheduler("cosine_warmup_with_min_lr", o, 20, 200,
                                   scheduler_specific_kwargs={"min_lr_rate": 0.05, "warmup_lr_rate": 0.1}),
         so.transformers_schedule("cosine_warmup_with_min_lr", 0.1, 20, 200,
                                  {"min_lr_rate": 0.05, "warmup_lr_rate": 0.1})),
        (lambda o: T.get_scheduler("warmup_stable_decay", o, 20, 200, scheduler_specific_kwargs={
            "num_decay_steps": 50, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
         so.transformers_schedule("warmup_stable_decay", 0.1, 20, 200, {
             "num_decay_steps": 50, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1})),
        (lambda o: D.get_scheduler("piecewise_constant", o, step_rules="1:10,0.1:20,0.01:30,0.005"),
         so.diffusers_schedule("piecewise_constant", 0.1, "1:10,0.1:20,0.01:30,0.005")),
        (lambda o: D.get_scheduler("cosine", o, num_warmup_steps=20, num_training_steps=200, num_cycles=3),
         so.diffusers_schedule("cosine", 0.1, None, 20, 200, 3)),
    ]
    with harness.precision("float64"):
        for make, schedule in cases:
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.SGD([p], lr=0.1)
            sched = make(opt)
            theirs, ours = [], []
            for c in range(300):
                theirs.append(opt.param_groups[0]["lr"])
                ours.append(float(schedule(jnp.asarray(c, jnp.int32))))
                opt.step()
                sched.step()
            assert np.max(np.abs(np.array(theirs) - np.array(ours))) <= 1e-15
    assert transformers and diffusers
