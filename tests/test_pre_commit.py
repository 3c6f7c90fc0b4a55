"""The pre-commit hooks, run by pre-commit itself on a fixture repository.

`pre-commit try-repo` installs this checkout into a hook environment as a user's config would
(`language: python`: pip installs the repository from its local path, so no clone from the
network), then runs the hooks on the fixture's files.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

TRAIN = """import torch

params = [torch.zeros(3, requires_grad=True)]
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
"""
CLEAN = "import torch\n\nx = torch.zeros(3)\n"


def git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=True, timeout=60)


@pytest.fixture
def fixture_repo(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "train.py").write_text(TRAIN)
    (repo / "clean.py").write_text(CLEAN)
    (repo / "notes.txt").write_text("opt = torch.optim.SGD(params, lr=0.1)\n")   # not Python: never looked at
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "fixture", cwd=repo)
    return repo


@pytest.fixture
def env(tmp_path):
    # Its own store, so that the hook environment is built from this checkout, not a cached one.
    return {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PRE_COMMIT_COLOR": "never"}


def try_repo(hook: str, repo: Path, env: dict) -> subprocess.CompletedProcess:
    if subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip(f"{ROOT} is not a git work tree: pre-commit try-repo needs one")
    return subprocess.run([*PRE_COMMIT, "try-repo", str(ROOT), hook, "--all-files"], cwd=repo, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)


def test_check_fails_then_fix_rewrites_then_check_passes(fixture_repo, env):
    check = try_repo("switcheroo-lsp", fixture_repo, env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert re.search(r"switcheroo-lsp check\.+Failed", check.stdout)
    assert "train.py:4:7: OPX101 torch.optim.SGD → optax.sgd(learning_rate=0.1, momentum=0.9)" in check.stdout
    assert "clean.py" not in check.stdout and "notes.txt" not in check.stdout

    fix = try_repo("switcheroo-lsp-fix", fixture_repo, env)
    assert fix.returncode == 1, fix.stdout + fix.stderr
    assert "files were modified by this hook" in fix.stdout
    fixed = (fixture_repo / "train.py").read_text()
    assert "opt = optax.sgd(learning_rate=0.1, momentum=0.9)\nopt_state = opt.init(params)\n" in fixed
    assert "import optax\n" in fixed
    assert (fixture_repo / "clean.py").read_text() == CLEAN
    assert git("status", "--porcelain", cwd=fixture_repo).stdout.split() == ["M", "train.py"]

    again = try_repo("switcheroo-lsp", fixture_repo, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"switcheroo-lsp check\.+Passed", again.stdout)


def test_manifest_is_valid_and_names_both_hooks():
    r = subprocess.run([*PRE_COMMIT, "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"switcheroo-lsp", "switcheroo-lsp-fix"}
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["types_or"] == ["python", "jupyter"]
    assert hooks["switcheroo-lsp"]["entry"] == "switcheroo-lsp check"
    assert hooks["switcheroo-lsp-fix"]["entry"] == "switcheroo-lsp fix"


def test_readme_snippet_is_a_valid_config_for_these_hooks(tmp_path):
    readme = (ROOT / "README.md").read_text()
    snippets = [s for s in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "switcheroo-lsp-fix" in s]
    assert len(snippets) == 1, "the README shows one .pre-commit-config.yaml snippet"
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(snippets[0])
    r = subprocess.run([*PRE_COMMIT, "validate-config", str(config)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    (repo,) = yaml.safe_load(snippets[0])["repos"]
    assert repo["repo"] == "https://github.com/switcheroo-lsp/switcheroo-lsp"
    hook_ids = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in repo["hooks"]} <= hook_ids

