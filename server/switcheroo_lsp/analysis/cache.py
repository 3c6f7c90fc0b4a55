"""The on-disk cache of the project index (and of the CLI's findings): plain JSON, never pickle.

Where: `$SWITCHEROO_CACHE_DIR`, else `$XDG_CACHE_HOME/switcheroo-lsp`, else
`~/.cache/switcheroo-lsp` (like ruff's and mypy's caches), one file per project (its roots) and
kind. A cache file is input like any other: it is read as JSON and checked field by field, and
one that does not read, has another format, was written by other code (the fingerprint of this
package's source) or for other roots is deleted and rebuilt, never trusted. Writes go to a
temporary file renamed over the old one, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .index import Record, Snapshot

FORMAT = 1
ENV = "SWITCHEROO_CACHE_DIR"
_fingerprint: str | None = None


def fingerprint() -> str:
    """A digest of this package's source: a cache written by other code is foreign."""
    global _fingerprint
    if _fingerprint is None:
        h = hashlib.blake2b(digest_size=16)
        package = Path(__file__).resolve().parents[1]
        for path in sorted(package.rglob("*.py")):
            h.update(str(path.relative_to(package)).encode())
            try:
                h.update(path.read_bytes())
            except OSError:
                pass
        _fingerprint = h.hexdigest()
    return _fingerprint


def directory() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "switcheroo-lsp"


def path_for(roots, kind: str) -> Path:
    """The cache file of one project (its roots) and kind ('index', 'results')."""
    key = hashlib.sha256(json.dumps(sorted(str(r) for r in roots)).encode()).hexdigest()[:20]
    return directory() / f"v{FORMAT}" / f"{kind}-{key}.json"


def _header(kind: str, roots) -> dict:
    return {"tool": f"switcheroo-lsp {kind}", "format": FORMAT, "code": fingerprint(),
            "roots": sorted(str(r) for r in roots)}


def size(roots, kind: str) -> int:
    """The size of a project's cache file of that kind in bytes (0: there is none)."""
    try:
        return path_for(roots, kind).stat().st_size
    except OSError:
        return 0


def read(path: Path, kind: str, roots) -> dict | None:
    """The cache's body if it is ours and well formed; a bad one is deleted."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        _discard(path)
        return None
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in _header(kind, roots).items()):
        _discard(path)
        return None
    return data


def write(path: Path, kind: str, roots, body: dict) -> bool:
    """Atomically replace the cache file; False when the cache directory is not writable."""
    data = {**_header(kind, roots), **body}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            _discard(Path(tmp))
            raise
    except OSError:
        return False
    return True


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# -- the index --------------------------------------------------------------------------------------

def _is_str_list(x) -> bool:
    return isinstance(x, list) and all(isinstance(i, str) for i in x)


def _imports_ok(imports) -> bool:
    if not isinstance(imports, list):
        return False
    for item in imports:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            return False
        names = item[1]
        if names is not None and not (isinstance(names, list) and all(
                isinstance(n, list) and len(n) == 2 and isinstance(n[0], str) and (n[1] is None or isinstance(n[1], str))
                for n in names)):
            return False
    return True


def _facts_ok(facts) -> bool:
    if not isinstance(facts, dict):
        return False
    if "error" in facts:
        return isinstance(facts["error"], str)
    binds, defines = facts.get("binds"), facts.get("defines")
    return (isinstance(binds, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in binds.items())
            and isinstance(defines, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in defines.items())
            and all(_is_str_list(facts.get(k)) for k in ("constructs", "attrs", "returning")))


def load_index(roots, facts: bool = True) -> Snapshot | None:
    """The cached index of a project, or None (absent, or discarded as corrupt or foreign).
    The facts are a file of their own (`facts=False`: what the import graph needs only, the
    part the server reads at once)."""
    path = path_for(roots, "index")
    data = read(path, "index", roots)
    if data is None:
        return None
    try:
        files, imports, torch = data["files"], data["imports"], data["torch"]
        listing, links = data["listing"], data["links"]
        if not (isinstance(files, dict) and isinstance(imports, dict) and isinstance(torch, dict)
                and isinstance(listing, str) and isinstance(links, dict)):
            raise ValueError("not a mapping")
        snap = Snapshot([str(r) for r in roots])
        for p, rec in files.items():
            if not (isinstance(p, str) and isinstance(rec, list) and len(rec) == 3 and type(rec[0]) is int
                    and type(rec[1]) is int and isinstance(rec[2], str)):
                raise ValueError(f"bad record for {p!r}")
            snap.files[p] = Record(rec[0], rec[1], rec[2])
        for key, value in imports.items():
            if not _imports_ok(value):
                raise ValueError(f"bad imports for {key!r}")
            snap.imports[key] = [(m, None if n is None else tuple((a, b) for a, b in n)) for m, n in value]
        for key, value in torch.items():
            if not isinstance(value, bool):
                raise ValueError("bad torch flag")
            snap.torch[key] = value
        for p, targets in links.items():
            if not (isinstance(targets, list) and all(isinstance(t, list) and len(t) == 2 and isinstance(t[0], str)
                                                      and isinstance(t[1], str) for t in targets)):
                raise ValueError(f"bad links for {p!r}")
        snap.listing, snap.links = listing, links
    except (KeyError, ValueError, TypeError):
        _discard(path)
        return None
    if facts:
        snap.facts = load_facts(roots)
    return snap


def load_facts(roots) -> dict[str, dict]:
    """digest -> facts, from the cache (empty if absent; a bad file is discarded)."""
    path = path_for(roots, "facts")
    data = read(path, "facts", roots)
    if data is None:
        return {}
    facts = data.get("facts")
    if not isinstance(facts, dict) or not all(isinstance(k, str) and _facts_ok(v) for k, v in facts.items()):
        _discard(path)
        return {}
    return facts


def save_index(snap: Snapshot, facts: bool = True) -> bool:
    """Write the index (and, with `facts`, the facts file)."""
    used = {r.digest for r in snap.files.values()}      # contents no file has any more are dropped
    body = {
        "files": {p: [r.size, r.mtime_ns, r.digest] for p, r in snap.files.items()},
        "imports": {k: [[m, None if n is None else [list(x) for x in n]] for m, n in v]
                    for k, v in snap.imports.items() if k in used},
        "torch": {k: v for k, v in snap.torch.items() if k in used},
        "listing": snap.listing,
        "links": {p: v for p, v in snap.links.items() if p in snap.files},
    }
    done = write(path_for(snap.roots, "index"), "index", snap.roots, body)
    if facts:
        done = write(path_for(snap.roots, "facts"), "facts", snap.roots,
                     {"facts": {k: v for k, v in snap.facts.items() if k in used}}) and done
    return done
