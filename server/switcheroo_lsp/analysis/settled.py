"""Which of a document's findings other files cannot change: what a first publish may show.

The server publishes a document's findings before it has read the files it imports and the
files that import it. A finding shown then must never be withdrawn or changed once they are
read (no flicker), and no fix may be offered for a flow those files could reach (soundness).
So the first publish shows only the findings of the top-level statements that no other file
can reach, decided from the document's own syntax and the project index, not by guessing:

- Top-level statements (a function, a class, an assignment, a block) are linked by the
  module-level names they bind and use. Plain constants (`LR = 3e-4`, a dict of literals) link
  nothing: no optimizer can hide in them; neither do imports of libraries (`torch`, `os`).
- A statement meets another file where it uses a name imported from the project (unless the
  index says that name is a plain constant there, `m.SCALE`), where it imports from the project
  itself, and where it binds a name a file of the project imports from this one (`from train
  import fit`; `import train`: every name). Until the index has read the workspace, every file
  may import any name.
- Everything linked to a statement that meets another file waits for the other files; the rest
  is final as it is.

The tracer follows objects across files only through names imported from one file into the
other (definitions, call sites, parameters), which is what makes the rule sound. An analysis
that links files another way (by an attribute's or a method's name alone) must mark what it
reaches here too. The rule is per statement, not per optimizer: a finer one (the flows a
construction reaches) can replace `withheld_lines` without changing its callers.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from typing import Callable

from .index import binding_kinds, statement_names

# What an import binding stands for, as the workspace answers for (module as written, name):
EXTERNAL = "external"   # not a file of the project
MODULE = "module"       # a module of the project (its attributes are asked about one by one)
CONST = "const"         # a name the index knows as a plain constant in its module
OPEN = "open"           # anything else of the project (or not known yet)

_BUILTINS = set(dir(builtins))


@dataclass
class _Item:
    first: int                 # 0-based lines, inclusive
    last: int
    binds: set[str] = field(default_factory=set)
    refs: set[tuple[str, str | None]] = field(default_factory=set)   # (name, first attribute)
    stores: set[str] = field(default_factory=set)      # attribute names assigned or defined
    loads: set[str] = field(default_factory=set)       # attribute names read
    used_calls: set = field(default_factory=set)      # (receiver's first name, method) called, the result kept
    assigned: set[str] = field(default_factory=set)    # every name it binds, locals included
    meets: bool = False        # reaches another file of the project by itself


@dataclass(frozen=True)
class Neighbours:
    """What the files a document is traced with do with attributes, by name (index facts):
    `attrs`, the attribute names they read; `returning`, their classes' methods that return a
    value. None: not known for every one of them yet."""
    attrs: frozenset | None = frozenset()
    returning: frozenset | None = frozenset()


# Names after a dot (comments and line continuations may sit between them) and after `def`.
_AFTER_DOT = re.compile(r"\.(?:\s|\\\r?\n|#[^\r\n]*)*([^\W\d]\w*)")
_DEFINED = re.compile(r"\bdef(?:\s|\\\r?\n)+([^\W\d]\w*)")


def rough_facts(text: str) -> dict:
    """For a file not indexed yet, a superset of its index facts' `attrs` (attribute names it
    reads) and `returning` (its classes' methods that return a value), read off the text."""
    return {"attrs": set(_AFTER_DOT.findall(text)), "returning": set(_DEFINED.findall(text))}


def withheld_lines(text: str, kind_of: Callable[[str, str | None], str], exported: set[str] | None,
                   neighbours: Neighbours = Neighbours(), chunks=None) -> list[tuple[int, int]] | None:
    """The (first, last) line ranges, 0-based, of the top-level statements whose findings wait
    for other files. `kind_of(module as written, name)` says what an import binds (EXTERNAL,
    MODULE, CONST, OPEN; name None: the module itself); `exported` the names files of the
    project import from this one (None: any name); `neighbours` what the files it is traced
    with do with attributes. `chunks`: the text's parsed chunks (document/parsed.py) with
    their first lines, [(line, chunk)]: each chunk's statements are read once and kept on it,
    so that an edit costs what it changed. None: everything waits (the text does not parse
    as Python)."""
    statements = _statements(text) if chunks is None else _chunked(chunks)
    if statements is None:
        return None
    kind_of = _memo(kind_of)
    imports: dict[str, tuple[str, str | None, bool]] = {}    # name -> (module, name, plain `import a.b`)
    sources: dict[str, set[str]] = {}          # name -> every module it is imported from
    bindings: dict[str, list] = {}
    star_open = False
    items: list[_Item] = []
    for first, last, names in statements:
        item = _Item(first, last)
        for name, bs in names.binds.items():
            bindings.setdefault(name, []).extend(bs)
        # What the statement binds other than imports (an import links to its module, not here).
        item.binds = {n for n, bs in names.binds.items() if any(k != "import" for k, _ in bs)}
        item.refs = names.refs
        item.stores, item.loads, item.used_calls = names.stores, names.loads, names.used_calls
        item.assigned = names.assigned
        for sub, nested in names.imports:
            for alias in sub.names:
                if isinstance(sub, ast.Import):
                    module, name, plain = alias.name, None, alias.asname is None
                    bound = alias.asname or alias.name.split(".")[0]
                else:
                    module, name, plain = "." * sub.level + (sub.module or ""), alias.name, False
                    bound = alias.asname or alias.name
                what = kind_of(module.split(".")[0] if plain else module, None if plain else name)
                if name == "*":
                    star_open = star_open or what != EXTERNAL
                elif nested:                # a local import: the name is used inside, unseen here
                    item.meets = item.meets or what not in (EXTERNAL, CONST)
                else:
                    imports[bound] = (module, name, plain)
                    sources.setdefault(bound, set()).add(module)
        items.append(item)
    kinds = binding_kinds(bindings)

    def meets(name: str, attr: str | None) -> bool:
        if name in imports:
            module, imported, plain = imports[name]
            if plain:                       # `import a.b` binds `a`: reads reach any of a's modules
                return kind_of(module.split(".")[0], None) != EXTERNAL
            what = kind_of(module, imported)
            if what == MODULE:              # `from proj import m` / `import proj.m as m`: m.<attr>
                if attr is None:
                    return True
                target = f"{module}.{imported}" if imported is not None else module
                if module.endswith("."):
                    target = f"{module}{imported}"
                return kind_of(target, attr) not in (EXTERNAL, CONST)
            return what not in (EXTERNAL, CONST)
        if name not in bindings and name not in _BUILTINS:
            return star_open                # from a `*` import of the project, perhaps
        return False

    # Which items bind each name (plain constants bind nothing that links), and which assign or
    # define each attribute name (the closed-world check matches reads to those by name).
    binders: dict[str, list[int]] = {}
    holders: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        for name in item.binds:
            if kinds.get(name) != "const":
                binders.setdefault(name, []).append(i)
        for name in item.stores:
            holders.setdefault(name, []).append(i)
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def library(root: str | None, item: _Item) -> bool:
        """Is the receiver a module of a library (`F.cross_entropy(...)`, F imported from torch)?
        Its functions are never a method of the project's classes (tracing.py agrees)."""
        if root is None or root not in imports or root in item.assigned \
                or any(k != "import" for k, _ in bindings.get(root, ())):
            return False
        return all(not m.startswith(".") and kind_of(m.split(".")[0], None) == EXTERNAL for m in sources[root])

    for i, item in enumerate(items):
        item.used_calls = {attr for root, attr in item.used_calls if not library(root, item)}
        if any(meets(n, a) for n, a in item.refs):
            item.meets = True
        shared = item.binds if exported is None else item.binds & exported
        if any(kinds.get(n) != "const" for n in shared):
            item.meets = True
        # Another file reading an attribute it assigns, or defining the method whose result it keeps.
        if neighbours.attrs is None or neighbours.returning is None:
            if item.stores or item.used_calls:
                item.meets = True
        elif item.stores & neighbours.attrs or item.used_calls & neighbours.returning:
            item.meets = True
        for name, _ in item.refs:
            for j in binders.get(name, ()):
                parent[find(i)] = find(j)
        for name in item.loads:
            for j in holders.get(name, ()):
                parent[find(i)] = find(j)
    reached = {find(i) for i, item in enumerate(items) if item.meets}
    return [(item.first, item.last) for i, item in enumerate(items) if find(i) in reached]


def _statements(text: str, offset: int = 0) -> list[tuple[int, int, object]] | None:
    """Each top-level statement's (first line, last line, statement_names), lines 0-based."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    out = []
    for stmt in tree.body:
        first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])]) - 1
        out.append((offset + first, offset + (stmt.end_lineno or stmt.lineno) - 1, statement_names(stmt)))
    return out


def _chunked(chunks) -> list[tuple[int, int, object]] | None:
    out = []
    for line, chunk in chunks:
        if "settled" not in chunk.cache:
            chunk.cache["settled"] = _statements(chunk.text)
        found = chunk.cache["settled"]
        if found is None:
            return None
        out.extend((line + first, line + last, names) for first, last, names in found)
    return out


def _memo(kind_of):
    known: dict = {}

    def kind(module: str, name: str | None) -> str:
        key = (module, name)
        if key not in known:
            known[key] = kind_of(module, name)
        return known[key]
    return kind
