"""The pure core: source text in; findings, fixes and explanations out.

`analyze(text)` parses once (Python's `ast`), traces optimizers, and returns an `Analysis`
holding the findings. Fixes and hovers are computed from that analysis on request, never by
parsing again; the server keeps one analysis per document version.

Fixes compose: a plan collects, per statement, what replaces it; the optimizer construction is
rewritten once with everything folded into it (schedule, clipping), whichever fixes asked.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property

from . import catalog, param_groups
from .builder import NOQA, Builder
from .emit import Extras, emit
from .findings import Finding, Fix, Names, Site, TextEdit
from .rewrite import Plan, insertion_line_stmt, render
from .scopes import ModuleFacts, StmtContext, collect
from .source import Pos, Source, Span
from .tracing import Identity, Tracer

__all__ = ["analyze", "Analysis", "Names", "Site"]


@dataclass(frozen=True)
class ConstructionRewrite:
    """A torch optimizer construction and the Optax expression fix-all writes in its place."""
    span: Span              # the torch call
    torch: str              # 'torch.optim.AdamW'
    call: str               # the call's source text
    optax: str              # the whole Optax expression, on one line (schedule and clipping folded in)
    schedule: str | None    # the learning-rate schedule folded in, if any
    clip: tuple[str, ...]   # clipping transforms folded in first, if any
    exact: bool             # False: an "(approximate)" rewrite


@dataclass
class SyntaxProblem:
    message: str
    pos: Pos


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


@dataclass
class Analysis:
    source: Source
    findings: list[Finding] = field(default_factory=list)
    syntax_error: SyntaxProblem | None = None
    facts: ModuleFacts | None = None
    tracer: Tracer | None = None
    _sites: dict[int, Site] = field(default_factory=dict)
    construct_sites: dict[Identity, Site] = field(default_factory=dict)
    _fix_all_memo: dict = field(default_factory=dict)
    kept: frozenset = frozenset()     # torch optimizers whose construction `# noqa` keeps as torch
    _rewritten: dict = field(default_factory=dict)   # Identity -> the expression the last plan wrote

    # -- fixes ----------------------------------------------------------------------------
    def fix(self, key: int) -> Fix | None:
        site = self._sites.get(key)
        if site is None or not site.finding.fixable:
            return None
        return Fix(_title(site), render(self.source, self._plan([site])))

    def fix_all(self, keys: set[int] | None = None) -> list[TextEdit]:
        """Every fix of the file as one consistent set of minimal edits (memoised: editors ask
        for code actions on every cursor move)."""
        memo_key = None if keys is None else frozenset(keys)
        if memo_key not in self._fix_all_memo:
            # An optimizer that `# noqa` keeps torch keeps everything about it torch too.
            sites = [s for k, s in self._sites.items() if s.finding.fixable and (keys is None or k in keys)
                     and not (s.ids and s.ids <= self.kept) and s.identity not in self.kept]
            self._fix_all_memo[memo_key] = render(self.source, self._plan(sites)) if sites else []
        return self._fix_all_memo[memo_key]

    def ignore_fix(self, key: int) -> Fix | None:
        """`# noqa: CODE` at the end of the line where the finding's statement starts."""
        finding = self.findings[key] if 0 <= key < len(self.findings) else None
        if finding is None:
            return None
        line = finding.ignore_line
        text = self.source.line(line)
        m = NOQA.search(text)
        if m and m.group("codes"):
            codes = m.group("codes").rstrip()
            new = text[:m.start("codes")] + codes + ", " + finding.code + text[m.start("codes") + len(codes):]
        elif m:
            return None   # a bare `# noqa` already suppresses everything
        else:
            new = text.rstrip() + f"  # noqa: {finding.code}"
        return Fix(f"Ignore {finding.code} on this line",
                   [TextEdit(Span(Pos(line, 0), Pos(line, len(text))), new)], preferred=False)

    # -- planning ---------------------------------------------------------------------------
    def _plan(self, sites: list[Site]) -> Plan:
        plan = Plan()
        seen: set[ast.stmt] = set()
        used: list[Site] = []
        folded: dict[Identity, _Folded] = {}
        constructs: dict[Identity, Site] = {}
        for site in sites:
            # One statement may carry several findings (OPX102 + OPX203): plan it once.
            if site.ctx.stmt in seen:
                continue
            seen.add(site.ctx.stmt)
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
                plan.set(site.ctx.stmt, site.ctx.body, keep)
            elif kind == "sched_step":
                plan.set(site.ctx.stmt, site.ctx.body, self._scheduler_step_texts(site))
            elif kind in ("step", "undefined"):
                plan.set(site.ctx.stmt, site.ctx.body, self._step_texts(site))
                if site.state_init is not None:
                    init_ctx, texts = site.state_init
                    plan.after(init_ctx.stmt, init_ctx.body, texts)
            elif kind == "zero_grad":
                plan.set(site.ctx.stmt, site.ctx.body, [])
        converted: list[ast.Call] = []
        for ident in list(constructs) + [i for i in folded if i not in constructs]:
            site = constructs.get(ident) or self.construct_sites.get(ident)
            if self._plan_optimizer(ident, site, folded.get(ident), plan) and ident.kind == "torch":
                converted.append(ident.call)
        for site in used:
            if site.finding.kind in ("schedule", "schedule_undefined"):
                converted.append(site.sched.call)
                converted.extend(c.stmt.value for c in site.absorbed if isinstance(c.stmt, (ast.Assign, ast.Expr)))
            elif site.finding.kind == "clip":
                converted.append(site.ctx.stmt.value)
        self._plan_imports(plan, converted)
        return plan

    def _plan_schedule(self, site: Site, plan: Plan, folded: dict[Identity, _Folded]) -> None:
        schedule, ctx = site.schedule, site.ctx
        if schedule.kind == "plateau":
            target = self.source.node_text(site.sched.target) if site.sched.target is not None else "plateau"
            texts = [f"{target} = {schedule.text}",
                     f"{site.plateau_state} = {target}.init({site.names.params})"]
            plan.set(ctx.stmt, ctx.body, [t.replace("optax.", self.optax_name + ".") for t in texts])
            return
        plan.set(ctx.stmt, ctx.body, [])
        for member in site.absorbed:
            plan.set(member.stmt, member.body, [])
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
        stmt_span = self.source.node_span(ctx.stmt)
        call_span = self.source.node_span(ident.call)
        indent = self.source.indent_of(stmt_span.start.line)
        if ident.kind == "torch":
            if site is None or site.emission is None:
                return False
            emission = site.emission
            if extras is not None:
                row = catalog.OPTIMIZERS[ident.name]
                emission = (param_groups.emit_groups(row, ident.call, site.groups, self.source, extras)
                            if site.groups else emit(row, ident.call, self.source, extras))
                if emission.problems:
                    return False
            todo = [f"# TODO(switcheroo): {emission.notes[0]}"] if emission.placeholders else []
            expr = emission.expression(indent, self.optax_name)
            self._rewritten[ident] = (emission, extras)
        elif ident.kind == "optax" and extras is not None:
            expr = self._patched_optax(ident, extras)
        else:
            return False
        text = (self.source.segment(Span(stmt_span.start, call_span.start)) + expr
                + self.source.segment(Span(call_span.end, stmt_span.end)))
        texts = (list(folded.todo if folded else []) + (todo if ident.kind == "torch" else [])
                 + [text.replace("\r\n", "\n")])
        if ident.kind == "torch" and ident.target is not None and site.names is not None:
            target = self.source.node_text(ident.target)
            texts.append(f"{site.names.state} = {target}.init({site.names.params})")
        plan.set(ctx.stmt, ctx.body, texts)
        return True

    def _patched_optax(self, ident: Identity, extras: Extras) -> str:
        """An optimizer already in Optax, with a schedule and clipping folded in."""
        call = ident.call
        base = self.source.offset(self.source.node_span(call).start)
        text = self.source.node_text(call)
        if extras.learning_rate is not None:
            kw = next((k for n in ast.walk(call) if isinstance(n, ast.Call) for k in n.keywords
                       if k.arg == "learning_rate"), None)
            if kw is not None:
                span = self.source.node_span(kw.value)
                a, b = self.source.offset(span.start) - base, self.source.offset(span.end) - base
                text = text[:a] + extras.learning_rate + text[b:]
        if extras.prefix:
            prefix = ", ".join(extras.prefix)
            if text.startswith(f"{self.optax_name}.chain("):
                head = len(f"{self.optax_name}.chain(")
                text = f"{text[:head]}{prefix}, {text[head:]}"
            else:
                text = f"{self.optax_name}.chain({prefix}, {text})"
        return text

    def _step_texts(self, site: Site) -> list[str]:
        n, recv, ox = site.names, site.receiver, self.optax_name
        texts = []
        if site.missing:
            texts.append(f"# TODO(switcheroo): define {', '.join(site.missing)} here ({_hint(n)})")
        texts.append(f"updates, {n.state} = {recv}.update({n.grads}, {n.state}, {n.params})")
        if site.plateau_state:
            # ReduceLROnPlateau: the plateau state's scale multiplies every update.
            texts.append(f"{n.params} = {ox}.apply_updates({n.params}, {ox}.tree.scale({site.plateau_state}.scale, "
                         "updates))")
        else:
            texts.append(f"{n.params} = {ox}.apply_updates({n.params}, updates)")
        return texts

    def _scheduler_step_texts(self, site: Site) -> list[str]:
        if site.schedule.kind != "plateau":
            return []
        state = site.plateau_state
        return [f"_, {state} = {site.receiver}.update(updates={site.names.params}, state={state}, "
                f"value={site.metric})"]

    @cached_property
    def optax_name(self) -> str:
        for ctx in self.facts.imports:
            stmt = ctx.stmt
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.name == "optax":
                        return alias.asname or "optax"
        return "optax"

    def _module_binds(self, name: str, qualified: str) -> bool:
        return any(b.kind == "import" and b.qualified == qualified
                   for b in self.facts.module.bindings.get(name, []))

    def _plan_imports(self, plan: Plan, converted: list[ast.Call]) -> None:
        """Add what the new code uses, once, after the imports; drop torch imports it left unused."""
        written = "\n".join(t for texts in list(plan.replace.values()) + list(plan.insert_after.values())
                            for t in texts)
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
        tree = self.facts.tree
        anchor = insertion_line_stmt(tree)
        if anchor is not None:
            plan.after(anchor, tree.body, needed)
        elif tree.body:
            first = tree.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                plan.after(first, tree.body, needed)
            else:
                plan.before(first, tree.body, needed)

    def _plan_unused_imports(self, plan: Plan, converted_calls: list[ast.Call]) -> None:
        """Drop `torch.optim` (and clipping) import aliases whose every use the fix converted."""
        if not converted_calls:
            return
        converted = [self.source.node_span(c.func) for c in converted_calls if isinstance(c, ast.Call)]
        candidates: dict[str, tuple[StmtContext, ast.alias]] = {}
        for ctx in self.facts.imports:
            stmt = ctx.stmt
            for alias in stmt.names:
                if isinstance(stmt, ast.ImportFrom):
                    q = f"{stmt.module}.{alias.name}" if stmt.module else ""
                    bound = alias.asname or alias.name
                elif alias.asname:
                    q, bound = alias.name, alias.asname
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
        converted_ranges = [(self.source.offset(c.start), self.source.offset(c.end)) for c in converted]
        drop: dict[ast.stmt, tuple[StmtContext, set[int]]] = {}
        for name, (ctx, alias) in candidates.items():
            stmt_span = self.source.node_span(ctx.stmt)
            own = (self.source.offset(stmt_span.start), self.source.offset(stmt_span.end))
            hits = [h for h in _name_uses(text, name) if not own[0] <= h < own[1]]
            inside = [h for h in hits if any(a <= h < b for a, b in converted_ranges)]
            if inside and len(inside) == len(hits):
                drop.setdefault(ctx.stmt, (ctx, set()))[1].add(id(alias))
        for stmt, (ctx, aliases) in drop.items():
            kept = [a for a in stmt.names if id(a) not in aliases]
            if not kept:
                plan.set(stmt, ctx.body, [])
            else:
                names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in kept)
                head = f"from {'.' * stmt.level}{stmt.module or ''} import " if isinstance(
                    stmt, ast.ImportFrom) else "import "
                plan.set(stmt, ctx.body, [head + names])

    def construction_rewrites(self) -> list["ConstructionRewrite"]:
        """Each torch construction that fix-all converts, with the Optax expression it writes
        there (schedules and clipping folded in), in document order."""
        self._rewritten.clear()
        self._plan([s for s in self._sites.values() if s.finding.fixable
                    and not (s.ids and s.ids <= self.kept) and s.identity not in self.kept])
        out = []
        for ident, (emission, extras) in self._rewritten.items():
            out.append(ConstructionRewrite(
                span=self.source.node_span(ident.call), torch=f"torch.optim.{ident.name}",
                call=self.source.node_text(ident.call), optax=emission.one_line(),
                schedule=extras.learning_rate if extras else None,
                clip=tuple(extras.prefix) if extras else (), exact=emission.exact))
        return sorted(out, key=lambda r: r.span.start)

    # -- lookups ------------------------------------------------------------------------------
    def finding_at(self, pos: Pos) -> list[Finding]:
        return [f for f in self.findings if f.span.contains(pos)]

    def site(self, key: int) -> Site | None:
        return self._sites.get(key)


_NAME_CHAR = re.compile(r"[\w.]")


def _name_uses(text: str, name: str) -> list[int]:
    """Offsets of `name` as a whole name, not an attribute (`x.name`) or part of a longer one.
    The preceding character is checked by hand: a look-behind in the pattern would defeat re's
    fast literal search (5-19 ms per name at 5,000 lines, on every code action)."""
    return [m.start() for m in re.finditer(rf"{re.escape(name)}\b", text)
            if m.start() == 0 or not _NAME_CHAR.match(text, m.start() - 1)]


def _hint(names: Names) -> str:
    return f"{names.grads} = jax.grad(loss_fn)({names.params})"


def _title(site: Site) -> str:
    kind = site.finding.kind
    if kind == "construct":
        title = f"Convert to {site.emission.head}"
        return title if site.emission.exact else title + " (approximate)"
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


def analyze(text: str) -> Analysis:
    source = Source(text)
    analysis = Analysis(source)
    if "torch" not in text:
        return analysis          # nothing can be traced to torch: do not even parse
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as e:
        line = max((getattr(e, "lineno", None) or 1) - 1, 0)
        col = max((getattr(e, "offset", None) or 1) - 1, 0)
        msg = getattr(e, "msg", None) or str(e)
        analysis.syntax_error = SyntaxProblem(f"syntax error: {msg} (line {line + 1})", Pos(line, col))
        return analysis
    except RecursionError:
        analysis.syntax_error = SyntaxProblem("syntax error: the file nests too deeply to parse", Pos(0, 0))
        return analysis
    facts = collect(tree)
    analysis.facts, analysis.tracer = facts, Tracer(facts)
    Builder(analysis).run()
    return analysis
