"""Findings for optimizer constructions and their receivers (`step`, `zero_grad`, `state_dict`,
`param_groups`...), and the names their rewrites use.

Schedulers and clipping are in training_loop.py; `analyze.py` runs both in order.
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from ..document.text import Span
from ..knowledge import catalog, factories
from ..knowledge.emit import Emission, Extras, bind, emit
from ..knowledge import hyperparams as injected_knowledge
from ..knowledge.libraries import UNMAPPED
from ..knowledge.param_groups import Groups, emit_groups
from ..knowledge.wrappers import SCALER_NOTE
from .arguments import arg_value, call_arguments, one_line, read_groups
from .facts import ReceiverUse, Scope, StmtContext, children, dotted
from .findings import CODES, Finding, Names, Site
from . import choices as choosing
from .gradients import Gradients
from .group_writes import Groups as GroupInfo, group_of, unroll
from .hyper_state import HyperState, decide as decide_hyper_state, group_info, message as hyper_message, \
    where as hyper_where
from .hyperparams import HyperUse, read_use
from .modules import ModuleOf, held_by, module_of, parameters_owner, reached_from, visible
from .program import chunk_facts
from .reach import Reach
from .tracing import Identity, argument, optimizer_key


# Findings that belong to an optimizer's flow: fixed with it, or left torch with it.
FLOW_KINDS = ("step", "undefined", "zero_grad", "clip", "schedule", "schedule_undefined", "sched_step", "hyperparam")
# What a person must do about a scheduler's other methods once its schedule is folded in.
SCHEDULER_MANUAL = {
    "state_dict": "an Optax schedule is a pure function of the update count, which lives in the optimizer's state",
    "load_state_dict": "an Optax schedule is a pure function of the update count, which lives in the optimizer's "
                       "state",
    "get_last_lr": "the schedule is a function of the update count now: read it as schedule(count), the count "
                   "being the optimizer state's (optax.tree_utils.tree_get(opt_state, 'count'))",
    "get_lr": "the schedule is a function of the update count now: read it as schedule(count), the count being "
              "the optimizer state's (optax.tree_utils.tree_get(opt_state, 'count'))",
}


class Builder:
    def __init__(self, result):
        self.a = result
        self.program = result.program
        self.source = result.doc.source
        self.tracer = result.tracer
        self.target = result.target
        here = [i for i in self.tracer.identities if i.ctx is not None and self.program.in_primary(i.ctx)]
        self.optimizers = [i for i in here if i.kind == "torch" or (i.kind in ("optax", "nnx") and i.target is not None)]
        if not self.optimizers:         # optimizers built elsewhere (a parameter, another file)
            self.optimizers = [i for i in self.tracer.identities if i.kind == "annotated"] or [
                i for i in self.tracer.identities if i.kind in ("torch", "optax", "nnx") and i.target is not None]
        self.init_names = self._existing_inits()
        self._pending: dict[int, Site] = {}
        self.plateaus: dict[Identity, Site] = {}     # optimizer -> its ReduceLROnPlateau
        # Computed once: names_for runs for every construction and step (quadratic otherwise).
        self.single = len({o.var for o in self.optimizers}) <= 1
        self.owners = {o: _nnx_module(o) if o.kind == "nnx" else _parameters_owner(self._named_params(o), bool(o.factory))
                       for o in self.tracer.identities if o.call is not None}
        self._owner_count = len({self.owners.get(o) for o in self.optimizers})
        self._uses: dict | None = None
        self._steps: dict | None = None
        self._emissions: dict = {}
        self._injected: dict = {}
        self._hyper: dict = {}
        self._modules: dict[Identity, ModuleOf] = {}
        # id(a use's node) -> the optimizers (or schedulers) a finding rewrites or reports there:
        # what the closed-world check (reach.py) holds every use of a flow against.
        self.handled: dict[int, frozenset] = {}
        self.reach = Reach(self)
        self._reasons: dict[Identity, str] = {}
        self.gradients = Gradients(self)

    # -- positions and text ------------------------------------------------------------------
    def span(self, node, ctx: StmtContext) -> Span:
        return self.program.span(node, ctx)

    def text(self, node, ctx: StmtContext) -> str:
        return self.program.text(node, ctx)

    def bound_names(self, scope: Scope) -> set[str]:
        """Names bound in a scope (the document's module scope for any chunk's)."""
        if scope.kind == "module":
            return set(self.program.module.bindings)
        return set(scope.bindings) | scope.globals

    # -- receivers, grouped once ----------------------------------------------------------------
    def steps_in(self, scope) -> list[ReceiverUse]:
        """`.step()` / `.update()` calls of one scope (grouped once: clipping looks per call)."""
        if self._steps is None:
            self._steps = {}
            for use in self.program.receiver_uses:
                if use.member in ("step", "update"):
                    key = "module" if use.ctx.scope.kind == "module" else id(use.ctx.scope)
                    self._steps.setdefault(key, []).append(use)
        return self._steps.get("module" if scope.kind == "module" else id(scope), [])

    def uses(self, ident: Identity, member: str = "step") -> list[ReceiverUse]:
        """The receiver uses traced to `ident` (resolved once for the whole file)."""
        if self._uses is None:
            self._uses = {}
            for use in self.program.receiver_uses:
                for i in self.tracer.receiver_ids(use.receiver, use.ctx.scope, use.ctx):
                    self._uses.setdefault((i, use.member), []).append(use)
        return self._uses.get((ident, member), [])

    # -- running ---------------------------------------------------------------------------------
    def constructions(self) -> None:
        for ident in self.tracer.identities:
            if ident.ctx is None or not self.program.in_primary(ident.ctx):
                continue                # built in another file: reported there
            if ident.kind == "torch" and ident.chosen_by:
                self._chosen_at_run_time(ident)
            elif ident.kind == "torch":
                self._construction(ident)
            elif ident.kind == "scaler":
                span = self.span(ident.call, ident.ctx)
                noqa, ignore = self.lines(ident.call, ident.ctx)
                self._manual(span, noqa, ignore, ident.ctx, f"{ident.name}: {SCALER_NOTE}")
            elif ident.kind == "custom":
                self._custom(ident)

    def receivers(self) -> None:
        for use in self.program.receiver_uses:
            ids = self.tracer.receiver_ids(use.receiver, use.ctx.scope, use.ctx)
            if ids and all(i.kind == "scaler" for i in ids):
                self._scaler_use(use)
                continue
            optimizers = frozenset(i for i in ids if i.kind not in ("scheduler", "scaler", "optax_schedule"))
            if use.member in ("update", "scale", "unscale_"):
                continue        # Optax's own step: only clipping looks at it
            if ids and all(i.kind == "optax_schedule" for i in ids) and (
                    use.member in SCHEDULER_MANUAL or use.member == "step"):
                span = self.span(use.node, use.ctx)
                noqa, ignore = self.lines(use.node, use.ctx)
                recv = self.text(use.receiver, use.ctx)
                self._manual(span, noqa, ignore, use.ctx, f"{recv}.{use.member}(): {recv} is an Optax schedule, a "
                             "function of the update count, with no torch scheduler methods: "
                             + ("remove it, the schedule advances with every update" if use.member == "step"
                                else SCHEDULER_MANUAL[use.member]))
                self.handled[id(use.node)] = ids
                continue
            if optimizers and len(optimizers) == len(ids):
                if self._receiver_use(use, optimizers):
                    self.handled[id(use.node)] = optimizers
            elif ids and not optimizers and use.member in SCHEDULER_MANUAL:
                span = self.span(use.node, use.ctx)
                noqa, ignore = self.lines(use.node, use.ctx)
                self._manual(span, noqa, ignore, use.ctx, f"{self.text(use.receiver, use.ctx)}.{use.member}(): "
                             f"{SCHEDULER_MANUAL[use.member]}")
                self.handled[id(use.node)] = ids

    def would_handle(self, node, ctx: StmtContext) -> frozenset:
        """What the analysis of another file of the program would rewrite or report at a use
        there (`receivers` decides it for this file's own uses)."""
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            member, receiver = node.func.attr.value, node.func.value
        elif isinstance(node, cst.Attribute):
            member, receiver = node.attr.value, node.value
        else:
            return frozenset()
        ids = self.tracer.receiver_ids(receiver, ctx.scope, ctx)
        is_stmt = isinstance(ctx.stmt, cst.Expr) and ctx.stmt.value is node
        if ids and all(i.kind == "scaler" for i in ids):
            target = argument(node, 0, "optimizer") if isinstance(node, cst.Call) else None
            return self.tracer.receiver_ids(target, ctx.scope, ctx) if target is not None else frozenset()
        if ids and all(i.kind == "scheduler" for i in ids):
            return ids if member == "step" or member in SCHEDULER_MANUAL else frozenset()
        if not ids or any(i.kind in ("scheduler", "scaler") for i in ids):
            return frozenset()
        if member == "step" or member in ("state", "state_dict", "load_state_dict", "add_param_group",
                                          "param_groups") or (member == "zero_grad" and is_stmt):
            return ids
        return frozenset()

    def step_target(self, use: ReceiverUse):
        """(the optimizer expression a step steps, what it may be): `scaler.step(opt)` steps `opt`."""
        ids = self.tracer.receiver_ids(use.receiver, use.ctx.scope, use.ctx)
        if (use.member == "step" and ids and all(i.kind == "scaler" for i in ids) and isinstance(use.node, cst.Call)
                and len(use.node.args) == 1 and use.node.args[0].keyword is None):
            target = use.node.args[0].value
            return target, self.tracer.receiver_ids(target, use.ctx.scope, use.ctx)
        return use.receiver, ids

    def convertible(self, ident: Identity) -> str:
        """Why an optimizer cannot be converted ('' when it can): its construction has no
        rewrite, or its object reaches a use fix-all cannot follow, or it shares a use with an
        optimizer that stays torch (one flow: all of it converts or none)."""
        if ident not in self._reasons:
            self._reasons[ident] = ""           # a flow that links back to itself
            own = self._own_reason(ident)
            if not own and ident.kind == "torch":
                blocker = self.reach.blocker(ident)
                if blocker is not None:
                    own = f"its optimizer ({self._where(ident)}) {blocker}"
                else:
                    for other in sorted(self.reach.linked(ident), key=self._order):
                        why = self.convertible(other)
                        if why:
                            own = f"it may also be {self._label(other)}, which stays torch: {why}"
                            break
            self._reasons[ident] = own
        return self._reasons[ident]

    def _order(self, ident: Identity):
        return self.program.order(ident.ctx) if ident.ctx is not None and ident.ctx.chunk is not None else (0, 0, 0)

    def _label(self, ident: Identity) -> str:
        if ident.kind in ("torch", "custom") and ident.call is not None:
            return f"the {ident.name.rsplit('.', 1)[-1]} built at {self._where(ident)}"
        if ident.kind == "untraced" and ident.node is not None:
            return f"what {self.text(ident.node, ident.ctx)} holds ({self._where(ident)})"
        return "an optimizer from outside the analysed code"

    def _own_reason(self, ident: Identity) -> str:
        """Why an optimizer's construction cannot be rewritten ('' when it can)."""
        if ident.kind == "custom":
            return f"{self._custom_label(ident)} has no Optax rewrite"
        if ident.kind == "untraced":
            return (f"{self.text(ident.node, ident.ctx)} ({self._where(ident)}) is passed where it is stepped, and "
                    "cannot be traced to a torch optimizer")
        if ident.kind == "annotated":
            return ("it comes from outside the analysed code (a parameter annotated as an optimizer that no "
                    "analysed call passes one to)")
        if ident.kind != "torch":
            return ""
        where = self._where(ident)
        if ident.chosen_by:
            return f"its class is chosen at run time ({ident.chosen_by}, {where})"
        modes = [u for m in ("train", "eval") for u in self.uses(ident, m)]
        if ident.name.startswith("schedulefree.") and modes:
            line = self.program.span(modes[0].node, modes[0].ctx).start.line + 1
            return (f"its train()/eval() mode switches (line {line}) swap the parameters, which the Optax rewrite "
                    "does not: evaluate at optax.contrib.schedule_free_eval_params(opt_state, params) by hand")
        if ident.choice is not None and len(ident.choice.candidates) > 1 and not self.emission(ident).ok:
            return f"its class is chosen at run time ({ident.choice.expression}, {where}) and not every choice converts"
        no_form = self.no_target_form(ident)
        if no_form:
            return f"its construction ({where}) has no {self.target.label} form: {no_form}"
        if ident in self.a.construct_sites:
            return ""
        groups = self.groups_of(ident)
        emission = self.emission(ident) if not isinstance(groups, str) else None
        if emission is not None and emission.ok:
            return ""
        return f"its construction ({where}) has no automatic rewrite"

    def _where(self, ident: Identity) -> str:
        unit = self.program.unit_of(ident.ctx)
        line = self.program.span(ident.call if ident.call is not None else ident.node, ident.ctx).start.line + 1
        return f"line {line}" if unit is self.program.primary else f"{unit.path or unit.module_name}:{line}"

    def block_unconvertible_flows(self) -> None:
        """A flow converts whole or not at all: an optimizer whose construction has no rewrite,
        or whose object reaches a use fix-all cannot follow, keeps everything about it torch (a
        step converted without it would leave code that is neither torch nor Optax). Its
        findings say what blocks it, and offer no fix; what a rewrite would have needed
        defined (OPX203) is moot there, so it is not reported."""
        kept = []
        for f in self.a.findings:
            site = self._pending[f.key]
            if f.fixable and f.kind == "construct" and site.identity is not None:
                reason = self.convertible(site.identity)
                if reason:
                    if f.code == "OPX203":
                        continue
                    self._blocked_construction(f, site.identity, reason)
            elif f.fixable and f.kind in FLOW_KINDS:
                ids = set(site.ids) | ({site.identity} if site.identity is not None else set())
                reasons = [r for r in (self.convertible(i) for i in sorted(ids, key=self._order)) if r]
                if reasons:
                    if f.code == "OPX203":
                        continue
                    # Needs a person now (OPX202): fix-all leaves only warnings behind. What it
                    # would have been is kept (verify still runs a blocked flow's rewrite).
                    f.data.update(blocked=reasons[0], kind=f.kind)
                    f.code, f.severity, f.kind, f.fixable = "OPX202", CODES["OPX202"][0], "manual", False
                    f.message = f"{f.message.split(' → ', 1)[0]} stays torch: {reasons[0]}"
            kept.append(f)
        self.a.findings[:] = kept
        self._report_untraced_uses()

    def _report_untraced_uses(self) -> None:
        """A torch call that reaches an optimizer whose flow it blocks, where tracing could not
        tie it to that optimizer alone (`self = rref.local_value(); self.optimizer.step()`): say
        so there too, not only on the construction."""
        for ident in self.tracer.identities:
            if ident.kind != "torch" or ident.ctx is None or not self.program.in_primary(ident.ctx):
                continue
            for blocker in self.reach.blockers(ident):
                if blocker.node is None or not self.program.in_primary(blocker.ctx) or id(blocker.node) in self.handled:
                    continue
                self.handled[id(blocker.node)] = frozenset({ident})
                span = self.span(blocker.node, blocker.ctx)
                noqa, ignore = self.lines(blocker.node, blocker.ctx)
                text = self.text(blocker.node, blocker.ctx)
                self._manual(span, noqa, ignore, blocker.ctx,
                             f"{text} may act on the {ident.name} built at {self._where(ident)}, or on another "
                             "object: the analysis cannot tell which here, so fix-all leaves that optimizer torch")

    def _blocked_construction(self, f: Finding, ident: Identity, reason: str) -> None:
        blocker = self.reach.blocker(ident)
        subject = f.message.split(" → ", 1)[0]
        why = f"its object {blocker}" if blocker is not None else reason
        rewrite = f.data.get("optax")
        f.data.update(blocked=why, kind=f.kind)
        f.code, f.severity, f.kind, f.fixable = "OPX202", CODES["OPX202"][0], "manual", False
        f.message = (f"{subject} stays torch, with its steps: {why}"
                     + (f"; once that is ported by hand, fix-all converts it ({rewrite})" if rewrite else ""))

    def finish(self) -> None:
        """Sort the findings and key each to its site."""
        self.a.findings.sort(key=lambda f: (f.span.start, f.code))
        keyed = {}
        for i, f in enumerate(self.a.findings):
            keyed[i] = self._pending[f.key]
            f.key = i
        self.a.sites = keyed

    def add(self, finding: Finding, site: Site) -> None:
        finding.key = len(self._pending)
        site.finding = finding
        self._pending[finding.key] = site
        self.a.findings.append(finding)

    def lines(self, node, ctx: StmtContext) -> tuple[tuple[int, ...], int]:
        """Where `# noqa` suppresses a finding (its line, its statement's first and last), and
        where the "ignore" action writes it: the statement's first line, or, when that line is
        continued with a backslash, the end of its logical line (a comment cannot follow `\\`)."""
        start = self.span(node, ctx).start.line
        stmt = self.span(ctx.stmt, ctx)
        stmt_first, stmt_last = stmt.start.line, stmt.end.line
        ignore = stmt_first
        if self.source.continues(stmt_first):
            ignore = self.source.logical_end(stmt_first)
        return tuple(sorted({start, stmt_first, stmt_last, ignore})), ignore

    # -- emissions ---------------------------------------------------------------------------------
    def groups_of(self, ident: Identity) -> Groups | None | str:
        node = self._params_node(ident.call, ident.ctx)
        known = ident.ctx.chunk.cache.setdefault("groups", {})
        if id(node) not in known:       # the list may be bound in another chunk: keyed by its node
            known[id(node)] = (node, self._read_groups(node, ident.ctx))
        return known[id(node)][1]

    def _read_groups(self, node, ctx: StmtContext) -> Groups | None | str:
        """read_groups, with the group dicts a list names (`[{"params": p, "lr": lr}]` written as
        `[transformer_params_with_lr]`) looked up; a name bound to parameter groups in several
        places cannot be read (each group's lr and weight decay would be guessed)."""
        if isinstance(node, cst.Name):
            bound = [b for b in self.tracer.lookup(node.value, ctx.scope) or [] if b.kind == "value"]
            if len(bound) > 1 and any(self._dicts(b.node, ctx) for b in bound):
                return f"{node.value} is bound to parameter groups in {len(bound)} places"
            return None
        if isinstance(node, (cst.List, cst.Tuple)) and self._dicts(node, ctx) and not any(
                isinstance(e, cst.Element) and isinstance(e.value, cst.Dict) for e in node.elements):
            elements = []
            for e in node.elements:
                value = self._dict_of(e.value, ctx) if isinstance(e, cst.Element) else None
                if value is None:
                    return "the groups mix dicts with other values"
                elements.append(e.with_changes(value=value))
            return read_groups(node.with_changes(elements=elements))
        return read_groups(node)

    def _dict_of(self, node, ctx: StmtContext):
        if isinstance(node, cst.Dict):
            return node
        if isinstance(node, cst.Name):
            bound = [b for b in self.tracer.lookup(node.value, ctx.scope) or [] if b.kind == "value"]
            if len(bound) == 1 and isinstance(bound[0].node, cst.Dict):
                return bound[0].node
        return None

    def _dicts(self, node, ctx: StmtContext) -> bool:
        """Is `node` a list or tuple with a group dict among its elements?"""
        return isinstance(node, (cst.List, cst.Tuple)) and any(
            isinstance(e, cst.Element) and self._dict_of(e.value, ctx) is not None for e in node.elements)

    def emission(self, ident: Identity, extras: Extras | None = None) -> Emission | None:
        """The Optax expression for a torch construction (with a schedule and clipping folded in,
        and the hyperparameters its loop sets by hand kept in its state); None when the catalog
        has no row for it."""
        state = self.hyper_state(ident)
        if state is not None and (extras is None or not extras.inject):
            extras = dataclasses.replace(extras or Extras(), inject=state.keys, inject_groups=state.by_group)
        return self._emission(ident, extras)

    # -- hyperparameters set by hand ------------------------------------------------------------
    def hyper_form(self, use: ReceiverUse) -> HyperUse | str:
        """What a `param_groups` use does (hyperparams.py), memoised."""
        if id(use.node) not in self._hyper:
            self._hyper[id(use.node)] = read_use(use, lambda name: self._int_constant(name, use.ctx))
        return self._hyper[id(use.node)]

    def _int_constant(self, name: str, ctx: StmtContext) -> int | None:
        """The integer `name` holds wherever it is read: every binding of it an assignment of the
        same integer literal (`te_idx = 1`, in each branch alike); None otherwise."""
        bindings = self.tracer.lookup(name, ctx.scope) or []
        values = set()
        for b in bindings:
            node = b.node
            if b.kind != "value" or b.index is not None or not isinstance(b.ctx.stmt if b.ctx else None, cst.Assign):
                return None
            if isinstance(node, cst.Integer):
                values.add(int(node.value))
            elif isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) \
                    and isinstance(node.expression, cst.Integer):
                values.add(-int(node.expression.value))
            else:
                return None
        return values.pop() if len(values) == 1 else None

    def injected(self, ident: Identity) -> tuple[str, ...]:
        """The torch hyperparameters ('lr') the flow of `ident` sets or reads through param_groups
        in a form fix-all converts, where its construction can keep them in its state (the
        construction is then built with optax.inject_hyperparams); () otherwise."""
        state = self.hyper_state(ident)
        return state.keys if state is not None else ()

    def hyper_state(self, ident: Identity) -> HyperState | None:
        """Where the flow's hyperparameters set by hand live once converted (hyper_state.py)."""
        if ident in self._injected:
            return self._injected[ident]
        self._injected[ident] = None          # (the emission below asks again)
        # A class chosen at run time keeps them when every candidate's rewrite does: its
        # emission is each candidate's under the author's condition, each injected alike (at the
        # state's top, or each group's label), so one address serves whichever is chosen.
        if ident.kind != "torch" or ident.factory or ident.chosen_by or ident.call is None:
            return None
        forms: list[HyperUse] = []
        for use in self.uses(ident, "param_groups"):
            form = self.hyper_form(use)
            if isinstance(form, HyperUse) and not self._hyper_problem(ident, form, use):
                forms.append(form)
        # The project's other files that set it (an optimizer returned by `configure_optimizers()`,
        # its learning rate set in train.py): their analysis converts what this one cannot judge
        # from here, so the construction keeps in its state whatever they may write or read.
        info = self._group_info(ident)
        for use in self._remote_param_groups(ident):
            form = self.hyper_form(use)
            if isinstance(form, HyperUse) and all(injected_knowledge.optax_names(k) for k in form.keys) and (
                    not form.per_group or isinstance(info, GroupInfo)):
                forms.append(form)
        state = decide_hyper_state(self, ident, forms, info, lambda extras: self._emission(ident, extras))
        if isinstance(state, str):
            self._hyper[("why", id(ident))] = state
            state = None
        self._injected[ident] = state
        return state

    def _group_info(self, ident: Identity) -> GroupInfo | str | None:
        """The groups as the unrolling of per-group writes sees them (hyper_state.group_info)."""
        key = ("groups", id(ident))
        if key not in self._hyper:
            uses = self.uses(ident, "param_groups") + self._remote_param_groups(ident)
            forms = [self.hyper_form(u) for u in uses]
            self._hyper[key] = group_info(self, ident, [f for f in forms if isinstance(f, HyperUse)],
                                          exact=all(isinstance(f, HyperUse) for f in forms))
        return self._hyper[key]

    def _remote_param_groups(self, ident: Identity) -> list[ReceiverUse]:
        """`param_groups` uses of `ident` in the program's other files."""
        out = []
        for unit in self.program.units[1:]:
            for chunk in unit.doc.chunks:
                if chunk.module is None or "param_groups" not in chunk.text:
                    continue
                for use in chunk_facts(chunk).receiver_uses:
                    if use.member == "param_groups" and ident in self.tracer.receiver_ids(
                            use.receiver, use.ctx.scope, use.ctx):
                        out.append(use)
        return out

    def _hyper_problem(self, ident: Identity, form: HyperUse, use: ReceiverUse) -> str:
        """Why a readable param_groups use still needs a person ('' when it converts)."""
        unsupported = [k for k in form.keys if injected_knowledge.optax_names(k) is None]
        if unsupported:
            return (f"{', '.join(repr(k) for k in unsupported)}: not a hyperparameter fix-all keeps in Optax's "
                    "state yet (lr, weight_decay, momentum, eps, betas are)")
        split = [k for k, op, _ in form.writes if op != "=" and len(injected_knowledge.optax_names(k)) > 1]
        if split:
            return f"{split[0]!r} is changed in place, not set: set it (b1 and b2 are kept apart in Optax)"
        if form.kind == "read" and any(u is not use and u.member == "param_groups" and u.ctx.stmt is use.ctx.stmt
                                       for u in self.uses(ident, "param_groups")):
            return "the statement uses the groups more than once: rewrite one by hand"
        groups = self.groups_of(ident)
        several = isinstance(groups, str) or (isinstance(groups, Groups) and len(groups.groups) > 1)
        if form.per_group or (several and form.kind == "write"):
            info = self._group_info(ident)
            if isinstance(info, str):
                return f"its parameter groups cannot be told apart statically ({info})"
            if info is None:
                return ("its parameter groups are not written out where it is built, so which group is which "
                        "cannot be told statically")
            unrolled = unroll(form, info, lambda g, k: "_")
            if isinstance(unrolled, str):
                return unrolled
        if self.target.hyperparams_need_state:
            names = self.names_for(ident, use.receiver, scope=use.ctx.scope)
            base = names.state.split(".", 1)[0]
            # The state is there where it is bound, where the construction's init line binds it, or
            # where a step of the optimizer rebinds it (its own OPX203 asks for it, if need be).
            stepped_here = any(u.member == "step" and ident in self.step_target(u)[1]
                               for u in self.steps_in(use.ctx.scope))
            if "." not in names.state and not visible(base, use.ctx.scope, self.program.module.bindings) and not (
                    ident.ctx is not None and self.has_init_line(ident) and (
                        _same_scope(ident.ctx.scope, use.ctx.scope) or ident.ctx.scope.kind == "module")) \
                    and not stepped_here:
                return f"the optimizer's state ({names.state}) is not in scope here: pass it in, then set it there"
        return ""

    def _emission(self, ident: Identity, extras: Extras | None = None) -> Emission | None:
        key = (id(ident), extras)
        if key in self._emissions:
            return self._emissions[key]
        if ident.choice is not None and len(ident.choice.candidates) > 1:
            out = self._emissions[key] = self._choice_emission(ident, extras)
            return out
        if ident.factory:
            out = self._emissions[key] = self._factory_emission(ident, extras)
            return out
        row = catalog.OPTIMIZERS.get(ident.name)
        out = None
        if row is not None:
            groups = self.groups_of(ident)
            positional, keywords = call_arguments(ident.call, ident.ctx.chunk.cache)
            keywords = self._spread(keywords, ident)
            args, params, problems = bind(row, positional, keywords)
            if isinstance(groups, Groups):
                if problems:
                    out = Emission(torch=row.qualified, problems=problems)
                else:
                    out = emit_groups(row, args, groups, extras, document=self.source.text)
            else:
                if isinstance(params.node if params else None, (cst.List, cst.Tuple)) and groups is not None:
                    problems = problems + ["parameter groups need optax.multi_transform with labels: convert "
                                           "them by hand"]
                out = emit(row, args, params, problems, extras, document=self.source.text)
        self._emissions[key] = out
        return out

    def _spread(self, keywords: list, ident: Identity) -> list:
        """`**extra` whose dict is built in view (`extra = dict(fused=True) if use_fused else
        dict()`): its keywords, where every way of building it agrees on them, or where they
        are only torch's implementation switches (`fused`, `foreach`...: no change to the math)."""
        out = []
        for name, value in keywords:
            variants = self._dict_variants(value.node, ident.ctx) if name is None else None
            if variants is None:
                out.append((name, value))
                continue
            keys = {k for v in variants for k in v}
            switches = keys <= set(catalog.IMPLEMENTATION_FLAGS)
            if not switches and any(set(v) != keys or any(arg_value(v[k]).source != arg_value(variants[0][k]).source
                                                           for k in keys) for v in variants):
                out.append((name, value))       # the branches differ in what changes the math
                continue
            for k in sorted(keys):
                node = next(v[k] for v in variants if k in v)
                out.append((k, arg_value(node)))
        return out

    def _dict_variants(self, node, ctx: StmtContext, depth: int = 0) -> list[dict] | None:
        """The {keyword: value node} dicts a `**` argument may be (None: not known)."""
        if depth > 4 or node is None:
            return None
        if isinstance(node, cst.IfExp):
            a, b = self._dict_variants(node.body, ctx, depth + 1), self._dict_variants(node.orelse, ctx, depth + 1)
            return a + b if a is not None and b is not None else None
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "dict" \
                and self.tracer.lookup("dict", ctx.scope) is None:
            if any(a.keyword is None for a in node.args):
                return None
            return [{a.keyword.value: a.value for a in node.args}]
        if isinstance(node, cst.Dict):
            out = {}
            for e in node.elements:
                key = getattr(e, "key", None)
                if not isinstance(key, cst.SimpleString) or not isinstance(e, cst.DictElement):
                    return None
                out[key.evaluated_value] = e.value
            return [out]
        if isinstance(node, cst.Name):
            bindings = self.tracer.reaching(self.tracer.lookup(node.value, ctx.scope) or [], ctx)
            if len(bindings) == 1 and bindings[0].kind == "value" and bindings[0].index is None:
                b = bindings[0]
                return self._dict_variants(b.node, b.ctx, depth + 1)
        return None

    def factory_call(self, ident: Identity) -> factories.FactoryCall:
        """timm's create_optimizer_v2(...) (or ZeroRedundancyOptimizer) read as the call of the
        class it builds."""
        positional, keywords = call_arguments(ident.call, ident.ctx.chunk.cache)
        if ident.factory == factories.ZERO_FACTORY:
            def class_key(value):
                q = self.tracer.qualified(value.node, ident.ctx.scope) if value.node is not None else None
                return optimizer_key(q) if q else None
            return factories.read_zero(positional, keywords, class_key)
        read = factories.read_timm(positional, keywords, lambda v: v.literal,
                                   lambda v: isinstance(v.node, (cst.Name, cst.Attribute)))
        if read.key is None and read.problems and "chosen at run time" in read.problems[0]:
            opt = argument(ident.call, 1, "opt")
            names = choosing.strings(opt, ident.ctx.scope, self.tracer, self.program)
            if names.default:
                read.problems[0] += f" ({names.origin}, default {names.default!r})"
        return read

    def _factory_emission(self, ident: Identity, extras: Extras | None) -> Emission:
        read = self.factory_call(ident)
        label = construction_label(ident)
        row = catalog.OPTIMIZERS.get(read.key) if read.key else None
        if read.problems or row is None:
            return Emission(torch=label, problems=read.problems or [f"{read.key} is not in switcheroo's catalog"])
        if read.decay_mask:
            extras = Extras(extras.learning_rate, extras.momentum, extras.prefix, read.decay_mask) if extras else \
                Extras(decay_mask=read.decay_mask)
        args, params, problems = bind(row, read.positional, read.keywords)
        out = emit(row, args, params, problems, extras, document=self.source.text)
        out.torch = label
        out.notes[:0] = [n for n in read.notes if n not in out.notes]
        return out

    def candidate_emission(self, ident: Identity, key: str | None, extras: Extras | None = None) -> Emission:
        """The emission for one class a construction may be (its candidates are built with the
        same arguments); one with problems when there is none."""
        if key is None:
            return Emission(torch="?", problems=["a class not known statically"])
        row = catalog.OPTIMIZERS.get(key)
        qualified = catalog.qualified_name(key)
        if row is None:
            return Emission(torch=qualified, problems=[UNMAPPED.get(key, "not in switcheroo's catalog")])
        groups = self.groups_of(ident)
        if isinstance(groups, str):
            return Emission(torch=qualified, problems=[f"parameter groups: {groups}"])
        positional, keywords = call_arguments(ident.call, ident.ctx.chunk.cache)
        args, params, problems = bind(row, positional, self._spread(keywords, ident))
        if isinstance(groups, Groups):
            return Emission(torch=qualified, problems=problems) if problems else \
                emit_groups(row, args, groups, extras, document=self.source.text)
        return emit(row, args, params, problems, extras, document=self.source.text)

    def _choice_emission(self, ident: Identity, extras: Extras | None) -> Emission:
        """A class chosen at run time: each candidate's rewrite, chosen by the author's condition."""
        choice = ident.choice
        parts: dict[int, Emission] = {}
        problems, seen = [], set()
        for leaf, key in choice.candidates:
            e = self.candidate_emission(ident, key, extras)
            parts[id(leaf)] = e
            name = catalog.qualified_name(key) if key else (leaf.why or "a value not known statically")
            if not e.ok and name not in seen:
                seen.add(name)
                problems.append(f"{name}: {'; '.join(e.problems) or 'no rewrite'}")
        out = Emission(torch=choice_label(ident))
        if problems and extras is not None and extras.inject:
            # The hyperparameters set by hand: which candidate cannot keep them, and why.
            out.problems = [f"its class is chosen at run time ({choice.expression}) and not every candidate can "
                            "keep them in its state: " + "; ".join(problems)]
            return out
        if problems:
            out.problems = [f"its class is chosen at run time ({choice.expression}) and "
                            f"{'it' if len(problems) == 1 else 'these'} cannot be converted: " + "; ".join(problems)]
            return out
        text = choosing.render(choice.tree, lambda leaf: parts[id(leaf)].one_line())
        out.transforms = [text]
        emissions = list({id(e): e for e in parts.values()}.values())
        out.exact = all(e.exact for e in emissions)
        out.difference = "; ".join(dict.fromkeys(e.difference for e in emissions if e.difference))
        out.needs_jnp = "jnp." in text
        out.needs_helpers = f"{catalog.HELPERS}." in text
        out.recipes = [r for e in emissions for r in e.recipes]
        out.placeholders = tuple(dict.fromkeys(p for e in emissions for p in e.placeholders))
        out.notes = [f"the class is chosen at run time ({choice.expression}): each candidate's rewrite, under the "
                     "author's condition"]
        for e in emissions:
            out.notes.extend(n for n in e.notes if n not in out.notes)
        return out

    # -- constructions -------------------------------------------------------------------------
    def _construction(self, ident: Identity) -> None:
        call, ctx = ident.call, ident.ctx
        span = self.span(call, ctx)
        noqa, ignore = self.lines(call, ctx)
        row = catalog.OPTIMIZERS.get(ident.name)
        qualified = construction_label(ident)
        if (ident.choice is not None and len(ident.choice.candidates) > 1) or ident.factory:
            pass
        elif row is None:
            message = (f"{qualified}: {UNMAPPED[ident.name]}" if ident.name in UNMAPPED else
                       f"{qualified} has no faithful Optax equivalent in switcheroo's catalog yet: port it by hand")
            f = Finding("OPX201", span, message, "unmapped", noqa, ignore)
            self.add(f, Site(f, ctx, ident))
            return
        groups = self.groups_of(ident)
        if isinstance(groups, str):
            f = Finding("OPX202", span, f"{qualified} with parameter groups: {groups}; build the groups with "
                        "optax.multi_transform and a labels pytree by hand", "manual", noqa, ignore)
            self.add(f, Site(f, ctx, ident))
            return
        emission = self.emission(ident)
        site = Site(None, ctx, ident, emission, groups=groups)
        if not emission.ok and ident.choice is not None and len(ident.choice.candidates) > 1:
            self._choice_blocked(ident, span, noqa, ignore)
            return
        if not emission.ok:
            chosen = ident.factory and any("chosen at run time" in p for p in emission.problems)
            f = Finding("OPX202" if chosen else "OPX201", span, f"{qualified}: {'; '.join(emission.problems)}",
                        "manual" if chosen else "unmapped", noqa, ignore, data={"torch": qualified})
            self.add(f, site)
            return
        site.names = self.names_for(ident, ident.target, scope=ctx.scope)
        if self.target.wrapper is not None:
            module = self.module_for(ident)
            if module.node is None:     # the target wraps a module, and there is none
                f = Finding("OPX202", span, self.target.no_module_message(qualified, module.why), "manual",
                            noqa, ignore)
                self.add(f, Site(f, ctx, ident))
                return
            site.names.module = module.text
        self.a.construct_sites[ident] = site
        note = f" ({emission.notes[0]})" if emission.notes else ""
        message = f"{qualified} → {self.target.construction_summary(emission.one_line(), site.names.module)}{note}"
        code = "OPX101" if emission.exact else "OPX201"
        if not emission.exact:
            message += f"; not exact: {emission.difference}"
        f = Finding(code, span, message, "construct", noqa, ignore, fixable=True,
                    data={"torch": qualified, "optax": emission.one_line()})
        self.add(f, site)
        missing = self.init_missing(ident, site.names)
        if emission.placeholders or missing:
            parts = []
            if emission.placeholders:
                parts.append(f"{qualified} → the rewrite needs {', '.join(emission.placeholders)}, which torch "
                             f"never spells out: {emission.notes[0]}")
            if missing:
                parts.append(f"{qualified} → its init line needs {', '.join(missing)}, not defined "
                             f"{scope_label(ctx)}: define it before (e.g. {self.target.params_hint(site.names)})")
            w = Finding("OPX203", span, "; ".join(parts), "construct", noqa, ignore, fixable=True,
                        data={"missing": list(emission.placeholders) + missing})
            self.add(w, Site(w, ctx, ident, emission, names=site.names, groups=groups, missing=tuple(missing)))

    def returned(self, ident: Identity) -> bool:
        """Is the optimizer handed back by its function (`return opt`, `return opt, sched`)? Its
        state then starts where the caller names it, not here."""
        scope = ident.ctx.scope if ident.ctx is not None else None
        if scope is None or scope.kind != "function":
            return False
        name = ident.target.value if isinstance(ident.target, cst.Name) else None
        for value, _ in scope.returns:
            items = [e.value for e in value.elements] if isinstance(value, (cst.Tuple, cst.List)) else [value]
            if any(v is ident.call or (name is not None and isinstance(v, cst.Name) and v.value == name)
                   for v in items):
                return True
        return False

    def has_init_line(self, ident: Identity) -> bool:
        """Does the construction's rewrite start its state right after it? Not where it is
        returned (the caller names it), nor where every step of it goes through an object that
        keeps its own state (`self.optimizer = optimizer`): one init per state, where it is needed."""
        return (ident.target is not None and self.target.has_init_line and not self.returned(ident)
                and not self._stepped_only_elsewhere(ident))

    def _stepped_only_elsewhere(self, ident: Identity) -> bool:
        steps = self.uses(ident)
        return bool(steps) and all(
            isinstance(u.receiver, cst.Attribute) and u.ctx.scope.class_scope is not None
            and u.ctx.scope.self_name is not None and any(
                b.kind == "value" and b.ctx is not None and self.tracer.construction(b.node) is None
                for b in u.ctx.scope.class_scope.attr_bindings.get(u.receiver.attr.value, []))
            for u in steps)

    def init_missing(self, ident: Identity, names: Names) -> list[str]:
        """Names the init line after the construction reads that its scope never binds."""
        if not self.has_init_line(ident):
            return []
        needed = self.target.init_reads(names)
        scope = ident.ctx.scope
        bound = self.bound_names(scope)
        if scope.kind == "class":
            bound = set()
        return [n for n in needed if ("." not in n and n not in bound)
                or ("." in n and not self._kept_on_instance(n, scope))]

    def _custom_label(self, ident: Identity) -> str:
        if ident.node is not None:
            unit = self.program.unit_of_scope(self.tracer._module_of(ident.node))
            where = f"{unit.path.replace(chr(92), '/').rsplit('/', 1)[-1]}" if unit is not None and unit.path else ""
            return f"{ident.name}, the project's own torch.optim.Optimizer subclass" + (f" ({where})" if where else "")
        return ident.name

    def _custom(self, ident: Identity) -> None:
        """An optimizer class fix-all has no rewrite for: the project's own, torch.distributed's."""
        span = self.span(ident.call, ident.ctx)
        noqa, ignore = self.lines(ident.call, ident.ctx)
        if ident.node is not None:
            message = (f"{ident.name}(...) builds {self._custom_label(ident)}: there is no automatic rewrite; write "
                       "its update rule as an optax.GradientTransformation (init(params) -> state, "
                       "update(grads, state, params) -> (updates, state)), or pick the catalog optimizer it "
                       "stands for; its steps stay torch until then")
        elif ident.name.endswith("ZeroRedundancyOptimizer"):
            message = (f"{ident.name} shards torch optimizer state across ranks: there is no automatic rewrite; in "
                       "JAX write its optimizer_class's Optax rewrite (docs/optimizers.md) and shard the opt_state "
                       "pytree with jax.sharding")
        else:
            message = (f"{ident.name} steps optimizers on remote workers (RPC): there is no automatic rewrite; in "
                       "JAX the update runs where the parameters live (jax.sharding), with the Optax rewrite of "
                       "its optimizer_class")
        f = Finding("OPX202", span, message, "manual", noqa, ignore)
        self.add(f, Site(f, ident.ctx, ident))

    def scheduler_problem(self, sched: Identity) -> str:
        """What its own finding says keeps a scheduler torch ('' when it converts or was not reported here)."""
        for site in self._pending.values():
            f = site.finding
            if site.sched is sched and f is not None and not f.fixable and f.kind in ("unmapped", "manual"):
                return f.message.split(": ", 1)[-1]
        return ""

    def candidates(self, ident: Identity) -> list[dict]:
        """What each class a construction may be becomes: [{key, label, condition, rewrite, why}]."""
        choice = ident.choice
        out = []
        for leaf, key in choice.candidates:
            e = self.candidate_emission(ident, key)
            label = catalog.qualified_name(key) if key else (leaf.why or "a class not known statically")
            if key is not None and key == choice.default:
                label += f", the default ({choice.origin})" if choice.origin else ", the default"
            conds = choosing.conditions(choice.tree, leaf) or ()
            out.append({"key": key, "label": label, "condition": " and ".join(conds),
                        "rewrite": e.one_line() if e.ok else "", "why": "; ".join(e.problems),
                        "exact": e.ok and e.exact})
        return out

    def _choice_blocked(self, ident: Identity, span, noqa, ignore) -> None:
        """A class chosen at run time where a candidate has no rewrite: the flow stays torch,
        the candidates are named, and each that has a rewrite is offered as a code action."""
        rows = self.candidates(ident)
        said = []
        for r in rows:
            what = f"→ {r['rewrite']}" if r["rewrite"] else f"no rewrite ({r['why']})"
            said.append(f"{r['label']} {what}" if r["key"] else f"{r['label']}: no rewrite")
        convertible = [r for r in rows if r["rewrite"]]
        message = (f"{choice_label(ident)}: its class is chosen at run time ({ident.choice.expression}) and not every "
                   f"choice has an Optax rewrite, so its flow stays torch: " + "; ".join(dict.fromkeys(said)))
        if convertible:
            message += " (a code action converts it as one of them)"
        f = Finding("OPX202", span, message, "manual", noqa, ignore,
                    data={"torch": choice_label(ident),
                          "candidates": [{"key": r["key"], "label": r["label"] + ("" if r["exact"] else " (approximate)")}
                                         for r in convertible]})
        self.add(f, Site(f, ident.ctx, ident))

    def _chosen_at_run_time(self, ident: Identity) -> None:
        """`self.optimizer_class(...)`: torch's class by default, but a caller may pick another."""
        span = self.span(ident.call, ident.ctx)
        noqa, ignore = self.lines(ident.call, ident.ctx)
        qualified = catalog.qualified_name(ident.name)
        f = Finding("OPX202", span, f"{ident.chosen_by}(...) builds {qualified} unless a caller passes "
                    "another class: choose the Optax optimizer where the class is chosen, and build it here by "
                    "hand (docs/optimizers.md has each faithful rewrite)", "manual", noqa, ignore,
                    data={"torch": qualified})
        self.add(f, Site(f, ident.ctx, ident))

    def _scaler_use(self, use: ReceiverUse) -> None:
        """A GradScaler: `scaler.step(opt)` is opt's step; its other calls need a person."""
        ctx, node = use.ctx, use.node
        span = self.span(node, ctx)
        noqa, ignore = self.lines(node, ctx)
        recv = self.text(use.receiver, ctx)
        if use.member == "step" and isinstance(node, cst.Call):
            target = argument(node, 0, "optimizer")
            ids = self.tracer.receiver_ids(target, ctx.scope, ctx) if target is not None else frozenset()
            optimizers = frozenset(i for i in ids if i.kind not in ("scheduler", "scaler"))
            is_stmt = isinstance(ctx.stmt, cst.Expr) and ctx.stmt.value is node
            if optimizers and len(optimizers) == len(ids) and is_stmt and len(node.args) == 1:
                self._step(use, optimizers, span, noqa, ignore, self.text(target, ctx), receiver=target,
                           via=f"{recv}.step")
                self.handled[id(node)] = optimizers
                return
        if use.member in ("step", "scale", "unscale_", "update"):
            what = f"{recv}.{use.member}()" if use.member != "scale" else f"{recv}.scale(loss)"
            self._manual(span, noqa, ignore, ctx, f"{what}: loss scaling — {SCALER_NOTE}")
            if use.member == "unscale_" and isinstance(node, cst.Call) and node.args:
                # Reported: the optimizer it names needs no unscaling in JAX, the person decides.
                self.handled[id(node)] = self.tracer.receiver_ids(node.args[0].value, ctx.scope, ctx)

    def _params_node(self, call: cst.Call, ctx: StmtContext):
        """The params argument, looked through a name bound once to a list (or to a module's
        `.parameters()`) in the same scope."""
        node = argument(call, 0, "params")
        if isinstance(node, cst.Name):
            bindings = ctx.scope.bindings.get(node.value, []) if ctx.scope.kind != "module" else \
                self.program.module.bindings.get(node.value, [])
            if len(bindings) == 1 and bindings[0].kind == "value" and (
                    isinstance(bindings[0].node, (cst.List, cst.Tuple)) or parameters_owner(bindings[0].node)):
                return bindings[0].node
        return node

    def _named_params(self, ident: Identity):
        """The params argument, looked through a name bound once in its scope (`ge_chain =
        itertools.chain(gen.parameters(), enc.parameters())`): what names the parameters."""
        node = argument(ident.call, 0, "params")
        if isinstance(node, cst.Name) and ident.ctx is not None:
            scope = ident.ctx.scope
            if scope.kind == "module":
                scope = self.program.module_scope(scope)
            bindings = scope.bindings.get(node.value, [])
            if len(bindings) == 1 and bindings[0].kind == "value" and bindings[0].node is not None:
                return bindings[0].node
        return node

    def module_for(self, ident: Identity | None) -> ModuleOf:
        """The module a torch construction trains (targets that wrap one need it)."""
        if ident is not None and ident.kind == "nnx" and ident.call is not None and ident.call.args \
                and ident.call.args[0].keyword is None:
            # Already an nnx.Optimizer(model, tx): its first argument (a step of it converts the
            # same whether its construction was fixed first or with it).
            return ModuleOf(node=ident.call.args[0].value)
        if ident is None or ident.kind != "torch" or ident.call is None:
            return ModuleOf(why="the optimizer is not built here")
        if ident not in self._modules:
            node = self._params_node(ident.call, ident.ctx)
            if ident.factory == factories.TIMM_FACTORY and isinstance(node, (cst.Name, cst.Attribute)):
                self._modules[ident] = ModuleOf(node)       # create_optimizer_v2(model, ...) trains model
            else:
                self._modules[ident] = module_of(node, self.groups_of(ident))
        return self._modules[ident]

    def _made_by(self, receiver, scope: Scope) -> cst.Call | None:
        """The call whose result a name holds (`optimizer = model.configure_optimizers()`)."""
        if not isinstance(receiver, cst.Name):
            return None
        made = [b.node for b in self.tracer.lookup(receiver.value, scope) or []
                if b.kind == "value" and isinstance(b.node, cst.Call)]
        return made[0] if len(made) == 1 else None

    def no_target_form(self, ident: Identity) -> str:
        """Why a torch optimizer cannot take the target's form ("" when it can): a target that
        wraps a module needs one. Its whole flow then stays torch (`convertible`)."""
        if self.target.wrapper is None or ident.kind != "torch":
            return ""
        return self.module_for(ident).why

    # -- receivers -----------------------------------------------------------------------------
    def _receiver_use(self, use: ReceiverUse, ids: frozenset) -> bool:
        """Report (and plan the rewrite of) a use of an optimizer; False where nothing is said."""
        ctx, node = use.ctx, use.node
        span = self.span(node, ctx)
        noqa, ignore = self.lines(node, ctx)
        recv = self.text(use.receiver, ctx)
        is_stmt = isinstance(ctx.stmt, cst.Expr) and ctx.stmt.value is node
        member = use.member
        if member == "step" and all(i.kind == "nnx" for i in ids) and self.target.wrapper is None:
            self._manual(span, noqa, ignore, ctx, f"{recv}.step(): {recv} is an nnx.Optimizer, stepped with "
                         f"{recv}.update(model, grads)")
        elif member == "step":
            if node.args:
                lbfgs = any(i.kind == "torch" and i.name == "LBFGS" for i in ids)
                self._manual(span, noqa, ignore, ctx, self.target.manual_message("closure", recv, lbfgs))
            elif not is_stmt:
                self._manual(span, noqa, ignore, ctx, self.target.manual_message("step_value", recv))
            else:
                self._step(use, ids, span, noqa, ignore, recv)
        elif member == "zero_grad":
            if not is_stmt:
                return False
            f = Finding("OPX103", span, f"{recv}.zero_grad() → removed: {self.target.zero_grad_why}",
                        "zero_grad", noqa, ignore, fixable=True)
            self.add(f, Site(f, ctx, receiver=recv, ids=ids))
        elif member == "param_groups":
            self._param_groups(use, ids, span, noqa, ignore, recv)
        elif member in ("state", "state_dict", "load_state_dict", "add_param_group"):
            self._manual(span, noqa, ignore, ctx, self.target.manual_message(member, recv))
        elif member in ("train", "eval") and all(i.kind == "torch" and i.name.startswith("schedulefree.") for i in ids):
            names = self.names_for(next(iter(ids)) if len(ids) == 1 else None, use.receiver, receiver_ids=ids)
            self._manual(span, noqa, ignore, ctx, (
                f"{recv}.{member}(): schedulefree swaps the parameters between the train-mode sequence (y, what "
                f"steps see) and the averaged one (x, what evaluation should see); the Optax rewrite keeps y: "
                f"evaluate at optax.contrib.schedule_free_eval_params({names.state}, {names.params}) and drop "
                f"{recv}.train() / {recv}.eval()"))
        else:
            return False
        return True

    def _param_groups(self, use: ReceiverUse, ids: frozenset, span, noqa, ignore, recv: str) -> None:
        """`opt.param_groups[0]["lr"] = v`, a loop setting every group's, a read for logging:
        the value in the state optax.inject_hyperparams keeps (OPX107); else OPX202, saying why."""
        form = self.hyper_form(use)
        why = form if isinstance(form, str) else ""
        # The receiver may be one of several optimizers (built in the branches of an `if` on a
        # run-time choice): the use converts once for all of them where each keeps what it sets
        # or reads at the same place of its state; else it says which one does not, and why.
        # (one that cannot convert at all first: it is what a person must port)
        candidates = sorted(ids, key=lambda i: (i.kind == "torch", self._order(i)))
        several = len(candidates) > 1
        found = []          # (optimizer, names, state), one per candidate
        for ident in candidates if not why else ():
            who = f"it may be {self._candidate_label(ident)}, " if several else ""
            if ident.kind != "torch":
                own = "it is an Optax optimizer already, with no param_groups" if ident.kind in ("optax", "nnx") \
                    else self._own_reason(ident) or "it is not a torch optimizer fix-all converts"
                why = f"it may be {self._candidate_label(ident)}: {own}" if several else own
                break
            problem = self._hyper_problem(ident, form, use)
            if problem:
                why = f"it may be {self._candidate_label(ident)}: {problem}" if several else problem
                break
            if not self.injected(ident):
                problem = self._hyper.get(("why", id(ident))) or "its construction cannot keep them in its state"
                why = f"{who}whose construction cannot keep them in its state: {problem}" if several else problem
                break
            names = self.names_for(ident, use.receiver, scope=use.ctx.scope)
            if self.target.wrapper is not None:
                names.module = self.module_for(ident).text
            state = self.hyper_state(ident)
            if form.kind != "read" and not isinstance(unroll(form, state.groups, lambda g, k: "_"), list):
                why = f"{who}whose construction keeps apart other groups than it sets" if several else \
                    "the groups it sets are not the ones its construction keeps apart"
                break
            found.append((ident, names, state))
        if not why and several:
            why = self._apart(form, recv, found)
        if why:
            self._manual(span, noqa, ignore, use.ctx, f"{self.target.manual_message('param_groups', recv)} ({why})")
            return
        ident, names, state = found[0]
        message = f"{hyper_message(self, form, use, recv, names, state)} ({injected_knowledge.NOTE})"
        f = Finding("OPX107", span, message, "hyperparam", noqa, ignore, fixable=True)
        self.add(f, Site(f, use.ctx, ident if not several else None, names=names, receiver=recv, ids=ids, hyper=form,
                         hyper_state=state))

    def _candidate_label(self, ident: Identity) -> str:
        """How a param_groups message names one optimizer a receiver may be."""
        if ident.kind == "torch" and ident.choice is not None and len(ident.choice.candidates) > 1:
            return f"what {choice_label(ident).replace(', one of', ' builds at ' + self._where(ident) + ' (one of')})"
        return self._label(ident)

    def _apart(self, form: HyperUse, recv: str, found: list) -> str:
        """Why the optimizers a receiver may be keep what a use sets or reads at different places
        of their states ('' where the place is the same whichever is chosen)."""
        def places(names, state) -> tuple:
            def at(key: str, group: int) -> str:
                return hyper_where(self.target, recv, names, state, key, group)
            if form.kind == "read":
                return (at(form.key, group_of(form, state.groups.count)),)
            return tuple(f"{at(w.key, w.group)} {w.op} {w.value}" for w in unroll(form, state.groups, at))

        first_ident, first_names, first_state = found[0]
        first = places(first_names, first_state)
        for ident, names, state in found[1:]:
            here = places(names, state)
            if here != first:
                return (f"{self._candidate_label(first_ident)} keeps it at {first[0].split(' ', 1)[0]}, "
                        f"{self._candidate_label(ident)} at {here[0].split(' ', 1)[0] if here else 'no place'}"
                        if first[:1] != here[:1] else
                        f"{self._candidate_label(first_ident)} and {self._candidate_label(ident)} keep their groups "
                        "apart differently") + ": where it goes depends on the choice"
        return ""

    def _manual(self, span, noqa, ignore, ctx, message) -> None:
        f = Finding("OPX202", span, message, "manual", noqa, ignore)
        self.add(f, Site(f, ctx))

    def _step(self, use: ReceiverUse, ids: frozenset, span: Span, noqa, ignore, recv: str, receiver=None,
              via: str = "") -> None:
        """An optimizer's step (`via`: what called it, `scaler.step`)."""
        receiver = receiver if receiver is not None else use.receiver
        ident = next(iter(ids)) if len(ids) == 1 else None
        names = self.names_for(ident, receiver, receiver_ids=ids, scope=use.ctx.scope)
        # An optimizer already in Optax is stepped the functional way whatever the target.
        target = self.target.steps_of(frozenset(i.kind for i in ids))
        if target.wrapper is not None:
            # A receiver that may be one of several (built in the branches of a run-time choice):
            # the module they all train, where they agree on it.
            agreed = ident
            if ident is None and all(i.kind == "torch" for i in ids):
                mods = {i: self.module_for(i) for i in ids}
                texts = {(m.text, i.ctx.scope.kind if i.ctx else None) for i, m in mods.items()}
                scopes = {id(i.ctx.scope) if i.ctx else None for i in ids}
                if len(texts) == 1 and len(scopes) == 1 and all(m.node is not None for m in mods.values()):
                    agreed = next(iter(sorted(ids, key=self._order)))
            names.module = reached_from(self.module_for(agreed), agreed.ctx if agreed else None, use.ctx.scope,
                                        self._made_by(receiver, use.ctx.scope), self.tracer.incoming) or held_by(
                receiver, use.ctx.scope, self.tracer)
        plateau = self.plateaus.get(ident)
        plateau_state = plateau.plateau_state if plateau is not None else ""
        state_init = self._attribute_state_init(use, names, receiver, target) or self._named_state_init(
            use, names, receiver, target)
        # Where the gradients come from (gradients.py): a target that derives them defines `grads`.
        grads = self.gradients.for_step(use, names, ident, receiver, target)
        missing = self._missing(use.ctx, names, ids, target, plateau,
                                defined={names.state, names.params} if state_init is not None else set())
        if grads.region is not None:
            missing = tuple(m for m in missing if m != names.grads)
        site = Site(None, use.ctx, ident, names=names, receiver=recv, missing=missing, state_init=state_init,
                    ids=ids, plateau_state=plateau_state, gradients=grads)
        rewrite = target.step_summary(recv, names)
        called = f"{via}({recv})" if via else f"{recv}.step()"
        f = Finding("OPX102", span, f"{called} → {rewrite} ({target.step_why}){target.gradients_note(grads, names)}",
                    "step", noqa, ignore, fixable=True, data={"rewrite": rewrite})
        self.add(f, site)
        if missing:
            where = scope_label(use.ctx)
            w = Finding("OPX203", span, f"{called} → the rewrite needs {', '.join(missing)}, not defined "
                        f"{where}: define them before the update (e.g. {target.grads_hint(names)})"
                        f"{target.todo_note(grads, names, missing)}",
                        "undefined", noqa, ignore, fixable=True, data={"missing": list(missing)})
            self.add(w, Site(w, use.ctx, ident, names=names, receiver=recv, missing=missing,
                             state_init=state_init, ids=ids, plateau_state=plateau_state, gradients=grads))

    def _attribute_state_init(self, use: ReceiverUse, names: Names, recv,
                              target) -> tuple[StmtContext, list[str]] | None:
        """`self.optimizer = optimizer` stores an optimizer built elsewhere: its state must start
        beside it (`self.opt_state = self.optimizer.init(params)`), unless the class keeps one."""
        cls = use.ctx.scope.class_scope
        if not isinstance(recv, cst.Attribute) or cls is None or "." not in names.state:
            return None
        if not target.has_init_line:
            return None
        state_attr = names.state.split(".", 1)[1]
        if state_attr in cls.attr_bindings:
            return None
        for b in cls.attr_bindings.get(recv.attr.value, []):
            if b.kind != "value" or b.ctx is None or (
                    isinstance(b.node, cst.Call) and self.tracer.construction(b.node) is not None):
                continue
            me = b.ctx.scope.self_name
            texts = []
            if not (names.params in b.ctx.scope.bindings or self._kept_on_instance(names.params, b.ctx.scope)):
                texts.append(f"# TODO(switcheroo): define {names.params} here (the parameter pytree to optimize)")
            texts.append(f"{me}.{state_attr} = {me}.{recv.attr.value}.init({names.params})")
            return b.ctx, texts
        return None

    def _named_state_init(self, use: ReceiverUse, names: Names, receiver,
                          target) -> tuple[StmtContext, list[str]] | None:
        """`optimizer = build_optimizer(cfg)` names an optimizer built elsewhere: its state starts
        right after (`opt_state = optimizer.init(params)`)."""
        if not isinstance(receiver, cst.Name) or "." in names.state or not target.has_init_line:
            return None
        scope = use.ctx.scope
        bindings = self.tracer.lookup(receiver.value, scope) or []
        if names.state in self.bound_names(scope) or any(
                b.kind == "value" and self.tracer.construction(b.node) is not None
                and self.has_init_line(self.tracer.construction(b.node)) for b in bindings):
            return None                 # the construction's own init line, or the file keeps a state
        made = [b for b in bindings if b.kind == "value" and isinstance(b.node, cst.Call) and b.ctx is not None
                and _same_scope(b.scope, scope) and (b.index is None or (
                    self.tracer.function_called(b.node, b.scope) is not None
                    and self.tracer.wrapper_of(b.node, b.scope) is None))]
        if len(made) != 1:
            return None
        b = made[0]
        texts = []
        if names.params not in self.bound_names(b.ctx.scope):
            texts.append(f"# TODO(switcheroo): define {names.params} here (the parameter pytree to optimize)")
        texts.extend(target.init_lines(receiver.value, names))
        return b.ctx, texts

    def _missing(self, ctx: StmtContext, names: Names, ids, target, plateau: Site | None = None,
                 defined: set[str] = frozenset()) -> tuple[str, ...]:
        scope = ctx.scope
        bound = self.bound_names(scope) | set(defined)
        if scope.kind == "class":
            bound = set()
        defined_by_init = {self.names_for(i, i.target, scope=i.ctx.scope).state for i in ids
                           if i.kind == "torch" and i.ctx and self.has_init_line(i) and _same_scope(i.ctx.scope, scope)}
        missing = [n for n in target.step_refs(names) if not visible(n, scope, self.program.module.bindings)]
        wanted = target.step_reads(names)
        if plateau is not None:
            wanted.append(plateau.plateau_state)
            if _same_scope(plateau.ctx.scope, scope):
                defined_by_init.add(plateau.plateau_state)
        for name in wanted:
            if "." in name:
                # The state beside an attribute starts with its init line; `self.params` is the
                # class's to keep.
                if name == names.params and name not in defined and not self._kept_on_instance(name, scope) and not any(
                        i.ctx is not None and i.ctx.scope.class_scope is scope.class_scope and self.has_init_line(i)
                        for i in ids):
                    missing.append(name)     # (an init line in the class asks for it already)
                continue
            if name not in bound and name not in defined_by_init and name not in missing:
                missing.append(name)
        return tuple(missing)

    def _kept_on_instance(self, name: str, scope: Scope) -> bool:
        """Does `self.<attr>` (a name the rewrite reads in a method) have a value in its class?"""
        me, _, attr = name.partition(".")
        cls = scope.class_scope if scope is not None else None
        if cls is None or me != scope.self_name or "." in attr:
            return True         # not the instance's own attribute: not ours to judge
        return bool(self.tracer.member_bindings(cls, attr))

    # -- names -----------------------------------------------------------------------------------
    def names_for(self, ident: Identity | None, receiver, receiver_ids=None, scope: Scope | None = None) -> Names:
        """Consistent names for an optimizer's state, params and grads across its rewrites; in a
        method (`scope`), the state and the parameters live on the instance (`self.opt_state`,
        `self.params`): a local would vanish when the method returns, and the update with it.
        A receiver that may be one of several optimizers gets their names where they all agree."""
        names = self._names(ident, receiver)
        if ident is None and receiver_ids and len(receiver_ids) > 1:
            each = {(n.state, n.params, n.grads) for n in (self._names(i, receiver) for i in receiver_ids)}
            if len(each) == 1:
                names = Names(*each.pop())
        me = scope.self_name if scope is not None and scope.kind == "function" and scope.class_scope else None
        if me and self.target.wrapper is None:
            names.state = names.state if "." in names.state else f"{me}.{names.state}"
            names.params = names.params if "." in names.params else f"{me}.{names.params}"
        return names

    def _names(self, ident: Identity | None, receiver) -> Names:
        single = self.single
        prefix = ""
        if isinstance(receiver, cst.Attribute):
            prefix = one_line(receiver.value) + "."
        if ident is not None and ident in self.init_names:
            state_base, params = self.init_names[ident]
        else:
            var = ident.var if ident is not None and ident.target is not None else _var_of(receiver)
            if ident is not None and ident not in self.optimizers and not single:
                var = _var_of(receiver)
            state_base = "opt_state" if single else f"{var}_state"
            params = self._params_name(ident, var)
        grads = params.replace("params", "grads") if "params" in params else f"{params}_grads"
        return Names(prefix + state_base, params, grads)

    def _params_name(self, ident: Identity | None, var: str) -> str:
        """`params` for one module; `<module>_params` for the module an optimizer trains when
        the file has several (shared by the optimizers of one module)."""
        base = self.owners.get(ident) if ident is not None else None
        if (self._owner_count <= 1 and (base is not None or self.single)) or base == "self":
            return "params"     # the object's own parameters (`self.parameters()`): the params
        if base:
            return f"{base}_params"
        return "params" if self.single else f"{var}_params"

    def _existing_inits(self) -> dict[Identity, tuple[str, str]]:
        """`opt_state = opt.init(params)` already in the file (a converted optimizer)."""
        out = {}
        for site in self.program.calls:
            call = site.call
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "init" and len(call.args) == 1
                    and call.args[0].keyword is None and not call.args[0].star):
                continue
            stmt = site.ctx.stmt
            if not (isinstance(stmt, cst.Assign) and stmt.value is call and len(stmt.targets) == 1):
                continue
            ids = self.tracer.receiver_ids(func.value, site.ctx.scope, site.ctx)
            target = stmt.targets[0].target
            arg = call.args[0].value
            if len(ids) == 1 and isinstance(target, (cst.Name, cst.Attribute)) and isinstance(arg, cst.Name):
                state = target.value if isinstance(target, cst.Name) else target.attr.value
                out[next(iter(ids))] = (state, arg.value)
        return out


def _same_scope(a: Scope, b: Scope) -> bool:
    return a is b or (a.kind == "module" and b.kind == "module")


def _var_of(receiver) -> str:
    if isinstance(receiver, cst.Name):
        return receiver.value
    if isinstance(receiver, cst.Attribute):
        return receiver.attr.value
    return "opt"


def _nnx_module(ident: Identity) -> str | None:
    """`nnx.Optimizer(gen, tx)` -> 'gen': an already converted optimizer trains its module."""
    node = argument(ident.call, 0, "model")
    parts = dotted(node) if node is not None else None
    return parts[-1] if parts else None


def _parameters_owner(first, factory: bool = False) -> str | None:
    """The name of what an optimizer's parameters (its params argument, `first`) belong to:
    'gen' for `gen.parameters()`; for a union of several modules' (`list(self.encoder.parameters())
    + list(self.decoder.parameters())`) their common owner ('self'), else their names joined
    ('gen_disc'), else None (the optimizer's own name then says what it trains)."""
    if first is None or read_groups(first) is not None:
        return None     # parameter groups: the whole params pytree
    if factory and isinstance(first, (cst.Name, cst.Attribute)):
        return dotted(first)[-1] if dotted(first) else None    # create_optimizer_v2(model, ...) trains model
    paths: list[list[str]] = []
    stack = [first]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in (
                "parameters", "named_parameters"):
            parts = dotted(node.func.value)
            if parts and parts not in paths:
                paths.append(parts)
            continue
        stack.extend(reversed(list(children(node))))    # in source order
    if len(paths) <= 1:
        return paths[0][-1] if paths else None
    common = paths[0]
    for parts in paths[1:]:
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    if common:
        return common[-1]
    return "_".join(p[-1] for p in paths) if len(paths) <= _JOINED else None


_JOINED = 3     # a union of more modules than this, without a common owner, is named after its optimizer


def construction_label(ident: Identity) -> str:
    """How messages name a construction: its class, the candidates of a choice, or the factory call."""
    if ident.choice is not None and len(ident.choice.candidates) > 1:
        return choice_label(ident)
    if ident.factory == factories.ZERO_FACTORY:
        built = f" ({catalog.qualified_name(ident.name)})" if ident.name != ident.factory else ""
        return f"{ident.factory}{built}"
    if ident.factory:
        opt = argument(ident.call, 1, "opt")
        text = cst.Module(body=()).code_for_node(opt) if opt is not None else "'sgd'"
        built = f" ({catalog.qualified_name(ident.name)})" if ident.name != ident.factory else ""
        return f"{ident.factory}(opt={text}){built}"
    return catalog.qualified_name(ident.name)


def choice_label(ident: Identity) -> str:
    """`optimizer_class(...)`, chosen between torch.optim.AdamW and bitsandbytes.optim.AdamW8bit'."""
    choice = ident.choice
    names = []
    for _, key in choice.candidates:
        name = catalog.qualified_name(key) if key else "another class"
        if name not in names:
            names.append(name)
    callee = cst.Module(body=()).code_for_node(ident.call.func)
    return f"{callee}(...), one of {', '.join(names)}"


def scope_label(ctx: StmtContext) -> str:
    node = ctx.scope.node
    if isinstance(node, cst.FunctionDef):
        return f"in {node.name.value}()"
    return "at module level"


__all__ = ["Builder", "scope_label", "arg_value"]
