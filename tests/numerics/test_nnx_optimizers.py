"""Proof by running, flax-nnx target: for every catalog optimizer, every recipe's example, the
fix's `nnx.Optimizer(model, <tx>, wrt=nnx.Param)` and `optimizer.update(model, grads)` (the
rewritten program's text, executed) train an nnx module like torch trains its module running
the original: float64 max |p_torch - p_nnx| <= 1e-12 over 50 steps; float32 <= 1e-5 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optax")
pytest.importorskip("flax")
import nnx_harness as nnx_run  # noqa: E402
import numerics_harness as ref  # noqa: E402
from numerics_cases import EXAMPLES, FLOAT32  # noqa: E402
from switcheroo_lsp.knowledge import catalog  # noqa: E402

pytestmark = pytest.mark.numerics

F64_TOL = 1e-12
F32_REL = 1e-5
# LBFGS's step(closure) needs a person (OPX202): its construction is proven separately below.
STEPPED = [(name, call, cfg) for name, cases in EXAMPLES.items() if name != "LBFGS" for call, cfg in cases]


def _check_rewrite(result: nnx_run.Comparison) -> None:
    conv = result.conv
    assert conv.codes == ["OPX101", "OPX103", "OPX102"], [f.message for f in conv.analysis.findings]
    fixed = conv.fixed
    assert "optimizer = nnx.Optimizer(" in fixed and "wrt=nnx.Param" in fixed
    assert "    optimizer.update(model, grads)\n" in fixed
    assert "torch.optim" not in fixed and "zero_grad" not in fixed and "apply_updates" not in fixed
    assert "from flax import nnx\n" in fixed


@pytest.mark.parametrize("name,call,cfg", STEPPED, ids=[c for _, c, _ in STEPPED])
def test_example_float64(name, call, cfg):
    result = nnx_run.compare(call, "float64", cfg)
    _check_rewrite(result)
    assert np.all(np.isfinite(result.torch)) and result.moved > 1e-3, "the optimizer must actually move"
    assert result.diff <= F64_TOL, f"{call}: max |diff| {result.diff:.3e}\n{result.conv.fixed}"


@pytest.mark.parametrize("call", [c for c in FLOAT32 if not c.startswith("torch.optim.LBFGS(")])
def test_example_float32(call):
    result = nnx_run.compare(call, "float32")
    _check_rewrite(result)
    assert result.torch.dtype == np.float32 and result.nnx.dtype == np.float32
    bound = F32_REL * result.scale
    assert result.diff <= bound, f"{call}: max |diff| {result.diff:.3e} > {bound:.1e}"


LBFGS_CASES = [(c, "float64") for c, _ in EXAMPLES["LBFGS"]] + [
    (c, "float32") for c in FLOAT32 if c.startswith("torch.optim.LBFGS(")]


@pytest.mark.parametrize("call,dtype", LBFGS_CASES, ids=[f"{d}-{c}" for c, d in LBFGS_CASES])
def test_lbfgs_construction(call, dtype):
    result = nnx_run.compare_lbfgs(call, dtype)
    assert result.conv.codes == ["OPX101"], [f.message for f in result.conv.analysis.findings]
    assert "optimizer = nnx.Optimizer(" in result.conv.fixed and "switcheroo_optax.torch_lbfgs(" in result.conv.fixed
    assert result.moved > 1e-3
    bound = F64_TOL if dtype == "float64" else F32_REL * result.scale
    if result.diff > bound:
        # LBFGS amplifies rounding (numerics_harness.torch_sensitivity): ten times torch's own.
        bound = max(bound, 10 * ref.torch_sensitivity(call, dtype))
    assert result.diff <= bound, f"{call}: max |diff| {result.diff:.3e} > {bound:.1e}"


def test_every_catalog_row_is_proven():
    assert {name for name, _, _ in STEPPED} | {"LBFGS"} == {k for k, r in catalog.OPTIMIZERS.items()
                                                         if r.module == "torch.optim"}
