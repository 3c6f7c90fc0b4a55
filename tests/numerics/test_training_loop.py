"""Proof by running: a torch training loop (optimizer + scheduler + clipping) and the Optax
pipeline that `fix` writes for it train the same parameters.

Each case is a small torch program. It goes through the real pipeline (analyze -> fix_all ->
the rewritten text); the optimizer expression is taken from the rewritten program's text and
executed, never hand-written. Tolerances (float64): 1e-12 without a schedule; 5e-6 with one,
because optax evaluates schedules on an int32 count and so rounds them to float32 (every
formula error here is 1e-3 or more); clip_by_global_norm divides by the norm where torch
divides by norm + 1e-6 (measured here: 1.3e-6 after 60 momentum steps), so clip-norm cases
allow 5e-6, the same class as the schedules' rounding.
"""

import ast
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

from switcheroo_lsp.engine import analyze  # noqa: E402
from switcheroo_lsp.engine import apply  # noqa: E402

pytestmark = pytest.mark.numerics

EPOCHS, SPE = 6, 10          # 60 updates
rng = np.random.default_rng(7)
N = 12
Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
A = Q @ np.diag(np.geomspace(0.1, 10.0, N)) @ Q.T
B = rng.standard_normal(N)
NOISE = 0.5 * rng.standard_normal((EPOCHS * SPE, N))
X0 = rng.standard_normal(N)


@pytest.fixture(scope="module", autouse=True)
def float64():
    jax.config.update("jax_enable_x64", True)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
    jax.config.update("jax_enable_x64", False)


def program(construct: str, sched: str | None, clip: str | None, per_epoch: bool) -> str:
    step_sched = "        sched.step()\n" if sched and not per_epoch else ""
    epoch_sched = "    sched.step()\n" if sched and per_epoch else ""
    return (
        "import torch\n"
        "loader = list(range(10))\n"
        f"opt = {construct}\n"
        + (f"sched = {sched}\n" if sched else "")
        + "for epoch in range(6):\n"
        "    for batch in loader:\n"
        "        opt.zero_grad()\n"
        "        loss(batch).backward()\n"
        + (f"        {clip}\n" if clip else "")
        + "        opt.step()\n"
        + step_sched + epoch_sched
    )


def run_torch(src: str, per_epoch: bool) -> np.ndarray:
    tree = ast.parse(src)
    x = torch.tensor(X0, requires_grad=True)
    env = {"torch": torch, "params": [x], "loader": list(range(SPE))}
    exec(compile(ast.Module([tree.body[2]], []), "<torch>", "exec"), env)          # opt = ...
    has_sched = isinstance(tree.body[3], ast.Assign)
    if has_sched:
        exec(compile(ast.Module([tree.body[3]], []), "<torch>", "exec"), env)      # sched = ...
    clip = next((n for n in ast.walk(tree) if isinstance(n, ast.Expr) and "clip_grad" in ast.unparse(n)), None)
    opt, sched = env["opt"], env.get("sched")
    At, Bt = torch.tensor(A), torch.tensor(B)
    out = []
    for t in range(EPOCHS * SPE):
        opt.zero_grad()
        (0.5 * x @ At @ x - Bt @ x + torch.tensor(NOISE[t]) @ x).backward()
        if clip is not None:
            exec(compile(ast.Module([clip], []), "<clip>", "exec"), env)
        opt.step()
        if sched is not None and (not per_epoch or (t + 1) % SPE == 0):
            sched.step()
        out.append(x.detach().numpy().copy())
    return np.array(out)


def optax_expression(src: str) -> tuple[str, str]:
    """The rewritten program and the right-hand side of its `opt = ...`."""
    rewritten = apply(src, analyze(src).fix_all())
    tree = ast.parse(rewritten)
    opt = next(s for s in tree.body if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "opt")
    return rewritten, ast.get_source_segment(rewritten, opt.value)


def run_optax(expr: str) -> np.ndarray:
    import switcheroo_optax
    tx = eval(expr, {"optax": optax, "jnp": jnp, "jax": jax, "switcheroo_optax": switcheroo_optax,
                     "loader": list(range(SPE))})
    params = jnp.asarray(X0)
    state = tx.init(params)
    Aj, Bj = jnp.asarray(A), jnp.asarray(B)

    @jax.jit
    def step(params, state, noise):
        g = jax.grad(lambda p: 0.5 * p @ Aj @ p - Bj @ p + noise @ p)(params)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    out = []
    for t in range(EPOCHS * SPE):
        params, state = step(params, state, jnp.asarray(NOISE[t]))
        out.append(np.asarray(params))
    return np.array(out)


S = "torch.optim.lr_scheduler."
CASES = [
    # (id, construction, scheduler, clipping, per epoch, tolerance)
    ("sgd-steplr-updates", "torch.optim.SGD(params, lr=0.05, momentum=0.9)", S + "StepLR(opt, 20, gamma=0.5)", None, False, 5e-6),
    ("sgd-steplr-epochs", "torch.optim.SGD(params, lr=0.05, momentum=0.9)", S + "StepLR(opt, 2, gamma=0.5)", None, True, 5e-6),
    ("adam-multistep", "torch.optim.Adam(params, lr=0.05)", S + "MultiStepLR(opt, [15, 40], gamma=0.3)", None, False, 5e-6),
    ("adam-exponential-epochs", "torch.optim.Adam(params, lr=0.05)", S + "ExponentialLR(opt, 0.8)", None, True, 5e-6),
    ("adamw-cosine", "torch.optim.AdamW(params, lr=0.05, weight_decay=0.1)", S + "CosineAnnealingLR(opt, T_max=25, eta_min=1e-3)", None, False, 5e-6),
    ("sgd-linear", "torch.optim.SGD(params, lr=0.05)", S + "LinearLR(opt, start_factor=0.1, total_iters=30)", None, False, 5e-6),
    ("sgd-constant", "torch.optim.SGD(params, lr=0.05)", S + "ConstantLR(opt, factor=0.5, total_iters=12)", None, False, 5e-6),
    ("sgd-polynomial", "torch.optim.SGD(params, lr=0.05)", S + "PolynomialLR(opt, total_iters=40, power=2.0)", None, False, 5e-6),
    ("sgd-lambda", "torch.optim.SGD(params, lr=0.05)", S + "LambdaLR(opt, lambda e: 1.0 / (1.0 + 0.1 * e))", None, False, 5e-6),
    ("sgd-lambda-epochs", "torch.optim.SGD(params, lr=0.05)", S + "LambdaLR(opt, lambda e: 0.8 ** e)", None, True, 5e-6),
    ("sgd-warm-restarts", "torch.optim.SGD(params, lr=0.05)", S + "CosineAnnealingWarmRestarts(opt, T_0=13)", None, False, 5e-6),
    ("adam-onecycle", "torch.optim.Adam(params, lr=0.01)", S + "OneCycleLR(opt, max_lr=0.1, total_steps=60)", None, False, 5e-6),
    ("sgd-onecycle-linear", "torch.optim.SGD(params, lr=0.01, momentum=0.9)", S + "OneCycleLR(opt, max_lr=0.05, epochs=6, steps_per_epoch=10, anneal_strategy='linear')", None, False, 5e-6),
    ("adamw-sequential", "torch.optim.AdamW(params, lr=0.05)", S + "SequentialLR(opt, [" + S + "LinearLR(opt, 0.1, 1.0, 10), " + S + "CosineAnnealingLR(opt, 50)], [10])", None, False, 5e-6),
    ("rmsprop-momentum-cosine", "torch.optim.RMSprop(params, lr=0.01, momentum=0.9)", S + "CosineAnnealingLR(opt, T_max=30)", None, False, 5e-6),
    ("rmsprop-centered-momentum-steplr", "torch.optim.RMSprop(params, lr=0.01, momentum=0.5, centered=True)", S + "StepLR(opt, 10, 0.5)", None, False, 5e-6),
    ("rmsprop-momentum-onecycle", "torch.optim.RMSprop(params, lr=0.01, momentum=0.9)", S + "OneCycleLR(opt, max_lr=0.02, total_steps=60)", None, False, 5e-6),
    ("adam-clip-value", "torch.optim.Adam(params, lr=0.05)", None, "torch.nn.utils.clip_grad_value_(params, 0.5)", False, 1e-12),
    ("sgd-clip-norm", "torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.01)", None, "torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)", False, 5e-6),
    ("sgd-clip-inf-norm", "torch.optim.SGD(params, lr=0.05, momentum=0.9)", None, "torch.nn.utils.clip_grad_norm_(params, 0.5, norm_type=float('inf'))", False, 1e-12),
    ("adamw-clip-cosine", "torch.optim.AdamW(params, lr=0.05)", S + "CosineAnnealingLR(opt, T_max=60)", "torch.nn.utils.clip_grad_norm_(params, 2.0)", False, 5e-6),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_pipeline_trains_like_torch(case):
    _, construct, sched, clip, per_epoch, tol = case
    src = program(construct, sched, clip, per_epoch)
    rewritten, expr = optax_expression(src)
    assert "torch.optim" not in rewritten and "zero_grad" not in rewritten, rewritten
    if clip:
        assert "nn.utils.clip_grad" not in rewritten, "clipping is folded into the optimizer"
    if per_epoch:
        assert "count // len(loader)" in expr, "a per-epoch scheduler counts epochs"
    theirs, ours = run_torch(src, per_epoch), run_optax(expr)
    moved = np.max(np.abs(theirs - X0))
    assert moved > 0.05, "the run must go somewhere for the comparison to mean anything"
    diff = np.max(np.abs(theirs - ours))
    assert diff <= tol, f"{diff:.3g} > {tol:g}\n{expr}"


def test_naive_per_epoch_schedule_would_differ():
    """The epoch/update distinction matters: counting updates where torch counts epochs is off
    by far more than the tolerance, so the tests above can tell."""
    src = program("torch.optim.SGD(params, lr=0.05, momentum=0.9)", S + "StepLR(opt, 2, gamma=0.5)", None, True)
    _, expr = optax_expression(src)
    naive = expr.replace("(count // len(loader))", "(count)")
    assert np.max(np.abs(run_torch(src, True) - run_optax(naive))) > 1e-3


def test_reduce_on_plateau_separate_state():
    """ReduceLROnPlateau: the rewritten loop keeps a plateau state stepped once per epoch."""
    src = textwrap.dedent("""\
        import torch
        loader = list(range(10))
        opt = torch.optim.SGD(params, lr=0.05)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
        for epoch in range(6):
            for batch in loader:
                opt.zero_grad()
                loss(batch).backward()
                opt.step()
            sched.step(epoch_loss)
        """)
    rewritten = apply(src, analyze(src).fix_all())
    assert "optax.tree.scale(sched_state.scale, updates)" in rewritten
    assert "_, sched_state = sched.update(updates=params, state=sched_state, value=epoch_loss)" in rewritten
    tree = ast.parse(rewritten)
    plateau_expr = next(ast.get_source_segment(rewritten, s.value) for s in tree.body
                        if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "sched")
    # Run both with the epoch's mean loss as the metric.
    x = torch.tensor(X0, requires_grad=True)
    topt = torch.optim.SGD([x], lr=0.05)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=1)
    At, Bt = torch.tensor(A), torch.tensor(B)
    theirs = []
    for e in range(EPOCHS):
        losses = []
        for j in range(SPE):
            topt.zero_grad()
            loss = 0.5 * x @ At @ x - Bt @ x + torch.tensor(NOISE[e * SPE + j]) @ x
            loss.backward()
            topt.step()
            losses.append(loss.item())
            theirs.append(x.detach().numpy().copy())
        tsched.step(float(np.mean(losses)) + 5.0 * (e >= 2))   # a plateau, then worse: reductions happen
    tx = optax.sgd(learning_rate=0.05)
    plateau = eval(plateau_expr, {"optax": optax})
    params = jnp.asarray(X0)
    state, pstate = tx.init(params), plateau.init(params)
    Aj, Bj = jnp.asarray(A), jnp.asarray(B)
    ours = []
    for e in range(EPOCHS):
        losses = []
        for j in range(SPE):
            noise = jnp.asarray(NOISE[e * SPE + j])
            f = lambda p: 0.5 * p @ Aj @ p - Bj @ p + noise @ p  # noqa: E731
            value, g = jax.value_and_grad(f)(params)
            updates, state = tx.update(g, state, params)
            params = optax.apply_updates(params, optax.tree.scale(pstate.scale, updates))
            losses.append(float(value))
            ours.append(np.asarray(params))
        _, pstate = plateau.update(updates=params, state=pstate, value=float(np.mean(losses)) + 5.0 * (e >= 2))
    assert tsched.get_last_lr()[0] < 0.05, "the plateau reduced the learning rate"
    assert np.max(np.abs(np.array(theirs) - np.array(ours))) <= 1e-12
