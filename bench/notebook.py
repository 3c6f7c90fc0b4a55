"""Notebooks through LSP notebook sync: the real server over stdio, like bench/run.py.

    .venv/bin/python bench/notebook.py                      # 200 cells, 9 repeats
    .venv/bin/python bench/notebook.py --cells 200 --repeat 15 --json out.json

A generated notebook of `--cells` code cells (bench/generate.py's training code cut at top-level
statements, with IPython lines: `%matplotlib inline`, a `%%time` header on every 10th cell, a
`!nvidia-smi` line on every 25th) is opened with notebookDocument/didOpen; then one cell in the
middle is edited (a character typed at the end of its first line, then taken back).

  open -> diagnostics    didOpen written -> the last cell's publishDiagnostics read
  cell edit -> fresh     didChange of one cell written -> that cell's publishDiagnostics for its
                         new version read
  .py open / .py edit    the same program text as one .py file, for comparison

Each figure is a median over repeats, beside the baseline measured right before each repeat in
this process: `libcst.parse_module` of the program the server analyses (the cells' code, magics
masked, in order). Ratios are server / baseline. The server runs with debounce 0.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PLAIN, RESULTS, Samples, _middle_line, cpu_ns, gc  # noqa: E402  (bench/run.py's helpers)
from rpc import Rpc  # noqa: E402
from generate import training_file  # noqa: E402
from switcheroo_lsp.notebooks.program import Cell, build  # noqa: E402

CAPS = {"textDocument": {"publishDiagnostics": {"versionSupport": True}},
        "notebookDocument": {"synchronization": {"executionSummarySupport": True}}}


def notebook_cells(count: int) -> list[str]:
    """`count` code cells of training code, a few IPython lines among them."""
    lines_per_cell = 20
    text = training_file(count * lines_per_cell)
    lines = text.splitlines(keepends=True)
    starts = [s.lineno - 1 for s in ast.parse(text).body]
    # Cut at top-level statements into `count` cells of about equal length.
    target = len(lines) / count
    cuts, last = [0], 0
    for s in starts:
        if s - last >= target and len(cuts) < count:
            cuts.append(s)
            last = s
    cuts.append(len(lines))
    cells = ["".join(lines[a:b]).rstrip("\n") for a, b in zip(cuts, cuts[1:])]
    while len(cells) < count:
        cells.append("print('done')")
    out = []
    for i, cell in enumerate(cells[:count]):
        if i == 0:
            cell = "%matplotlib inline\n" + cell
        elif i % 10 == 0:
            cell = "%%time\n" + cell
        if i % 25 == 5:
            cell = "!nvidia-smi\n" + cell
        out.append(cell)
    return out


def cell_uri(tag: str, i: int) -> str:
    return f"vscode-notebook-cell:/bench/{tag}.ipynb#W{i}sZmlsZQ%3D%3D"


def open_notebook(rpc, tag: str, cells: list[str]) -> list[str]:
    uris = [cell_uri(tag, i) for i in range(len(cells))]
    rpc.notify("notebookDocument/didOpen", {
        "notebookDocument": {"uri": f"file:///bench/{tag}.ipynb", "notebookType": "jupyter-notebook", "version": 0,
                             "cells": [{"kind": 2, "document": u} for u in uris]},
        "cellTextDocuments": [{"uri": u, "languageId": "python", "version": 1, "text": c}
                              for u, c in zip(uris, cells)]})
    return uris


def close_notebook(rpc, tag: str, uris: list[str]) -> None:
    rpc.notify("notebookDocument/didClose", {"notebookDocument": {"uri": f"file:///bench/{tag}.ipynb"},
                                             "cellTextDocuments": [{"uri": u} for u in uris]})


def wait_all(rpc, uris: list[str], since: int, timeout: float = 300):
    """The publishDiagnostics of every cell, in the order they came; returns the last."""
    last = None
    for u in uris:
        msg = rpc.published(u, 1, since=since, timeout=timeout)
        last = msg if last is None or msg.at > last.at else last
    return last


def bench(count: int, repeat: int) -> None:
    cells = notebook_cells(count)
    built = build([Cell(str(i), i + 1, c) for i, c in enumerate(cells)])
    assert not built.broken and not built.skipped
    program = built.text
    print(f"\n{count} cells, {program.count(chr(10))} program lines ({len(program) // 1000} kB), debounce 0; "
          "vs libcst.parse_module of the program")
    rpc = Rpc(PLAIN)
    rpc.initialize(CAPS, {"debounce_ms": 0})
    try:
        # Warm up: imports, caches.
        uris = open_notebook(rpc, "warmup", cells[:20])
        wait_all(rpc, uris, 0)
        close_notebook(rpc, "warmup", uris)

        opened = Samples()
        for r in range(repeat):
            opened.baseline(program)
            tag = f"nb{r}_{time.monotonic_ns()}"
            gc.collect()
            mark = rpc.mark()
            c0 = cpu_ns(rpc.pid)
            t0 = time.perf_counter()
            uris = open_notebook(rpc, tag, cells)
            last = wait_all(rpc, uris, mark)
            opened.add(last.at - t0, (cpu_ns(rpc.pid) - c0) / 1e9)
            findings = sum(len(p["diagnostics"]) for u in uris for p in rpc.all_published(u, mark)[-1:])
            close_notebook(rpc, tag, uris)
        RESULTS.setdefault("notebook", {})["open"] = opened.report(
            "open -> every cell's diagnostics", extra=f"{findings} findings")

        tag = "edit"
        uris = open_notebook(rpc, tag, cells)
        wait_all(rpc, uris, 0)
        mid = count // 2
        first_line = cells[mid].split("\n", 1)[0]
        col = len(first_line.encode("utf-16-le")) // 2
        edited, version, nb_version = Samples(), 1, 0
        for r in range(repeat):
            edited.baseline(program)
            version += 1
            nb_version += 1
            change = ({"range": {"start": {"line": 0, "character": col}, "end": {"line": 0, "character": col}},
                       "text": " "} if r % 2 == 0 else
                      {"range": {"start": {"line": 0, "character": col}, "end": {"line": 0, "character": col + 1}},
                       "text": ""})
            gc.collect()
            mark = rpc.mark()
            c0 = cpu_ns(rpc.pid)
            t0 = time.perf_counter()
            rpc.notify("notebookDocument/didChange", {
                "notebookDocument": {"uri": f"file:///bench/{tag}.ipynb", "version": nb_version},
                "change": {"cells": {"textContent": [{"document": {"uri": uris[mid], "version": version},
                                                      "changes": [change]}]}}})
            msg = rpc.published(uris[mid], version, since=mark, timeout=300)
            edited.add(msg.at - t0, (cpu_ns(rpc.pid) - c0) / 1e9)
        RESULTS["notebook"]["edit"] = edited.report("a cell edit -> its fresh diagnostics")
        close_notebook(rpc, tag, uris)

        # The same program as one .py file, for comparison.
        as_py, py_edit = Samples(), Samples()
        for r in range(repeat):
            as_py.baseline(program)
            uri = f"file:///bench/program_{r}_{time.monotonic_ns()}.py"
            gc.collect()
            mark = rpc.mark()
            c0 = cpu_ns(rpc.pid)
            t0 = time.perf_counter()
            rpc.open(uri, program)
            msg = rpc.published(uri, 1, since=mark, timeout=300)
            as_py.add(msg.at - t0, (cpu_ns(rpc.pid) - c0) / 1e9)
            rpc.close(uri)
        RESULTS["notebook"]["py_open"] = as_py.report("the program as a .py: open")
        uri = "file:///bench/program_edit.py"
        rpc.open(uri, program)
        rpc.published(uri, 1, timeout=300)
        line, col = _middle_line(program)
        for r in range(repeat):
            py_edit.baseline(program)
            change = ({"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}},
                       "text": " "} if r % 2 == 0 else
                      {"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + 1}},
                       "text": ""})
            gc.collect()
            mark = rpc.mark()
            c0 = cpu_ns(rpc.pid)
            t0 = time.perf_counter()
            rpc.change(uri, r + 2, [change])
            msg = rpc.published(uri, r + 2, since=mark, timeout=300)
            py_edit.add(msg.at - t0, (cpu_ns(rpc.pid) - c0) / 1e9)
        RESULTS["notebook"]["py_edit"] = py_edit.report("the program as a .py: an edit")
        RESULTS["notebook"].update(cells=count, program_lines=program.count("\n"), findings=findings)
    finally:
        rpc.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", help="write the figures here")
    ns = ap.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"switcheroo-lsp notebook bench, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {' '.join(load)} at start")
    bench(ns.cells, ns.repeat)
    with open("/proc/loadavg") as f:
        print(f"\nload average at the end: {' '.join(f.read().split()[:3])}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(RESULTS, indent=2))


if __name__ == "__main__":
    main()
