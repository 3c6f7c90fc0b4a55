"""Proof by running: every torch.optim optimizer in the catalog, every recipe, sampled argument
values, against the Optax code that switcheroo's fix writes (executed from the rewritten
program's text, never hand-written). float64: max |p_torch - p_optax| <= 1e-12 over 50 steps;
float32: <= 1e-5 relative to the parameters' size.
"""

from __future__ import annotations

import libcst as cst

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")
pytest.importorskip("optax")
import numerics_harness as harness
from hypothesis import HealthCheck, given, settings
from numerics_cases import EXAMPLES, FLOAT32, NO_FIX, SCHEDULED, STRATEGIES, call_of
from switcheroo_lsp.knowledge import catalog
from switcheroo_lsp.analysis.arguments import call_arguments
from switcheroo_lsp.knowledge.emit import UNKNOWN, ArgValue, _holds, bind

pytestmark = pytest.mark.numerics

F64_TOL = 1e-12
F32_REL = 1e-5
EXAMPLE_IDS = [(name, call, cfg) for name, cases in EXAMPLES.items() for call, cfg in cases]
# torch.optim's rows; the libraries' are proven in test_libraries.py.
TORCH_ROWS = sorted(k for k, row in catalog.OPTIMIZERS.items() if row.module == "torch.optim")


def _check_exact(call: str, cfg=None) -> harness.Comparison:
    result = harness.compare(call, "float64", cfg)
    assert result.built.finding.code == "OPX101", result.built.finding.message
    assert result.built.emission.exact
    assert np.all(np.isfinite(result.torch)) and result.moved > 1e-3, "the optimizer must actually move"
    bound = F64_TOL
    if result.diff > F64_TOL and call.startswith("torch.optim.LBFGS("):
        # LBFGS amplifies rounding (1e-15 in x0 -> ~1e-11 after 50 steps of 5 iterations, in
        # torch alone): there the bound is ten times torch's own sensitivity.
        bound = max(F64_TOL, 10 * harness.torch_sensitivity(call, "float64", cfg))
    assert result.diff <= bound, f"{call}: max |diff| {result.diff:.3e} > {bound:.1e}\n{result.built.expression}"
    return result


@pytest.mark.parametrize("name,call,cfg", EXAMPLE_IDS, ids=[c for _, c, _ in EXAMPLE_IDS])
def test_example_float64(name, call, cfg):
    _check_exact(call, cfg)


@pytest.mark.parametrize("call", FLOAT32)
def test_example_float32(call):
    result = harness.compare(call, "float32")
    assert result.torch.dtype == np.float32 and result.optax.dtype == np.float32
    bound = F32_REL * result.scale
    if result.diff > bound and call.startswith("torch.optim.LBFGS("):
        bound = max(bound, 10 * harness.torch_sensitivity(call, "float32"))   # see _check_exact
    assert result.diff <= bound, f"{call}: max |diff| {result.diff:.3e} > {bound:.1e} (scale {result.scale:.2f})"


def _sampled(name):
    strategy = STRATEGIES[name]

    @settings(max_examples=10, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(kwargs):
        _check_exact(call_of(name, kwargs))

    return check


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_sampled_arguments_float64(name):
    _sampled(name)()


def test_every_row_has_examples_and_a_strategy():
    assert set(EXAMPLES) == set(TORCH_ROWS) == set(STRATEGIES)


def _used(call: str, cfg, scheduled: bool = False):
    """The recipes and transforms an example exercises (literal values; cfg values for flags)."""
    row = harness.row_of(call)
    args, _, problems = bind(row, *call_arguments(cst.parse_expression(call)))
    assert not problems, problems
    if scheduled:
        args["__schedule__"] = ArgValue("True", literal=True)
    assume = {}
    for name, value in args.items():
        if value.literal is not UNKNOWN or cfg is None:
            continue
        attr = value.source.split("cfg.", 1)[-1]
        if value.source.startswith("cfg.") and isinstance(getattr(cfg, attr, None), bool):
            assume[name] = getattr(cfg, attr)
    variant = next(v for v in row.variants if _holds(row, args, v.when, assume))
    txs = {(row.variants.index(variant), i) for i, tx in enumerate(variant.chain) if _holds(row, args, tx.when, assume)}
    return row.variants.index(variant), txs


@pytest.mark.parametrize("name", TORCH_ROWS)
def test_examples_cover_every_recipe_and_transform(name):
    row = catalog.OPTIMIZERS[name]
    variants, txs = set(), set()
    used = [_used(call, cfg) for call, cfg in EXAMPLES[name]]
    used += [_used(call, None, scheduled=True) for call, _ in SCHEDULED if call.startswith(f"torch.optim.{name}(")]
    for v, t in used:
        variants.add(v)
        txs |= t
    for i, variant in enumerate(row.variants):
        if variant.problem or any(want is catalog.BY_HAND for _, want in variant.when):
            continue    # a recipe for values the loop sets by hand: run in tests/numerics/test_hyperparams.py
        assert i in variants, f"{name}: recipe {i} ({variant.when}) has no example"
        for j, _ in enumerate(variant.chain):
            assert (i, j) in txs, f"{name}: recipe {i}, transform {j} ({variant.chain[j].func}) has no example"
    # The recipes without a rewrite are covered by the no-fix cases.
    for i, variant in enumerate(row.variants):
        if variant.problem:
            assert any(call.startswith(f"torch.optim.{name}(") for call in NO_FIX), f"{name}: recipe {i}"


def test_examples_cover_every_argument():
    for name in TORCH_ROWS:
        row = catalog.OPTIMIZERS[name]
        given = set()
        for call, _ in EXAMPLES[name]:
            args, _, _ = bind(row, *call_arguments(cst.parse_expression(call)))
            given |= set(args)
        wanted = {n for n, _ in row.signature + row.keyword_only} - set(catalog.IMPLEMENTATION_FLAGS)
        wanted -= {"line_search_fn", "tolerance_grad"}     # LBFGS: covered by NO_FIX / defaults
        assert wanted <= given, f"{name}: no example passes {sorted(wanted - given)}"


@pytest.mark.parametrize("call", NO_FIX)
def test_no_faithful_equivalent_means_opx201_without_a_fix(call):
    program, analysis, finding = harness.analyzed(call)
    assert finding.code == "OPX201"
    assert not finding.fixable
    assert analysis.fix(finding.key) is None
    assert call in harness.apply(program, analysis.fix_all())


def test_adafactor_is_exact_for_3d_parameters():
    """torch factors the last two dims of a >2-D parameter; the helper does too (optax's own
    adafactor factors the two largest: 2.3e-2 apart on a (6, 4, 3) parameter)."""
    import jax.numpy as jnp
    import optax
    import torch

    for shape in [(3, 4, 5), (6, 4, 3), (2, 3, 4, 5)]:
        with harness.precision("float64") as dt:
            built = harness.emitted("torch.optim.Adafactor(params, lr=0.01, weight_decay=0.1)")
            r = np.random.default_rng(3)
            p0, grads = r.standard_normal(shape), r.standard_normal((20,) + shape)
            p = torch.tensor(p0, requires_grad=True)
            opt = harness.torch_optimizer(built.call, [p])
            pj = jnp.asarray(p0, dt)
            tx = built.make(pj)
            state = tx.init(pj)
            worst = 0.0
            for g in grads:
                p.grad = torch.tensor(g)
                opt.step()
                u, state = tx.update(jnp.asarray(g), state, pj)
                pj = optax.apply_updates(pj, u)
                worst = max(worst, float(np.max(np.abs(p.detach().numpy() - np.asarray(pj)))))
        assert worst <= F64_TOL, (shape, worst)


def test_sparse_adam_is_exact_with_sparse_rows():
    """An embedding with 3 of 10 rows looked up per step: torch leaves the other rows' moments
    alone, and so does switcheroo_optax.scale_by_torch_sparse_adam (optax.adam: 0.116)."""
    from numerics_sparse import sparse_rows_diff

    with harness.precision("float64"):
        built = harness.emitted("torch.optim.SparseAdam(params, lr=0.01, betas=(0.8, 0.99))")
        diff = sparse_rows_diff(built.call, lambda params: built.make(params))
    assert diff <= F64_TOL, diff
