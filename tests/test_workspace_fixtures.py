"""Multi-file fixtures: tests/fixtures/workspace/NAME/ is a small project; NAME.diagnostics.txt
beside it lists every file's findings (`path:line:col CODE`), and NAME.expected/ holds the files
as fix-all leaves them (files it does not change are not there). Both the core's project
analysis and the CLI must give exactly these; SWITCHEROO_UPDATE_FIXTURES=1 rewrites them.
For the flax-nnx target: NAME.nnx.expected/, and NAME.nnx.diagnostics.txt where its findings differ.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from switcheroo_lsp.engine import analyze_project, apply

ROOT = Path(__file__).parent / "fixtures" / "workspace"
PROJECTS = sorted(p for p in ROOT.iterdir() if p.is_dir() and not p.name.endswith(".expected"))
UPDATE = os.environ.get("SWITCHEROO_UPDATE_FIXTURES") == "1"
TARGETS = {"optax": "", "flax-nnx": ".nnx"}     # target -> the infix of its expected files
PROJECT_TARGETS = [(p, t) for p in PROJECTS for t in TARGETS]
IDS = [p.name + ("" if t == "optax" else f"@{t}") for p, t in PROJECT_TARGETS]


def sources(project: Path) -> dict[str, str]:
    return {str(p): p.read_text() for p in sorted(project.rglob("*.py"))}


def rel(project: Path, path: str) -> str:
    return str(Path(path).relative_to(project))


def diagnostics(project: Path, target: str = "optax") -> str:
    lines = []
    for path, analysis in sorted(analyze_project(sources(project), target, roots=[project]).items()):
        for f in analysis.findings:
            lines.append(f"{rel(project, path)}:{f.span.start.line + 1}:{f.span.start.col + 1} {f.code}"
                         f"{'' if f.fixable else ' (no fix)'}\n")
    return "".join(lines)


@pytest.mark.parametrize("project,target", PROJECT_TARGETS, ids=IDS)
def test_project_diagnostics(project, target):
    optax = project.with_name(project.name + ".diagnostics.txt")
    own = project.with_name(project.name + TARGETS[target] + ".diagnostics.txt")
    actual = diagnostics(project, target)
    if UPDATE:
        if target == "optax" or actual != optax.read_text():
            own.write_text(actual)
        else:
            own.unlink(missing_ok=True)     # only where the findings differ from the optax target's
    assert actual == (own if own.exists() else optax).read_text()


@pytest.mark.parametrize("project,target", PROJECT_TARGETS, ids=IDS)
def test_project_fix_all(project, target):
    expected_dir = project.with_name(project.name + TARGETS[target] + ".expected")
    texts = sources(project)
    fixed = {path: apply(text, analysis.fix_all())
             for (path, analysis), text in zip(sorted(analyze_project(texts, target, roots=[project]).items()),
                                               [texts[p] for p in sorted(texts)])}
    changed = {rel(project, p): t for p, t in fixed.items() if t != texts[p]}
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for name, text in changed.items():
            (expected_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / name).write_text(text)
    want = {str(p.relative_to(expected_dir)): p.read_text() for p in expected_dir.rglob("*.py")} \
        if expected_dir.exists() else {}
    assert changed == want
    for text in changed.values():
        ast.parse(text)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_cli_fixes_the_whole_flow_from_one_file(project, tmp_path):
    """`fix` on the file that builds the optimizer fixes the files that step it too."""
    copy = tmp_path / project.name
    shutil.copytree(project, copy)
    expected_dir = project.with_name(project.name + ".expected")
    want = {str(p.relative_to(expected_dir)) for p in expected_dir.rglob("*.py")} if expected_dir.exists() else set()
    if not want:
        pytest.skip("nothing to fix")
    builder = next(n for n in sorted(want) if "torch.optim" in (project / n).read_text() or "optim." in (
        project / n).read_text())
    proc = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "fix", str(copy / builder)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in want:
        assert (copy / name).read_text() == (expected_dir / name).read_text(), name
