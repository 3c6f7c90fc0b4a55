"""Rewrite fixtures: tests/fixtures/**/NAME.py beside NAME.expected.py (the fix-all result) and
NAME.diagnostics.txt (`line:col CODE`, 1-based). Adding a case is adding files.

Every case runs for each target: the flax-nnx target's fix-all result is NAME.nnx.expected.py,
and NAME.nnx.diagnostics.txt exists where its findings differ from the optax target's.

SWITCHEROO_UPDATE_FIXTURES=1 rewrites the expected files from the current behaviour; review
the diff before committing it.
"""

import ast
import os
from pathlib import Path

import pytest

from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p for p in FIXTURES.rglob("*.py") if not p.name.endswith(".expected.py")
               and "workspace" not in p.relative_to(FIXTURES).parts)   # multi-file projects: test_workspace_fixtures.py
UPDATE = os.environ.get("SWITCHEROO_UPDATE_FIXTURES") == "1"
TARGETS = {"optax": "", "flax-nnx": ".nnx"}     # target -> the infix of its expected files
CASE_TARGETS = [(p, t) for p in CASES for t in TARGETS]


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")   # keep CRLF as it is


def case_id(p: Path, target: str = "optax") -> str:
    return str(p.relative_to(FIXTURES).with_suffix("")) + ("" if target == "optax" else f"@{target}")


IDS = [case_id(p, t) for p, t in CASE_TARGETS]


def diagnostics_text(text: str, target: str = "optax") -> str:
    return "".join(f"{f.span.start.line + 1}:{f.span.start.col + 1} {f.code}\n"
                   for f in analyze(text, target).findings)


def expected(path: Path, target: str, kind: str) -> Path:
    return path.with_name(path.stem + TARGETS[target] + kind)


def parses(text: str) -> bool:
    try:
        ast.parse(text)
        return True
    except SyntaxError:
        return False


@pytest.mark.parametrize("path,target", CASE_TARGETS, ids=IDS)
def test_diagnostics(path, target):
    own = expected(path, target, ".diagnostics.txt")
    actual = diagnostics_text(read(path), target)
    if UPDATE and target != "optax":
        # Only where the findings differ from the optax target's.
        same = actual == path.with_name(path.stem + ".diagnostics.txt").read_text()
        if same:
            own.unlink(missing_ok=True)
        else:
            own.write_text(actual)
    elif UPDATE:
        own.write_text(actual)
    expected_file = own if own.exists() else expected(path, "optax", ".diagnostics.txt")
    assert actual == expected_file.read_text()


@pytest.mark.parametrize("path,target", CASE_TARGETS, ids=IDS)
def test_fix_all(path, target):
    text = read(path)
    expected_file = expected(path, target, ".expected.py")
    fixed = apply(text, analyze(text, target).fix_all())
    if UPDATE:
        expected_file.write_bytes(fixed.encode("utf-8"))
    assert fixed == read(expected_file)
    if parses(text):
        assert parses(fixed), "the fix-all result must parse"
    # Converted code leaves only what needs a human (or what `# noqa` told us to keep, or a flow
    # whose optimizer has no rewrite: left torch as a whole, its findings without a fix).
    again = analyze(fixed, target)
    if "noqa" not in text:
        assert all(f.code in ("OPX201", "OPX202") or not f.fixable for f in again.findings), \
            diagnostics_text(fixed, target)
    assert apply(fixed, again.fix_all()) == fixed, "fix-all must be idempotent"


@pytest.mark.parametrize("path,target", CASE_TARGETS, ids=IDS)
def test_every_single_fix_parses(path, target):
    text = read(path)
    analysis = analyze(text, target)
    for finding in analysis.findings:
        for fix in (analysis.fix(finding.key), analysis.ignore_fix(finding.key)):
            if fix is None:
                continue
            fixed = apply(text, fix.edits)
            assert parses(fixed), f"{fix.title} on line {finding.span.start.line + 1} breaks the file"
            # Minimal: a single fix never rewrites the whole file.
            assert all(e.new_text.count("\n") < max(40, text.count("\n") // 2) for e in fix.edits)
            if "\r\n" in text:
                assert "\n" not in fixed.replace("\r\n", ""), "mixed line endings"
