"""Imports: add what the new code uses (`import optax`, `jax.numpy as jnp`, `switcheroo_optax`,
the target's, e.g. `from flax import nnx`) once, with the file's third-party imports
(import_sections.py says where); drop the `torch.optim` imports the fixes left unused."""

from __future__ import annotations

import bisect
import re

import libcst as cst

from ..analysis.arguments import code
from ..analysis.facts import StmtContext, dotted
from ..analysis.program import chunk_facts
from ..knowledge import catalog, factories, libraries, schedules
from .changes import Plan
from .import_sections import place, section


def _module_binds(p, name: str, qualified: str) -> bool:
    return any(b.kind == "import" and b.qualified == qualified
               for b in p.program.module.bindings.get(name, []))

def plan_imports(p, plan: Plan, converted: list[tuple[cst.Call, StmtContext]]) -> None:
    """Add what the new code uses, once, after the imports; drop torch imports it left unused."""
    written = plan.written()
    needed = []
    if f"{p.optax_name}." in written and not _module_binds(p, p.optax_name, "optax"):
        needed.append("import optax")
    if "jnp." in written and not _module_binds(p, "jnp", "jax.numpy"):
        needed.append("import jax.numpy as jnp")
    if f"{catalog.HELPERS}." in written and not _module_binds(p, catalog.HELPERS, catalog.HELPERS):
        needed.append(f"import {catalog.HELPERS}")
    canonical = ["import optax", "import jax.numpy as jnp", f"import {catalog.HELPERS}"]
    for extra in p.target.imports:      # the target's own (`from flax import nnx`)
        canonical.append(extra.statement)
        if f"{extra.name}." in written and not _module_binds(p, extra.name, extra.qualified):
            needed.append(extra.statement)
    changed = set(plan.changes)             # before the unused imports' removal: those may anchor
    _plan_unused_imports(p, plan, converted)
    if not needed:
        return
    imports, first, docstring = _module_imports(p.program, changed)
    later = _ours_after(imports, canonical, needed)
    if later is not None:
        # One an earlier fix added that fix-all writes after these: before it, so that fixes
        # taken one at a time order the imports as fix-all does.
        plan.add_before(later, needed)
    elif imports:
        at, where = place([s for _, s in imports])
        (plan.add_after if where == "after" else plan.add_before)(imports[at][0], needed)
    elif docstring is not None:
        plan.add_after(docstring, needed)
    elif first is not None:
        plan.add_before(first, needed)

def _plan_unused_imports(p, plan: Plan, converted: list[tuple[cst.Call, StmtContext]]) -> None:
    """Drop the `torch.optim` (and clipping) imports whose every use the fix converted: `from
    torch import optim`, `import torch.optim as optim`, `from torch.optim import Adam as A`,
    and `import torch.optim` itself where another import binds `torch`; and those of the
    libraries whose optimizers the catalog knows (`import bitsandbytes as bnb`)."""
    if not converted:
        return
    candidates: dict[str, tuple[StmtContext, cst.ImportAlias]] = {}
    for ctx in p.program.imports:
        stmt = ctx.stmt
        if isinstance(stmt.names, cst.ImportStar):
            continue
        for alias in stmt.names:
            name = code(alias.name)
            asname = alias.asname.name.value if alias.asname is not None else None
            if isinstance(stmt, cst.ImportFrom):
                if stmt.relative or stmt.module is None:
                    continue
                q, bound = f"{code(stmt.module)}.{name}", asname or name
            elif asname:
                q, bound = name, asname
            elif name.split(".")[0] in libraries.ROOTS:
                q, bound = name, name.split(".")[0]   # `import lion_pytorch`: the library's own name
            elif _binds_torch_elsewhere(p.program, ctx):
                q, bound = name, name      # `import torch.optim`: the dotted name is what its uses spell
            else:
                continue   # the file's only `import torch...`: it binds `torch` for the rest
            if q == "torch.optim" or q.startswith(("torch.optim.", "torch.nn.utils.clip_grad")) or (
                    q in catalog.CLASSES or q in libraries.UNMAPPED or q in libraries.MODULES
                    or q in factories.TIMM_PATHS or q in factories.ZERO_PATHS or q in factories.SCHEDULE_FACTORIES
                    or q in schedules.SCHEDULER_CLASSES):
                candidates[bound] = (ctx, alias)
    if not candidates:
        return
    # The name's occurrences are found in the text, not in a tree walk (that would cost a pass
    # over the whole module per code action); an occurrence outside converted code is then
    # looked at in its own top-level statement's tree (a comment, a string, `optim=` as a
    # keyword and `x.optim` are no uses).
    text = p.source.text
    ranges, skip = [], set()
    for call, ctx in converted:
        span = p.program.span(call.func, ctx)
        ranges.append((p.source.offset(span.start), p.source.offset(span.end)))
        skip.add(id(call.func))
    drop: dict[int, tuple[StmtContext, set[int]]] = {}
    for name, (ctx, alias) in candidates.items():
        span = p.program.span(ctx.stmt, ctx)
        own = (p.source.offset(span.start), p.source.offset(span.end))
        hits = [h for h in _name_uses(text, name) if not own[0] <= h < own[1]]
        outside = [h for h in hits if not any(a <= h < b for a, b in ranges)]
        if len(outside) == len(hits) or _used(p.program.doc, outside, name, skip):
            continue        # no use converted (not ours to drop), or a use left
        drop.setdefault(id(ctx.stmt), (ctx, set()))[1].add(id(alias))
    for ctx, aliases in drop.values():
        stmt = ctx.stmt
        kept = [a for a in stmt.names if id(a) not in aliases]
        if not kept:
            plan.replace(ctx, [])
        else:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            plan.replace(ctx, [stmt.with_changes(names=kept)])


def _binds_torch_elsewhere(program, ctx: StmtContext) -> bool:
    """Does another module-level import bind `torch` (`import torch`, `import torch.nn`)?"""
    return any(b.kind == "import" and b.ctx is not None and b.ctx.stmt is not ctx.stmt
               for b in program.module.bindings.get("torch", []))


def _used(doc, offsets: list[int], name: str, skip: set[int]) -> bool:
    """Is `name` (dotted or not) used as a name in the top-level statements holding these
    offsets, outside the nodes in `skip` (the converted code)?"""
    chunks = {bisect.bisect_right(doc.starts, h) - 1 for h in offsets}
    for i in sorted(chunks):
        module = doc.chunks[i].module if i >= 0 else None
        if module is None:
            return True
        uses = _Uses(name.split("."), skip)
        module.visit(uses)
        if uses.found:
            return True
    return False


class _Uses(cst.CSTVisitor):
    """Finds `name` (`optim`, `torch.optim`) where it is read or written as a name; not as an
    attribute (`x.optim`), a keyword (`f(optim=...)`), a parameter's name or in an import."""

    def __init__(self, parts: list[str], skip: set[int]):
        super().__init__()
        self.parts, self.skip, self.found = parts, skip, False

    def on_visit(self, node) -> bool:
        if self.found or id(node) in self.skip or isinstance(node, (cst.Import, cst.ImportFrom)):
            return False
        if isinstance(node, cst.Attribute):
            if dotted(node) == self.parts:
                self.found = True
                return False
            node.value.visit(self)          # not its `.attr`
            return False
        if isinstance(node, cst.Name):
            if self.parts == [node.value]:
                self.found = True
            return False
        if isinstance(node, cst.Arg):
            node.value.visit(self)          # not its keyword
            return False
        if isinstance(node, cst.Param):
            for part in (node.annotation, node.default):
                if part is not None:
                    part.visit(self)
            return False
        return True


def optax_name(program) -> str:
    """What the file calls optax (`import optax as ox`)."""
    for ctx in program.imports:
        stmt = ctx.stmt
        if isinstance(stmt, cst.Import):
            for alias in stmt.names:
                if code(alias.name) == "optax":
                    return alias.asname.name.value if alias.asname is not None else "optax"
    return "optax"


def _module_imports(program, changed: set[int]):
    """(the module-level imports new ones may go among, with their isort sections; the first
    statement; the docstring). Read from the top (after a docstring) down to the first `def`,
    `class` or other compound statement, or the first statement a fix changes: code between
    imports (`warnings.filterwarnings(...)`, `matplotlib.use("Agg")`) is stepped over."""
    first_party = _first_party(program)
    found, first, docstring = [], None, None
    for chunk in program.doc.chunks:
        if chunk.module is None or not chunk.module.body:
            continue
        facts = chunk_facts(chunk)
        for top in chunk.module.body:
            ctxs = [c for c in facts.statements if c.line is top or c.unit is top]
            if not ctxs:
                continue
            if first is None:
                first = ctxs[0]
                if isinstance(top, cst.SimpleStatementLine) and len(top.body) == 1 and isinstance(
                        top.body[0], cst.Expr) and isinstance(top.body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
                    docstring = ctxs[0]
                    continue
            if isinstance(top, cst.SimpleStatementLine):
                for ctx in ctxs:
                    if isinstance(ctx.stmt, (cst.Import, cst.ImportFrom)):
                        found.append((ctx, _section(ctx.stmt, first_party)))
                    elif id(ctx.stmt) in changed:
                        return found, first, docstring
            elif isinstance(top, cst.Try) and isinstance(top.body, cst.IndentedBlock) and top.body.body and all(
                    isinstance(s, cst.SimpleStatementLine) and all(isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body)
                    for s in top.body.body):
                found.append((next(c for c in ctxs if c.unit is top), _section(top.body.body[0].body[0], first_party)))
            else:
                return found, first, docstring
    return found, first, docstring


def _ours_after(imports, canonical: list[str], needed: list[str]):
    """The first import line of the file that is one fix-all would write after `needed`."""
    rank = max(canonical.index(n) for n in needed if n in canonical) if any(n in canonical for n in needed) else None
    if rank is None:
        return None
    for ctx, _ in imports:
        text = cst.Module([]).code_for_node(ctx.stmt)
        if text in canonical and canonical.index(text) > rank:
            return ctx
    return None


def _section(stmt, first_party: frozenset[str]) -> str:
    if isinstance(stmt, cst.ImportFrom):
        return section(code(stmt.module) if stmt.module is not None else None, len(stmt.relative), first_party)
    return section(code(stmt.names[0].name), 0, first_party)


def _first_party(program) -> frozenset[str]:
    """The top-level names of the project's own modules: the document's package and the project
    modules it imports, whether or not they were read yet (a first analysis, made before other
    files are read, places an import where the complete one does)."""
    name = program.primary.module_name
    return program.first_party | (frozenset({name.split(".", 1)[0]}) if name else frozenset())


_NAME_CHAR = re.compile(r"[\w.]")


def _name_uses(text: str, name: str) -> list[int]:
    """Offsets of `name` as a whole name, not an attribute (`x.name`) or part of a longer one.
    The preceding character is checked by hand: a look-behind in the pattern would defeat re's
    fast literal search (5-19 ms per name at 5,000 lines, on every code action)."""
    return [m.start() for m in re.finditer(rf"{re.escape(name)}\b", text)
            if m.start() == 0 or not _NAME_CHAR.match(text, m.start() - 1)]
