"""Where `analyze()` spends its time on the generated files, and what the GC adds.

    .venv/bin/python bench/profile_core.py            # 5k and 20k lines
    .venv/bin/python bench/profile_core.py 5000 --top 25

Prints, per size: CPU time of libcst.parse_module, ast.parse and analyze (medians); analyze with
the previous version's analysis still alive (what the server has on every edit) and with the GC
off; analyze with builder._parameters_owner memoised (a what-if, by monkeypatching: the code is
not changed); and pyinstrument's call tree of one analyze.
"""

from __future__ import annotations

import argparse
import ast
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import libcst  # noqa: E402

from generate import training_file  # noqa: E402
from switcheroo_lsp import builder  # noqa: E402
from switcheroo_lsp.engine import analyze  # noqa: E402


def cpu_ms(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        fn()
        out.append(time.process_time() - t)
    return statistics.median(out) * 1000


def without_gc(fn):
    def run():
        gc.disable()
        try:
            fn()
        finally:
            gc.enable()
    return run


def memoised_owner(text: str):
    original, memo = builder._parameters_owner, {}

    def owner(ident):
        if id(ident) not in memo:
            memo[id(ident)] = (ident, original(ident))
        return memo[id(ident)][1]

    def run():
        memo.clear()
        builder._parameters_owner = owner
        try:
            analyze(text)
        finally:
            builder._parameters_owner = original
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[5000, 20000])
    ap.add_argument("--top", type=int, default=40, help="lines of the call tree to print")
    ns = ap.parse_args()
    for n in ns.sizes:
        text = training_file(n)
        repeat = 5 if n <= 5000 else 3
        cst = cpu_ms(lambda: libcst.parse_module(text), repeat)
        py = cpu_ms(lambda: ast.parse(text), repeat)
        fresh = cpu_ms(lambda: analyze(text), repeat)
        previous = analyze(text)       # noqa: F841 - kept alive on purpose
        alive = cpu_ms(lambda: analyze(text), repeat)
        nogc = cpu_ms(without_gc(lambda: analyze(text)), repeat)
        del previous
        memo = cpu_ms(memoised_owner(text), repeat)
        print(f"\n{n} lines: CPU ms (median of {repeat})")
        print(f"  libcst.parse_module {cst:8.0f}")
        print(f"  ast.parse           {py:8.0f}  {py / cst:.2f}x libcst")
        print(f"  analyze             {fresh:8.0f}  {fresh / cst:.2f}x libcst")
        print(f"  analyze, previous version alive {alive:8.0f}  {alive / cst:.2f}x")
        print(f"  analyze, GC off     {nogc:8.0f}  {nogc / cst:.2f}x")
        print(f"  analyze, _parameters_owner memoised (what-if) {memo:8.0f}  {memo / cst:.2f}x")
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("  (pip install pyinstrument for the call tree)")
            continue
        p = Profiler(interval=0.001)
        p.start()
        analyze(text)
        p.stop()
        tree = p.output_text(unicode=False, color=False).splitlines()
        start = next(i for i, line in enumerate(tree) if "analyze" in line)
        print("\n".join(tree[start:start + ns.top]))


if __name__ == "__main__":
    main()
