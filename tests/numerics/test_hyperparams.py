"""Proof by running: learning rates set by hand through `param_groups` (annealing, a file's own
warmup-cosine function written to every group, a loop over `enumerate(...)`, `*=`, a read for
logging) train like torch once fix-all keeps them in the state optax.inject_hyperparams holds.

Optax target: each program runs whole as torch wrote it and whole as fix-all rewrote it (the
gradient of the same quadratic supplied where the fix leaves `grads` for a person), the learning
rate changing at every one of 50 updates. Flax NNX target: tests/fixtures/gradients/hand_set_lr.py
runs through the gradients harness (MLP twins, the fix's own loss functions and nnx.Optimizer).
float64: max |Δθ| <= 1e-12 (optax), 1e-10 (nnx, as the other whole-step proofs).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

import gradients_harness as h  # noqa: E402
import numerics_harness as ref  # noqa: E402
from switcheroo_lsp.engine import analyze, apply  # noqa: E402

pytestmark = pytest.mark.numerics

STEPS = 50
N = 6
rng = np.random.default_rng(24)
Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
A = Q @ np.diag(np.geomspace(0.2, 5.0, N)) @ Q.T
B = rng.standard_normal(N)
NOISE = 0.3 * rng.standard_normal((STEPS, N))
W0, V0 = rng.standard_normal(N - 2), rng.standard_normal(2)

LOOP = "for t in range(50):\n"
STEP = "    opt.zero_grad()\n    loss(t).backward()\n    opt.step()\n"
GET_LR = (
    "import math\n\n\n"
    "def get_lr(it, warmup_iters=8, lr_decay_iters=40, learning_rate=0.05, min_lr=0.005):\n"
    "    if it < warmup_iters:\n"
    "        return learning_rate * (it + 1) / (warmup_iters + 1)\n"
    "    if it > lr_decay_iters:\n"
    "        return min_lr\n"
    "    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)\n"
    "    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)\n\n\n")

CASES = [
    # (id, program): `params` (one group: [w, v]) or `w`, `v` (two groups) and `loss(t)` are the harness's
    ("adam-annealing-and-logging",
     "import torch\nopt = torch.optim.Adam(params, lr=0.05, eps=1e-5)\nlogged = []\n" + LOOP
     + "    frac = 1.0 - t / 50.0\n    opt.param_groups[0][\"lr\"] = frac * 0.05\n" + STEP
     + "    logged.append(opt.param_groups[0][\"lr\"])\n"),
    ("adamw-own-warmup-cosine-every-group",
     GET_LR + "import torch\nopt = torch.optim.AdamW(params, lr=0.05, betas=(0.9, 0.95), weight_decay=0.1)\n" + LOOP
     + "    lr = get_lr(t)\n    for param_group in opt.param_groups:\n        param_group[\"lr\"] = lr\n" + STEP),
    ("adamw-two-groups-one-decayed-own-warmup-cosine",
     GET_LR + "import torch\nopt = torch.optim.AdamW([{\"params\": [w], \"weight_decay\": 0.1}, "
     "{\"params\": [v], \"weight_decay\": 0.0}], lr=0.05, betas=(0.9, 0.95))\n" + LOOP
     + "    lr = get_lr(t)\n    for param_group in opt.param_groups:\n        param_group[\"lr\"] = lr\n" + STEP),
    ("sgd-l2-chain-enumerate-and-halving",
     "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-2)\n" + LOOP
     + "    for i, g in enumerate(opt.param_groups):\n        g[\"lr\"] = 0.02 + 0.01 * (t % 7)\n" + STEP
     + "    for g in opt.param_groups:\n        g[\"lr\"] *= 0.5\n"),
    ("radam-already-injected-annealing",
     "import torch\nopt = torch.optim.RAdam(params, lr=0.05)\n" + LOOP
     + "    opt.param_groups[0][\"lr\"] = 0.05 * (1.0 - t / 60.0)\n" + STEP),
    ("adamw-weight-decay-schedule-every-group",
     "import torch\nopt = torch.optim.AdamW(params, lr=0.05, weight_decay=0.1)\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"lr\"] = 0.05 * (1.0 - t / 60.0)\n"
     "        g[\"weight_decay\"] = 0.5 * t / 50.0\n" + STEP),
    ("sgd-momentum-schedule",
     "import torch\nopt = torch.optim.SGD(params, lr=0.05, momentum=0.5)\n" + LOOP
     + "    opt.param_groups[0][\"momentum\"] = 0.5 + 0.4 * t / 50.0\n" + STEP),
    ("adam-eps-and-lr-every-group",
     "import torch\nopt = torch.optim.Adam(params, lr=0.05, eps=1e-3)\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"eps\"] = 1e-3 / (1 + t)\n        g[\"lr\"] = 0.05 / (1 + 0.1 * t)\n"
     + STEP),
    ("adam-l2-chain-annealing",
     "import torch\nopt = torch.optim.Adam(params, lr=0.03, weight_decay=1e-2)\n" + LOOP
     + "    opt.param_groups[0][\"lr\"] = 0.03 * 0.95 ** t\n" + STEP),
    # Per group (issue 24, item 2): the groups become an optax.multi_transform, each label's transform
    # injected; `w` is group0's leaf, `v` group1's (param_labels, the fix's TODO, given by the harness).
    ("adamw-per-group-only-the-first-decayed",
     GET_LR + "import torch\nopt = torch.optim.AdamW([{\"params\": [w]}, {\"params\": [v]}], lr=0.05, "
     "weight_decay=0.1)\n" + LOOP
     + "    for i, param_group in enumerate(opt.param_groups):\n        param_group[\"lr\"] = get_lr(t)\n"
     "        if i == 0:  # only the regularized group\n            param_group[\"weight_decay\"] = 0.2 * t / 50.0\n"
     "        else:\n            param_group[\"weight_decay\"] = 0.0\n" + STEP),
    ("adamw-per-group-lr-scale",
     "import torch\nopt = torch.optim.AdamW([{\"params\": [w], \"lr_scale\": 1.0}, {\"params\": [v], \"lr_scale\": 0.25}], "
     "lr=0.05, betas=(0.9, 0.95), weight_decay=0.05)\nlogged = []\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"lr\"] = 0.05 * (1.0 - t / 60.0) * g[\"lr_scale\"]\n" + STEP
     + "    logged.append(opt.param_groups[1][\"lr\"])\n"),
    ("adam-betas-every-group-and-logging",
     "import torch\nopt = torch.optim.Adam(params, lr=0.05)\nlogged = []\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"betas\"] = (0.9 - 0.008 * t, 0.999 - 0.001 * (t % 4))\n" + STEP
     + "    logged.append(opt.param_groups[0][\"betas\"][0])\n"),
    ("adamw-per-group-betas",
     "import torch\nopt = torch.optim.AdamW([{\"params\": [w]}, {\"params\": [v], \"betas\": (0.5, 0.9)}], lr=0.05, "
     "betas=(0.8, 0.99))\n" + LOOP
     + "    for i, g in enumerate(opt.param_groups):\n        if i == 1:\n"
     "            g[\"betas\"] = (0.5 + 0.008 * t, 0.9)\n        g[\"lr\"] = 0.05 / (1 + 0.05 * t)\n" + STEP),
    ("sgd-per-index-write-and-own-lr",
     "import torch\nopt = torch.optim.SGD([{\"params\": [w]}, {\"params\": [v], \"lr\": 0.01}], lr=0.1, momentum=0.9)\n"
     "logged = []\n" + LOOP
     + "    opt.param_groups[0][\"lr\"] = 0.05 + 0.01 * (t % 5)\n"
     "    opt.param_groups[1][\"lr\"] = 0.0 if t % 10 < 3 else 0.02 / (1 + t)\n" + STEP
     + "    for i, g in enumerate(opt.param_groups):\n        g[\"lr\"] *= 0.5 + 0.25 * i\n"
     "    logged.append(opt.param_groups[-1][\"lr\"])\n"),
    # Where the faithful rewrite is a chain (issue 24, item 1), each hyperparameter set by hand is a
    # parameter of the injected factory, passed to the link the catalog puts it in: Adam's L2 decay
    # is add_decayed_weights' argument, not adam's; amsgrad's betas and eps the direction's.
    ("adam-l2-chain-weight-decay-and-lr-every-step",
     "import math\nimport torch\nopt = torch.optim.Adam(params, lr=0.05, weight_decay=0.1)\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"lr\"] = 0.05 / (1 + 0.05 * t)\n"
     "        g[\"weight_decay\"] = 0.3 * (1 + math.sin(t))\n" + STEP),
    ("adam-default-weight-decay-set-later",
     "import torch\nopt = torch.optim.Adam(params, lr=0.05)\nlogged = []\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.0 if t < 10 else 0.02 * (t % 9)\n" + STEP
     + "    logged.append(opt.param_groups[0][\"weight_decay\"])\n"),
    ("adam-weight-decay-named-apart",
     "import torch\nweight_decay = 0.1\nopt = torch.optim.Adam(params, lr=weight_decay / 2, weight_decay=weight_decay)\n"
     + LOOP + "    opt.param_groups[0][\"weight_decay\"] = weight_decay * (t % 4)\n" + STEP),
    ("sgd-l2-momentum-dampening-every-step",
     "import torch\nopt = torch.optim.SGD(params, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"momentum\"] = 0.5 + 0.4 * t / 50.0\n"
     "        g[\"weight_decay\"] = 0.01 * (t % 6)\n        g[\"lr\"] = 0.05 * 0.97 ** t\n" + STEP),
    ("adam-amsgrad-betas-eps-lr-every-step",
     "import torch\nopt = torch.optim.Adam(params, lr=0.05, amsgrad=True, weight_decay=0.05)\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"betas\"] = (0.9 - 0.008 * t, 0.999 - 0.001 * (t % 4))\n"
     "        g[\"eps\"] = 1e-3 / (1 + t)\n        g[\"weight_decay\"] = 0.05 * (t % 3)\n"
     "        g[\"lr\"] = 0.05 / (1 + 0.1 * t)\n" + STEP),
    ("adamw-amsgrad-decoupled-weight-decay",
     "import torch\nopt = torch.optim.AdamW(params, lr=0.05, amsgrad=True)\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.5 / (1 + t)\n    opt.param_groups[0][\"lr\"] = 0.05 - 0.0005 * t\n"
     + STEP),
    ("nadam-l2-weight-decay-and-betas",
     "import torch\nopt = torch.optim.NAdam(params, lr=0.05, weight_decay=0.1)\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.2 / (1 + t)\n"
     "    opt.param_groups[0][\"betas\"] = (0.9 - 0.005 * t, 0.99)\n" + STEP),
    ("rmsprop-l2-weight-decay-and-momentum",
     "import torch\nopt = torch.optim.RMSprop(params, lr=0.01, momentum=0.5, weight_decay=0.1)\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.2 * (t % 5)\n"
     "    opt.param_groups[0][\"momentum\"] = 0.5 + 0.008 * t\n" + STEP),
    ("adagrad-l2-weight-decay-and-eps",
     "import torch\nopt = torch.optim.Adagrad(params, lr=0.1, weight_decay=0.1)\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.1 / (1 + t)\n    opt.param_groups[0][\"eps\"] = 1e-2 / (1 + t)\n"
     + STEP),
    ("asgd-weight-decay-every-step",
     "import torch\nopt = torch.optim.ASGD(params, lr=0.05, weight_decay=0.1)\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.1 * (t % 7)\n" + STEP),
    ("adam-maximize-eps-every-step",
     "import torch\nopt = torch.optim.Adam(params, lr=0.05, eps=1e-3, maximize=True)\n" + LOOP
     + "    opt.param_groups[0][\"eps\"] = 1e-3 * (1 + t % 5)\n" + STEP),
    ("radam-l2-weight-decay-around-its-own-injection",
     "import torch\nopt = torch.optim.RAdam(params, lr=0.05, weight_decay=0.1)\n" + LOOP
     + "    opt.param_groups[0][\"weight_decay\"] = 0.3 / (1 + t)\n" + STEP),
    # RAdam's rewrite injects optax.radam itself; behind its L2 decay link the loop's writes reach that
    # link's own state: `opt_state[1].hyperparams["learning_rate"]`.
    ("radam-l2-chain-lr-in-its-own-link",
     "import torch\nopt = torch.optim.RAdam(params, lr=0.05, weight_decay=0.1)\nlogged = []\n" + LOOP
     + "    opt.param_groups[0][\"lr\"] = 0.05 * (1.0 - t / 60.0)\n" + STEP
     + "    logged.append(opt.param_groups[0][\"lr\"])\n"),
    ("radam-eps-schedule-follows-the-write",
     "import torch\nopt = torch.optim.RAdam(params, lr=0.05, eps=1e-3)\n" + LOOP
     + "    opt.param_groups[0][\"eps\"] = 1e-3 * (1 + t % 3)\n" + STEP),
    ("adam-per-group-l2-weight-decay-first-group",
     "import torch\nopt = torch.optim.Adam([{\"params\": [w]}, {\"params\": [v], \"lr\": 0.01}], lr=0.05, "
     "weight_decay=0.1)\n" + LOOP
     + "    for i, g in enumerate(opt.param_groups):\n        if i == 0:\n"
     "            g[\"weight_decay\"] = 0.4 * (t % 3)\n        g[\"lr\"] = 0.05 / (1 + t)\n" + STEP),
    # A momentum set by hand (issue 24): torch's buffer starts at the first step whose momentum is not 0
    # and rests while it is 0 (switcheroo_optax.torch_sgd); optax.sgd's trace would accumulate throughout.
    ("sgd-momentum-raised-from-torch-default-zero",
     "import torch\nopt = torch.optim.SGD(params, lr=0.05)\n" + LOOP
     + "    opt.param_groups[0][\"momentum\"] = 0.0 if t < 10 else 0.9\n" + STEP),
    ("sgd-momentum-off-on-off-on-dampening-l2",
     "import torch\nopt = torch.optim.SGD(params, lr=0.05, dampening=0.3, weight_decay=0.01)\n"
     "logged = []\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"momentum\"] = 0.8 if (t // 7) % 2 else 0.0\n" + STEP
     + "    logged.append(opt.param_groups[0][\"momentum\"])\n"),
    ("sgd-nesterov-momentum-warmup-and-lr",
     "import torch\nopt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"momentum\"] = 0.0 if t < 5 else min(0.9, 0.1 * (t - 4))\n"
     "        g[\"lr\"] = 0.05 / (1 + 0.02 * t)\n" + STEP),
    ("sgd-per-group-momentum-switched-on-for-one-group",
     "import torch\nopt = torch.optim.SGD([{\"params\": [w]}, {\"params\": [v], \"lr\": 0.02}], lr=0.05)\n" + LOOP
     + "    for i, g in enumerate(opt.param_groups):\n        if i == 1:\n"
     "            g[\"momentum\"] = 0.0 if t < 20 else 0.7\n" + STEP),
]


@pytest.fixture(scope="module", autouse=True)
def float64():
    jax.config.update("jax_enable_x64", True)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
    jax.config.update("jax_enable_x64", False)


def _objective(flat, t, xp):
    a, b, noise = xp.asarray(A), xp.asarray(B), xp.asarray(NOISE[t])
    return 0.5 * flat @ a @ flat - b @ flat + noise @ flat


def run_torch(src: str, extra: dict | None = None):
    w, v = torch.tensor(W0, requires_grad=True), torch.tensor(V0, requires_grad=True)
    seen = []

    def loss(t):
        seen.append(np.concatenate([w.detach().numpy(), v.detach().numpy()]))
        return _objective(torch.cat([w, v]), t, torch)

    env = {"params": [w, v], "w": w, "v": v, "loss": loss, "__name__": "torch_program", **(extra or {})}
    exec(compile(src, "<torch>", "exec"), env)
    seen.append(np.concatenate([w.detach().numpy(), v.detach().numpy()]))
    return np.array(seen), env


def run_optax(fixed: str, two_groups: bool, labels=("group0", "group1"), extra: dict | None = None):
    env: dict = {"__name__": "optax_program", **(extra or {})}

    def flat(p):
        return jnp.concatenate(p)

    class _Loss:
        def __init__(self, t):
            self.t = t

        def backward(self):
            env["grads"] = jax.grad(lambda p: _objective(flat(p), self.t, jnp))(env["params"])

    def loss(t):
        seen.append(np.asarray(flat(env["params"])))
        return _Loss(t)

    seen: list = []
    env.update(params=[jnp.asarray(W0), jnp.asarray(V0)], loss=loss)
    if two_groups:
        env["decay_mask"] = [True, False]        # the leaves of the first group (the fix's TODO)
        env["param_labels"] = list(labels)       # each leaf's group (the fix's TODO)
    exec(compile(fixed, "<optax>", "exec"), env)
    seen.append(np.asarray(flat(env["params"])))
    return np.array(seen), env


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hand_set_learning_rate_trains_like_torch(case):
    name, src = case
    analysis = analyze(src)
    fixed = apply(src, analysis.fix_all())
    assert "param_groups" not in fixed and "torch.optim" not in fixed, fixed
    assert "optax.inject_hyperparams(" in fixed and '.hyperparams["' in fixed, fixed
    assert not [f for f in analysis.findings if f.code == "OPX202"], [f.message for f in analysis.findings]
    theirs, torch_env = run_torch(src)
    ours, optax_env = run_optax(fixed, "two-groups" in name or "per-group" in name or "per-index" in name)
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 0.05, "the run must go somewhere"
    diff = np.max(np.abs(theirs - ours))
    assert diff <= 1e-12, f"{diff:.3g}\n{fixed}"
    if "logged" in torch_env:           # the read for logging reads what the update used
        assert np.max(np.abs(np.array(torch_env["logged"]) - np.array(optax_env["logged"]))) <= 1e-15


def test_without_the_writes_the_runs_differ():
    """The comparison can tell: dropping the state writes from the fix is far off."""
    name, src = CASES[1]
    fixed = apply(src, analyze(src).fix_all())
    unwritten = "\n".join(line for line in fixed.splitlines() if ".hyperparams[" not in line) + "\n"
    assert np.max(np.abs(run_torch(src)[0] - run_optax(unwritten, False)[0])) > 1e-3


def test_momentum_set_by_hand_keeps_torchs_lazy_buffer():
    """The comparison can tell: the same fix with optax.sgd's trace (accumulating from the first update,
    not from the first step whose momentum is not 0) is as far off as the hover says."""
    from switcheroo_lsp.knowledge import catalog
    name, src = next(c for c in CASES if c[0] == "sgd-momentum-raised-from-torch-default-zero")
    fixed = apply(src, analyze(src).fix_all())
    assert "optax.inject_hyperparams(switcheroo_optax.torch_sgd)(" in fixed, fixed
    traced = fixed.replace("switcheroo_optax.torch_sgd", "optax.sgd")
    diff = float(np.max(np.abs(run_torch(src)[0] - run_optax(traced, False)[0])))
    quoted = re.search(r"([\d.]+) apart after 50 steps", catalog.OPTIMIZERS["SGD"].variants[0].notes[0])
    assert abs(diff - float(quoted.group(1))) <= 0.1 * diff, f"measured {diff:.3g}, the note says {quoted.group(1)}"


def test_every_recipe_for_values_set_by_hand_is_run():
    """The catalog's recipes chosen by a value the loop sets (catalog.BY_HAND) each have a case above."""
    from switcheroo_lsp.knowledge import catalog
    fixed = [apply(src, analyze(src).fix_all()) for _, src in CASES]
    for name, row in catalog.OPTIMIZERS.items():
        for variant in row.variants:
            if any(want is catalog.BY_HAND for _, want in variant.when):
                funcs = [tx.func for tx in variant.chain]
                assert any(all(f in text for f in funcs) for text in fixed), f"{name}: {funcs} is never run"


def test_a_value_kept_in_a_link_of_the_chain_is_addressed_there():
    """The comparison can tell: the same fix writing at the state's top instead of RAdam's own link is off."""
    name, src = next(c for c in CASES if c[0] == "radam-l2-chain-lr-in-its-own-link")
    fixed = apply(src, analyze(src).fix_all())
    assert 'opt_state[1].hyperparams["learning_rate"] = ' in fixed, fixed
    with pytest.raises(Exception):      # the chain's state is a tuple: no hyperparams at its top
        run_optax(fixed.replace("opt_state[1].hyperparams", "opt_state.hyperparams"), False)


def test_momentum_kept_constant_stays_plain_optax_sgd():
    """Only a momentum the loop changes needs torch's buffer: a learning rate set by hand keeps optax.sgd."""
    name, src = next(c for c in CASES if c[0] == "sgd-l2-chain-enumerate-and-halving")
    fixed = apply(src, analyze(src).fix_all())
    assert "optax.sgd(" in fixed and "torch_sgd" not in fixed, fixed


def test_per_group_writes_reach_their_own_group():
    """The comparison can tell which group a write reached: the same fix with the labels swapped is far off."""
    name, src = next(c for c in CASES if c[0] == "sgd-per-index-write-and-own-lr")
    fixed = apply(src, analyze(src).fix_all())
    assert "optax.multi_transform(" in fixed and 'inner_states["group1"].inner_state.hyperparams' in fixed
    swapped = run_optax(fixed, True, labels=("group1", "group0"))[0]
    assert np.max(np.abs(run_torch(src)[0] - swapped)) > 1e-3


# -- an optimizer chosen at run time: one write for every candidate --------------------------------
# `choice` is the run-time value (given by the harness); the fixed program is run once per
# candidate, against torch run with the same choice.

CHOICE_CASES = [
    # (id, program, the values `choice` takes, two groups)
    ("if-elif-adamw-sgd-every-group-and-logging",
     "import torch\nif choice == \"adamw\":\n    opt = torch.optim.AdamW(params, lr=0.05, weight_decay=0.1)\n"
     "elif choice == \"sgd\":\n    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)\nlogged = []\n" + LOOP
     + "    for g in opt.param_groups:\n        g[\"lr\"] = 0.05 * (1.0 - t / 60.0) * (1 + t % 3)\n" + STEP
     + "    logged.append(opt.param_groups[0][\"lr\"])\n", ("adamw", "sgd"), False),
    ("if-else-adam-rmsprop-eps-and-lr",
     "import torch\nif choice == \"adam\":\n    opt = torch.optim.Adam(params, lr=0.05, eps=1e-3)\n"
     "else:\n    opt = torch.optim.RMSprop(params, lr=0.01, eps=1e-3)\n" + LOOP
     + "    opt.param_groups[0][\"lr\"] = 0.02 / (1 + 0.1 * t)\n    opt.param_groups[0][\"eps\"] = 1e-3 / (1 + t)\n" + STEP,
     ("adam", "rmsprop"), False),
    ("class-chosen-per-group-head-resting",
     "import torch\noptimizer_class = torch.optim.AdamW if choice == \"adamw\" else torch.optim.Adam\n"
     "opt = optimizer_class([{\"params\": [w]}, {\"params\": [v], \"lr\": 0.01}], lr=0.05, betas=(0.9, 0.95))\n"
     "logged = []\n" + LOOP
     + "    for i, g in enumerate(opt.param_groups):\n        if i == 0:\n            g[\"lr\"] = 0.05 / (1 + 0.05 * t)\n"
     "    opt.param_groups[1][\"lr\"] = 0.0 if t % 4 == 3 else 0.03 * (1 + t % 2)\n" + STEP
     + "    logged.append(opt.param_groups[1][\"lr\"])\n", ("adamw", "adam"), True),
]
CHOICE_RUNS = [(c, value) for c in CHOICE_CASES for value in c[2]]


@pytest.mark.parametrize("case,value", CHOICE_RUNS, ids=[f"{c[0]}[{v}]" for c, v in CHOICE_RUNS])
def test_chosen_at_run_time_trains_like_torch_whichever_is_chosen(case, value):
    name, src, _, two_groups = case
    analysis = analyze(src)
    fixed = apply(src, analysis.fix_all())
    assert "param_groups" not in fixed and "opt.step()" not in fixed and "opt = torch" not in fixed, fixed
    assert not [f for f in analysis.findings if f.code == "OPX202"], [f.message for f in analysis.findings]
    theirs, torch_env = run_torch(src, {"choice": value})
    ours, optax_env = run_optax(fixed, two_groups, extra={"choice": value})
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 0.05, "the run must go somewhere"
    diff = np.max(np.abs(theirs - ours))
    assert diff <= 1e-12, f"{value}: {diff:.3g}\n{fixed}"
    if "logged" in torch_env:
        assert np.max(np.abs(np.array(torch_env["logged"]) - np.array(optax_env["logged"]))) <= 1e-15
    # The control: the same fix with the state writes dropped is far off, for this candidate too.
    unwritten = "\n".join(line for line in fixed.splitlines() if ".hyperparams[" not in line
                          or "logged" in line) + "\n"
    assert unwritten.count(".hyperparams[") < fixed.count(".hyperparams[")
    assert np.max(np.abs(theirs - run_optax(unwritten, two_groups, extra={"choice": value})[0])) > 1e-3


def test_a_value_in_the_wrong_link_of_the_chain_is_told_apart():
    """The comparison can tell which link reads the value: torch Adam's L2 decay given to adamw's
    decoupled decay instead (both reading the state's weight_decay), or the factory's link left with
    the construction's constant (the writes reaching the state but no link), are far off."""
    name, src = next(c for c in CASES if c[0] == "adam-l2-chain-weight-decay-and-lr-every-step")
    fixed = apply(src, analyze(src).fix_all())
    link = "optax.add_decayed_weights(weight_decay),\n        optax.adam(learning_rate=learning_rate),"
    assert link in fixed, fixed
    theirs = run_torch(src)[0]
    assert np.max(np.abs(theirs - run_optax(fixed, False)[0])) <= 1e-12
    decoupled = fixed.replace(link, "optax.adamw(learning_rate=learning_rate, weight_decay=weight_decay),")
    frozen = fixed.replace(link, link.replace("add_decayed_weights(weight_decay)", "add_decayed_weights(0.1)"))
    for wrong in (decoupled, frozen):
        assert np.max(np.abs(theirs - run_optax(wrong, False)[0])) > 1e-3


def test_amsgrad_eps_set_by_hand_reaches_the_direction():
    """Among several injected values, eps reaches the amsgrad direction's link: left at the
    construction's value there, the run is far off."""
    name, src = next(c for c in CASES if c[0] == "adam-amsgrad-betas-eps-lr-every-step")
    fixed = apply(src, analyze(src).fix_all())
    link = "scale_by_torch_amsgrad(b1=b1, b2=b2, eps=eps)"
    assert link in fixed, fixed
    swapped = fixed.replace(link, "scale_by_torch_amsgrad(b1=b1, b2=b2, eps=1e-08)")
    assert np.max(np.abs(run_torch(src)[0] - run_optax(swapped, False)[0])) > 1e-4


# -- the flax-nnx target: the whole step, fixture tests/fixtures/gradients/hand_set_lr.py ----------

UPDATES = 20


def _regression(n: int, rng) -> list:
    out = []
    for _ in range(n):
        x = rng.normal(size=(8, 3))
        out.append((x, np.sin(x.sum(1, keepdims=True))))
    return out


def _mlp_runs(fx, function: str, data_seed: int, model_seed: int, **kwargs):
    """A fixture's function run as torch wrote it and as the fix rewrote it, on MLP twins (float64):
    (torch's trajectory, the fix's, what each returned)."""
    with ref.precision("float64") as dtype:
        batches = _regression(UPDATES, np.random.default_rng(data_seed))
        torch_model = h.TorchMLP((3, 8, 1), seed=model_seed)
        nnx_model = h.NnxMLP(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        torch_out = fx.namespace("torch")[function](torch_model, t, h.torch_mse, **kwargs)
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        nnx_out = fx.namespace("nnx")[function](nnx_model, j, h.jax_mse, **kwargs)
        return t.trajectory(), j.trajectory(), torch_out, nnx_out


@pytest.mark.parametrize("function", ["train_annealed", "train_warmup_cosine", "train_every_group",
                                      "train_radam_l2_annealed"])
def test_nnx_hand_set_learning_rate_trains_like_torch(function):
    fx = h.fixed("hand_set_lr")
    codes = [f.code for f in fx.analysis.findings if "param_labels" not in f.message]   # (train_per_group's TODO)
    assert "OPX202" not in codes and "OPX203" not in codes and "param_groups" not in fx.fixed
    kwargs = {"lr_schedule": [0.05 + 0.01 * (i % 5) for i in range(UPDATES)]} if function == "train_every_group" \
        else {}
    theirs, ours, torch_out, nnx_out = _mlp_runs(fx, function, 3, 11, **kwargs)
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    assert diff <= 1e-10, f"{function}: {diff:.3e}\n{fx.fixed}"
    if torch_out is not None:           # the learning rates read for logging
        assert np.max(np.abs(np.array(torch_out) - np.array([float(x) for x in nnx_out]))) <= 1e-15


# Per group on Flax NNX: the groups are two submodules of one model (body, head), the fix's
# multi_transform labels each leaf by the submodule it is in (param_labels, the fix's TODO).

class TorchBodyHead(torch.nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        mlp = h.TorchMLP((3, 8, 1), seed=seed)
        self.body, self.head = mlp.layers[0], mlp.layers[1]

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))

    def flat(self) -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel().copy() for layer in (self.body, self.head)
                               for p in (layer.weight, layer.bias)])


class NnxBodyHead(nnx.Module):
    def __init__(self, twin: TorchBodyHead, dtype):
        self.body, self.head = h.NnxMLP._linear(twin.body, dtype), h.NnxMLP._linear(twin.head, dtype)

    def __call__(self, x):
        return self.head(jnp.tanh(self.body(x)))

    def flat(self) -> np.ndarray:
        return np.concatenate([np.asarray(p).ravel() for layer in (self.body, self.head)
                               for p in (layer.kernel[...].T, layer.bias[...])])


def _labels(params):
    return jax.tree_util.tree_map_with_path(lambda path, _: "group0" if path[0].key == "body" else "group1", params)


def _body_head_runs(fx, function: str, labels, data_seed: int, model_seed: int, *args):
    """A fixture's per-group function run as torch wrote it and as the fix rewrote it, on body/head
    twins (float64), each leaf labelled by its submodule (`labels` "swapped": the other group's):
    (torch's trajectory, the fix's, what each returned)."""
    with ref.precision("float64") as dtype:
        batches = _regression(UPDATES, np.random.default_rng(data_seed))
        torch_model = TorchBodyHead(seed=model_seed)
        nnx_model = NnxBodyHead(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        torch_out = fx.namespace("torch")[function](torch_model, t, h.torch_mse, *args)
        ns = fx.namespace("nnx")
        ns["param_labels"] = _labels if labels is _labels else (
            lambda p: jax.tree_util.tree_map(lambda x: {"group0": "group1", "group1": "group0"}[x], _labels(p)))
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        nnx_out = ns[function](nnx_model, j, h.jax_mse, *args)
        return t.trajectory(), j.trajectory(), torch_out, nnx_out


@pytest.mark.parametrize("labels", [_labels, "swapped"])
def test_nnx_per_group_learning_rates_train_like_torch(labels):
    fx = h.fixed("hand_set_lr")
    assert 'inner_states["group1"].inner_state.hyperparams["learning_rate"][...]' in fx.fixed
    schedule = [0.03 + 0.01 * (i % 3) for i in range(UPDATES)]
    theirs, ours, torch_out, nnx_out = _body_head_runs(fx, "train_per_group", labels, 5, 13, schedule)
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    if labels == "swapped":             # the comparison tells the groups apart
        assert diff > 1e-4
        return
    assert diff <= 1e-10, f"{diff:.3e}\n{fx.fixed}"
    assert np.max(np.abs(np.array(torch_out) - np.array([float(x) for x in nnx_out]))) <= 1e-15


# An optimizer chosen at run time on Flax NNX: tests/fixtures/gradients/hand_set_lr_choice.py, each
# candidate's run against torch's with the same choice.

@pytest.mark.parametrize("choice,control", [("adamw", False), ("sgd", False), ("adamw", True), ("sgd", True)])
def test_nnx_chosen_at_run_time_trains_like_torch(choice, control):
    fx = h.fixed("hand_set_lr_choice")
    write = '        optimizer.opt_state.hyperparams["learning_rate"][...] = lr_schedule[it]\n'
    assert write in fx.fixed
    if control:                         # the write dropped: far off, whichever is chosen
        fx = h.Fixed(fx.name, fx.text, fx.fixed.replace(write, ""), fx.analysis)
    schedule = [0.03 + 0.01 * (i % 5) for i in range(UPDATES)]
    with ref.precision("float64") as dtype:
        batches = _regression(UPDATES, np.random.default_rng(7))
        torch_model = h.TorchMLP((3, 8, 1), seed=17)
        nnx_model = h.NnxMLP(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        torch_out = fx.namespace("torch")["train_chosen"](torch_model, t, h.torch_mse, choice, schedule)
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        nnx_out = fx.namespace("nnx")["train_chosen"](nnx_model, j, h.jax_mse, choice, schedule)
        theirs, ours = t.trajectory(), j.trajectory()
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    if control:
        assert diff > 1e-4
        return
    assert diff <= 1e-10, f"{choice}: {diff:.3e}\n{fx.fixed}"
    assert np.max(np.abs(np.array(torch_out) - np.array([float(x) for x in nnx_out]))) <= 1e-15


@pytest.mark.parametrize("use_adamw,labels", [(True, _labels), (False, _labels), (True, "swapped")])
def test_nnx_class_chosen_per_group_trains_like_torch(use_adamw, labels):
    fx = h.fixed("hand_set_lr_choice")
    schedule = [0.03 + 0.01 * (i % 3) for i in range(UPDATES)]
    theirs, ours, torch_out, nnx_out = _body_head_runs(fx, "train_chosen_class", labels, 9, 19, schedule, use_adamw)
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    if labels == "swapped":             # the comparison tells the groups apart
        assert diff > 1e-4
        return
    assert diff <= 1e-10, f"{use_adamw}: {diff:.3e}\n{fx.fixed}"
    assert np.max(np.abs(np.array(torch_out) - np.array([float(x) for x in nnx_out]))) <= 1e-15


# Hyperparameters other than lr inside chains on Flax NNX (issue 24, item 1): fixture
# tests/fixtures/gradients/hand_set_weight_decay.py, each value changing at every update.

@pytest.mark.parametrize("function", ["train_l2_decay_and_lr", "train_decay_switched_on", "train_momentum_and_decay"])
def test_nnx_hand_set_weight_decay_in_a_chain_trains_like_torch(function):
    fx = h.fixed("hand_set_weight_decay")
    codes = [f.code for f in fx.analysis.findings if "param_labels" not in f.message]
    assert "OPX202" not in codes and "OPX203" not in codes and "param_groups" not in fx.fixed
    theirs, ours, torch_out, nnx_out = _mlp_runs(fx, function, 7, 17)
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    assert diff <= 1e-10, f"{function}: {diff:.3e}\n{fx.fixed}"
    if torch_out is not None:           # the weight decays read back
        assert np.max(np.abs(np.array(torch_out) - np.array([float(x) for x in nnx_out]))) <= 1e-15


@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types:FutureWarning")
def test_nnx_weight_decay_switched_on_is_not_lost():
    """The state starts from a float (torch's default 0 written 0.0): an integer there would
    truncate the later 0.2 to 0 in nnx.Optimizer's state, and the decay would never start."""
    fx = h.fixed("hand_set_weight_decay")
    assert "(weight_decay=0.0)" in fx.fixed
    integer = fx.fixed.replace("(weight_decay=0.0)", "(weight_decay=0)")
    with ref.precision("float64") as dtype:
        runs = []
        for text in (fx.fixed, integer):
            ns: dict = {"__name__": "nnx_program"}
            exec(compile(text, "<nnx>", "exec"), ns)
            batches = _regression(UPDATES, np.random.default_rng(7))
            nnx_model = h.NnxMLP(h.TorchMLP((3, 8, 1), seed=17), dtype)
            j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
            ns["train_decay_switched_on"](nnx_model, j, h.jax_mse)
            runs.append(j.trajectory())
    assert np.max(np.abs(runs[0] - runs[1])) > 1e-6


@pytest.mark.parametrize("labels", [_labels, "swapped"])
def test_nnx_per_group_weight_decay_in_a_chain_trains_like_torch(labels):
    fx = h.fixed("hand_set_weight_decay")
    assert 'inner_states["group0"].inner_state.hyperparams["weight_decay"][...]' in fx.fixed
    theirs, ours, _, _ = _body_head_runs(fx, "train_per_group_decay", labels, 9, 19)
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    if labels == "swapped":             # the comparison tells the groups apart
        assert diff > 1e-4
        return
    assert diff <= 1e-10, f"{diff:.3e}\n{fx.fixed}"


# Gradient accumulation (Flax NNX: optax.MultiSteps around the injected chain): the values set by
# hand live in MultiSteps' inner state, `optimizer.opt_state.inner_opt_state.hyperparams[...]`, and
# the update every `accum_steps` micro-batches uses the ones set last. Fixture
# tests/fixtures/gradients/hand_set_lr_accumulated.py.

@pytest.mark.parametrize("written", [True, False])
def test_nnx_hand_set_values_under_gradient_accumulation_reach_the_inner_state(written):
    fx = h.fixed("hand_set_lr_accumulated")
    assert "optax.MultiSteps(" in fx.fixed
    assert 'optimizer.opt_state.inner_opt_state.hyperparams["weight_decay"][...]' in fx.fixed
    codes = [f.code for f in fx.analysis.findings]
    assert "OPX202" not in codes and "OPX203" not in codes and "param_groups" not in fx.fixed
    micro, updates = 2, 10              # (MultiSteps run eagerly recompiles its lax.cond at every call: slow)
    with ref.precision("float64") as dtype:
        batches = _regression(updates * micro, np.random.default_rng(11))
        torch_model = h.TorchMLP((3, 8, 1), seed=23)
        nnx_model = h.NnxMLP(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        fx.namespace("torch")["train"](torch_model, t, h.torch_mse, accum_steps=micro)
        ns = fx.namespace("nnx")
        if not written:                 # the control: the same program without its writes
            unwritten = "\n".join(line for line in fx.fixed.splitlines() if ".hyperparams[" not in line) + "\n"
            ns = {"__name__": "nnx_unwritten"}
            exec(compile(unwritten, "<nnx>", "exec"), ns)
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        ns["train"](nnx_model, j, h.jax_mse, accum_steps=micro)
        theirs, ours = t.trajectory(), j.trajectory()
    assert np.max(np.abs(theirs[-1] - theirs[0])) > 1e-3, "the model must actually train"
    diff = np.max(np.abs(theirs - ours))
    if not written:
        assert diff > 1e-4
        return
    assert diff <= 1e-10, f"{diff:.3e}\n{fx.fixed}"
    steps = np.flatnonzero(np.any(np.diff(theirs, axis=0) != 0, axis=1)) + 1
    assert list(steps) == list(range(micro, updates * micro + 1, micro)), "accumulated, not updated per batch"


# A momentum set by hand on Flax NNX (fixture tests/fixtures/gradients/hand_set_momentum.py): torch's
# lazy buffer (switcheroo_optax.torch_sgd) in nnx.Optimizer's state, raised from 0 and paused.

@pytest.mark.parametrize("function,control", [("train_momentum_warmup", False), ("train_momentum_paused", False),
                                              ("train_momentum_warmup", True)])
def test_nnx_momentum_set_by_hand_trains_like_torch(function, control):
    fx = h.fixed("hand_set_momentum")
    codes = [f.code for f in fx.analysis.findings if "param_labels" not in f.message]
    assert "OPX202" not in codes and "OPX203" not in codes and "param_groups" not in fx.fixed
    assert fx.fixed.count("switcheroo_optax.torch_sgd") == 2, "both constructions keep torch's buffer"
    if control:     # optax.sgd's trace, accumulating from the first update: the comparison tells
        fx.fixed = fx.fixed.replace("switcheroo_optax.torch_sgd", "optax.sgd")
    theirs, ours, torch_out, nnx_out = _mlp_runs(fx, function, 5, 19)
    assert float(np.max(np.abs(theirs[-1] - theirs[0]))) > 1e-3, "the model must actually train"
    diff = float(np.max(np.abs(theirs - ours)))
    if control:
        assert diff > 1e-4, f"{diff:.3e}"
        return
    assert diff <= 1e-10, f"{function}: {diff:.3e}"
    if torch_out is not None:           # the momentum read for logging
        logged = float(np.max(np.abs(np.array(torch_out) - np.array([float(x) for x in nnx_out]))))
        assert logged <= 1e-15, f"{logged:.3e}"
