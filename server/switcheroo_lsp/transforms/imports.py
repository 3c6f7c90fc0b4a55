"""Imports: add what the new code uses (`import optax`, `jax.numpy as jnp`, `switcheroo_optax`,
the target's, e.g. `from flax import nnx`) once, after the file's leading imports; drop the `torch.optim` imports the fixes left unused."""

from __future__ import annotations

import re

import libcst as cst

from ..analysis.arguments import code
from ..analysis.facts import StmtContext
from ..analysis.program import chunk_facts
from ..knowledge import catalog, factories, libraries, schedules
from .changes import Plan


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
    for extra in p.target.imports:      # the target's own (`from flax import nnx`)
        if f"{extra.name}." in written and not _module_binds(p, extra.name, extra.qualified):
            needed.append(extra.statement)
    _plan_unused_imports(p, plan, converted)
    if not needed:
        return
    anchor, first, docstring = _import_anchor(p.program)
    if anchor is not None:
        plan.add_after(anchor, needed)
    elif docstring is not None:
        plan.add_after(docstring, needed)
    elif first is not None:
        plan.add_before(first, needed)

def _plan_unused_imports(p, plan: Plan, converted: list[tuple[cst.Call, StmtContext]]) -> None:
    """Drop `torch.optim` (and clipping) import aliases, and those of the libraries whose optimizers
    the catalog knows (`import bitsandbytes as bnb`), whose every use the fix converted."""
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
            else:
                continue   # `import torch.optim` binds `torch`: never ours to drop
            if q == "torch.optim" or q.startswith(("torch.optim.", "torch.nn.utils.clip_grad")) or (
                    q in catalog.CLASSES or q in libraries.UNMAPPED or q in libraries.MODULES
                    or q in factories.TIMM_PATHS or q in factories.ZERO_PATHS or q in factories.SCHEDULE_FACTORIES
                    or q in schedules.SCHEDULER_CLASSES):
                candidates[bound] = (ctx, alias)
    if not candidates:
        return
    # Count the name's occurrences in the text, not in a tree walk (that would cost a pass
    # over the whole module per code action). Text counts every use and then some (comments,
    # strings), so an alias is dropped only when every occurrence lies in converted code.
    text = p.source.text
    ranges = []
    for call, ctx in converted:
        span = p.program.span(call.func, ctx)
        ranges.append((p.source.offset(span.start), p.source.offset(span.end)))
    drop: dict[int, tuple[StmtContext, set[int]]] = {}
    for name, (ctx, alias) in candidates.items():
        span = p.program.span(ctx.stmt, ctx)
        own = (p.source.offset(span.start), p.source.offset(span.end))
        hits = [h for h in _name_uses(text, name) if not own[0] <= h < own[1]]
        inside = [h for h in hits if any(a <= h < b for a, b in ranges)]
        if inside and len(inside) == len(hits):
            drop.setdefault(id(ctx.stmt), (ctx, set()))[1].add(id(alias))
    for ctx, aliases in drop.values():
        stmt = ctx.stmt
        kept = [a for a in stmt.names if id(a) not in aliases]
        if not kept:
            plan.replace(ctx, [])
        else:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            plan.replace(ctx, [stmt.with_changes(names=kept)])


def optax_name(program) -> str:
    """What the file calls optax (`import optax as ox`)."""
    for ctx in program.imports:
        stmt = ctx.stmt
        if isinstance(stmt, cst.Import):
            for alias in stmt.names:
                if code(alias.name) == "optax":
                    return alias.asname.name.value if alias.asname is not None else "optax"
    return "optax"


def _import_anchor(program):
    """(the statement new imports go after: the last of the leading import block (after a
    docstring and `from __future__` imports), the first statement, the docstring)."""
    last = first = docstring = None
    for i, chunk in enumerate(program.doc.chunks):
        if chunk.module is None or not chunk.module.body:
            continue
        facts = chunk_facts(chunk)
        top = chunk.module.body[0]
        ctxs = [c for c in facts.statements if c.line is top or c.unit is top]
        if not ctxs:
            continue
        if first is None:
            first = ctxs[0]
            if isinstance(top, cst.SimpleStatementLine) and len(top.body) == 1 and isinstance(
                    top.body[0], cst.Expr) and isinstance(top.body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
                docstring = ctxs[0]
                continue
        if isinstance(top, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom))
                                                            for s in top.body):
            last = ctxs[-1]
        elif isinstance(top, cst.Try) and isinstance(top.body, cst.IndentedBlock) and all(
                isinstance(s, cst.SimpleStatementLine) and all(isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body)
                for s in top.body.body):
            last = next(c for c in ctxs if c.unit is top)
        else:
            break
    return last, first, docstring


_NAME_CHAR = re.compile(r"[\w.]")


def _name_uses(text: str, name: str) -> list[int]:
    """Offsets of `name` as a whole name, not an attribute (`x.name`) or part of a longer one.
    The preceding character is checked by hand: a look-behind in the pattern would defeat re's
    fast literal search (5-19 ms per name at 5,000 lines, on every code action)."""
    return [m.start() for m in re.finditer(rf"{re.escape(name)}\b", text)
            if m.start() == 0 or not _NAME_CHAR.match(text, m.start() - 1)]
