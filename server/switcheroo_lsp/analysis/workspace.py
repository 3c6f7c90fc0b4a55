"""The project around a document: the files it imports and the files that import it.

An optimizer built in `main.py` and stepped in `engine.py`'s `train_one_epoch(..., optimizer)`
is one flow: the tracer needs both files. A `Workspace` knows the project's Python files (the
CLI's paths, the editor's workspace folders), reads them lazily, keeps each one's parse while
its text is unchanged, and finds a document's neighbours: what it imports (two levels deep, for
base classes defined further away) and what imports it (from an index of every file's imports,
made by a regular expression, not a parse). Open documents override what is on disk. A
document's diagnostics may depend on other files; its fixes only ever edit itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..document.parsed import ParsedDocument
from .program import Unit

_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+\(?[ \t]*([\w, \t]*)|import[ \t]+([\w., \t]+))",
                     re.MULTILINE)
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".mypy_cache",
              "build", "dist", ".eggs"}
MAX_UNITS = 40          # neighbours traced with a document, at most (the cost of every keystroke)
MAX_FILES = 20000       # files a workspace indexes, at most


@dataclass
class _File:
    text: str
    doc: ParsedDocument | None = None
    imports: tuple[str, ...] | None = None      # module names as written (`.utils`, `model`)


class Workspace:
    def __init__(self, roots=(), files=None, background: bool = False):
        self.roots = [Path(r).resolve() for r in roots]
        self.background = background              # the importers index is built by someone else
        self._files: dict[Path, _File] = {}
        self._open: dict[Path, str] = {}          # open documents: the editor's text wins
        self._listed: list[Path] | None = None if files is None else [Path(f).resolve() for f in files]
        self._importers: dict[Path, set[Path]] | None = None

    @classmethod
    def from_texts(cls, texts: dict[str, str], roots=()) -> "Workspace":
        """A workspace of exactly these files (the CLI's), with their texts."""
        ws = cls(roots, files=list(texts))
        for path, text in texts.items():
            ws._files[Path(path).resolve()] = _File(text)
        return ws

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
        if text is None or self._files.get(p) is None or self._files[p].text != text:
            self._files.pop(p, None)
        if before is not None and before != self._imports_of(p):
            self._importers = None

    def changed(self, path) -> None:
        """A file changed (saved, created, deleted on disk): read it again when needed."""
        p = Path(path).resolve()
        self._files.pop(p, None)
        self._importers = None                  # its imports may have changed: index again when asked
        if self._listed is not None and p not in self._listed and p.suffix == ".py" and p.exists():
            self._listed.append(p)

    def forget_listing(self) -> None:
        """Files were created or deleted: list the folders again."""
        if self.roots:
            self._listed = None
        self._importers = None

    # -- files --------------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        if self._listed is None:
            listed = []
            for root in self.roots:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
                    listed.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
                    if len(listed) > MAX_FILES:
                        break
            self._listed = listed
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
            return None
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

    def _imports_of(self, path: Path) -> tuple[str, ...]:
        f = self._file(path)
        if f is None:
            return ()
        if f.imports is None:
            names = []
            for m in _IMPORT.finditer(f.text):
                if m.group(1) is not None:
                    module = m.group(1)
                    # `from pkg import mod` may import a module: pkg.mod is tried first
                    sep = "" if module.endswith(".") else "."
                    names.extend(f"{module}{sep}{n.split()[0]}" for n in m.group(2).split(",") if n.strip())
                    names.append(module)
                else:
                    names.extend(n.split()[0] for n in m.group(3).split(",") if n.strip())
            f.imports = tuple(dict.fromkeys(names))
        return f.imports

    # -- module names -------------------------------------------------------------------------------
    @staticmethod
    def package_root(path: Path) -> Path:
        """The folder a file's dotted module name starts from (above its packages)."""
        folder = path.parent
        while (folder / "__init__.py").exists() and folder.parent != folder:
            folder = folder.parent
        return folder

    def module_name(self, path: Path) -> tuple[str, bool]:
        """(dotted name, is a package's __init__)."""
        rel = path.relative_to(self.package_root(path)).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        return ".".join(parts), is_package

    def resolve(self, module: str, importer: Path) -> tuple[Path, str] | None:
        """The file `import module` (or `from module import ...`) reads from `importer`, and the
        dotted name it has there; relative names start with dots."""
        if module.startswith("."):
            level = len(module) - len(module.lstrip("."))
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            rest = module.lstrip(".")
            found = self._find(base, rest) if rest else (base / "__init__.py" if (base / "__init__.py").exists()
                                                         else None)
            return (found, self.module_name(found)[0]) if found is not None else None
        for base in dict.fromkeys([importer.parent, self.package_root(importer), *self.roots]):
            found = self._find(base, module)
            if found is not None:
                return found, module
        return None

    def _find(self, base: Path, module: str) -> Path | None:
        candidate = base.joinpath(*module.split("."))
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if path in self._files or path in self._open or path.exists():
                return path.resolve()
        return None

    # -- neighbours ---------------------------------------------------------------------------------
    def _forward(self, path: Path) -> dict[Path, str]:
        """The files a file imports: path -> the name it imports them by."""
        out: dict[Path, str] = {}
        for name in self._imports_of(path):
            parts = name.split(".")
            # `from a.b import c` may import module a.b.c or name c of a.b: try the longest first
            for cut in range(len(parts), 0, -1):
                prefix = ".".join(parts[:cut])
                if not prefix.strip("."):
                    break
                found = self.resolve(prefix, path)
                if found is not None:
                    out.setdefault(found[0], found[1])
                    break
        return out

    @property
    def indexed(self) -> bool:
        return self._importers is not None

    def build_index(self) -> None:
        """Who imports whom, for every file of the workspace (the server builds it in the
        background: until then a document is traced with what it imports only)."""
        index: dict[Path, set[Path]] = {}
        for f in self.files():
            for target in self._forward(f):
                index.setdefault(target, set()).add(f)
        self._importers = index

    def importers(self, path: Path) -> set[Path]:
        """The workspace's files that import `path`."""
        if self._importers is None:
            self.build_index()
        return self._importers.get(Path(path).resolve(), set())

    def units_for(self, path, with_importers: bool | None = None) -> list[Unit]:
        """The documents traced with `path`: what it imports (and what those import) and what
        imports it, each with the module names it is known by. Importers come from the index:
        in the background (the server), only once it is built."""
        if with_importers is None:
            with_importers = self.indexed or not self.background
        p = Path(path).resolve()
        names: dict[Path, set[str]] = {}
        frontier = {p}
        for _ in range(2):
            nxt = set()
            for f in frontier:
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
                    # what builds the optimizer a caller passes in is often in a module the caller imports
                    for target, name in self._forward(f).items():
                        if target != p:
                            names.setdefault(target, set()).add(name)
        units = []
        for f, aliases in list(names.items())[:MAX_UNITS]:
            doc = self.parsed(f)
            if doc is None or doc.syntax_error is not None:
                continue
            module, is_package = self.module_name(f)
            units.append(Unit(doc, module, str(f), is_package, aliases=tuple(sorted(aliases - {module}))))
        return units

    def describe(self, path) -> tuple[str, bool]:
        return self.module_name(Path(path).resolve())
