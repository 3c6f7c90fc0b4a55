"""The command line on .ipynb files, run as a user runs it: a subprocess on real files."""

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "switcheroo_lsp", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, encoding="utf-8")


def copy(tmp_path: Path, name: str, as_name: str | None = None) -> Path:
    target = tmp_path / (as_name or name)
    target.write_bytes((FIXTURES / name).read_bytes())
    return target


def test_check_text_format_names_the_cell(tmp_path):
    nb = copy(tmp_path, "across_cells.ipynb")
    r = run("check", str(nb))
    assert r.returncode == 1, r.stderr
    # Messages are the core's; where they point is the notebook's.
    lines = r.stdout.splitlines()
    assert [l.split(": ", 1)[0] for l in lines] == [f"{nb}:cell 5:1:13", f"{nb}:cell 7:3:9", f"{nb}:cell 7:7:9"]
    assert [l.split(": ", 1)[1].split()[0] for l in lines] == ["OPX101", "OPX103", "OPX102"]
    assert lines[0].split(": ", 1)[1].startswith("OPX101 torch.optim.Adam → optax.chain(optax.add_decayed_weights(1e-4)")


def test_check_json_rows_add_the_cell(tmp_path):
    nb = copy(tmp_path, "crlf_non_ascii.ipynb")
    rows = json.loads(run("check", "--format", "json", str(nb)).stdout)
    first = rows[0]
    assert list(first) == ["path", "cell", "line", "column", "end_line", "end_column", "code", "severity",
                           "message", "fixable"]
    # Cell 3 (after a markdown cell and a code cell), its first line; columns in characters.
    line = 'étiquette = "ñ€😀"; opt = torch.optim.SGD(modèle.parameters(), lr=0.1)'
    assert (first["cell"], first["line"], first["column"]) == (3, 1, line.index("torch.optim") + 1)
    assert first["end_column"] == len(line) + 1


def test_folder_walk_includes_notebooks(tmp_path):
    copy(tmp_path, "gan.ipynb")
    (tmp_path / "train.py").write_text("import torch\nopt = torch.optim.SGD([], lr=0.1)\n")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    copy(tmp_path, "gan.ipynb", ".ipynb_checkpoints/gan-checkpoint.ipynb")
    rows = json.loads(run("check", "--format", "json", str(tmp_path)).stdout)
    assert {Path(r["path"]).name for r in rows} == {"gan.ipynb", "train.py"}
    assert all("cell" in r for r in rows if r["path"].endswith(".ipynb"))
    assert not any("cell" in r for r in rows if r["path"].endswith(".py"))


def test_exclude_applies_to_notebooks(tmp_path):
    copy(tmp_path, "gan.ipynb")
    (tmp_path / "pyproject.toml").write_text('[tool.switcheroo]\nexclude = ["*.ipynb"]\n')
    r = run("check", str(tmp_path))
    assert r.returncode == 0 and r.stdout == "", r.stdout


def test_fix_rewrites_in_place_and_diff_is_per_cell(tmp_path):
    nb = copy(tmp_path, "across_cells.ipynb")
    before = nb.read_bytes()
    r = run("fix", "--diff", str(nb))
    assert r.returncode == 1
    assert nb.read_bytes() == before, "--diff writes nothing"
    headers = [l for l in r.stdout.splitlines() if l.startswith(("---", "+++"))]
    assert headers == [f"--- a/{nb}:cell 2", f"+++ b/{nb}:cell 2", f"--- a/{nb}:cell 5", f"+++ b/{nb}:cell 5",
                       f"--- a/{nb}:cell 7", f"+++ b/{nb}:cell 7"]
    assert "\\ No newline at end of cell" in r.stdout
    r = run("fix", str(nb))
    assert r.returncode == 0 and "fixed 1 file" in r.stderr
    assert nb.read_bytes() == (FIXTURES / "across_cells.expected.ipynb").read_bytes()


def test_invalid_json_is_reported_and_the_file_kept(tmp_path):
    nb = tmp_path / "broken.ipynb"
    nb.write_text('{"cells": [{"cell_type": "code", "source": ["import torch\\n"]}, ], "nbformat": 4}')
    before = nb.read_bytes()
    good = copy(tmp_path, "gan.ipynb")
    r = run("check", str(nb), str(good))
    assert r.returncode == 1
    assert f"{nb}: not a notebook: invalid JSON:" in r.stderr and "(line 1, column" in r.stderr
    assert "gan.ipynb:cell 2:3:9: OPX101" in r.stdout, "the other file still runs"
    r = run("fix", str(nb))
    assert "invalid JSON" in r.stderr
    assert nb.read_bytes() == before


def test_other_nbformat_versions_say_so(tmp_path):
    nb = tmp_path / "old.ipynb"
    nb.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}))
    r = run("check", str(nb))
    assert r.returncode == 1 and "nbformat 3 is not supported, only 4" in r.stderr


def test_a_cell_that_does_not_parse_blocks_the_fix_not_the_check(tmp_path):
    nb = copy(tmp_path, "syntax_error.ipynb")
    before = nb.read_bytes()
    r = run("check", str(nb))
    assert f"{nb}:cell 2: syntax error: invalid syntax (line 1)" in r.stderr
    found = {(l.split(":cell ")[1].split(":")[0], l.split(": ")[1].split()[0]) for l in r.stdout.splitlines()}
    assert {("1", "OPX101"), ("3", "OPX103")} <= found and not any(cell == "2" for cell, _ in found)
    r = run("fix", str(nb))
    assert "not fixed: a code cell does not parse" in r.stderr
    assert r.returncode == 2 and f"skipped 1 file (not read, or not parsed): {nb}" in r.stderr
    assert nb.read_bytes() == before


def test_ci_formats_name_the_cell(tmp_path):
    nb = copy(tmp_path, "across_cells.ipynb")
    github = run("check", "--output-format", "github", str(nb)).stdout.splitlines()
    assert github[0].startswith(f"::warning file={nb},title=OPX101::cell 5, line 1, column 13: torch.optim.Adam → ")
    sarif = json.loads(run("check", "--output-format", "sarif", str(nb)).stdout)
    first = sarif["runs"][0]["results"][0]
    assert first["message"]["text"].startswith("cell 5, line 1, column 13: ")
    assert "region" not in first["locations"][0]["physicalLocation"], "a cell's lines are not the file's"


def test_target_flax_nnx_on_a_notebook(tmp_path):
    nb = copy(tmp_path, "across_cells.ipynb")
    r = run("check", "--target", "flax-nnx", str(nb))
    assert f"{nb}:cell 7:7:9: OPX102 optimizer.step() → optimizer.update(model, grads)" in r.stdout
    assert run("fix", "--target", "flax-nnx", str(nb)).returncode == 0
    cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"]]
    assert cells[1].endswith("import optax\nfrom flax import nnx")      # once, in the imports' cell
    assert cells[4].startswith("optimizer = nnx.Optimizer(\n    model,\n")
    assert "        optimizer.update(model, grads)\n" in cells[6] and "zero_grad" not in cells[6]
    assert sum(c.count("from flax import nnx") for c in cells) == 1
