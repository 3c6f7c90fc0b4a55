"""The catalog's recorded facts match the libraries they describe: torch 2.13.0's optimizer
signatures and defaults, Optax's (and switcheroo_optax's) keyword names and defaults."""

from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("optax")

from switcheroo_lsp.knowledge import catalog
from switcheroo_lsp.knowledge.emit import _default_of

ROWS = sorted(catalog.OPTIMIZERS)


def test_torch_version():
    assert torch.__version__.split("+")[0] == "2.13.0"


def _class_of(row):
    """The class a row describes, from its package (ecosystem.py loads the libraries)."""
    if row.module == "torch.optim":
        return getattr(torch.optim, row.torch)
    from ecosystem import require
    package = require(row.module.split(".")[0])
    module = importlib.import_module(row.module) if package is not None else None
    return getattr(module, row.torch)


@pytest.mark.parametrize("name", [n for n in ROWS if catalog.OPTIMIZERS[n].proof == "run"])
def test_signature_is_the_packages(name):
    row = catalog.OPTIMIZERS[name]
    params = list(inspect.signature(_class_of(row).__init__).parameters.values())[2:]   # self, params
    positional = [(p.name, p.default) for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword_only = [(p.name, p.default) for p in params if p.kind is p.KEYWORD_ONLY]
    assert list(row.signature) == positional
    assert list(row.keyword_only) == keyword_only
    for (_, mine), (_, theirs) in zip(row.signature + row.keyword_only, positional + keyword_only):
        assert type(mine) is type(theirs) or mine == theirs


def _function(func: str):
    m = re.fullmatch(r"optax\.inject_hyperparams\(([\w.]+)\)", func)
    dotted = m.group(1) if m else func
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _transforms():
    for name, row in catalog.OPTIMIZERS.items():
        for variant in row.variants:
            for tx in variant.chain:
                yield name, row, tx


@pytest.mark.parametrize("name,row,tx", list(_transforms()), ids=[f"{n}:{t.func}" for n, _, t in _transforms()])
def test_keywords_and_defaults_are_the_functions(name, row, tx):
    signature = inspect.signature(_function(tx.func))
    for kw in tx.kws:
        assert kw.name in signature.parameters, f"{tx.func} has no keyword {kw.name}"
        if kw.optax_default is not catalog.REQUIRED:
            assert signature.parameters[kw.name].default == kw.optax_default, (tx.func, kw.name)
        simple = re.fullmatch(r"\{(\w+)\}", kw.template)
        if kw.always and simple:
            # switcheroo_optax's defaults are torch's
            assert _default_of(row, simple.group(1)) == kw.optax_default, (tx.func, kw.name)


@pytest.mark.parametrize("name", ROWS)
def test_every_argument_is_explained(name):
    row = catalog.OPTIMIZERS[name]
    documented = [a for a, _ in row.arguments]
    wanted = [a for a, _ in row.signature + row.keyword_only if a not in row.implementation_flags]
    assert sorted(documented) == sorted(wanted)


@pytest.mark.parametrize("name", ROWS)
def test_templates_name_known_arguments(name):
    row = catalog.OPTIMIZERS[name]
    known = set(row.defaults()) | set(row.derived)
    for base in row.derived.values():
        arg = re.fullmatch(r"\{(\w+)\}\[\d+\]", base).group(1)
        assert isinstance(row.defaults()[arg], tuple)
    for variant in row.variants:
        for tx in variant.chain:
            for kw in tx.kws:
                for template in (kw.template, kw.schedule_template or ""):
                    assert set(re.findall(r"\{(\w+)\}", template)) <= known, (tx.func, template)
            for cond, _ in tx.when:
                assert cond in known, cond
        for cond, _ in variant.when:
            assert cond in known or cond == "__schedule__", cond


# -- robustness: whatever the arguments, the emitter never crashes and fixes parse ---------------------
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

_VALUES = st.sampled_from([
    "0", "0.5", "-1", "1e-3", "None", "True", "False", "(0.9, 0.99)", "(None, 1e-3)", "(0.9,)", "[0.1, 0.2]",
    "cfg.x", "cfg.pair", "cfg.flag", "'strong_wolfe'", "'bogus'", "a if b else c", "lambda c: c",
    "torch.tensor(0.1)", "-cfg.x", "x + y", "{}", "f(*args)",
])


@pytest.mark.parametrize("name", ROWS)
def test_any_arguments_give_findings_and_parsable_fixes(name):
    row = catalog.OPTIMIZERS[name]
    names = [n for n, _ in row.signature + row.keyword_only] + ["bogus_arg", "lrr"]

    @settings(max_examples=40, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(names), _VALUES, max_size=5), st.lists(_VALUES, max_size=3))
    def check(kwargs, positional):
        args = "".join(f", {v}" for v in positional) + "".join(f", {k}={v}" for k, v in kwargs.items())
        imports = f"import {row.module}\n" if row.module != "torch.optim" else ""
        program = (f"import torch\n{imports}\n\ndef make(params, cfg):\n    opt = {row.qualified}(params{args})\n"
                   "    return opt\n\n\nif __name__ == '__main__':\n    optimizer = make(params, None)\n")
        analysis = analyze(program)
        construct = [f for f in analysis.findings if f.kind in ("construct", "unmapped")]
        assert len(construct) == 1
        fixed = apply(program, analysis.fix_all())
        ast.parse(fixed)
        if construct[0].code == "OPX201" and not construct[0].fixable:
            assert f"{row.qualified}(" in fixed

    check()


def test_asgd_averaged_parameters_read_by_the_file_is_opx201_without_a_fix():
    program = ("import torch\n\nopt = torch.optim.ASGD(params, lr=0.01, t0=100)\n"
               "for p in params:\n    avg = opt.state[p]['ax']\n")
    analysis = analyze(program)
    finding = next(f for f in analysis.findings if f.kind in ("construct", "unmapped"))
    assert finding.code == "OPX201" and not finding.fixable and "'ax'" in finding.message
    plain = analyze("import torch\n\nopt = torch.optim.ASGD(params, lr=0.01)\n")
    finding = next(f for f in plain.findings if f.kind == "construct")
    assert finding.code == "OPX101" and "averaged copy" in finding.message   # said where the user sees it


def test_docs_table_lists_every_example():
    """docs/optimizers.md is generated (tests/numerics/measure.py): regenerate it when the
    catalog's examples change."""
    from pathlib import Path

    from numerics_cases import EXAMPLES

    docs = (Path(__file__).resolve().parents[2] / "docs" / "optimizers.md").read_text()
    for name, cases in EXAMPLES.items():
        assert f"| {name} | `lr` |" in docs
        for call, _ in cases:
            short = call.replace("torch.optim.", "", 1).replace("(params, ", "(").replace("(params)", "()")
            assert f"| `{short}` |" in docs, f"{call}: run .venv/bin/python tests/numerics/measure.py"
