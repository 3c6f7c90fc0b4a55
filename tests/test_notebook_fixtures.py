"""Notebook fixtures: tests/fixtures/**/NAME.ipynb beside NAME.expected.ipynb (what `fix` makes
of the file, byte for byte; the same bytes when nothing is fixed) and NAME.diagnostics.txt
(`cell N line:col CODE`, 1-based, line within the cell; `error: ...` and `note: ...` lines for
what `check` reports on stderr). Adding a case is adding files.

The flax-nnx target's `fix` is NAME.nnx.expected.ipynb.

SWITCHEROO_UPDATE_FIXTURES=1 rewrites the expected files from the current behaviour; review
the diff before committing it.
"""

import ast
import json
import os
from pathlib import Path

import pytest

from switcheroo_lsp.frontends.config import Settings
from switcheroo_lsp.notebooks import ipynb
from switcheroo_lsp.frontends.notebook_files import process
from switcheroo_lsp.notebooks.ipython import mask
from switcheroo_lsp.notebooks.program import Cell, FixError, analyze_cells
from switcheroo_lsp.engine import apply

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p for p in FIXTURES.rglob("*.ipynb") if not p.name.endswith(".expected.ipynb"))
NNX = Settings(target="flax-nnx")
UPDATE = os.environ.get("SWITCHEROO_UPDATE_FIXTURES") == "1"


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def case_id(p: Path) -> str:
    return str(p.relative_to(FIXTURES).with_suffix(""))


def report(path: Path, text: str) -> str:
    result = process(path.name, text, Settings(), fixing=False)
    out = [f"cell {r['cell']} {r['line']}:{r['column']} {r['code']}\n" for r in result.rows]
    out += [f"error: {e}\n" for e in result.errors] + [f"note: {n}\n" for n in result.notes]
    return "".join(out)


def fixed(path: Path, text: str, settings: Settings = Settings()) -> str:
    result = process(path.name, text, settings, fixing=True)
    return result.new_text if result.new_text is not None else text


def code_cells_parse(text: str) -> bool:
    for cell in ipynb.parse(text).code_cells:
        masked = mask(cell.source)
        if masked.runs:
            try:
                ast.parse(masked.text)
            except SyntaxError:
                return False
    return True


def outside_sources(text: str) -> list[str]:
    """The file's text between the cells' source values."""
    nb = ipynb.parse(text)
    pieces, cursor = [], 0
    for span in nb._sources:
        if span is not None:
            pieces.append(nb.text[cursor:span[0]])
            cursor = span[1]
    return pieces + [nb.text[cursor:]]


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_diagnostics(path):
    expected_file = path.with_name(path.stem + ".diagnostics.txt")
    actual = report(path, read(path))
    if UPDATE:
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_fix(path):
    text = read(path)
    expected_file = path.with_name(path.stem + ".expected.ipynb")
    result = fixed(path, text)
    if UPDATE:
        expected_file.write_bytes(result.encode("utf-8"))
    assert result == read(expected_file)


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_fixed_notebook_parses_and_only_manual_work_remains(path):
    text = read(path)
    after = fixed(path, text)
    if code_cells_parse(text):
        assert code_cells_parse(after), "every fixed code cell must parse (magics masked)"
    again = process(path.name, after, Settings(), fixing=False)
    if not again.errors:
        assert {r["code"] for r in again.rows} <= {"OPX201", "OPX202"}, report(path, after)
    assert fixed(path, after) == after, "fix must be idempotent"


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_fix_flax_nnx(path):
    text = read(path)
    expected_file = path.with_name(path.stem + ".nnx.expected.ipynb")
    result = fixed(path, text, NNX)
    if UPDATE:
        expected_file.write_bytes(result.encode("utf-8"))
    assert result == read(expected_file)
    if code_cells_parse(text):
        assert code_cells_parse(result)
    assert outside_sources(result) == outside_sources(text)
    assert fixed(path, result, NNX) == result, "fix must be idempotent"


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_fix_changes_nothing_but_sources(path):
    text = read(path)
    after = fixed(path, text)
    # Byte for byte outside the rewritten source values: outputs, ids, metadata, layout.
    assert outside_sources(after) == outside_sources(text)
    before_data, after_data = json.loads(text), json.loads(after)
    for b, a in zip(before_data["cells"], after_data["cells"]):
        assert type(a["source"]) is type(b["source"]), "the source keeps its list-of-lines or string form"
        if isinstance(a["source"], list):
            assert all(line.endswith("\n") for line in a["source"][:-1])
        b["source"] = a["source"]
    assert json.dumps(after_data) == json.dumps(before_data)     # key order included


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_every_single_fix_goes_back_into_the_cells(path):
    nb = ipynb.parse(read(path))
    if nb.language != "python":
        pytest.skip("not a Python notebook")
    cells = [Cell(str(c.index), c.number, c.source) for c in nb.code_cells]
    program, analysis = analyze_cells(cells)
    sources = {c.key: c.source for c in cells}
    for finding in analysis.findings:
        for fix in (analysis.fix(finding.key), analysis.ignore_fix(finding.key)):
            if fix is None:
                continue
            try:
                changed = program.new_sources(apply(program.text, fix.edits))
            except FixError as e:
                pytest.fail(f"{fix.title} on {finding.code}: {e}")
            assert changed, f"{fix.title} changes no cell"
            for key, source in changed.items():
                assert source != sources[key]
                assert mask(source).runs
                ast.parse(mask(source).text)
