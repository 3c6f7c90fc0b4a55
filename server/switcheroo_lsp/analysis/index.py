"""The project index: per file, what it imports, binds, defines and constructs, by content hash.

Two passes over a workspace, both plain data (no syntax trees, nothing that can run code):
- `scan`: every Python file under the roots, its size, mtime and content digest, and its imports,
  read with a regular expression that over-approximates (an `import` in a string or a comment
  counts too: at worst an extra neighbour, never a missed importer). Fast: the import graph of
  a 3,000-file project in a fraction of a second.
- `facts`: Python's `ast` on each file (several times cheaper than libcst): its top-level
  bindings and what kind each is (a plain constant is `const`: no object of another file can
  reach it), its functions and classes, the torch.optim / lr_scheduler / optax calls it makes.

Both are keyed by the content digest and cached on disk (cache.py), so a second start reads
the cache instead of the files' syntax. The server runs them in a worker process; the CLI in
its own process pool. Nothing here imports libcst.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".mypy_cache",
             "build", "dist", ".eggs"}
MAX_FILES = 20000       # files a workspace indexes, at most

# An import statement starts at `from` or `import` not preceded by a name character or a dot.
_START = re.compile(r"(?<![\w.])(?:from|import)(?=[ \t\\])")
_WS = r"(?:[ \t]|\\\r?\n|\\\r)"               # blanks, and backslashes that continue the line
_CONT = r"(?:[^\n\r;#\\]|\\\r?\n|\\\r)*"       # the rest of a logical line
_FROM = re.compile(r"from" + _WS + r"+(\.+[\w.]*|[\w.]+)" + _WS + r"+import" + _WS + r"*(\((?:[^)#]|#[^\n\r]*)*\)|" + _CONT + ")")
_PLAIN = re.compile(r"import" + _WS + r"+(" + _CONT + ")")
_COMMENT = re.compile(r"#[^\n\r]*")
_NAME = re.compile(r"[A-Za-z_]\w*\Z")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")

Import = tuple        # (module as written, ((name, asname), ...) or None for `import module`)


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def imports_of(text: str) -> list[Import]:
    """Every import statement of a text, as written: `from ..a import b as c` ->
    ('..a', (('b', 'c'),)); `import a.b as m` -> ('a.b', None). Anywhere in the file (in
    functions too), across parentheses and backslash continuations."""
    out: list[Import] = []
    pos = 0
    while True:
        m = _START.search(text, pos)
        if m is None:
            return out
        start = m.start()
        f = _FROM.match(text, start)
        if f is not None:
            module = f.group(1)
            names = []
            for piece in _COMMENT.sub("", f.group(2).strip().strip("()")).replace("\\", " ").split(","):
                words = piece.split()
                if len(words) == 1 and (words[0] == "*" or _NAME.match(words[0])):
                    names.append((words[0], None))
                elif len(words) == 3 and words[1] == "as" and _NAME.match(words[0]) and _NAME.match(words[2]):
                    names.append((words[0], words[2]))
            if module.strip(".") == "" or _DOTTED.match(module.strip(".")):
                out.append((module, tuple(names)))
            pos = f.end()
            continue
        p = _PLAIN.match(text, start)
        if p is not None:
            for piece in p.group(1).replace("\\", " ").split(","):
                words = piece.split()
                if words and _DOTTED.match(words[0]) and (len(words) == 1 or (len(words) == 3 and words[1] == "as")):
                    out.append((words[0], None))
            pos = p.end()
            continue
        pos = m.end()


# -- the files of a workspace ------------------------------------------------------------------------

@dataclass
class Record:
    size: int
    mtime_ns: int
    digest: str


@dataclass
class Snapshot:
    """What a scan found: plain data, sent back from a worker process as it is."""
    roots: list[str]
    files: dict[str, Record] = field(default_factory=dict)       # path -> its record
    imports: dict[str, list] = field(default_factory=dict)       # digest -> imports_of
    torch: dict[str, bool] = field(default_factory=dict)         # digest -> "torch" in the text
    facts: dict[str, dict] = field(default_factory=dict)         # digest -> file_facts
    truncated: bool = False                                      # more than MAX_FILES files
    read: set = field(default_factory=set)                       # files whose bytes this scan read
    listing: str = ""                                            # digest of the listed paths
    links: dict[str, list] = field(default_factory=dict)         # path -> [[file it imports, by name]]


def list_files(roots) -> tuple[list[str], bool]:
    """The Python files under the roots (sorted, folders that hold no project code skipped)."""
    listed: list[str] = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            listed.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
            if len(listed) > MAX_FILES:
                return listed[:MAX_FILES], True
    return listed, False


def read_record(path: str, known: Record | None) -> tuple[Record, bytes | None] | None:
    """The file's record; its bytes when they had to be read (the size or mtime changed)."""
    try:
        st = os.stat(path)
        if known is not None and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
            return known, None
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return Record(len(data), st.st_mtime_ns, digest(data)), data


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def scan(roots, cached: Snapshot | None = None, listed_hook=None) -> Snapshot:
    """Every file of the workspace with its imports, reusing what `cached` knows of files whose
    size and mtime did not change (and of contents already seen, by digest). `listed_hook(n)`
    is told, once the files are listed, how many of them the cache does not know."""
    roots = [str(Path(r).resolve()) for r in roots]
    listed, truncated = list_files(roots)
    if listed_hook is not None:
        known_files = cached.files if cached is not None else {}
        listed_hook(sum(1 for p in listed if p not in known_files))
    out = Snapshot(roots, truncated=truncated, listing=digest("\n".join(listed).encode()))
    known = cached or Snapshot([])
    for path in listed:
        found = read_record(path, known.files.get(path))
        if found is None:
            continue
        record, data = found
        out.files[path] = record
        if data is not None:
            out.read.add(path)
        key = record.digest
        if key in out.imports:
            continue
        if data is None and key in known.imports and key in known.torch:
            out.imports[key], out.torch[key] = known.imports[key], known.torch[key]
            continue
        if data is None:
            found = read_record(path, None)
            if found is None:
                del out.files[path]
                continue
            record, data = found
            out.files[path] = record
            out.read.add(path)
            key = record.digest
        text = decode(data)
        out.imports[key] = imports_of(text)
        out.torch[key] = "torch" in text
    for key in out.imports:
        if key in known.facts:
            out.facts[key] = known.facts[key]
    if known.listing == out.listing:       # the same files: a file whose text is the same links the same
        for path, record in out.files.items():
            old = known.files.get(path)
            if old is not None and old.digest == record.digest and path in known.links:
                out.links[path] = known.links[path]
    return out


def facts_of_files(paths: list[str]) -> dict[str, tuple[str, dict]]:
    """path -> (digest, file_facts) for each readable file (a worker's batch)."""
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        out[path] = (digest(data), file_facts(data))
    return out


# -- facts from the syntax -----------------------------------------------------------------------------

_INERT_NODES = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BinOp, ast.UnaryOp, ast.BoolOp,
                ast.Compare, ast.JoinedStr, ast.FormattedValue, ast.Name, ast.Load, ast.operator, ast.unaryop,
                ast.boolop, ast.cmpop, ast.Starred, ast.Slice, ast.Subscript, ast.IfExp)


def inert(node: ast.AST, consts) -> bool:
    """A value no optimizer can hide in: literals and operations on them, and names of
    other such constants (`consts(name)`)."""
    for sub in ast.walk(node):
        if not isinstance(sub, _INERT_NODES):
            return False
        if isinstance(sub, ast.Name) and not (sub.id in ("True", "False", "None") or consts(sub.id)):
            return False
    return True


def _targets(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _targets(e)]
    if isinstance(target, ast.Starred):
        return _targets(target.value)
    return []


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_SIMPLE = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom, ast.FunctionDef,
           ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class StatementNames:
    """What one top-level statement binds at module level (name -> [(kind, value)], kind one of
    'def', 'class', 'import', 'value' (with the value of a single name's assignment) or
    'other'), the names it uses (with the attribute read off each: `m.SCALE` -> ('m', 'SCALE')),
    and its import statements, each with whether it is local (in a function, class or lambda).
    And attributes by name, which the closed-world check follows across files (reach.py):
    `stores`, the attribute names it assigns (`self.opt = ...`) or defines in a class body (its
    methods, class attributes); `loads`, those it reads (`x.opt`, `x.step()`); `used_calls`,
    the methods it calls keeping the result (`opt = model.configure_optimizers()`), each with
    the name its receiver starts from (`('model', 'configure_optimizers')`; None: not a name);
    `assigned`, every name it binds anywhere, locals included."""
    binds: dict = field(default_factory=dict)
    refs: set = field(default_factory=set)
    imports: list = field(default_factory=list)
    stores: set = field(default_factory=set)
    loads: set = field(default_factory=set)
    used_calls: set = field(default_factory=set)
    assigned: set = field(default_factory=set)


def statement_names(stmt: ast.stmt) -> StatementNames:
    """One walk over a top-level statement (module-level `global`s and blocks included)."""
    out = StatementNames()
    binds, refs = out.binds, out.refs

    def bind(name, kind, value=None):
        binds.setdefault(name, []).append((kind, value))

    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        bind(stmt.name, "def")
    elif isinstance(stmt, ast.ClassDef):
        bind(stmt.name, "class")
    elif isinstance(stmt, ast.Assign):
        single = len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        for t in stmt.targets:
            for n in _targets(t):
                bind(n, "value", stmt.value if single else None)
    elif isinstance(stmt, ast.AnnAssign):
        for n in _targets(stmt.target):
            bind(n, "value", stmt.value)
    elif isinstance(stmt, ast.AugAssign):
        for n in _targets(stmt.target):
            bind(n, "other")
    compound = not isinstance(stmt, _SIMPLE)
    bases: set[int] = set()
    discarded: set[int] = set()          # calls whose result an expression statement drops
    stack: list = [(stmt, False)]
    while stack:
        node, local = stack.pop()
        kind = type(node)
        if kind is ast.Attribute:
            if type(node.value) is ast.Name:
                refs.add((node.value.id, node.attr))
                bases.add(id(node.value))
            (out.loads if type(node.ctx) is ast.Load else out.stores).add(node.attr)
        elif kind is ast.Call:
            if type(node.func) is ast.Attribute and id(node) not in discarded:
                out.used_calls.add((_root_name(node.func.value), node.func.attr))
        elif kind is ast.Expr:
            if type(node.value) is ast.Call:
                discarded.add(id(node.value))
        elif kind is ast.ClassDef:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    out.stores.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    for t in (item.targets if isinstance(item, ast.Assign) else [item.target]):
                        out.stores.update(_targets(t))
        elif kind is ast.Name:
            if id(node) not in bases:
                refs.add((node.id, None))
            if type(node.ctx) is not ast.Load:
                out.assigned.add(node.id)
            if compound and not local and type(node.ctx) is not ast.Load:
                bind(node.id, "other")
        elif kind is ast.Import or kind is ast.ImportFrom:
            out.imports.append((node, local))
            if local:
                out.assigned.update(a.asname or a.name.split(".")[0] for a in node.names)
            if not local:
                for a in node.names:
                    bind(a.asname or (a.name.split(".")[0] if kind is ast.Import else a.name), "import")
        elif kind is ast.Global or kind is ast.Nonlocal:
            refs.update((n, None) for n in node.names)
            out.assigned.update(node.names)
            if kind is ast.Global:
                for n in node.names:
                    bind(n, "other")
        elif kind is ast.NamedExpr:
            if not local and type(node.target) is ast.Name:
                bind(node.target.id, "other")
        elif kind is ast.ExceptHandler or kind is ast.MatchAs or kind is ast.MatchStar:
            if node.name:
                out.assigned.add(node.name)
            if node.name and not local and compound:
                bind(node.name, "other")
        elif kind is ast.MatchMapping:
            if node.rest:
                out.assigned.add(node.rest)
            if node.rest and not local and compound:
                bind(node.rest, "other")
        elif kind is ast.arg or kind is ast.AnnAssign:
            if kind is ast.arg:
                out.assigned.add(node.arg)
            _string_annotation(node.annotation, refs)
        if isinstance(node, _SCOPES):
            if node is not stmt and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.assigned.add(node.name)
                if not local:
                    bind(node.name, "other")
            if not isinstance(node, ast.Lambda):
                _string_annotation(getattr(node, "returns", None), refs)
            # Decorators, defaults, annotations and bases run where the definition is; the body
            # (and a lambda's) is its own scope.
            body = node.body if isinstance(node.body, list) else [node.body]
            inner = set(map(id, body))
            for child in ast.iter_child_nodes(node):
                stack.append((child, local or id(child) in inner))
            continue
        stack.extend((child, local) for child in ast.iter_child_nodes(node))
    return out


def _root_name(node) -> str | None:
    """The name a dotted receiver starts from (`torch.nn.functional` -> 'torch')."""
    while type(node) is ast.Attribute:
        node = node.value
    return node.id if type(node) is ast.Name else None


def _string_annotation(ann, refs: set) -> None:
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            tree = ast.parse(ann.value, mode="eval")
        except (SyntaxError, ValueError, RecursionError):
            return
        refs.update(statement_names(ast.Expr(tree.body)).refs)


def top_level_bindings(body: list[ast.stmt]) -> dict[str, list[tuple[str, ast.AST | None]]]:
    """name -> [(kind, value)] for what module-level code binds (statement_names, merged)."""
    out: dict[str, list] = {}
    for stmt in body:
        for name, bs in statement_names(stmt).binds.items():
            out.setdefault(name, []).extend(bs)
    return out


def binding_kinds(bindings: dict[str, list]) -> dict[str, str]:
    """name -> 'const' (every binding an inert value), 'def', 'class', 'import', 'value' or
    'mixed'."""
    kinds: dict[str, str] = {}
    changed = True
    while changed:            # constants of constants
        changed = False
        for name, bs in bindings.items():
            if kinds.get(name) == "const":
                continue
            if all(k == "value" and v is not None and inert(v, lambda n: kinds.get(n) == "const") for k, v in bs):
                kinds[name] = "const"
                changed = True
    for name, bs in bindings.items():
        if name not in kinds:
            ks = {k for k, _ in bs}
            kinds[name] = ks.pop() if len(ks) == 1 else "mixed"
    return kinds


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def file_facts(data: bytes) -> dict:
    """What one file binds at module level (and the kind of each binding), the functions and
    classes it defines, the torch.optim, lr_scheduler and optax constructions it calls, the
    attribute names it reads (`attrs`) and the methods of its classes that return a value
    (`returning`): what the closed-world check can match by name from another file."""
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}
    bindings = top_level_bindings(tree.body)
    defines: dict[str, dict] = {}
    imported: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            defines[node.name] = {"kind": "def", "params": [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]}
        elif isinstance(node, ast.ClassDef):
            defines[node.name] = {"kind": "class", "bases": [b for b in map(_dotted, node.bases) if b],
                                  "methods": [s.name for s in node.body
                                              if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                imported[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for a in node.names:
                imported[a.asname or a.name] = f"{node.module}.{a.name}"
    attrs, returning = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            attrs.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                        isinstance(sub, ast.Return) and sub.value is not None for sub in ast.walk(item)):
                    returning.add(item.name)
    constructs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            head, _, rest = name.partition(".")
            if head in imported:
                q = imported[head] + ("." + rest if rest else "")
                if q.startswith(("torch.optim.", "optax.")):
                    constructs.add(q)
    return {"binds": binding_kinds(bindings), "defines": defines, "constructs": sorted(constructs),
            "attrs": sorted(attrs), "returning": sorted(returning)}
