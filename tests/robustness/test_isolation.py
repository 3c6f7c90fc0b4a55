"""The server never imports or runs the user's code, and never edits a document it was not asked
about; a 50,000-line document is served like any other.

The documents here would leave marker files if anything ran them: their top level writes one,
their `if __name__ == "__main__":` block writes one, and they import modules (`torch`, `optax`,
`recorder`, ...) that are shadowed, in the document's folder and on PYTHONPATH, by modules that
write a marker when imported. The project folder, where editors start the server, also holds
modules named like the standard library's that the server uses (`json.py`, `ast.py`, ...):
`python -m` puts the working directory first on sys.path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lsp_model import apply_text_edits, diagnostics_of_analysis, expected_diagnostics, summarize
from rpc import Rpc
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

FIX_ALL = "source.fixAll.switcheroo"
TIMEOUT = 120.0
SHADOWED = ("torch", "optax", "recorder", "jax", "switcheroo_optax", "numpy")
# Standard-library modules the server and the CLI import after start-up.
STDLIB = ("json", "ast", "tokenize", "difflib", "argparse", "dataclasses", "logging", "asyncio", "tomllib",
          "concurrent", "pathlib", "fnmatch", "bisect", "inspect", "threading", "uuid", "lsprotocol", "pygls",
          "cattrs", "attrs", "libcst")

DOCUMENT = '''\
"""A training script that must never be run by an editor's language server."""
import pathlib
import recorder
import torch
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR

pathlib.Path({marker!r}).write_text("top level ran")


def train(model, loader, params, grads):
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=10)
    for x, y in loader:
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return params


if __name__ == "__main__":
    pathlib.Path({marker!r}).write_text("main ran")
'''


@pytest.fixture
def trap(tmp_path):
    """A folder whose Python files, if anything imported or ran them, would leave markers."""
    markers = tmp_path / "markers"
    markers.mkdir()
    project = tmp_path / "project"         # the workspace folder: the server's working directory
    project.mkdir()
    extra = tmp_path / "extra"             # on PYTHONPATH
    extra.mkdir()
    for folder, names in ((project, SHADOWED + STDLIB), (extra, SHADOWED)):
        for name in names:
            (folder / f"{name}.py").write_text(
                f"open({str(markers / name)!r}, 'w').write('imported')\n")
    doc = project / "train.py"
    doc.write_text(DOCUMENT.format(marker=str(markers / "document")))
    return project, extra, markers, doc


def markers_left(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def test_the_server_never_imports_or_runs_the_document(trap):
    project, extra, markers, doc = trap
    text = doc.read_text()
    rpc = Rpc(env={"SWITCHEROO_DEBOUNCE_MS": "0", "PYTHONPATH": str(extra)}, cwd=str(project))
    try:
        rpc.initialize({"textDocument": {"publishDiagnostics": {"versionSupport": True}},
                        "workspace": {"workspaceEdit": {"documentChanges": True}, "configuration": True}},
                       root_uri=project.as_uri())
        uri = doc.as_uri()
        rpc.open(uri, text)
        diagnostics = rpc.published(uri, 1, findings=True).body["params"]["diagnostics"]
        assert diagnostics
        for d in diagnostics:
            rpc.call("textDocument/hover", {"textDocument": {"uri": uri}, "position": d["range"]["start"]})
            rpc.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": d["range"],
                                                 "context": {"diagnostics": [d]}})
        actions = rpc.call("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": [FIX_ALL]}})
        fixed = apply_text_edits(text, actions[0]["edit"]["documentChanges"][0]["edits"], "utf-16")
        rpc.change(uri, 2, [{"text": fixed}])        # the editor applies the fix-all
        rpc.published(uri, 2)
        mark = rpc.mark()
        rpc.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        rpc.published(uri, 2, since=mark)
        rpc.call("textDocument/diagnostic", {"textDocument": {"uri": uri}})
        assert rpc.alive()
    finally:
        rpc.shutdown()
    assert markers_left(markers) == [], "the server imported or ran the user's code"


def test_the_cli_never_imports_or_runs_the_file(trap):
    project, extra, markers, doc = trap
    env = {"PYTHONPATH": str(extra), "PATH": "/usr/bin:/bin"}
    for argv in (["check", str(project)], ["check", "--format", "json", "train.py"], ["fix", "--diff", str(doc)]):
        proc = subprocess.run([sys.executable, "-m", "switcheroo_lsp", *argv], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode in (0, 1), proc.stderr
        assert "train.py" in proc.stdout
    assert markers_left(markers) == [], "the CLI imported or ran the user's code"


@pytest.mark.parametrize("versioned", [True, False], ids=["documentChanges", "changes"])
def test_edits_only_ever_touch_the_document_asked_about(tmp_path, versioned):
    """Three open documents, two with the same text, a third whose URI differs only in its
    percent-encoding: every code action of each edits that one document, and the server never
    asks the client to apply an edit on its own (workspace/applyEdit)."""
    caps = {"textDocument": {"publishDiagnostics": {"versionSupport": True}},
            "workspace": {"workspaceEdit": {"documentChanges": versioned}, "applyEdit": True}}
    text = DOCUMENT.format(marker=str(tmp_path / "never"))
    uris = [(tmp_path / "a.py").as_uri(), (tmp_path / "b.py").as_uri(), (tmp_path / "a b.py").as_uri(),
            "untitled:Untitled-1"]
    texts = [text, text, text.replace("lr=0.1", "lr=0.2"), text.replace("\n", "\r\n")]
    rpc = Rpc(env={"SWITCHEROO_DEBOUNCE_MS": "0"})
    try:
        rpc.initialize(caps)
        for uri, body in zip(uris, texts):
            rpc.open(uri, body)
        for uri, body in zip(uris, texts):
            diagnostics = rpc.published(uri, 1, findings=True).body["params"]["diagnostics"]
            requests = [(d["range"], [d], None) for d in diagnostics] + [
                ({"start": {"line": 0, "character": 0}, "end": {"line": 40, "character": 0}}, diagnostics, None),
                ({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, [], [FIX_ALL])]
            seen = 0
            for rng, diags, only in requests:
                context = {"diagnostics": diags} | ({"only": only} if only else {})
                actions = rpc.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng,
                                                               "context": context}) or []
                for action in actions:
                    assert "command" not in action or action["command"] is None, action
                    edit = action.get("edit")
                    if not edit:
                        continue
                    seen += 1
                    if versioned:
                        assert [c["textDocument"]["uri"] for c in edit["documentChanges"]] == [uri]
                        assert all(c.get("kind") is None for c in edit["documentChanges"])   # no create/rename/delete
                        edits = edit["documentChanges"][0]["edits"]
                    else:
                        assert list(edit["changes"]) == [uri]
                        edits = edit["changes"][uri]
                    apply_text_edits(body, edits, "utf-16")      # in range, not overlapping
            assert seen >= len(diagnostics) // 2
        assert not [m for m in rpc.messages if m.body.get("method") == "workspace/applyEdit"]
    finally:
        rpc.shutdown()


def big_file(lines: int) -> str:
    """A 50,000-line module: mostly ordinary code, a training function every ~2,500 lines."""
    head = "import math\nimport torch\nimport torch.optim as optim\n\n"
    parts, count, k = [head], 4, 0
    while count < lines:
        if k % 50 == 0:
            block = (f"def train_{k}(model, loader, params, grads):\n"
                     f"    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)\n"
                     f"    for x, y in loader:\n"
                     f"        opt.zero_grad()\n"
                     f"        loss = model(x).sum()  # ĺöśś {k}\n"
                     f"        loss.backward()\n"
                     f"        opt.step()\n"
                     f"    return params\n\n\n")
        else:
            block = (f"def helper_{k}(values, scale={k}):\n"
                     f"    \"\"\"Helper {k}: scales and sums.\"\"\"\n"
                     f"    total = 0.0\n"
                     f"    for i, v in enumerate(values):\n"
                     f"        if i % 3 == 0:\n"
                     f"            total += math.sqrt(abs(v)) * scale\n"
                     f"        else:\n"
                     f"            total -= v / (i + 1)\n"
                     f"    table = {{'k': {k}, 'name': \"h{k}\", 'items': [i * i for i in range(5)]}}\n"
                     f"    return total, table\n\n\n")
        parts.append(block)
        count += block.count("\n")
        k += 1
    return "".join(parts)


def test_a_50000_line_document(tmp_path):
    text = big_file(50_000)
    assert text.count("\n") >= 50_000
    uri = (tmp_path / "big.py").as_uri()
    rpc = Rpc(env={"SWITCHEROO_DEBOUNCE_MS": "0"})
    try:
        rpc.initialize({"textDocument": {"publishDiagnostics": {"versionSupport": True}},
                        "workspace": {"workspaceEdit": {"documentChanges": True}}})
        rpc.open(uri, text)
        got = summarize(rpc.published(uri, 1, timeout=TIMEOUT).body["params"]["diagnostics"])
        assert got == expected_diagnostics(text, "utf-16")
        assert len(got) >= 3 * 20
        # Type in the middle, and past the end of the document.
        middle = text.count("\n") // 2
        edits = [{"range": {"start": {"line": middle, "character": 0}, "end": {"line": middle, "character": 0}},
                  "text": "# edited é😀\n"},
                 {"range": {"start": {"line": 60_000, "character": 3}, "end": {"line": 60_001, "character": 0}},
                  "text": "\nprint('end')\n"}]
        rpc.change(uri, 2, edits)
        lines = text.split("\n")
        text = "\n".join(lines[:middle] + ["# edited é😀"] + lines[middle:]) + "\nprint('end')\n"
        got = summarize(rpc.published(uri, 2, timeout=TIMEOUT).body["params"]["diagnostics"])
        analysis = analyze(text)
        assert got == diagnostics_of_analysis(text, analysis, "utf-16")
        # Hover and code actions are answered from the analysis.
        step = next(d for d in rpc.all_published(uri)[-1]["diagnostics"] if d["code"] == "OPX102")
        assert rpc.call("textDocument/hover", {"textDocument": {"uri": uri}, "position": step["range"]["start"]},
                        TIMEOUT) is not None
        actions = rpc.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": step["range"],
                                                       "context": {"diagnostics": [step]}}, TIMEOUT)
        assert actions
        fix_all = rpc.call("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": [FIX_ALL]}}, TIMEOUT)
        fixed = apply_text_edits(text, fix_all[0]["edit"]["documentChanges"][0]["edits"], "utf-16")
        assert fixed == apply(text, analysis.fix_all())
        mark = rpc.mark()
        rpc.close(uri)
        assert rpc.published(uri, None, since=mark, timeout=TIMEOUT).body["params"]["diagnostics"] == []
        assert rpc.alive()
    finally:
        rpc.shutdown()
