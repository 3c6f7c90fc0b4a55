"""The index's worker process: each file's facts (index.file_facts), computed off the server's
event loop and sent back as JSON lines; the cache written when it is done.

    python -c "...; from switcheroo_lsp.analysis.index_worker import main; main()" ROOT...

stdout, one JSON object per line: {"files": N, "missing": M} (how many files the workspace has,
how many need their facts computed), then {"facts": {path: [digest, facts]}, "cached": true} per
batch of those the cache holds, then {"facts": ...} per batch of those computed, then
{"done": true}. Plain data both ways: the worker is started fresh (no fork of the server), and
imports nothing but this package's index (no libcst, nothing of the user's project).
"""

from __future__ import annotations

import json
import sys

from . import cache, index

BATCH = 48


def main(roots: list[str] | None = None) -> int:
    roots = sys.argv[1:] if roots is None else roots
    cached = cache.load_index(roots)
    snap = index.scan(roots, cached)
    missing = sorted(p for p, r in snap.files.items() if r.digest not in snap.facts)
    _send({"files": len(snap.files), "missing": len(missing)})
    known = sorted(p for p in snap.files if p not in set(missing))
    for k in range(0, len(known), BATCH * 4):         # the cached ones first: the server has none yet
        _send({"facts": {p: [snap.files[p].digest, snap.facts[snap.files[p].digest]] for p in known[k:k + BATCH * 4]},
               "cached": True})
    for k in range(0, len(missing), BATCH):
        found = index.facts_of_files(missing[k:k + BATCH])
        for path, (key, facts) in found.items():
            if snap.files.get(path) is not None and snap.files[path].digest == key:
                snap.facts[key] = facts
        _send({"facts": found})
    if missing or cached is None or set(cached.facts) != set(snap.facts):
        cache.save_index(snap)
    _send({"done": True})
    return 0


def _send(message: dict) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()
