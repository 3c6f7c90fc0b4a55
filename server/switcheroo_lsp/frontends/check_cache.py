"""What `check` and `fix` remember between runs: each file's findings, keyed by its content.

A file's findings depend on its text, the target, and the texts of the project files it is
traced with (Workspace.unit_paths, worked out from the project index without parsing). The key
is a digest of all of them (and of this package's source, through the cache header): a file
whose key is known is not parsed again. The index itself (who imports whom) comes from the
same on-disk cache the language server keeps (analysis/cache.py), brought up to date by size
and mtime, then content digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..analysis import cache, index
from ..engine import CODES, Workspace

KIND = "results"
KEEP = 5000          # entries kept from earlier runs, at least


def key(target: str | None, path: Path, digest_of, units: dict[Path, set[str]]) -> str | None:
    """What a file's findings depend on, digested: the target, the file and the files it is
    traced with (with the names it knows them by), each by content. None when a digest is not
    known (the language server's: a file the index has not read)."""
    digests = [digest_of(path)] + [digest_of(u) for u in units]
    if None in digests:
        return None
    parts = [target or "", str(path), digests[0],
             [[str(u), d, sorted(names)] for (u, names), d in zip(units.items(), digests[1:])]]
    return hashlib.blake2b(json.dumps(parts).encode(), digest_size=16).hexdigest()


class Results:
    def __init__(self, roots, snap: index.Snapshot):
        self.roots = [str(r) for r in roots]
        self.snap = snap
        self.workspace = Workspace(roots)
        self.workspace.apply_scan(snap)
        self.workspace.link(snap)          # who imports whom: from the cache where nothing moved
        data = cache.read(cache.path_for(self.roots, KIND), KIND, self.roots)
        entries = data.get("entries") if data else None
        self.old: dict = entries if isinstance(entries, dict) else {}
        self.new: dict = {}
        self._digests: dict[str, str] = {}

    def digest_of(self, path: Path) -> str:
        key = str(path)
        record = self.snap.files.get(key)
        if record is not None:
            return record.digest
        if key not in self._digests:
            try:
                self._digests[key] = index.digest(path.read_bytes())
            except OSError:
                self._digests[key] = "unreadable"
        return self._digests[key]

    def key(self, path: str, target: str | None) -> str:
        p = Path(path).resolve()
        return key(target, p, self.digest_of, self.workspace.unit_paths(p))

    def get(self, key: str) -> dict | None:
        """{"rows": [...], "error": str | None, "related": [...]} when known and well formed."""
        entry = self.old.get(key) or self.new.get(key)
        if not entry_ok(entry):
            return None
        self.new[key] = entry
        return entry

    def put(self, key: str, rows: list[dict], error: str | None, related: list[str], keys: list[int]) -> None:
        self.new[key] = {"rows": rows, "error": error, "related": related, "keys": keys}

    def save(self) -> None:
        """Keep what this run used or found (newest last) and, from earlier runs (another target,
        another version of a file), as many as fit in KEEP or four times this run's: the oldest
        go first."""
        stale = [k for k in self.old if k not in self.new]
        room = max(KEEP, 4 * len(self.new)) - len(self.new)
        entries = {k: self.old[k] for k in stale[max(0, len(stale) - room):]}
        entries.update(self.new)
        if entries != self.old:
            cache.write(cache.path_for(self.roots, KIND), KIND, self.roots, {"entries": entries})


_ROW = {"path": str, "line": int, "column": int, "end_line": int, "end_column": int, "code": str,
        "severity": str, "message": str, "fixable": bool}


def rows_of(path: str, findings) -> list[dict]:
    """Every finding of a file as a row (the settings filter them where they are shown)."""
    return [{"path": path, "line": f.span.start.line + 1, "column": f.span.start.col + 1,
             "end_line": f.span.end.line + 1, "end_column": f.span.end.col + 1,
             "code": f.code, "severity": CODES[f.code][0], "message": f.message, "fixable": f.fixable}
            for f in findings]


def _row_ok(row) -> bool:
    return isinstance(row, dict) and all(type(row.get(k)) is t for k, t in _ROW.items())


def entry_ok(entry) -> bool:
    """A remembered result as this version writes it: its rows, the error, the related files,
    and each finding's key (what ties a diagnostic to its fix in the server)."""
    return (isinstance(entry, dict) and isinstance(entry.get("rows"), list)
            and all(_row_ok(r) for r in entry["rows"]) and (entry.get("error") is None or isinstance(entry["error"], str))
            and isinstance(entry.get("related"), list) and all(isinstance(p, str) for p in entry["related"])
            and isinstance(entry.get("keys"), list) and len(entry["keys"]) == len(entry["rows"])
            and all(type(k) is int for k in entry["keys"]))
