"""The project around a document: the files it imports and the files that import it.

An optimizer built in `main.py` and stepped in `engine.py`'s `train_one_epoch(..., optimizer)`
is one flow: the tracer needs both files. A `Workspace` knows the project's Python files (the
CLI's paths, the editor's workspace folders) and what each imports (the project index,
index.py), reads and parses files only when a document is traced with them, keeps each parse
while its text is unchanged, and finds a document's neighbours: what it imports (two levels
deep, for base classes defined further away) and what imports it. Open documents override
what is on disk. A document's diagnostics may depend on other files; its fixes only ever edit
itself.

Module names resolve against the listing (no file system call per import). In the server the
index comes from a worker (`apply_scan`, `apply_facts`): until it has arrived, who imports a
document is not known (`knows_importers`), and a document is traced with what it imports only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..document.chunks import scan as scan_chunks
from ..document.parsed import ParsedDocument, parse_chunk
from ..document.text import Source
from . import settled
from .index import MAX_FILES, SKIP_DIRS, Record, Snapshot, digest, file_facts, imports_of
from .program import Unit

MAX_UNITS = 40          # neighbours traced with a document, at most (the cost of every keystroke)
_SKIP_DIRS = SKIP_DIRS


@dataclass
class _File:
    text: str
    doc: ParsedDocument | None = None
    imports: list | None = None      # index.imports_of(text)
    facts: dict | None = None        # index.file_facts(text), for an open document traced with another
    rough: dict | None = None        # settled.rough_facts(text), until the index's facts arrive


class Workspace:
    def __init__(self, roots=(), files=None, background: bool = False):
        self.roots = [Path(r).resolve() for r in roots]
        self._root_prefixes = tuple(os.path.join(str(r), "") for r in self.roots)
        self.background = background              # the index comes from someone else (the server's worker)
        self._files: dict[Path, _File] = {}
        self._open: dict[Path, str] = {}          # open documents: the editor's text wins
        self._listed: list[Path] | None = None if files is None else [Path(f).resolve() for f in files]
        self._walked = False                      # the listing is every file under the roots
        self._known: set[str] = set()             # str(path) of every listed file
        self._indexed_imports: dict[Path, list] = {}   # from the index, for files not read here
        self._torch: dict[Path, bool] = {}
        self._facts: dict[Path, dict] = {}
        self._importers: dict[Path, set[Path]] | None = None
        self._scanned = False                     # the index's listing and imports have arrived
        self._exists: dict[str, bool] = {}      # files outside the listing: does it exist?
        self._resolved: dict[tuple[str, str], tuple[Path, str] | None] = {}   # (folder, module) -> resolve()
        self._roots_of: dict[str, str] = {}     # folder -> its package root
        self._names: dict[Path, tuple[str, bool]] = {}
        self._forwards: dict[Path, tuple[list, dict[Path, str]]] = {}   # file -> (its imports, _forward)
        self._unreadable: set[Path] = set()
        self._records: dict[Path, Record] = {}    # what the index read of each file: size, mtime, digest

    @classmethod
    def from_texts(cls, texts: dict[str, str], roots=()) -> "Workspace":
        """A workspace of exactly these files (the CLI's), with their texts."""
        ws = cls(roots, files=list(texts))
        for path, text in texts.items():
            ws._files[Path(path).resolve()] = _File(text)
        return ws

    # -- the index ----------------------------------------------------------------------------------
    def apply_scan(self, snap: Snapshot) -> None:
        """The files of the workspace and what each imports, from the index."""
        self._records = {Path(p): r for p, r in snap.files.items()}    # one Path per file: pathlib is slow
        files = [(f, r.digest) for f, r in self._records.items()]
        self._listed = [f for f, _ in files]
        self._walked = not snap.truncated
        self._known = set(snap.files)
        self._indexed_imports = {f: snap.imports.get(d, []) for f, d in files}
        self._torch = {f: snap.torch.get(d, True) for f, d in files}
        self._facts = {f: snap.facts[d] for f, d in files if d in snap.facts}
        self._forget_names()
        self._importers = None
        self._scanned = True

    def apply_facts(self, facts: dict[str, tuple[str, dict]]) -> None:
        """Per-file facts from the index (path -> (digest, facts))."""
        for p, (d, f) in facts.items():
            path = Path(p)
            self._facts[path] = f
            record = self._records.get(path)
            if record is not None and record.digest != d:
                del self._records[path]     # changed since the scan: its size and mtime are not known

    def facts(self, path: Path) -> dict | None:
        """The index's facts of a file (what it binds, defines, constructs), when known and the
        file is not open with another text."""
        if path in self._open:
            return None
        return self._facts.get(path)

    def content_digest(self, path: Path) -> str | None:
        """The digest of a file's content as the analysis sees it: an open document's text, the
        text read from disk, else what the index read if the file's size and mtime are still
        those it saw (None: not known). Texts are digested as UTF-8, like most files' bytes."""
        text = self._open.get(path)
        if text is None:
            f = self._files.get(path)
            text = f.text if f is not None else None
        if text is not None:
            return digest(text.encode("utf-8", "surrogatepass"))
        record = self._records.get(path)
        if record is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return record.digest if (st.st_size, st.st_mtime_ns) == (record.size, record.mtime_ns) else None

    def disk_digest(self, path: Path) -> str | None:
        """The digest of a file's bytes when the index read it (None: not indexed)."""
        record = self._records.get(path)
        return record.digest if record is not None else None

    @property
    def knows_importers(self) -> bool:
        """Is every file that may import a document known? (The CLI reads them when asked; the
        server once its index has arrived.)"""
        return self._scanned or not self.background or not self.roots

    # -- keeping it fresh ---------------------------------------------------------------------------
    def set_open(self, path, text: str | None) -> None:
        """An open document's text (None: closed, read from disk again). Typing leaves the
        importers index alone unless the file's imports changed."""
        p = Path(path).resolve()
        if text is not None and self._open.get(p) == text:
            return
        before = self._imports_of(p) if self._importers is not None else None
        if text is None:
            self._open.pop(p, None)
        else:
            self._open[p] = text
            if str(p) not in self._known:
                self._known.add(str(p))
                self._forget_names()
        if text is None:
            # Closed: other documents see the disk's text again (its parse kept if it is the same).
            kept = self._files.pop(p, None)
            if kept is not None and self.text(p) == kept.text:
                self._files[p] = kept
        elif self._files.get(p) is None or self._files[p].text != text:
            self._files.pop(p, None)
        if before is not None and before != self._imports_of(p):
            self._importers = None

    def remember(self, path, doc: ParsedDocument) -> None:
        """A parse of a file's current text made elsewhere (the document's own analysis), for
        the documents traced with it."""
        p = Path(path).resolve()
        f = self._file(p)
        if f is not None and f.text == doc.source.text:
            f.doc = doc

    def changed(self, path) -> None:
        """A file changed (saved, created, deleted on disk): read it again when needed."""
        p = Path(path).resolve()
        self._files.pop(p, None)
        self._unreadable.discard(p)
        self._indexed_imports.pop(p, None)
        self._torch.pop(p, None)
        self._facts.pop(p, None)
        self._records.pop(p, None)
        self._forwards.pop(p, None)
        self._importers = None                  # its imports may have changed: linked again when asked
        if p.suffix == ".py":
            exists = p.exists()
            if exists and str(p) not in self._known:
                self._known.add(str(p))
                if self._listed is not None:
                    self._listed.append(p)
                self._forget_names()            # a new module: names may resolve to it now
            elif not exists and p not in self._open and str(p) in self._known:
                self._known.discard(str(p))
                if self._listed is not None and p in self._listed:
                    self._listed.remove(p)
                self._forget_names()
            self._exists.pop(str(p), None)

    def forget_listing(self) -> None:
        """Files were created or deleted: list the folders again (the index does, in the server)."""
        if self.roots and not self.background:
            self._listed = None
            self._walked = False
        self._forget_names()
        self._importers = None

    # -- files --------------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        if self._listed is None:
            listed = []
            for root in self.roots:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
                    listed.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
                    if len(listed) > MAX_FILES:
                        break
            self._listed = listed
            self._walked = len(listed) <= MAX_FILES
            self._known |= {str(p) for p in listed}
        return self._listed

    def text(self, path: Path) -> str | None:
        if path in self._open:
            return self._open[path]
        f = self._files.get(path)
        if f is not None:
            return f.text
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            self._unreadable.add(path)
            return None
        self._unreadable.discard(path)
        self._files[path] = _File(text)
        return text

    def _file(self, path: Path) -> _File | None:
        text = self.text(path)
        if text is None:
            return None
        f = self._files.get(path)
        if f is None or f.text != text:
            f = self._files[path] = _File(text)
        return f

    def parsed(self, path: Path) -> ParsedDocument | None:
        f = self._file(path)
        if f is None:
            return None
        if f.doc is None:
            f.doc = ParsedDocument.parse(f.text)
        return f.doc

    def loaded(self, path: Path) -> bool:
        """Is the file's parse at hand (its current text parsed, or the file unreadable)?"""
        text = self._open.get(path)
        f = self._files.get(path)
        if f is None and text is None and path in self._unreadable:
            return True
        return f is not None and f.doc is not None and (text is None or f.text == text)

    def parse_at_hand(self, path, text: str) -> ParsedDocument | None:
        """The workspace's parse of exactly this text of a file, if it made one."""
        f = self._files.get(Path(path).resolve())
        return f.doc if f is not None and f.text == text else None

    def parse_steps(self, path: Path):
        """Parse a file one top-level statement at a time (a generator: the server runs the
        steps between other work, so that a long file never holds up the event loop)."""
        f = self._file(path)
        if f is None or f.doc is not None:
            return
        text = f.text
        starts, chunks = [], []
        for begin, chunk in scan_chunks(text, 0):
            starts.append(begin)
            chunks.append(parse_chunk(chunk))
            yield
        if self._files.get(path) is f and f.doc is None:
            f.doc = ParsedDocument(Source(text), chunks, starts)

    def has_torch(self, path: Path) -> bool:
        """Does the file's text mention torch (from the index when it was not read here)?"""
        f = self._files.get(path)
        if f is None and path not in self._open and path in self._torch:
            return self._torch[path]
        text = self.text(path)
        return text is not None and "torch" in text

    def _imports_of(self, path: Path) -> list:
        if path not in self._open and path not in self._files and path in self._indexed_imports:
            return self._indexed_imports[path]
        f = self._file(path)
        if f is None:
            return []
        if f.imports is None:
            f.imports = imports_of(f.text)
        return f.imports

    # -- module names -------------------------------------------------------------------------------
    def _forget_names(self) -> None:
        """Files appeared or went: module names resolve anew."""
        self._exists = {}
        self._resolved = {}
        self._roots_of = {}
        self._names = {}
        self._forwards = {}

    def _has(self, path: str) -> bool:
        """Is there such a file (listed or open; on disk, outside the listed roots)? `path` is
        absolute and normalised."""
        if path in self._known:
            return True
        if self._walked and path.startswith(self._root_prefixes):
            return False
        found = self._exists.get(path)
        if found is None:
            p = Path(path)
            found = self._exists[path] = p in self._open or p in self._files or os.path.isfile(path)
        return found

    def exists(self, path: Path) -> bool:
        return path in self._open or path in self._files or self._has(str(path))

    @staticmethod
    def package_root(path: Path) -> Path:
        """The folder a file's dotted module name starts from (above its packages)."""
        folder = path.parent
        while (folder / "__init__.py").exists() and folder.parent != folder:
            folder = folder.parent
        return folder

    def _package_root(self, folder: str) -> str:
        found = self._roots_of.get(folder)
        if found is None:
            found = folder
            while self._has(os.path.join(found, "__init__.py")) and os.path.dirname(found) != found:
                found = os.path.dirname(found)
            self._roots_of[folder] = found
        return found

    def module_name(self, path: Path) -> tuple[str, bool]:
        """(dotted name, is a package's __init__)."""
        found = self._names.get(path)
        if found is None:
            rel = os.path.relpath(os.path.splitext(str(path))[0], self._package_root(str(path.parent)))
            parts = rel.split(os.sep)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found = self._names[path] = (".".join(p for p in parts if p != "."), is_package)
        return found

    def resolve(self, module: str, importer: Path) -> tuple[Path, str] | None:
        """The file `import module` (or `from module import ...`) reads from `importer`, and the
        dotted name it has there; relative names start with dots."""
        folder = str(importer.parent)
        key = (folder, module)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(module, folder)
        return self._resolved[key]

    def _resolve(self, module: str, folder: str) -> tuple[Path, str] | None:
        if module.startswith("."):
            level = len(module) - len(module.lstrip("."))
            base = folder
            for _ in range(level - 1):
                base = os.path.dirname(base)
            rest = module.lstrip(".")
            init = os.path.join(base, "__init__.py")
            found = self._find(base, rest) if rest else (init if self._has(init) else None)
            if found is None:
                return None
            path = Path(found)
            return path, self.module_name(path)[0]
        for base in dict.fromkeys([folder, self._package_root(folder), *map(str, self.roots)]):
            found = self._find(base, module)
            if found is not None:
                return Path(found), module
        return None

    def _find(self, base: str, module: str) -> str | None:
        candidate = os.path.join(base, *module.split("."))
        for path in (candidate + ".py", os.path.join(candidate, "__init__.py")):
            if self._has(path):
                return path
        return None

    # -- neighbours ---------------------------------------------------------------------------------
    def _reached(self, imp, importer: Path):
        """(file, the name it is imported by, the name imported from it or None for the whole
        module) for one import of `importer`. `from a.b import c` may import module a.b.c or
        name c of a.b: both are tried; a module that is not found is looked for in its parent
        packages (`import a.b.c` of a package without c still reads a.b)."""
        module, names = imp
        sep = "" if module.endswith(".") else "."
        if names is None:
            candidates = [(module, None, True)]
        else:
            candidates = [(f"{module}{sep}{n}", None, False) for n, _ in names if n != "*"]
            candidates += [(module, n, True) for n, _ in names] or [(module, None, True)]
        for name, imported, shorter in candidates:
            parts = name.split(".")
            for cut in range(len(parts), 0 if shorter else len(parts) - 1, -1):
                prefix = ".".join(parts[:cut])
                if not prefix.strip("."):
                    break
                found = self.resolve(prefix, importer)
                if found is not None:
                    yield found[0], found[1], imported if cut == len(parts) else None
                    break

    def _forward(self, path: Path) -> dict[Path, str]:
        """The files a file imports: path -> the name it imports them by (kept while its imports
        and the listing stay the same)."""
        imports = self._imports_of(path)
        known = self._forwards.get(path)
        if known is not None and known[0] is imports:
            return known[1]
        out: dict[Path, str] = {}
        for imp in imports:
            for target, name, _ in self._reached(imp, path):
                out.setdefault(target, name)
        self._forwards[path] = (imports, out)
        return out

    def link(self, snap: Snapshot | None = None) -> "Workspace":
        """Who imports whom, worked out for every file (the server does it in the thread that
        scanned the workspace, on a workspace of its own: then `adopt` it). `snap`: the scan,
        whose links (from the cache: same files, same texts) are taken as they are and into
        which the links worked out are written."""
        if snap is not None:
            # One Path per file (pathlib's parsing is most of the cost of linking 3,000 files).
            paths = {str(f): f for f in self._indexed_imports}
            for p, targets in snap.links.items():
                path = paths.get(p)
                if path is not None:
                    self._forwards[path] = (self._indexed_imports[path],
                                            {paths.get(t) or Path(t): n for t, n in targets})
        self.build_index()
        if snap is not None:
            for path, (_, out) in self._forwards.items():
                if str(path) in snap.files and str(path) not in snap.links:
                    snap.links[str(path)] = [[str(t), n] for t, n in out.items()]
        return self

    def adopt(self, linked: "Workspace") -> None:
        """The scan another workspace applied (its files, imports and records: `apply_scan` again
        would parse every path again, most of its cost at 3,000 files) and the module names and
        import links it worked out on it. `linked` is not used afterwards: its tables are taken."""
        self._listed, self._walked, self._known = linked._listed, linked._walked, linked._known
        self._indexed_imports, self._torch = linked._indexed_imports, linked._torch
        self._records, self._facts = linked._records, linked._facts
        self._scanned = True
        self._resolved, self._roots_of, self._names = linked._resolved, linked._roots_of, linked._names
        self._exists = linked._exists
        self._forwards = dict(linked._forwards)
        # Open documents' texts (the editor's) may import otherwise than the disk: link anew.
        self._importers = None if self._open else linked._importers

    @property
    def indexed(self) -> bool:
        return self._importers is not None

    def build_index(self) -> None:
        """Who imports whom, for every file of the workspace (from the index's imports, or from
        reading the files when there is no index)."""
        index: dict[Path, set[Path]] = {}
        for f in self.files():
            for target in self._forward(f):
                index.setdefault(target, set()).add(f)
        for f in self._open:
            if str(f) not in self._known:
                for target in self._forward(f):
                    index.setdefault(target, set()).add(f)
        self._importers = index

    def importers(self, path: Path) -> set[Path]:
        """The workspace's files that import `path`."""
        if self._importers is None:
            self.build_index()
        return self._importers.get(Path(path).resolve(), set())

    def unit_paths(self, path, with_importers: bool | None = None) -> dict[Path, set[str]]:
        """The files traced with `path` and the module names each is known by there: what it
        imports (and what those import) and what imports it (and what those import: what builds
        the optimizer a caller passes in is often there). Reads no file that the index knows."""
        if with_importers is None:
            with_importers = self.knows_importers
        p = Path(path).resolve()
        names: dict[Path, set[str]] = {}
        frontier = {p}
        for _ in range(2):
            nxt = set()
            for f in sorted(frontier):
                for target, name in self._forward(f).items():
                    if target != p:
                        if target not in names:
                            nxt.add(target)
                        names.setdefault(target, set()).add(name)
            frontier = nxt
        if with_importers:
            callers = set(self.importers(p))
            for f in list(callers):
                if f.name == "__init__.py":      # a package re-exporting it: its importers call it
                    callers |= self.importers(f)
            for f in sorted(callers):
                if f != p:
                    names.setdefault(f, set())
                    for target, name in self._forward(f).items():
                        if target != p:
                            names.setdefault(target, set()).add(name)
        return dict(list(names.items())[:MAX_UNITS])

    def units(self, paths: dict[Path, set[str]]) -> list[Unit]:
        """The parsed documents for `unit_paths` (parsing those not parsed yet)."""
        units = []
        for f, aliases in paths.items():
            doc = self.parsed(f)
            if doc is None or doc.syntax_error is not None:
                continue
            module, is_package = self.module_name(f)
            units.append(Unit(doc, module, str(f), is_package, aliases=tuple(sorted(aliases - {module}))))
        return units

    def units_for(self, path, with_importers: bool | None = None) -> list[Unit]:
        """The documents traced with `path` (unit_paths), parsed."""
        return self.units(self.unit_paths(path, with_importers))

    def describe(self, path) -> tuple[str, bool]:
        return self.module_name(Path(path).resolve())

    # -- what other files can reach of a document --------------------------------------------------
    def exported(self, path) -> set[str] | None:
        """The names files of the project import from `path` (None: any name, because one
        imports the whole module or star-imports it, or because the importers are not known)."""
        if not self.knows_importers:
            return None
        p = Path(path).resolve()
        names: set[str] = set()
        for importer in self.importers(p):
            for imp in self._imports_of(importer):
                for target, _, imported in self._reached(imp, importer):
                    if target == p:
                        if imported is None or imported == "*":
                            return None
                        names.add(imported)
        return names

    def kind_of(self, importer: Path):
        """For settled.withheld_lines: what `from module import name` (name None: `import
        module`) binds in `importer`."""
        def kind(module: str, name: str | None) -> str:
            if name is not None:
                sep = "" if module.endswith(".") else "."
                if self.resolve(f"{module}{sep}{name}", importer) is not None:
                    return settled.MODULE
            found = self.resolve(module, importer)
            if found is None:
                return settled.EXTERNAL
            if name is None:
                return settled.MODULE
            facts = self.facts(found[0])
            binds = facts.get("binds") if facts else None
            return settled.CONST if binds is not None and binds.get(name) == "const" else settled.OPEN
        return kind

    def neighbours(self, path) -> settled.Neighbours:
        """What the files `path` is traced with do with attributes, from their index facts."""
        attrs, returning = set(), set()
        for unit in self.unit_paths(path):
            facts = self.facts(unit)
            if facts is None and unit in self._open:        # the editor's text: its own facts
                facts = self._open_facts(unit)
            if facts is None or "attrs" not in facts:
                # Not indexed yet: every name its text puts after a dot or a `def` (a superset
                # of what its facts will say, so nothing shown now is withdrawn then).
                f = self._file(unit)
                if f is None:
                    continue
                if f.rough is None:         # read once per text, not on every keystroke
                    f.rough = settled.rough_facts(f.text)
                facts = f.rough
            attrs.update(facts["attrs"])
            returning.update(facts["returning"])
        return settled.Neighbours(frozenset(attrs), frozenset(returning))

    def _open_facts(self, path: Path) -> dict | None:
        f = self._file(path)
        if f is None:
            return None
        if getattr(f, "facts", None) is None:
            f.facts = file_facts(f.text.encode("utf-8", errors="replace"))
        return f.facts

    def withheld_lines(self, path, text: str, chunks=None) -> list[tuple[int, int]] | None:
        """The lines of `path` (its text `text`, parsed into `chunks`: settled.withheld_lines)
        whose findings other files could change."""
        p = Path(path).resolve()
        return settled.withheld_lines(text, self.kind_of(p), self.exported(p), self.neighbours(p), chunks)
