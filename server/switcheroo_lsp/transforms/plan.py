"""Which statements a set of fixes changes, and into what.

A plan collects, per statement, its change: replaced by new statements (or removed), a node
inside it swapped (the torch construction `Call` for its Optax expression), comment lines and
statements to put before or after it. Fixes compose through it: the optimizer's construction is
rewritten once with everything folded into it (schedule, clipping), whichever fixes asked, and
imports follow from what the new code uses. `render.py` applies a plan with libcst.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from ..analysis.arguments import code
from ..analysis.facts import StmtContext
from ..analysis.findings import Site
from ..analysis.program import chunk_facts
from ..analysis.tracing import Identity
from ..knowledge import catalog
from ..knowledge.emit import Extras, rename_optax
from . import construction


@dataclass(eq=False)
class Change:
    """What happens to one statement (a small statement, or a compound one's header)."""
    ctx: StmtContext
    texts: list | None = None         # replaced by these (statement texts or nodes; "# ..." are comment
                                      # lines above them); [] removes it; None keeps it
    swap: tuple | None = None         # (a node inside it, its replacement)
    before: list[str] = field(default_factory=list)     # comment lines and statements above it
    after: list[str] = field(default_factory=list)      # statements after it
    zero_grad: bool = False           # a removed zero_grad(): its trailing comment may go with it


@dataclass
class Plan:
    changes: dict[int, Change] = field(default_factory=dict)

    def change(self, ctx: StmtContext) -> Change:
        c = self.changes.get(id(ctx.stmt))
        if c is None:
            c = self.changes[id(ctx.stmt)] = Change(ctx)
        return c

    def replace(self, ctx: StmtContext, texts: list) -> None:
        self.change(ctx).texts = list(texts)

    def add_before(self, ctx: StmtContext, texts: list[str]) -> None:
        _add_unique(self.change(ctx).before, texts)

    def add_after(self, ctx: StmtContext, texts: list[str]) -> None:
        _add_unique(self.change(ctx).after, texts)

    def written(self) -> str:
        """All the code the plan writes (to decide which imports it needs)."""
        parts = []
        for c in self.changes.values():
            for t in (c.texts or []) + c.before + c.after:
                parts.append(t if isinstance(t, str) else code(t))
            if c.swap is not None:
                parts.append(code(c.swap[1]))
        return "\n".join(parts)

    def __bool__(self) -> bool:
        return bool(self.changes)


def _add_unique(have: list, texts: list) -> None:
    have.extend(t for t in texts if t not in have)


@dataclass
class _Folded:
    """What fixes fold into one optimizer's construction."""
    learning_rate: str | None = None
    momentum: str | None = None
    prefix: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)

    def extras(self) -> Extras | None:
        if self.learning_rate is None and self.momentum is None and not self.prefix:
            return None
        return Extras(self.learning_rate, self.momentum, tuple(self.prefix))


class Planner:
    def __init__(self, result):
        self.r = result
        self.program = result.program
        self.builder = result.builder
        self.target = result.target
        self.source = result.doc.source
        self.optax_name = optax_name(result.program)
        self.rewritten: dict[Identity, tuple] = {}      # ident -> (emission, extras) as last planned

    def plan(self, sites: list[Site]) -> Plan:
        plan = Plan()
        seen: set[int] = set()
        used: list[Site] = []
        folded: dict[Identity, _Folded] = {}
        constructs: dict[Identity, Site] = {}
        for site in sites:
            # One statement may carry several findings (OPX102 + OPX203): plan it once.
            if id(site.ctx.stmt) in seen:
                continue
            seen.add(id(site.ctx.stmt))
            used.append(site)
            kind = site.finding.kind
            if kind == "construct":
                constructs[site.identity] = site
            elif kind in ("schedule", "schedule_undefined"):
                self._plan_schedule(site, plan, folded)
            elif kind == "clip":
                folded.setdefault(site.identity, _Folded()).prefix.append(site.clip)
                keep = [f"{site.norm_target} = {self.optax_name}.global_norm({site.norm_grads})"] \
                    if site.norm_target else []
                plan.replace(site.ctx, keep)
            elif kind == "sched_step":
                plan.replace(site.ctx, self._scheduler_step_texts(site))
            elif kind in ("step", "undefined"):
                plan.replace(site.ctx, self._step_texts(site))
                if site.state_init is not None:
                    init_ctx, texts = site.state_init
                    plan.add_after(init_ctx, texts)
            elif kind == "zero_grad":
                plan.replace(site.ctx, [])
                plan.change(site.ctx).zero_grad = True
        converted: list[tuple[cst.Call, StmtContext]] = []
        for ident in list(constructs) + [i for i in folded if i not in constructs]:
            site = constructs.get(ident) or self.r.construct_sites.get(ident)
            if self._plan_optimizer(ident, site, folded.get(ident), plan) and ident.kind == "torch":
                converted.append((ident.call, ident.ctx))
        for site in used:
            if site.finding.kind in ("schedule", "schedule_undefined"):
                converted.append((site.sched.call, site.sched.ctx))
                for member in site.absorbed:
                    value = getattr(member.stmt, "value", None)
                    if isinstance(value, cst.Call):
                        converted.append((value, member))
            elif site.finding.kind == "clip":
                converted.append((site.ctx.stmt.value, site.ctx))
        self._plan_imports(plan, converted)
        return plan

    # -- the pieces ---------------------------------------------------------------------------
    def _plan_schedule(self, site: Site, plan: Plan, folded: dict[Identity, _Folded]) -> None:
        schedule, ctx = site.schedule, site.ctx
        if schedule.kind == "plateau":
            target = code(site.sched.target) if site.sched.target is not None else "plateau"
            texts = [f"{target} = {schedule.text}",
                     f"{site.plateau_state} = {target}.init({site.names.params})"]
            plan.replace(ctx, [rename_optax(t, self.optax_name) for t in texts])
            return
        plan.replace(ctx, [])
        for member in site.absorbed:
            plan.replace(member, [])
        f = folded.setdefault(site.identity, _Folded())
        f.learning_rate, f.momentum = schedule.text, schedule.momentum or None
        if site.steps_per_epoch_missing:
            f.todo.append("# TODO(switcheroo): define steps_per_epoch (optimizer updates per epoch) for the schedule")

    def _plan_optimizer(self, ident: Identity, site: Site | None, folded: _Folded | None, plan: Plan) -> bool:
        """Rewrite the optimizer's construction once, with everything folded into it."""
        extras = folded.extras() if folded else None
        ctx = ident.ctx
        if ctx is None:
            return False
        indent = self.source.indent_of(self.program.span(ctx.stmt, ctx).start.line)
        todo = []
        if ident.kind == "torch":
            if site is None or site.emission is None:
                return False
            emission = self.builder.emission(ident, extras) if extras is not None else site.emission
            if emission is None or emission.problems:
                return False
            if emission.placeholders:
                todo = [f"# TODO(switcheroo): {emission.notes[0]}"]
            row = catalog.OPTIMIZERS[ident.name]
            new = construction.build(ident.call, emission, _named_args(row, ident.call), self.optax_name, indent,
                                     self.source_default_indent(ctx))
            self.rewritten[ident] = (emission, extras)
        elif ident.kind == "optax" and extras is not None:
            new = construction.patch_optax(ident.call, extras.learning_rate, extras.prefix, self.optax_name)
        else:
            return False
        change = plan.change(ctx)
        change.swap = (ident.call, new)
        plan.add_before(ctx, list(folded.todo if folded else []) + todo)
        if ident.kind == "torch" and ident.target is not None and site.names is not None:
            lines = self.target.init_lines(code(ident.target), site.names)
            missing = self.builder._init_missing(ident, site.names)
            if missing:
                lines = [f"# TODO(switcheroo): define {', '.join(missing)} here (the parameter pytree to optimize)"] \
                    + lines
            plan.add_after(ctx, lines)
        return True

    def source_default_indent(self, ctx: StmtContext) -> str:
        module = ctx.chunk.module
        return module.default_indent if module is not None else "    "

    def _step_texts(self, site: Site) -> list[str]:
        texts = []
        if site.missing:
            texts.append(f"# TODO(switcheroo): define {', '.join(site.missing)} here "
                         f"({self.target.grads_hint(site.names)})")
        return texts + self.target.step_lines(site.receiver, site.names, site.plateau_state, self.optax_name)

    def _scheduler_step_texts(self, site: Site) -> list[str]:
        if site.schedule.kind != "plateau":
            return []
        state = site.plateau_state
        return [f"_, {state} = {site.receiver}.update(updates={site.names.params}, state={state}, "
                f"value={site.metric})"]

    # -- imports ------------------------------------------------------------------------------
    def _module_binds(self, name: str, qualified: str) -> bool:
        return any(b.kind == "import" and b.qualified == qualified
                   for b in self.program.module.bindings.get(name, []))

    def _plan_imports(self, plan: Plan, converted: list[tuple[cst.Call, StmtContext]]) -> None:
        """Add what the new code uses, once, after the imports; drop torch imports it left unused."""
        written = plan.written()
        needed = []
        if f"{self.optax_name}." in written and not self._module_binds(self.optax_name, "optax"):
            needed.append("import optax")
        if "jnp." in written and not self._module_binds("jnp", "jax.numpy"):
            needed.append("import jax.numpy as jnp")
        if f"{catalog.HELPERS}." in written and not self._module_binds(catalog.HELPERS, catalog.HELPERS):
            needed.append(f"import {catalog.HELPERS}")
        self._plan_unused_imports(plan, converted)
        if not needed:
            return
        anchor, first, docstring = _import_anchor(self.program)
        if anchor is not None:
            plan.add_after(anchor, needed)
        elif docstring is not None:
            plan.add_after(docstring, needed)
        elif first is not None:
            plan.add_before(first, needed)

    def _plan_unused_imports(self, plan: Plan, converted: list[tuple[cst.Call, StmtContext]]) -> None:
        """Drop `torch.optim` (and clipping) import aliases whose every use the fix converted."""
        if not converted:
            return
        candidates: dict[str, tuple[StmtContext, cst.ImportAlias]] = {}
        for ctx in self.program.imports:
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
                else:
                    continue   # `import torch.optim` binds `torch`: never ours to drop
                if q == "torch.optim" or q.startswith(("torch.optim.", "torch.nn.utils.clip_grad")):
                    candidates[bound] = (ctx, alias)
        if not candidates:
            return
        # Count the name's occurrences in the text, not in a tree walk (that would cost a pass
        # over the whole module per code action). Text counts every use and then some (comments,
        # strings), so an alias is dropped only when every occurrence lies in converted code.
        text = self.source.text
        ranges = []
        for call, ctx in converted:
            span = self.program.span(call.func, ctx)
            ranges.append((self.source.offset(span.start), self.source.offset(span.end)))
        drop: dict[int, tuple[StmtContext, set[int]]] = {}
        for name, (ctx, alias) in candidates.items():
            span = self.program.span(ctx.stmt, ctx)
            own = (self.source.offset(span.start), self.source.offset(span.end))
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


def _named_args(row, call: cst.Call) -> dict[str, cst.Arg]:
    """The call's Args by torch's argument names."""
    names = ["params"] + [n for n, _ in row.signature]
    out, index = {}, 0
    for arg in call.args:
        if arg.star:
            continue
        if arg.keyword is not None:
            out[arg.keyword.value] = arg
        else:
            if index < len(names):
                out[names[index]] = arg
            index += 1
    return out


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


def title(site: Site) -> str:
    kind = site.finding.kind
    if kind == "construct":
        t = f"Convert to {site.emission.head}"
        return t if site.emission.exact else t + " (approximate)"
    if kind in ("step", "undefined"):
        return f"Convert {site.receiver}.step() to {site.receiver}.update + optax.apply_updates"
    if kind in ("schedule", "schedule_undefined"):
        if site.schedule.kind == "plateau":
            return "Convert ReduceLROnPlateau to optax.contrib.reduce_on_plateau"
        return f"Fold {site.sched.name} into the optimizer's learning_rate"
    if kind == "sched_step":
        if site.schedule.kind == "plateau":
            return f"Convert {site.receiver}.step(metric) to a reduce_on_plateau update"
        return f"Remove {site.receiver}.step(): the schedule advances with every update"
    if kind == "clip":
        return f"Fold the clipping into the optimizer: {site.clip}"
    return "Remove zero_grad(): JAX gradients are not accumulated"
