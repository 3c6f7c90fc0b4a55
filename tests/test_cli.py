"""The command line, run as a user runs it: a subprocess on real files."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

TRAIN = """import torch
opt = torch.optim.Adam([], lr=0.01)
for b in data:
    opt.zero_grad()
    loss(b).backward()
    opt.step()
"""


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "switcheroo_lsp", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("switcheroo-lsp ")


def test_usage_error_exits_2():
    assert run("check").returncode == 2
    assert run("frobnicate").returncode == 2


def test_missing_path_exits_2(tmp_path):
    r = run("check", str(tmp_path / "nope.py"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_check_text_format(tmp_path):
    f = tmp_path / "train.py"
    f.write_text(TRAIN)
    r = run("check", str(f))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{f}:2:7: OPX101 torch.optim.Adam → optax.adam(learning_rate=0.01)")
    assert [l.split(": ")[1].split()[0] for l in lines] == ["OPX101", "OPX203", "OPX103", "OPX102", "OPX203"]


def test_check_json_format(tmp_path):
    f = tmp_path / "train.py"
    line = 'x = "é😀"; import torch; opt = torch.optim.SGD([], lr=0.1)'
    f.write_text(line + "\n")
    rows = json.loads(run("check", "--format", "json", str(f)).stdout)
    # 1-based columns counted in characters (the emoji is one), end exclusive.
    start = line.index("torch.optim") + 1
    assert rows[0] == {
        "path": str(f), "line": 1, "column": start, "end_line": 1, "end_column": len(line) + 1,
        "code": "OPX101", "severity": "information", "message": "torch.optim.SGD → optax.sgd(learning_rate=0.1)",
        "fixable": True}
    # Its init line reads `params`, which nothing defines.
    assert [(r["code"], r["column"]) for r in rows[1:]] == [("OPX203", start)]
    assert start == 31


def test_clean_file_exits_0(tmp_path):
    f = tmp_path / "ok.py"
    f.write_text("import torch\nx = torch.zeros(3)\n")
    r = run("check", str(f))
    assert (r.returncode, r.stdout) == (0, "")


def test_syntax_error_is_reported_and_others_still_run(tmp_path):
    (tmp_path / "a_broken.py").write_text("import torch\nopt = torch.optim.SGD([], lr=0.1\n")
    (tmp_path / "b_good.py").write_text(TRAIN)
    r = run("check", str(tmp_path))
    # As Python says it: where the parenthesis opens, not where libcst ran out of tokens.
    assert f"{tmp_path / 'a_broken.py'}: syntax error: '(' was never closed (line 2)" in r.stderr
    assert "b_good.py:2:7: OPX101" in r.stdout
    assert r.returncode == 1


def test_fix_exits_2_naming_the_files_it_could_not_read_or_parse(tmp_path):
    broken = tmp_path / "a_broken.py"
    broken.write_text("import torch\nopt = torch.optim.SGD([], lr=0.1\n")
    unreadable = tmp_path / "b_latin1.py"
    unreadable.write_bytes(b"import torch\nname = '\xe9'\n")      # not UTF-8, and no coding cookie
    good = tmp_path / "c_good.py"
    good.write_text(TRAIN)
    r = run("fix", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "optax.adam(" in good.read_text(), "the other files are still fixed"
    assert f"{broken}: syntax error: '(' was never closed (line 2)" in r.stderr
    assert f"{unreadable}: cannot read" in r.stderr
    assert f"skipped 2 files (not read, or not parsed): {broken}, {unreadable}" in r.stderr
    # --diff too: a pre-commit hook or a CI job never passes on files it did not look at.
    assert run("fix", "--diff", str(broken)).returncode == 2
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.py").write_text("import torch\n")
    assert run("fix", str(clean)).returncode == 0


def test_diff_of_a_file_without_a_final_line_break_says_so(tmp_path):
    (tmp_path / "a.py").write_text(TRAIN.rstrip("\n"))
    (tmp_path / "b.py").write_text(TRAIN)
    out = run("fix", "--diff", str(tmp_path)).stdout
    assert out.count("\\ No newline at end of file\n") == 2          # a.py's old and new last lines
    assert f"\n--- a/{tmp_path / 'b.py'}\n" in out, "the next file's diff starts on a line of its own"
    if shutil.which("patch"):       # and `patch` takes it as it is
        applied = subprocess.run(["patch", "-p0", "--dry-run", "-d", "/"], input=out.replace("--- a/", "--- ")
                                 .replace("+++ b/", "+++ "), capture_output=True, text=True)
        assert applied.returncode == 0, applied.stdout + applied.stderr


def test_fix_in_place_and_diff(tmp_path):
    f = tmp_path / "train.py"
    f.write_text(TRAIN)
    d = run("fix", "--diff", str(f))
    assert d.returncode == 1 and "+opt = optax.adam(learning_rate=0.01)" in d.stdout
    assert f.read_text() == TRAIN, "--diff writes nothing"
    r = run("fix", str(f))
    assert r.returncode == 0
    fixed = f.read_text()
    ast.parse(fixed)
    assert "opt_state = opt.init(params)" in fixed and "zero_grad" not in fixed
    assert run("fix", "--diff", str(f)).stdout == "", "fix is idempotent"


def test_fix_keeps_crlf(tmp_path):
    f = tmp_path / "train.py"
    f.write_bytes(TRAIN.replace("\n", "\r\n").encode())
    assert run("fix", str(f)).returncode == 0
    data = f.read_bytes()
    assert b"optax.adam" in data and data.count(b"\n") == data.count(b"\r\n")


def test_pyproject_select_ignore_exclude(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switcheroo]\nignore = ["OPX203"]\nexclude = ["build/", "skip_*.py"]\n'
        'severity = {OPX101 = "error"}\n')
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text(TRAIN)
    (tmp_path / "skip_me.py").write_text(TRAIN)
    (tmp_path / "train.py").write_text(TRAIN)
    rows = json.loads(run("check", "--format", "json", str(tmp_path)).stdout)
    assert {Path(r["path"]).name for r in rows} == {"train.py"}
    assert "OPX203" not in {r["code"] for r in rows}
    assert [r["severity"] for r in rows if r["code"] == "OPX101"] == ["error"]


def test_bad_pyproject_setting_is_a_warning_not_a_crash(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.switcheroo]\nselect = "OPX1"\nseverity = {OPX101 = "loud"}\n')
    (tmp_path / "train.py").write_text(TRAIN)
    r = run("check", str(tmp_path))
    assert "severity of OPX101" in r.stderr
    assert "OPX101" in r.stdout and "OPX203" not in r.stdout


def test_examples_check_and_fix_diff():
    r = run("check", str(EXAMPLES))
    assert r.returncode == 1
    # The RL example's env.step() is the environment, never flagged.
    rl = (EXAMPLES / "rl.py").read_text().splitlines()
    env_lines = {i + 1 for i, l in enumerate(rl) if "env.step(" in l}
    flagged = {int(l.split(":")[1]) for l in r.stdout.splitlines() if l.startswith(str(EXAMPLES / "rl.py"))}
    assert env_lines and not env_lines & flagged
    d = run("fix", "--diff", str(EXAMPLES))
    assert d.returncode == 1 and "+import optax" in d.stdout


@pytest.mark.parametrize("name", ["mnist.py", "gan.py", "trainer.py", "rl.py"])
def test_examples_fix_result_parses_and_only_manual_work_remains(tmp_path, name):
    f = tmp_path / name
    f.write_text((EXAMPLES / name).read_text())
    assert run("fix", str(f)).returncode == 0
    ast.parse(f.read_text())
    rows = json.loads(run("check", "--format", "json", str(f)).stdout)
    assert {r["code"] for r in rows} <= {"OPX201", "OPX202"}


NNX_TRAIN = """import torch
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for b in data:
    opt.zero_grad()
    loss(b).backward()
    opt.step()
"""


def test_target_flag_on_check_and_fix(tmp_path):
    f = tmp_path / "train.py"
    f.write_text(NNX_TRAIN)
    r = run("check", "--target", "flax-nnx", str(f))
    assert r.returncode == 1
    assert f"{f}:3:7: OPX101 torch.optim.SGD → nnx.Optimizer(model, optax.sgd(learning_rate=0.1), wrt=nnx.Param)" \
        in r.stdout
    assert f"{f}:7:5: OPX102 opt.step() → opt.update(model, grads)" in r.stdout
    r = run("fix", "--target", "flax-nnx", str(f))
    assert r.returncode == 0
    fixed = f.read_text()
    ast.parse(fixed)
    assert "from flax import nnx\n" in fixed and "opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1), " \
        "wrt=nnx.Param)\n" in fixed and "    opt.update(model, grads)\n" in fixed
    assert run("check", "--target", "jax", str(f)).returncode == 2


def test_target_from_pyproject_and_the_flag_overrides_it(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.switcheroo]\ntarget = "flax-nnx"\n')
    f = tmp_path / "train.py"
    f.write_text(NNX_TRAIN)
    assert "opt.step() → opt.update(model, grads)" in run("check", str(f)).stdout
    out = run("fix", "--diff", "--target", "optax", str(f)).stdout
    assert "+updates, opt_state = opt.update(grads, opt_state, params)" in out.replace("    ", "") and "nnx" not in out
