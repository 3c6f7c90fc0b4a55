"""Findings from one walk's facts: optimizer constructions, their receivers, names, `# noqa`.

Schedulers and clipping live in training_loop.py; fixes are planned in analysis.py.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from . import catalog, param_groups
from .emit import emit
from .findings import Finding, Names, Site
from .scopes import ReceiverUse, StmtContext
from .source import Span
from .tracing import Identity, dotted

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.IGNORECASE)


class Builder:
    def __init__(self, analysis):
        self.a = analysis
        self.source = analysis.source
        self.tracer = analysis.tracer
        self.facts = analysis.facts
        self.optimizers = [i for i in self.tracer.identities
                           if i.kind == "torch" or (i.kind == "optax" and i.target is not None)]
        if not self.optimizers:
            self.optimizers = [i for i in self.tracer.identities if i.kind == "annotated"]
        self.init_names = self._existing_inits()
        self._pending: dict[int, Site] = {}
        self.plateaus: dict[Identity, Site] = {}     # optimizer -> its ReduceLROnPlateau
        # Computed once: names_for runs for every construction and step (quadratic otherwise).
        self.single = len({o.var for o in self.optimizers}) <= 1
        self.owners = {o: _parameters_owner(o) for o in self.tracer.identities if o.call is not None}
        self._uses: dict | None = None
        self._steps: dict | None = None

    def steps_in(self, scope) -> list[ReceiverUse]:
        """`.step()` / `.update()` calls of one scope (grouped once: clipping looks per call)."""
        if self._steps is None:
            self._steps = {}
            for use in self.facts.receiver_uses:
                if use.member in ("step", "update"):
                    self._steps.setdefault(id(use.ctx.scope), []).append(use)
        return self._steps.get(id(scope), [])

    def uses(self, ident: Identity, member: str = "step") -> list[ReceiverUse]:
        """The receiver uses traced to `ident` (resolved once for the whole file)."""
        if self._uses is None:
            self._uses = {}
            for use in self.facts.receiver_uses:
                for i in self.tracer.receiver_ids(use.receiver, use.ctx.scope):
                    self._uses.setdefault((i, use.member), []).append(use)
        return self._uses.get((ident, member), [])

    def run(self) -> None:
        from .training_loop import clip_findings, scheduler_findings

        for ident in self.tracer.identities:
            if ident.kind == "torch":
                self._construction(ident)
        scheduler_findings(self)
        clip_findings(self)
        for use in self.facts.receiver_uses:
            ids = self.tracer.receiver_ids(use.receiver, use.ctx.scope)
            optimizers = frozenset(i for i in ids if i.kind != "scheduler")
            if use.member == "update":
                continue        # Optax's own step: only clipping looks at it
            if optimizers and len(optimizers) == len(ids):
                self._receiver_use(use, optimizers)
            elif ids and not optimizers and use.member in ("state_dict", "load_state_dict"):
                span = self.source.node_span(use.node)
                noqa, ignore = self._lines(use.node, use.ctx)
                self._manual(span, noqa, ignore, use.ctx,
                             f"{self.source.node_text(use.receiver)}.{use.member}(): an Optax schedule is a pure "
                             "function of the update count, which lives in the optimizer's state")
        self.a.findings.sort(key=lambda f: (f.span.start, f.code))
        keyed = {}
        for i, f in enumerate(self.a.findings):
            keyed[i] = self._pending[f.key]
            f.key = i
        self.a._sites = keyed
        self._drop_noqa()

    def _add(self, finding: Finding, site: Site) -> None:
        finding.key = len(self._pending)
        site.finding = finding
        self._pending[finding.key] = site
        self.a.findings.append(finding)

    def _lines(self, node: ast.AST, ctx: StmtContext) -> tuple[tuple[int, ...], int]:
        """Where `# noqa` suppresses a finding (its line, its statement's first and last), and
        where the "ignore" action writes it: the statement's first line, or, when that line is
        continued with a backslash, the end of its logical line (a comment cannot follow `\\`)."""
        start = node.lineno - 1
        stmt_first, stmt_last = ctx.stmt.lineno - 1, ctx.stmt.end_lineno - 1
        ignore = stmt_first
        if self.source.continues(stmt_first):
            ignore = self.source.logical_end(stmt_first)
        return tuple(sorted({start, stmt_first, stmt_last, ignore})), ignore

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
            self._add(f, Site(f, ctx, ident))
            return
        groups = param_groups.read_groups(self._params_node(call, ctx))
        if isinstance(groups, str):
            f = Finding("OPX202", span, f"{qualified} with parameter groups: {groups}; build the groups with "
                        "optax.multi_transform and a labels pytree by hand", "manual", noqa, ignore)
            self._add(f, Site(f, ctx, ident))
            return
        emission = param_groups.emit_groups(row, call, groups, self.source) if groups else emit(row, call, self.source)
        site = Site(None, ctx, ident, emission, groups=groups)
        if not emission.ok:
            f = Finding("OPX201", span, f"{qualified}: {'; '.join(emission.problems)}", "unmapped", noqa, ignore,
                        data={"torch": qualified})
            self._add(f, site)
            return
        site.names = self.names_for(ident, ident.target)
        self.a.construct_sites[ident] = site
        note = f" ({emission.notes[0]})" if emission.notes else ""
        message = f"{qualified} → {emission.one_line()}{note}"
        code = "OPX101" if emission.exact else "OPX201"
        if not emission.exact:
            message += f"; not exact: {emission.difference}"
        f = Finding(code, span, message, "construct", noqa, ignore, fixable=True,
                    data={"torch": qualified, "optax": emission.one_line()})
        self._add(f, site)
        if emission.placeholders:
            w = Finding("OPX203", span, f"{qualified} → the rewrite needs {', '.join(emission.placeholders)}, which "
                        f"torch never spells out: {emission.notes[0]}", "construct", noqa, ignore, fixable=True)
            self._add(w, Site(w, ctx, ident, emission, names=site.names, groups=groups))

    def _params_node(self, call: ast.Call, ctx: StmtContext) -> ast.expr | None:
        """The params argument, looked through a name bound once to a list in the same scope."""
        node = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "params"), None)
        if isinstance(node, ast.Name):
            bindings = ctx.scope.bindings.get(node.id, [])
            if len(bindings) == 1 and bindings[0].kind == "value" and isinstance(bindings[0].node, (ast.List,
                                                                                                   ast.Tuple)):
                return bindings[0].node
        return node

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
                             self._closure_message(recv, ids))
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
                self._add(f, Site(f, ctx, receiver=recv, ids=ids))
        elif member == "state":
            self._manual(span, noqa, ignore, ctx,
                         f"{recv}.state: torch's per-parameter state (momentum buffers, moments) lives in the "
                         "opt_state pytree in Optax, shaped by the transforms of the chain; read it from there")
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

    @staticmethod
    def _closure_message(recv: str, ids) -> str:
        if any(i.kind == "torch" and i.name == "LBFGS" for i in ids):
            # switcheroo_optax.torch_lbfgs: one update is one torch step(closure).
            return (f"{recv}.step(closure) → write the closure's loss as loss_fn(params), then "
                    f"updates, opt_state = {recv}.update(grads, opt_state, params, value_fn=loss_fn); "
                    "params = optax.apply_updates(params, updates) (one update runs torch's max_iter iterations)")
        return (f"{recv}.step(closure): Optax has no closures; compute the loss and gradients with "
                "jax.value_and_grad, then call update")

    def _manual(self, span, noqa, ignore, ctx, message) -> None:
        f = Finding("OPX202", span, message, "manual", noqa, ignore)
        self._add(f, Site(f, ctx))

    def _step(self, use: ReceiverUse, ids: frozenset, span: Span, noqa, ignore, recv: str) -> None:
        ident = next(iter(ids)) if len(ids) == 1 else None
        names = self.names_for(ident, use.receiver, receiver_ids=ids)
        plateau = self.plateaus.get(ident)
        plateau_state = plateau.plateau_state if plateau is not None else ""
        missing = self._missing(use.ctx, names, ids, plateau)
        state_init = self._attribute_state_init(use, names)
        site = Site(None, use.ctx, ident, names=names, receiver=recv, missing=missing, state_init=state_init,
                    ids=ids, plateau_state=plateau_state)
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
            self._add(w, Site(w, use.ctx, ident, names=names, receiver=recv, missing=missing,
                              state_init=state_init, ids=ids, plateau_state=plateau_state))

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

    def _missing(self, ctx: StmtContext, names: Names, ids, plateau: Site | None = None) -> tuple[str, ...]:
        scope = ctx.scope
        bound = set(scope.bindings) | scope.globals
        if scope.kind == "class":
            bound = set()
        defined_by_init = {self.names_for(i, i.target).state for i in ids
                           if i.kind == "torch" and i.target is not None and i.ctx and i.ctx.scope is scope}
        wanted = [names.grads, names.params, names.state]
        if plateau is not None:
            wanted.append(plateau.plateau_state)
            if plateau.ctx.scope is scope:
                defined_by_init.add(plateau.plateau_state)
        missing = []
        for name in wanted:
            if "." in name:
                continue   # attribute state: the construction's init line defines it
            if name not in bound and name not in defined_by_init and name not in missing:
                missing.append(name)
        return tuple(missing)

    # -- names -----------------------------------------------------------------------------------
    def names_for(self, ident: Identity | None, receiver: ast.expr | None, receiver_ids=None) -> Names:
        """Consistent names for an optimizer's state, params and grads across its rewrites."""
        single = self.single
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
        base = self.owners.get(ident) if ident is not None else None
        if base:
            others = [self.owners.get(o) for o in self.optimizers if o is not ident]
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
    m = NOQA.search(comment)
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
    if first is None or param_groups.read_groups(first) is not None:
        return None     # parameter groups: the whole params pytree
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
