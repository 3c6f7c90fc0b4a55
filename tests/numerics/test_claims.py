"""The numbers the catalog's notes and messages quote are true: each `Claim` (torch vs a naive
Optax translation, in a reference setup) is re-measured here and must agree to 10%, and the
text that quotes it must contain that number (to 10%)."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp
import numerics_harness as harness
import switcheroo_optax
from numerics_sparse import sparse_rows_diff
from switcheroo_lsp.knowledge import catalog

pytestmark = pytest.mark.numerics
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?")


def claims():
    """(row, claim, the text that quotes it)."""
    for name, row in catalog.OPTIMIZERS.items():
        for note in row.notes:
            for claim in note.claims:
                yield name, claim, note.text
        for variant in row.variants:
            text = " ".join((variant.problem, variant.difference) + tuple(variant.notes))
            for claim in variant.claims:
                yield name, claim, text


CLAIMS = list({(c.torch, c.optax): (n, c, t) for n, c, t in claims()}.values())   # shared notes: once


def measure(claim: catalog.Claim) -> float:
    env = {"optax": optax, "jnp": jnp, "jax": jax, "switcheroo_optax": switcheroo_optax}
    with harness.precision("float64") as dt:
        if claim.setup == "sparse_rows":
            return sparse_rows_diff(claim.torch, lambda params: eval(claim.optax, env))
        if claim.setup == "large":
            from numerics_large import large_diff
            return large_diff(claim.torch, eval(claim.optax, env))
        lbfgs = claim.setup == "lbfgs"
        noise = 0.0 if lbfgs else 1.0
        t = harness.run_torch(claim.torch, dt, noise=noise)
        j = harness.run_optax(eval(claim.optax, env), dt, noise=noise, value_fn=lbfgs)
    return float(np.max(np.abs(t - j)))


@pytest.mark.parametrize("name,claim,text", CLAIMS, ids=[f"{n}: {c.optax}" for n, c, _ in CLAIMS])
def test_quoted_difference_is_measured(name, claim, text):
    measured = measure(claim)
    assert abs(measured - claim.diff) <= 0.1 * claim.diff, f"measured {measured:.3e}, recorded {claim.diff:.3e}"
    quoted = [float(x) for x in _NUMBER.findall(text)]
    assert any(abs(q - claim.diff) <= 0.1 * claim.diff for q in quoted), \
        f"{claim.diff:.2g} is not quoted in: {text}"


def test_every_row_quotes_something_or_is_plain_optax():
    """Rows that need a helper or a non-obvious setting say why, with a measured number."""
    for name, row in catalog.OPTIMIZERS.items():
        if name in ("Adamax",) or row.proof == "documented":
            continue   # optax.adamax with torch's defaults, or a documented AdamW: nothing to explain
        assert any(n.claims for n in row.notes) or any(v.claims for v in row.variants), name
