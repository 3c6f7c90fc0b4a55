"""Findings remembered from an earlier analysis of the same texts, shown as a document opens.

`check` (check_cache.py) and the server keep each file's findings under a digest of everything
they depend on: the target, the file's text and the texts of the files it is traced with. When
a document opens with a text whose findings are remembered, and none of its neighbours changed,
those findings are its first publish: they are what its complete analysis finds, word for word
(the analysis depends on nothing else), so nothing shown is withdrawn later. Its analysis still
runs (code actions and hovers need it) and publishes again only if something differs.

The server remembers a document's findings when its complete analysis is of the text on disk
(on open and on save, not on every keystroke), and writes them to the shared cache file a few
seconds later and at shutdown.
"""

from __future__ import annotations

from pathlib import Path

from ..analysis import cache
from ..engine import Analysis, Workspace
from .check_cache import KEEP, KIND, entry_ok, key, rows_of

READ_AT_MOST = 16 << 20     # bytes: a larger file is not read at start (json holds the GIL)


class Remembered:
    def __init__(self, roots: list[str], entries: dict):
        self.roots = roots
        self.entries = entries
        self.new: dict = {}

    @classmethod
    def load(cls, roots: list[str]) -> "Remembered":
        """The project's remembered findings (in the index's thread, while the server starts)."""
        entries = None
        if 0 < cache.size(roots, KIND) <= READ_AT_MOST:
            data = cache.read(cache.path_for(roots, KIND), KIND, roots)
            entries = data.get("entries") if data else None
        return cls(roots, entries if isinstance(entries, dict) else {})

    def key(self, codebase: Workspace, path: str, target: str) -> str | None:
        """The key of a document's findings as the workspace has its files now; None until the
        index has said who imports it (a file that would then join its neighbours could change
        them) or where a file's content is not known."""
        if not codebase.knows_importers:
            return None
        p = Path(path).resolve()
        return key(target, p, codebase.content_digest, codebase.unit_paths(p))

    def get(self, key: str | None) -> dict | None:
        if key is None:
            return None
        entry = self.new.get(key) or self.entries.get(key)
        return entry if entry_ok(entry) else None

    def on_disk(self, codebase: Workspace, path: str) -> bool:
        """Is the document's text the one on disk (as the index read it)? What `check` would see."""
        p = Path(path).resolve()
        return codebase.content_digest(p) is not None and codebase.content_digest(p) == codebase.disk_digest(p)

    def keep(self, codebase: Workspace, path: str, target: str, analysis: Analysis) -> bool:
        """Remember a complete analysis of a text that is on disk. True when something is new."""
        if not analysis.complete or analysis.syntax_error is not None or not self.on_disk(codebase, path):
            return False
        k = self.key(codebase, path, target)
        if k is None or self.get(k) is not None:
            return False
        self.new[k] = {"rows": rows_of(path, analysis.findings), "error": None,
                       "related": analysis.related_paths(), "keys": [f.key for f in analysis.findings]}
        return True

    def save(self) -> None:
        """Add what this server remembered to the cache file as it is now (`check` may have
        written it meanwhile), the oldest entries going first past KEEP."""
        if not self.new:
            return
        path = cache.path_for(self.roots, KIND)
        data = cache.read(path, KIND, self.roots) if cache.size(self.roots, KIND) <= READ_AT_MOST else None
        entries = data.get("entries") if data else None
        entries = {k: v for k, v in (entries if isinstance(entries, dict) else {}).items() if k not in self.new}
        stale = list(entries)
        room = max(KEEP - len(self.new), 0)
        kept = {k: entries[k] for k in stale[max(0, len(stale) - room):]}
        kept.update(self.new)
        if cache.write(path, KIND, self.roots, {"entries": kept}):
            self.entries.update(self.new)
            self.new = {}
