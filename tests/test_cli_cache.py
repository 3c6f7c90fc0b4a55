"""`check` and `fix` share the project index's cache: a file whose text, target and neighbours
did not change is not analysed again (frontends/check_cache.py). Counted by wrapping the CLI's
`analyze`, never timed."""

import json
import shutil
from pathlib import Path

import pytest

from switcheroo_lsp.analysis import cache
from switcheroo_lsp.frontends import cli

FIXTURE = Path(__file__).parent / "fixtures" / "workspace" / "withheld"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = tmp_path / "p"
    shutil.copytree(FIXTURE, root)
    return root.resolve()


@pytest.fixture
def analysed(monkeypatch):
    """The files the CLI analyses (by name), run after run."""
    calls: list[str] = []
    real = cli.analyze

    def counting(*args, **kwargs):
        calls.append(Path(kwargs["path"]).name)
        return real(*args, **kwargs)
    monkeypatch.setattr(cli, "analyze", counting)
    return calls


def check(capsys, *args) -> tuple[int, str]:
    code = cli.main(["check", "--format", "json", *args])
    return code, capsys.readouterr().out


def test_a_second_check_of_an_unchanged_tree_analyses_nothing(project, analysed, capsys):
    first = check(capsys, str(project))
    assert sorted(analysed) == ["helpers.py", "other.py", "train.py"]
    analysed.clear()
    assert check(capsys, str(project)) == first
    assert analysed == []
    assert cache.path_for([str(project)], "index").exists() and cache.path_for([str(project)], "results").exists()


def test_a_change_reanalyses_the_file_and_the_files_traced_with_it(project, analysed, capsys):
    check(capsys, str(project))
    analysed.clear()
    # other.py imports train.py: both are traced with other.py; helpers.py is not.
    (project / "other.py").write_text((project / "other.py").read_text() + "\nprint('changed')\n")
    check(capsys, str(project))
    assert sorted(analysed) == ["other.py", "train.py"]
    analysed.clear()
    # Another target is another analysis; other settings only filter what was found.
    check(capsys, "--target", "flax-nnx", str(project))
    assert sorted(analysed) == ["helpers.py", "other.py", "train.py"]
    analysed.clear()
    (project / "pyproject.toml").write_text('[tool.switcheroo]\nselect = ["OPX102"]\n')
    _, out = check(capsys, str(project))
    assert analysed == [] and {r["code"] for r in json.loads(out)} == {"OPX102"}


def test_fix_analyses_only_the_files_it_may_change(project, analysed, capsys):
    check(capsys, str(project))
    analysed.clear()
    assert cli.main(["fix", "--diff", str(project)]) == 1
    out = capsys.readouterr().out
    assert "+++ b/" in out
    # other.py has nothing to fix: its findings (none) come from the cache.
    assert sorted(set(analysed)) == ["helpers.py", "train.py"]


@pytest.mark.parametrize("damage", [b"garbage", b'{"tool": "switcheroo-lsp results"}', b"{}"])
def test_a_corrupt_results_cache_is_discarded(project, analysed, capsys, damage):
    first = check(capsys, str(project))
    path = cache.path_for([str(project)], "results")
    path.write_bytes(damage)
    analysed.clear()
    assert check(capsys, str(project)) == first
    assert sorted(analysed) == ["helpers.py", "other.py", "train.py"]
    assert json.loads(path.read_text())["tool"] == "switcheroo-lsp results"


def test_a_results_entry_of_the_wrong_shape_is_not_trusted(project, analysed, capsys):
    first = check(capsys, str(project))
    path = cache.path_for([str(project)], "results")
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        for row in entry["rows"]:
            row["line"] = "not a number"
    path.write_text(json.dumps(data))
    analysed.clear()
    assert check(capsys, str(project)) == first
    assert sorted(analysed) == ["helpers.py", "train.py"]      # other.py has no rows to damage


def test_a_remembered_row_names_the_file_as_this_run_was_given_it(project, analysed, capsys, monkeypatch):
    # The language server remembers findings in the same file, under absolute paths; a check
    # run from the project's folder names the files as it was given them.
    first = json.loads(check(capsys, str(project))[1])
    assert first and all(Path(r["path"]).is_absolute() for r in first)
    monkeypatch.chdir(project)
    analysed.clear()
    again = json.loads(check(capsys, ".")[1])
    assert analysed == []
    assert not any(Path(r["path"]).is_absolute() for r in again)
    assert [{**r, "path": str(project / r["path"])} for r in again] == first


def test_a_long_check_shows_its_progress_on_a_terminal_only(tmp_path, monkeypatch):
    import os
    import pty
    import subprocess
    import sys
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = tmp_path / "tree"
    root.mkdir()
    for k in range(cli.PARALLEL_THRESHOLD + 2):
        (root / f"m{k}.py").write_text(f"import torch\nopt = torch.optim.SGD([], lr=0.{k + 1})\n")
    command = [sys.executable, "-m", "switcheroo_lsp", "check", str(root)]
    main, terminal = pty.openpty()
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=terminal, timeout=300)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    total = cli.PARALLEL_THRESHOLD + 2
    assert f"switcheroo-lsp: {total}/{total} files".encode() in shown and shown.endswith(b"\r\x1b[K")
    monkeypatch.setenv(cache.ENV, str(tmp_path / "another cache"))      # analysed again, into a pipe
    piped = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert piped.returncode == proc.returncode == 1 and piped.stdout == proc.stdout.decode()
    assert "files" not in piped.stderr
