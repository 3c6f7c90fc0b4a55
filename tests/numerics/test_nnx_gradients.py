"""Proof by running, flax-nnx target, the whole step: each fixture of tests/fixtures/gradients/
(an MLP classifier reading its accuracy after the update, a GAN, a DQN with a target network
under no_grad, gradient accumulation three ways, a Trainer's method) runs as torch wrote it, and
its fix — the loss functions, `nnx.value_and_grad`, `nnx.Optimizer`, `optax.MultiSteps` as the
pipeline writes them, executed — runs with only the model and the loss function swapped for
their JAX twins (from torch's initial weights). The parameters agree update by update over 20
updates: float64 max |Δθ| <= 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optax")
pytest.importorskip("flax")
import gradients_harness as h  # noqa: E402
import numerics_harness as ref  # noqa: E402

pytestmark = pytest.mark.numerics

TOL = 1e-10
UPDATES = 20
RNG_SEED = 7


def _check_fix(fx: h.Fixed) -> None:
    """The fix is complete: every step's gradients derived, nothing left for a person."""
    codes = [f.code for f in fx.analysis.findings]
    assert "OPX203" not in codes and "OPX202" not in codes, [f.message for f in fx.analysis.findings]
    assert "TODO" not in fx.fixed and ".backward(" not in fx.fixed and ".step()" not in fx.fixed
    assert "nnx.value_and_grad(" in fx.fixed and "zero_grad" not in fx.fixed


def _compare(name: str, run) -> h.Comparison:
    fx = h.fixed(name)
    _check_fix(fx)
    with ref.precision("float64") as dtype:
        result = run(fx, dtype)
    assert result.torch.shape == result.nnx.shape
    assert np.all(np.isfinite(result.torch)) and result.moved > 1e-3, "the model must actually train"
    assert result.diff <= TOL, f"{name}: max |Δθ| {result.diff:.3e}\n{fx.fixed}"
    return result


def _classification(n: int, rng) -> list:
    out = []
    for _ in range(n):
        x = rng.normal(size=(16, 4))
        y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
        out.append((x, y))
    return out


def _regression(n: int, rng) -> list:
    out = []
    for _ in range(n):
        x = rng.normal(size=(8, 3))
        out.append((x, np.sin(x.sum(1, keepdims=True))))
    return out


def test_mlp_classifier_reads_its_accuracy_after_the_update():
    def run(fx, dtype):
        batches = _classification(UPDATES, np.random.default_rng(RNG_SEED))
        torch_model = h.TorchMLP((4, 16, 3), seed=1)
        nnx_model = h.NnxMLP(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        torch_correct = fx.namespace("torch")["train"](torch_model, t, h.torch_cross_entropy)
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        nnx_correct = fx.namespace("nnx")["train"](nnx_model, j, h.jax_cross_entropy)
        return h.Comparison(t.trajectory(), j.trajectory(), torch_correct, nnx_correct)

    result = _compare("mlp_classifier", run)
    assert result.torch_out == result.nnx_out and result.torch_out > 0   # the accuracy read after each step


def test_gan_trains_each_module_on_its_own_loss():
    def run(fx, dtype):
        rng = np.random.default_rng(RNG_SEED)
        batches = [(rng.normal(1.0, 0.5, size=(16, 2)), rng.normal(size=(16, 2))) for _ in range(UPDATES)]
        gen_t, disc_t = h.TorchMLP((2, 8, 2), seed=2), h.TorchMLP((2, 8, 1), seed=3)
        gen_j, disc_j = h.NnxMLP(gen_t, dtype), h.NnxMLP(disc_t, dtype)
        t = h.Recorded(batches, h.convert_torch, [gen_t, disc_t])
        fx.namespace("torch")["train"](gen_t, disc_t, t, h.torch_bce)
        j = h.Recorded(batches, h.convert_jax(dtype), [gen_j, disc_j])
        fx.namespace("nnx")["train"](gen_j, disc_j, j, h.jax_bce)
        return h.Comparison(t.trajectory(), j.trajectory())

    result = _compare("gan", run)
    # both modules moved: the generator's parameters come first in the trajectory
    n_gen = h.TorchMLP((2, 8, 2), seed=2).flat().size
    assert np.max(np.abs(result.torch[-1, :n_gen] - result.torch[0, :n_gen])) > 1e-3
    assert np.max(np.abs(result.torch[-1, n_gen:] - result.torch[0, n_gen:])) > 1e-3


def test_dqn_target_network_values_are_constants():
    def run(fx, dtype):
        rng = np.random.default_rng(RNG_SEED)
        batches = [(rng.normal(size=(16, 4)), rng.integers(0, 3, 16), rng.normal(size=16),
                    rng.normal(size=(16, 4)), (rng.random(16) < 0.1).astype(np.float64)) for _ in range(UPDATES)]
        q_t, target_t = h.TorchMLP((4, 16, 3), seed=4), h.TorchMLP((4, 16, 3), seed=5)
        q_j, target_j = h.NnxMLP(q_t, dtype), h.NnxMLP(target_t, dtype)
        t = h.Recorded(batches, h.convert_torch, [q_t, target_t])
        fx.namespace("torch")["train"](q_t, target_t, t, h.torch_td)
        j = h.Recorded(batches, h.convert_jax(dtype), [q_j, target_j])
        fx.namespace("nnx")["train"](q_j, target_j, j, h.jax_td)
        return h.Comparison(t.trajectory(), j.trajectory())

    result = _compare("dqn", run)
    n_q = h.TorchMLP((4, 16, 3), seed=4).flat().size
    assert np.all(result.torch[:, n_q:] == result.torch[0, n_q:]), "the target network is not trained"


# micro-steps per update, passed to the function (the fixture's defaults are larger: MultiSteps run
# eagerly recompiles its lax.cond at every call, which makes long runs slow, not different)
ACCUMULATE = [("train", "accum_steps", 2), ("train_summed", "accum_steps", 3), ("train_micro", "micro_steps", 2),
              ("train_from_the_first", "every", 3)]


@pytest.mark.parametrize("function,keyword,micro", ACCUMULATE)
def test_gradient_accumulation_is_multisteps(function, keyword, micro):
    def run(fx, dtype):
        rng = np.random.default_rng(RNG_SEED)
        torch_model = h.TorchMLP((3, 8, 1), seed=6)
        nnx_model = h.NnxMLP(torch_model, dtype)
        data = _regression(UPDATES * micro, rng)
        if function == "train_micro":
            chunks = [data[i:i + micro] for i in range(0, len(data), micro)]
            t = h.Recorded(chunks, lambda c: [h.convert_torch(b) for b in c], [torch_model])
            fx.namespace("torch")[function](torch_model, t, h.torch_mse, **{keyword: micro})
            j = h.Recorded(chunks, lambda c: [h.convert_jax(dtype)(b) for b in c], [nnx_model])
            fx.namespace("nnx")[function](nnx_model, j, h.jax_mse, **{keyword: micro})
        else:
            t = h.Recorded(data, h.convert_torch, [torch_model])
            fx.namespace("torch")[function](torch_model, t, h.torch_mse, **{keyword: micro})
            j = h.Recorded(data, h.convert_jax(dtype), [nnx_model])
            fx.namespace("nnx")[function](nnx_model, j, h.jax_mse, **{keyword: micro})
        return h.Comparison(t.trajectory(), j.trajectory())

    result = _compare("accumulation", run)
    if function != "train_micro":
        # the parameters move only every `micro` batches: accumulated, not updated per batch
        steps = np.flatnonzero(np.any(np.diff(result.torch, axis=0) != 0, axis=1)) + 1
        first = 1 if function == "train_from_the_first" else micro
        assert list(steps) == list(range(first, UPDATES * micro + 1, micro))


def test_gradients_never_zeroed_add_up():
    def run(fx, dtype):
        batches = _regression(UPDATES, np.random.default_rng(RNG_SEED))
        torch_model = h.TorchMLP((3, 8, 1), seed=9)
        nnx_model = h.NnxMLP(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        fx.namespace("torch")["train"](torch_model, t, h.torch_mse)
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        fx.namespace("nnx")["train"](nnx_model, j, h.jax_mse)
        return h.Comparison(t.trajectory(), j.trajectory())

    _compare("never_zeroed", run)


def test_a_trainer_method_updates_self_model():
    def run(fx, dtype):
        batches = _regression(UPDATES, np.random.default_rng(RNG_SEED))
        torch_model = h.TorchMLP((3, 8, 1), seed=8)
        nnx_model = h.NnxMLP(torch_model, dtype)
        t = h.Recorded(batches, h.convert_torch, [torch_model])
        torch_losses = fx.namespace("torch")["Trainer"](torch_model).fit(t, h.torch_mse)
        j = h.Recorded(batches, h.convert_jax(dtype), [nnx_model])
        nnx_losses = fx.namespace("nnx")["Trainer"](nnx_model).fit(j, h.jax_mse)
        return h.Comparison(t.trajectory(), j.trajectory(), torch_losses, nnx_losses)

    result = _compare("trainer_method", run)
    assert np.max(np.abs(np.array(result.torch_out) - np.array(result.nnx_out))) <= TOL
