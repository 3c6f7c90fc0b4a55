"""Whole flows or nothing, proven by running: after fix-all, a generated program is executed with
its converted optimizers as real Optax transforms (guarded, sandbox.py); no torch optimizer or
scheduler API may reach one of them unless its line still carries a finding. Libraries it hands
objects to use them as libraries do, so handing a converted object to one is caught too.
"""

from __future__ import annotations

import pytest
from flows import programs
from fuzz_settings import fuzz
from hypothesis import given, note

from switcheroo_lsp.engine import analyze, apply

pytest.importorskip("optax")
import sandbox  # noqa: E402  (imports optax and switcheroo_optax)

# The sandbox's `params` and `grads` stand for what a port defines beside its model.
PRESET = {}


def _preset():
    if not PRESET:
        import jax.numpy as jnp
        PRESET.update(params={"w": jnp.ones(3)}, grads={"w": jnp.full(3, 0.5)})
    return PRESET


def half_conversions(text: str, target: str) -> tuple[str, list]:
    fixed = apply(text, analyze(text, target).fix_all())
    flagged = {f.span.start.line + 1 for f in analyze(fixed, target).findings}
    touched = sandbox.run(fixed, dict(_preset())).touched
    return fixed, [(line, what) for line, what in touched if line not in flagged]


@pytest.mark.parametrize("target", ["optax", "flax-nnx"])
@fuzz(60)
@given(text=programs())
def test_no_torch_api_reaches_a_converted_object_without_a_finding(text, target):
    note(text)
    assert not sandbox.run(text, dict(_preset())).touched, "the torch program itself touched an Optax object"
    fixed, silent = half_conversions(text, target)
    assert not silent, f"torch API reached a converted object with no finding on its line: {silent}\n{fixed}"


def test_the_sandbox_catches_a_half_conversion():
    """The check can fail: a step left on an Optax object, with no finding, is caught."""
    text = "import optax\nopt = optax.sgd(learning_rate=0.1)\nopt_state = opt.init(params)\n" \
           "for x in [1, 2]:\n    step_on = opt\n    step_on.step()\n"
    touched = sandbox.run(text, dict(_preset())).touched
    assert touched == [(6, "optax.step"), (6, "optax.step")]


def test_libraries_that_use_a_converted_object_are_caught():
    text = "import optax\nimport somelib\nopt = optax.adam(learning_rate=1e-3)\nsomelib.save(opt)\n"
    assert [line for line, _ in sandbox.run(text, dict(_preset())).touched] == [4, 4]
