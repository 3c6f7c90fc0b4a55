"""The pure core: source text in; findings, fixes and explanations out.

`analyze(text)` parses once (Python's `ast`), traces optimizers, and returns an `Analysis`
holding the findings. Fixes and hovers are computed from that analysis on request, never by
parsing again; the server keeps one analysis per document version.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from functools import cached_property

from . import catalog
from .emit import Emission, emit
from .findings import Finding, Fix, TextEdit
from .rewrite import Plan, insertion_line_stmt, render
from .scopes import ModuleFacts, ReceiverUse, StmtContext, collect
from .source import Pos, Source, Span
from .tracing import Identity, Tracer, dotted



@dataclass
class Names:
    state: str          # `opt_state`, or `self.opt_state` for an attribute receiver
    params: str
    grads: str


@dataclass
class SyntaxProblem:
    message: str
    pos: Pos


@dataclass
class _Site:
    """What a finding needs to build its fix."""
    finding: Finding
    ctx: StmtContext
    identity: Identity | None = None
    emission: Emission | None = None
    names: Names | None = None
    receiver: str = ""
    missing: tuple[str, ...] = ()
    state_init: tuple[StmtContext, list[str]] | None = None   # where an attribute's state starts
    ids: frozenset = frozenset()                               # every optimizer the receiver may be


@dataclass
class Analysis:
    source: Source
    findings: list[Finding] = field(default_factory=list)
    syntax_error: SyntaxProblem | None = None
    facts: ModuleFacts | None = None
    tracer: Tracer | None = None
    _sites: dict[int, _Site] = field(default_factory=dict)
    _fix_all_memo: dict = field(default_factory=dict)
    kept: frozenset = frozenset()     # torch optimizers whose construction `# noqa` keeps as torch

    # -- fixes ----------------------------------------------------------------------------
    def fix(self, key: int) -> Fix | None:
        site = self._sites.get(key)
        if site is None or not site.finding.fixable:
            return None
        plan = Plan()
        self._plan_site(site, plan)
        self._plan_imports(plan, [site])
        return Fix(_title(site), render(self.source, plan))

    def fix_all(self, keys: set[int] | None = None) -> list[TextEdit]:
        """Every fix of the file as one consistent set of minimal edits (memoised: editors ask
        for code actions on every cursor move)."""
        memo_key = None if keys is None else frozenset(keys)
        if memo_key not in self._fix_all_memo:
            self._fix_all_memo[memo_key] = self._fix_all(keys)
        return self._fix_all_memo[memo_key]

    def _fix_all(self, keys: set[int] | None) -> list[TextEdit]:
        sites = [s for k, s in self._sites.items() if s.finding.fixable and (keys is None or k in keys)
                 and not (s.ids and s.ids <= self.kept)]
        # A site may carry several findings (OPX102 + OPX203); plan each statement once.
        seen, plan, used = set(), Plan(), []
        for site in sites:
            if site.ctx.stmt in seen:
                continue
            seen.add(site.ctx.stmt)
            self._plan_site(site, plan)
            used.append(site)
        if not used:
            return []
        self._plan_imports(plan, used)
        return render(self.source, plan)

    def ignore_fix(self, key: int) -> Fix | None:
        """`# noqa: CODE` at the end of the line where the finding's statement starts."""
        finding = self.findings[key] if 0 <= key < len(self.findings) else None
        if finding is None:
            return None
        line = finding.ignore_line
        text = self.source.line(line)
        m = _NOQA.search(text)
        if m and m.group("codes"):
            codes = m.group("codes").rstrip()
            new = text[:m.start("codes")] + codes + ", " + finding.code + text[m.start("codes") + len(codes):]
        elif m:
            return None   # a bare `# noqa` already suppresses everything
        else:
            new = text.rstrip() + f"  # noqa: {finding.code}"
        start = Pos(line, 0)
        end = Pos(line, len(text))
        return Fix(f"Ignore {finding.code} on this line", [TextEdit(Span(start, end), new)], preferred=False)

    # -- planning ---------------------------------------------------------------------------
    def _plan_site(self, site: _Site, plan: Plan) -> None:
        ctx, kind = site.ctx, site.finding.kind
        if kind == "construct":
            self._plan_construction(site, plan)
        elif kind in ("step", "undefined"):
            plan.set(ctx.stmt, ctx.body, self._step_texts(site))
            if site.state_init is not None:
                init_ctx, texts = site.state_init
                plan.after(init_ctx.stmt, init_ctx.body, texts)
        elif kind == "zero_grad":
            plan.set(ctx.stmt, ctx.body, [])

    def _plan_construction(self, site: _Site, plan: Plan) -> None:
        ctx, ident, emission = site.ctx, site.identity, site.emission
        stmt_span = self.source.node_span(ctx.stmt)
        call_span = self.source.node_span(ident.call)
        indent = self.source.indent_of(stmt_span.start.line)
        expr = emission.expression(indent, self.optax_name)
        text = self.source.segment(Span(stmt_span.start, call_span.start)) + expr + self.source.segment(
            Span(call_span.end, stmt_span.end))
        texts = [text.replace("\r\n", "\n")]
        if ident.target is not None and site.names is not None:
            target = self.source.segment(self.source.node_span(ident.target))
            texts.append(f"{site.names.state} = {target}.init({site.names.params})")
        plan.set(ctx.stmt, ctx.body, texts)

    def _step_texts(self, site: _Site) -> list[str]:
        n, recv = site.names, site.receiver
        texts = []
        if site.missing:
            texts.append(f"# TODO(switcheroo): define {', '.join(site.missing)} here ({_hint(n)})")
        texts.append(f"updates, {n.state} = {recv}.update({n.grads}, {n.state}, {n.params})")
        texts.append(f"{n.params} = {self.optax_name}.apply_updates({n.params}, updates)")
        return texts

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

    def _plan_imports(self, plan: Plan, sites: list[_Site]) -> None:
        facts = self.facts
        needed = []
        converts = [s for s in sites if s.finding.kind in ("construct", "step", "undefined")]
        if converts and not self._module_binds(self.optax_name, "optax"):
            needed.append("import optax")
        if any(s.emission and s.emission.needs_jnp for s in sites) and not self._module_binds("jnp", "jax.numpy"):
            needed.append("import jax.numpy as jnp")
        if any(s.emission and s.emission.needs_helpers for s in sites) and not self._module_binds(
                catalog.HELPERS, catalog.HELPERS):
            needed.append(f"import {catalog.HELPERS}")
        removed = [s.identity.call for s in sites if s.finding.kind == "construct"]
        self._plan_unused_imports(plan, removed)
        if not needed:
            return
        anchor = insertion_line_stmt(facts.tree)
        if anchor is not None:
            plan.after(anchor, facts.tree.body, needed)
        elif facts.tree.body:
            first = facts.tree.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                plan.after(first, facts.tree.body, needed)
            else:
                plan.before(first, facts.tree.body, needed)

    def _plan_unused_imports(self, plan: Plan, converted_calls: list[ast.Call]) -> None:
        """Drop `torch.optim` import aliases whose every use the fix converted."""
        if not converted_calls:
            return
        converted = [self.source.node_span(c.func) for c in converted_calls]
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
                if q == "torch.optim" or q.startswith("torch.optim."):
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
            hits = [m.start() for m in re.finditer(rf"(?<![\w.]){re.escape(name)}\b", text)
                    if not own[0] <= m.start() < own[1]]
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

    # -- hover --------------------------------------------------------------------------------
    def finding_at(self, pos: Pos) -> list[Finding]:
        return [f for f in self.findings if f.span.contains(pos)]

    def site(self, key: int) -> _Site | None:
        return self._sites.get(key)


def _title(site: _Site) -> str:
    kind = site.finding.kind
    if kind == "construct":
        title = f"Convert to {site.emission.head}"
        return title if site.emission.exact else title + " (approximate)"
    if kind in ("step", "undefined"):
        return f"Convert {site.receiver}.step() to {site.receiver}.update + optax.apply_updates"
    return "Remove zero_grad(): JAX gradients are not accumulated"


_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.IGNORECASE)


# -- the analysis itself ------------------------------------------------------------------------

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
    tracer = Tracer(facts)
    analysis.facts, analysis.tracer = facts, tracer
    _Builder(analysis).run()
    return analysis


class _Builder:
    def __init__(self, analysis: Analysis):
        self.a = analysis
        self.source = analysis.source
        self.tracer = analysis.tracer
        self.facts = analysis.facts
        self.optimizers = [i for i in self.tracer.identities
                           if i.kind == "torch" or (i.kind == "optax" and i.target is not None)]
        if not self.optimizers:
            self.optimizers = [i for i in self.tracer.identities if i.kind == "annotated"]
        self.init_names = self._existing_inits()
        self._pending: dict[int, _Site] = {}

    def run(self) -> None:
        for ident in self.tracer.identities:
            if ident.kind == "torch":
                self._construction(ident)
        for use in self.facts.receiver_uses:
            ids = self.tracer.receiver_ids(use.receiver, use.ctx.scope)
            if ids:
                self._receiver_use(use, ids)
        self.a.findings.sort(key=lambda f: (f.span.start, f.code))
        keyed = {}
        for i, f in enumerate(self.a.findings):
            keyed[i] = self._pending[f.key]
            f.key = i
        self.a._sites = keyed
        self._drop_noqa()

    def _add(self, finding: Finding, site: _Site) -> None:
        finding.key = len(self._pending)
        site.finding = finding
        self._pending[finding.key] = site
        self.a.findings.append(finding)

    def _lines(self, node: ast.AST, ctx: StmtContext) -> tuple[tuple[int, ...], int]:
        start = node.lineno - 1
        stmt_first, stmt_last = ctx.stmt.lineno - 1, ctx.stmt.end_lineno - 1
        ignore = stmt_first
        if self.source.line(stmt_first).rstrip().endswith("\\"):
            ignore = stmt_last
        return tuple(sorted({start, stmt_first, stmt_last})), ignore

    # -- constructions -------------------------------------------------------------------------
    def _construction(self, ident: Identity) -> None:
        call, ctx = ident.call, ident.ctx
        span = self.source.node_span(call)
        noqa, ignore = self._lines(call, ctx)
        row = catalog.OPTIMIZERS.get(ident.name)
        qualified = f"torch.optim.{ident.name}"
        if row is None:
            f = Finding("OPX201", span, f"{qualified} has no faithful Optax equivalent in switcheroo's catalog yet: "
                        "port it by hand", "unmapped", noqa, ignore)
            self._add(f, _Site(f, ctx, ident))
            return
        emission = emit(row, call, self.source)
        site = _Site(None, ctx, ident, emission)
        if not emission.ok:
            f = Finding("OPX201", span, f"{qualified}: {'; '.join(emission.problems)}", "unmapped", noqa, ignore,
                        data={"torch": qualified})
            self._add(f, site)
            return
        site.names = self.names_for(ident, ident.target)
        note = f" ({emission.notes[0]})" if emission.notes else ""
        message = f"{qualified} → {emission.one_line()}{note}"
        code = "OPX101" if emission.exact else "OPX201"
        if not emission.exact:
            message += f"; not exact: {emission.difference}"
        f = Finding(code, span, message, "construct", noqa, ignore, fixable=True,
                    data={"torch": qualified, "optax": emission.one_line()})
        self._add(f, site)

    # -- receivers -----------------------------------------------------------------------------
    def _receiver_use(self, use: ReceiverUse, ids: frozenset) -> None:
        ctx, node = use.ctx, use.node
        span = self.source.node_span(node)
        noqa, ignore = self._lines(node, ctx)
        recv = self.source.segment(self.source.node_span(use.receiver))
        is_stmt = isinstance(ctx.stmt, ast.Expr) and ctx.stmt.value is node
        member = use.member
        if member == "step":
            if node.args or node.keywords:
                self._manual(span, noqa, ignore, ctx,
                             f"{recv}.step(closure): Optax has no closures; evaluate the loss and gradients "
                             "yourself, then call update (for LBFGS pass value=, grad=, value_fn=)")
            elif not is_stmt:
                self._manual(span, noqa, ignore, ctx,
                             f"the value of {recv}.step() is used: rewrite by hand as "
                             f"updates, state = {recv}.update(grads, state, params)")
            else:
                self._step(use, ids, span, noqa, ignore, recv)
        elif member == "zero_grad":
            if is_stmt:
                f = Finding("OPX103", span, f"{recv}.zero_grad() → removed: jax.grad returns fresh gradients, "
                            "nothing accumulates", "zero_grad", noqa, ignore, fixable=True)
                self._add(f, _Site(f, ctx, receiver=recv, ids=ids))
        elif member in ("state_dict", "load_state_dict"):
            self._manual(span, noqa, ignore, ctx,
                         f"{recv}.{member}(): Optax keeps its state in the opt_state pytree; save and restore "
                         "it (with params) using your checkpoint library, e.g. orbax")
        elif member == "add_param_group":
            self._manual(span, noqa, ignore, ctx,
                         f"{recv}.add_param_group(): Optax optimizers are fixed at construction; build the "
                         "groups up front with optax.multi_transform")
        elif member == "param_groups":
            self._manual(span, noqa, ignore, ctx,
                         f"{recv}.param_groups: Optax has no mutable groups; change hyperparameters with "
                         "optax.inject_hyperparams (opt_state.hyperparams[...]) or a schedule")

    def _manual(self, span, noqa, ignore, ctx, message) -> None:
        f = Finding("OPX202", span, message, "manual", noqa, ignore)
        self._add(f, _Site(f, ctx))

    def _step(self, use: ReceiverUse, ids: frozenset, span: Span, noqa, ignore, recv: str) -> None:
        ident = next(iter(ids)) if len(ids) == 1 else None
        names = self.names_for(ident, use.receiver, receiver_ids=ids)
        missing = self._missing(use.ctx, names, ids)
        state_init = self._attribute_state_init(use, names)
        site = _Site(None, use.ctx, ident, names=names, receiver=recv, missing=missing, state_init=state_init,
                     ids=ids)
        rewrite = (f"updates, {names.state} = {recv}.update({names.grads}, {names.state}, {names.params}); "
                   f"{names.params} = optax.apply_updates({names.params}, updates)")
        f = Finding("OPX102", span, f"{recv}.step() → {rewrite} (Optax updates are pure functions: the new "
                    "state and parameters are returned, not mutated)", "step", noqa, ignore, fixable=True,
                    data={"rewrite": rewrite})
        self._add(f, site)
        if missing:
            where = _scope_label(use.ctx)
            w = Finding("OPX203", span, f"{recv}.step() → the rewrite needs {', '.join(missing)}, not defined "
                        f"{where}: define them before the update (e.g. {_hint(names)})", "undefined", noqa,
                        ignore, fixable=True, data={"missing": list(missing)})
            self._add(w, _Site(w, use.ctx, ident, names=names, receiver=recv, missing=missing,
                               state_init=state_init, ids=ids))

    def _attribute_state_init(self, use: ReceiverUse, names: Names) -> tuple[StmtContext, list[str]] | None:
        """`self.optimizer = optimizer` stores an optimizer built elsewhere: its state must start
        beside it (`self.opt_state = self.optimizer.init(params)`), unless the class keeps one."""
        recv, cls = use.receiver, use.ctx.scope.class_scope
        if not isinstance(recv, ast.Attribute) or cls is None or "." not in names.state:
            return None
        state_attr = names.state.split(".", 1)[1]
        if state_attr in cls.attr_bindings:
            return None
        for b in cls.attr_bindings.get(recv.attr, []):
            if b.kind != "value" or b.ctx is None or (
                    isinstance(b.node, ast.Call) and self.tracer.construction(b.node) is not None):
                continue
            me = b.ctx.scope.self_name
            texts = []
            if names.params not in b.ctx.scope.bindings:
                texts.append(f"# TODO(switcheroo): define {names.params} here (the parameter pytree to optimize)")
            texts.append(f"{me}.{state_attr} = {me}.{recv.attr}.init({names.params})")
            return b.ctx, texts
        return None

    def _missing(self, ctx: StmtContext, names: Names, ids) -> tuple[str, ...]:
        scope = ctx.scope
        bound = set(scope.bindings) | scope.globals
        if scope.kind == "class":
            bound = set()
        defined_by_init = {self.names_for(i, i.target).state for i in ids
                           if i.kind == "torch" and i.target is not None and i.ctx and i.ctx.scope is scope}
        missing = []
        for name in (names.grads, names.params, names.state):
            if "." in name:
                continue   # attribute state: the construction's init line defines it
            if name not in bound and name not in defined_by_init and name not in missing:
                missing.append(name)
        return tuple(missing)

    # -- names -----------------------------------------------------------------------------------
    def names_for(self, ident: Identity | None, receiver: ast.expr | None, receiver_ids=None) -> Names:
        """Consistent names for an optimizer's state, params and grads across its rewrites."""
        single = len({o.var for o in self.optimizers}) <= 1
        prefix = ""
        if isinstance(receiver, ast.Attribute):
            prefix = self.source.segment(self.source.node_span(receiver.value)) + "."
        if ident is not None and ident in self.init_names:
            state_base, params = self.init_names[ident]
        else:
            var = ident.var if ident is not None and ident.target is not None else _var_of(receiver)
            if ident is not None and ident not in self.optimizers and not single:
                var = _var_of(receiver)
            state_base = "opt_state" if single else f"{var}_state"
            params = "params" if single else self._params_name(ident, var)
        grads = params.replace("params", "grads") if "params" in params else f"{params}_grads"
        return Names(prefix + state_base, params, grads)

    def _params_name(self, ident: Identity | None, var: str) -> str:
        base = _parameters_owner(ident) if ident is not None else None
        if base:
            others = [_parameters_owner(o) for o in self.optimizers if o is not ident]
            if base not in others:
                return f"{base}_params"
        return f"{var}_params"

    def _existing_inits(self) -> dict[Identity, tuple[str, str]]:
        """`opt_state = opt.init(params)` already in the file (a converted optimizer)."""
        out = {}
        for site in self.facts.calls:
            call = site.call
            if not (isinstance(call.func, ast.Attribute) and call.func.attr == "init" and len(call.args) == 1):
                continue
            stmt = site.ctx.stmt
            if not (isinstance(stmt, ast.Assign) and stmt.value is call and len(stmt.targets) == 1):
                continue
            ids = self.tracer.receiver_ids(call.func.value, site.ctx.scope)
            target = stmt.targets[0]
            if len(ids) == 1 and isinstance(target, (ast.Name, ast.Attribute)) and isinstance(call.args[0], ast.Name):
                state = target.id if isinstance(target, ast.Name) else target.attr
                out[next(iter(ids))] = (state, call.args[0].id)
        return out

    # -- noqa --------------------------------------------------------------------------------------
    def _drop_noqa(self) -> None:
        lines = {l for f in self.a.findings for l in f.noqa_lines}
        flagged = {l for l in lines if "noqa" in self.source.line(l).lower()}
        if not flagged:
            return
        comments = _comments(self.source.text, flagged)
        kept, kept_torch = [], set()
        for f in self.a.findings:
            if any(_suppresses(comments.get(l), f.code) for l in f.noqa_lines):
                if f.kind == "construct":
                    kept_torch.add(self.a._sites[f.key].identity)
                continue
            kept.append(f)
        self.a.kept = frozenset(kept_torch)
        # Keys index the findings; re-key after suppression.
        sites = {}
        for i, f in enumerate(kept):
            sites[i] = self.a._sites[f.key]
            f.key = i
        self.a.findings, self.a._sites = kept, sites


def _comments(text: str, lines: set[int]) -> dict[int, str]:
    """The comment on each of `lines` (0-based), from the tokenizer, so a `# noqa` inside a
    string does not count."""
    out = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT and tok.start[0] - 1 in lines:
                out[tok.start[0] - 1] = tok.string
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _suppresses(comment: str | None, code: str) -> bool:
    if not comment:
        return False
    m = _NOQA.search(comment)
    if not m:
        return False
    codes = m.group("codes")
    if not codes:
        return True
    return code.upper() in {c.strip().upper() for c in codes.split(",")}


def _hint(names: Names) -> str:
    return f"{names.grads} = jax.grad(loss_fn)({names.params})"


def _var_of(receiver: ast.expr | None) -> str:
    if isinstance(receiver, ast.Name):
        return receiver.id
    if isinstance(receiver, ast.Attribute):
        return receiver.attr
    return "opt"


def _parameters_owner(ident: Identity) -> str | None:
    """`gen.parameters()` -> 'gen' (the owner of the parameters an optimizer updates)."""
    if ident is None or ident.call is None or not (ident.call.args or ident.call.keywords):
        return None
    first = ident.call.args[0] if ident.call.args else next(
        (k.value for k in ident.call.keywords if k.arg == "params"), None)
    if first is None:
        return None
    for node in ast.walk(first):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "parameters", "named_parameters"):
            parts = dotted(node.func.value)
            if parts:
                return parts[-1]
    return None


def _scope_label(ctx: StmtContext) -> str:
    node = ctx.scope.node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"in {node.name}()"
    return "at module level"
