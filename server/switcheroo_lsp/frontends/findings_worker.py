"""The language server's background pass over its workspace: each file with optimizer code is
analysed as `check` analyses it, and its findings are remembered in the results cache
(check_cache.py), so that opening it later shows them at once (remembered.py). Files whose
findings are remembered under their current key are not analysed again.

    python -c "...; from switcheroo_lsp.frontends.findings_worker import main; main()" TARGET ROOT...

TARGET is the server's target ("" when not configured: each project's pyproject.toml says).
One process at low priority, started after the index; it writes nothing but the cache.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from . import cli

# Text that optimizer code has: a file without any of it has nothing to remember.
WORDS = re.compile(r"optim|zero_grad|clip_grad|param_groups|sched|\.step\(")
AT_MOST = 300           # files analysed per pass, at most (the first in the listing's order)


def chosen(roots: list[str], target: str | None) -> list:
    files, _ = cli.collect_files(roots, target)
    out = []
    for path, settings in files:
        if path.endswith(".ipynb"):
            continue
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if WORDS.search(text):
            out.append((path, settings))
            if len(out) >= AT_MOST:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target, roots = argv[0] or None, argv[1:]
    try:
        os.nice(10)         # the user's editor (and the server) come first
    except OSError:
        pass
    files = chosen(roots, target)
    if files:
        cli.run_files(files, fixing=False, roots=tuple(str(Path(r).resolve()) for r in roots), parallel=False)
    return 0
