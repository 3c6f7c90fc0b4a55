"""The CLI, the server and the core agree on every generated program's findings.

Each example writes a handful of generated programs to files, runs `switcheroo-lsp check
--format json` once over them, opens each in the running server (a real subprocess over
stdio), and compares both with a fresh `analyze()`: same codes, positions (the CLI's 1-based
code-point columns, the server's UTF-16 columns, converted here independently), severities
and messages. Each diagnostic's quick fix from the server, applied by this client in UTF-16,
gives the text the core's fix gives, and its hover answers.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_settings import fuzz
from lsp_model import apply_text_edits, expected_diagnostics, summarize
from programs import programs
from rpc import Rpc
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

_names = itertools.count()


@pytest.fixture(scope="module")
def server():
    rpc = Rpc(env={"SWITCHEROO_DEBOUNCE_MS": "0"})
    rpc.initialize({"textDocument": {"publishDiagnostics": {"versionSupport": True}},
                    "workspace": {"workspaceEdit": {"documentChanges": True}}})
    yield rpc
    assert rpc.alive(), f"the server exited: {rpc.stderr[-20:]}"
    rpc.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("agreement")


def cli_rows(paths: list) -> dict[str, list[tuple]]:
    proc = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "check", "--format", "json", *map(str, paths)],
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    rows: dict[str, list[tuple]] = {str(p): [] for p in paths}
    for r in json.loads(proc.stdout):
        rows[r["path"]].append((r["code"], r["line"], r["column"], r["end_line"], r["end_column"],
                                r["severity"], r["message"], r["fixable"]))
    return {k: sorted(v) for k, v in rows.items()}


def core_rows(text: str) -> list[tuple]:
    return sorted((f.code, f.span.start.line + 1, f.span.start.col + 1, f.span.end.line + 1, f.span.end.col + 1,
                   f.severity, f.message, f.fixable) for f in analyze(text).findings)


@fuzz(20)
@given(st.lists(programs(), min_size=4, max_size=4))
def test_cli_server_and_core_agree(server: Rpc, folder, batch):
    paths = []
    for program in batch:
        path = folder / f"prog_{next(_names)}.py"
        path.write_bytes(program.text.encode("utf-8"))
        paths.append(path)
    rows = cli_rows(paths)
    for program, path in zip(batch, paths):
        assert rows[str(path)] == core_rows(program.text), f"the CLI disagrees with the core on\n{program.text}"
    for program, path in zip(batch, paths):
        uri = path.as_uri()
        mark = server.mark()
        server.open(uri, program.text)
        published = server.published(uri, 1, since=mark).body["params"]["diagnostics"]
        assert summarize(published) == expected_diagnostics(program.text, "utf-16"), \
            f"the server disagrees with the core on\n{program.text}"
        check_quick_fixes_and_hovers(server, uri, program.text, published)
        server.close(uri)


def check_quick_fixes_and_hovers(server: Rpc, uri: str, text: str, published: list[dict]) -> None:
    """Each diagnostic's quick fix, applied by the client in UTF-16, gives the text the core's fix
    gives; its hover answers with a range that covers the position asked about."""
    analysis = analyze(text)
    ordered = sorted(published, key=lambda d: (d["range"]["start"]["line"], d["range"]["start"]["character"], d["code"]))
    findings = sorted(analysis.findings, key=lambda f: (f.span.start, f.code))
    for d, f in zip(ordered, findings):
        assert d["code"] == f.code
        actions = server.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": d["range"],
                                                          "context": {"diagnostics": [d]}}) or []
        fix = analysis.fix(f.key)
        if fix is not None:
            mine = [a for a in actions if a["title"] == fix.title and a.get("edit")]
            assert mine, f"no '{fix.title}' among {[a['title'] for a in actions]}"
            edits = mine[0]["edit"]["documentChanges"][0]["edits"]
            assert apply_text_edits(text, edits, "utf-16") == apply(text, fix.edits), f"{fix.title} on\n{text}"
        hover = server.call("textDocument/hover", {"textDocument": {"uri": uri}, "position": d["range"]["start"]})
        assert hover is not None, f"no hover on {f.code} at {d['range']['start']}"
        r, p = hover["range"], d["range"]["start"]
        assert (r["start"]["line"], r["start"]["character"]) <= (p["line"], p["character"]) <= \
            (r["end"]["line"], r["end"]["character"]), (hover["range"], p)
