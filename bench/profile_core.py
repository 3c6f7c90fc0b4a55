"""CPU of the core on a generated file, stage by stage, against libcst's bare parse.

    .venv/bin/python bench/profile_core.py 5000 20000     # sizes in lines
    .venv/bin/python bench/profile_core.py 5000 --tree    # and pyinstrument's call tree (pip install pyinstrument)

Stages: the scanner that cuts the file into top-level statements; the parse of every chunk;
the walk of every chunk's tree (facts); the whole analysis of a fresh text; the analysis of an
edited text given the previous parse (one character in the middle); the fix-all.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import libcst  # noqa: E402

from generate import training_file  # noqa: E402
from switcheroo_lsp.analysis.program import chunk_facts  # noqa: E402
from switcheroo_lsp.document.chunks import split  # noqa: E402
from switcheroo_lsp.document.parsed import ParsedDocument  # noqa: E402
from switcheroo_lsp.engine import analyze  # noqa: E402


def cpu_ms(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        fn()
        out.append(time.process_time() - t)
    return statistics.median(out) * 1000


def edited(text: str) -> str:
    """One character typed at the end of a line in the middle (as bench/run.py's edit)."""
    end = text.index("\n", len(text) // 2)
    while text[end - 1] == "\n":
        end = text.index("\n", end + 1)
    return text[:end] + " " + text[end:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[5000, 20000])
    ap.add_argument("--tree", action="store_true", help="print pyinstrument's call tree of a fresh analysis")
    ns = ap.parse_args()
    for n in ns.sizes:
        text = training_file(n)
        repeat = 5 if n <= 5000 else 3
        base = cpu_ms(lambda: libcst.parse_module(text), repeat)
        scan = cpu_ms(lambda: split(text), repeat)
        parse = cpu_ms(lambda: ParsedDocument.parse(text), repeat)

        def walk():
            for chunk in ParsedDocument.parse(text).chunks:
                chunk.cache.clear()
                chunk_facts(chunk)
        walked = cpu_ms(walk, repeat) - parse
        fresh = cpu_ms(lambda: analyze(text), repeat)
        previous = analyze(text)
        changed = edited(text)
        edit = cpu_ms(lambda: analyze(changed, previous=previous.doc), repeat)
        assert analyze(changed, previous=previous.doc).syntax_error is None
        fix_all = cpu_ms(lambda: analyze(text, previous=previous.doc).fix_all(), repeat) - cpu_ms(
            lambda: analyze(text, previous=previous.doc), repeat)
        print(f"\n{n} lines: CPU ms (median of {repeat}), ratio to libcst.parse_module")
        for label, ms in (("libcst.parse_module", base), ("scan into chunks", scan), ("parse every chunk", parse),
                          ("walk every chunk (facts)", walked), ("analyze, fresh", fresh),
                          ("analyze, one edit, previous parse given", edit), ("fix-all of an analysed file", fix_all)):
            print(f"  {label:<42} {ms:8.1f}  {ms / base:5.2f}x")
        if ns.tree:
            try:
                from pyinstrument import Profiler
            except ImportError:
                print("  (pip install pyinstrument for the call tree)")
                continue
            p = Profiler(interval=0.001)
            p.start()
            analyze(changed, previous=previous.doc)
            p.stop()
            print(p.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
