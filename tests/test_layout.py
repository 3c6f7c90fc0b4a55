"""The package reads as its data flow: document -> analysis -> knowledge -> transforms -> edits
-> front ends, with no import cycles (lazy and type-checking imports counted) and a docstring on
every module saying what it owns."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "switcheroo_lsp"
# Which layer may import which (a layer may always import itself and the ones listed).
ALLOWED = {
    "document": set(),
    "knowledge": set(),
    "analysis": {"document", "knowledge"},
    "targets": {"analysis"},
    "transforms": {"analysis", "document", "knowledge"},
    "edits": {"analysis", "document"},
    "engine": {"analysis", "document", "knowledge", "targets", "transforms", "edits"},
    "frontends": {"engine", "analysis", "document", "knowledge", "targets", "notebooks", "verify"},
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("switcheroo_lsp",) + parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str], everywhere: bool = False) -> set[str]:
    """Package modules imported at module level (not under `if TYPE_CHECKING:`); `everywhere`:
    also inside functions and under `if TYPE_CHECKING:` (a lazy import is still a dependency)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in (ast.walk(tree) if everywhere else tree.body):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            target = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {f for f in found if f in known and f != name}


def test_no_import_cycles():
    """No cycle between modules, counting every import: inside a function (done lazily to
    keep torch out of the CLI's start) or for type checking only, a cycle is still a cycle."""
    mods = modules()
    known = set(mods)
    graph = {name: imports_of(name, path, known, everywhere=True) for name, path in mods.items()}
    # Packages import their submodules through __init__: judge modules, not package inits.
    visiting, done, cycles = set(), set(), []

    def visit(n, stack):
        if n in done:
            return
        if n in visiting:
            cycles.append(stack[stack.index(n):] + [n])
            return
        visiting.add(n)
        for m in graph[n]:
            if mods[m].name != "__init__.py":
                visit(m, stack + [m])
        visiting.discard(n)
        done.add(n)

    for n in graph:
        visit(n, [n])
    assert not cycles, cycles


def test_layers_import_only_what_comes_before_them():
    mods = modules()
    known = set(mods)
    for name, path in mods.items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in ALLOWED:
            continue
        layer = parts[1]
        for target in imports_of(name, path, known):
            other = target.split(".")[1] if "." in target else ""
            if other in ("", "__version__") or other == layer:
                continue
            assert other in ALLOWED[layer], f"{name} ({layer}) imports {target} ({other})"


def test_every_module_says_what_it_owns():
    for name, path in modules().items():
        if path.name == "__main__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 20, f"{name} has no docstring"
