"""The gradient region: the statements of a backward's block, since the previous update, that its
loss depends on (its backward data slice) from the first that runs the module (its forward slice,
not through `torch.no_grad()` or `.detach()`), with what initialises what they accumulate into.
They move into a loss function of the module; what they compute that later code reads is aux;
statements between them that read it follow the call, the others stay, and every statement that
moves past another must commute with it. Part of gradients.Gradients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from .accumulation import Accumulation
from .arguments import one_line
from .effects import Effects, effects, is_no_grad_block  # noqa: F401 (Effects: annotations)
from .facts import Scope, StmtContext
from .statements import NotDerived, Unit, dominates, header_reads, short


@dataclass(eq=False)
class Backward:
    unit: Unit
    loss: cst.BaseExpression      # the loss expression (`loss`, `output.sum()`, `loss / accum`)
    form: str                     # 'tensor' | 'scaler' | 'accelerate' | 'fabric'


@dataclass(eq=False)
class Region:
    """A loss function of the trained module, and what its call binds."""
    backward: Backward
    units: list[Unit]             # moved into the loss function, in order (may be empty)
    anchor: Unit                  # the def and the call go after it (the last unit, or the backward)
    dependents: list[Unit]        # statements between the units that read what they compute: after the call
    module: str                   # the module as the step reaches it (`model`, `self.model`)
    param: str                    # the loss function's parameter for it
    extra: list[str]              # other parameters: names the region reads before rebinding them
    aux: list[str]                # values returned beside the loss (read after the region)
    value: str                    # what the loss value binds (`loss`, or `_`)
    returned: str                 # the loss expression the function returns (as the user wrote it)
    returns_value: bool           # the loss is a name the region binds (returned as is)
    name: str                     # the loss function's name
    accumulate: Accumulation | None = None
    step: Unit | None = None      # the step (an accumulated one moves next to the call)
    backward_text: str = ""       # `loss.backward()`, as written (for messages)
    loss: cst.BaseExpression | None = None      # what the function returns (the loss, undivided by N)

    @property
    def moves_update(self) -> bool:
        """Accumulated with MultiSteps: the update runs at every backward, next to the call."""
        return self.accumulate is not None and not self.accumulate.keeps_sum


class RegionCutting:
    """The region part of gradients.Gradients (a mixin: it reads the analysis through it)."""

    def _window(self, bw: Backward) -> list[Unit]:
        """The statements of the backward's block since the previous update, before it."""
        ctx = bw.unit.ctx
        units = self.units(ctx.body, ctx.chunk) or []
        at = next(k for k, u in enumerate(units) if u.node is bw.unit.node)
        start = 0
        for k in range(at - 1, -1, -1):
            if self._holds_step(units[k]) is not None:
                start = k + 1
                break
        return units[start:at]

    def _region(self, bw: Backward, parts: tuple[str, ...], scope: Scope, dry: bool, hint: str = "",
                accumulate: Accumulation | None = None):
        window = self._window(bw)
        E = [self.effects(u.node, parts) for u in window]
        loss, kept_division = self._undivided(bw, window, accumulate)
        loss_e = effects(cst.Expr(loss), parts)
        root = parts[0] if parts else ""
        # The module and `self` are read, never computed, here: what changes `self.<x>` in place
        # (`self.optimizer.zero_grad()`) is no statement of the loss's.
        ignore = {n for n in (root, scope.self_name) if n}
        # The loss's backward slice.
        live = set(loss_e.reads) - ignore
        S = set()
        for k in range(len(window) - 1, -1, -1):
            if k == kept_division:
                continue
            e = E[k]
            if e.writes & live:
                S.add(k)
                live = (live - e.kills) | (e.uses - ignore)
        # What runs the module (forward, not through no_grad / detach).
        D: set[str] = set()
        M = set()
        for k, e in enumerate(E):
            if not e.no_grad and (e.calls_module or (e.dreads & D)):
                M.add(k)
                D |= e.writes - ignore
            else:
                D -= e.kills
        loss_runs = loss_e.calls_module or bool(loss_e.dreads & D)
        if dry:
            return [window[k] for k in sorted(S)]
        if not loss_runs:
            # A better reason where there is one: the module ran before the previous update.
            self._check_live_in(bw, window, sorted(S), E, parts, scope, hint)
            raise NotDerived(f"{one_line(bw.loss)} does not run {'.'.join(parts)} in the statements since the previous "
                        f"update: write the loss function of {'.'.join(parts)} by hand", hint)
        # The loss's statements from the first that runs the module on (what comes before them is
        # data: it stays, as what `no_grad()` computes does).
        first = min(S & M) if S & M else len(window)
        R = self._with_initialisers({k for k in S if k >= first and not E[k].no_grad}, E)
        order = sorted(R)
        units = [window[k] for k in order]
        anchor = units[-1] if units else bw.unit
        self._check_units(units, E, order, parts, hint)
        # Values computed from the module in this iteration before the window: the loss would read
        # them as constants.
        self._check_live_in(bw, window, order, E, parts, scope, hint)
        # Statements between the first and the last unit: dependents move after the call.
        dependents, kept = [], []
        if units:
            first, last = order[0], order[-1]
            flowing = set()
            for k in range(first, last + 1):
                if k in R:
                    flowing |= E[k].writes
                    continue
                e = E[k]
                if (e.reads | e.mutates) & flowing:
                    dependents.append(k)
                    flowing |= e.writes
                else:
                    kept.append(k)
            self._check_commute(window, E, R, dependents, kept, hint)
            if not anchor.whole_line:
                after = anchor.line.body[anchor.line.body.index(anchor.node) + 1:]
                if any(s is not bw.unit.node and not self._is_ours(Unit(s, self.ctx_of(s, anchor.ctx.chunk)), set())
                       for s in after):
                    raise NotDerived(f"`{self._brief(anchor)}` shares its line with other statements: write the "
                                "loss function by hand", hint)
        # Names the region reads before binding them (and binds): parameters of the function.
        written_all = set().union(*(E[k].writes for k in R)) if R else set()
        defined: set[str] = set()
        extra = []
        for k in order:
            need = (E[k].uses - defined) & written_all - ignore
            for n in sorted(need):
                if n not in extra:
                    extra.append(n)
            defined |= E[k].kills
        # The loss value.
        returns_value = isinstance(loss, cst.Name) and loss.value in written_all
        fn_names = self._names_in_scope(scope)
        value_name = loss.value if returns_value else ("loss" if "loss" not in fn_names else "_")
        # Aux: what the region binds that is read after it.
        aux = []
        for n in sorted(written_all - {value_name} - ignore, key=lambda n: self._bound_at(n, units, E, order)):
            if self._read_after(n, units, dependents and [window[k] for k in dependents], anchor, scope):
                if n not in defined and n not in extra:
                    raise NotDerived(f"{n} is bound only on some paths of the loss's statements and read after them: "
                                "write the loss function by hand", hint)
                aux.append(n)
        param = parts[-1] if parts[-1] != "self" else "model"
        region_reads = set().union(*(E[k].reads for k in R)) | loss_e.reads if R else set(loss_e.reads)
        if len(parts) > 1 and param in region_reads | written_all:
            param = "module"
        name = self._loss_fn_name(scope, param, fn_names)
        return Region(bw, units, anchor, [window[k] for k in dependents], ".".join(parts), param, extra, aux,
                      value_name, one_line(loss), returns_value, name, loss=loss)

    @staticmethod
    def _with_initialisers(R: set[int], E: list[Effects]) -> set[int]:
        """The region, with what starts the values it accumulates into or binds on some paths
        only (`style_loss = 0.` before `style_loss += ...`, `r_loss = 0` before `if c: r_loss = ...`):
        a plain assignment before them that reads nothing of its own target (not `x = x.to(device)`,
        which stays, `x` then being a parameter of the loss function)."""
        while True:
            order = sorted(R)
            defined: set[str] = set()
            needed: dict[str, int] = {}
            binds = set().union(*(E[k].binds for k in order)) if order else set()
            for k in order:
                for n in (E[k].uses - defined) & binds:
                    needed.setdefault(n, k)
                defined |= E[k].kills
            for n in binds - defined:            # bound on some paths only
                needed.setdefault(n, min(k for k in order if n in E[k].binds))
            more = set()
            for n, before in needed.items():
                inits = [k for k in range(before) if k not in R and n in E[k].kills]
                if inits and n not in E[inits[-1]].uses and not E[inits[-1]].no_grad and not E[inits[-1]].mutates:
                    more.add(inits[-1])
            if not more:
                return R
            R = R | more

    def _check_units(self, units, E, order, parts, hint) -> None:
        written = set().union(*(E[k].binds for k in order)) if order else set()
        steps = self.step_uses()
        for u, k in zip(units, order):
            e = E[k]
            if e.exits:
                raise NotDerived(f"`{self._brief(u)}` ({e.exits}) leaves the loss's statements: write the loss "
                            "function by hand", hint)
            outer = e.mutates - written - {parts[0]}
            if outer:
                raise NotDerived(f"`{self._brief(u)}` changes {', '.join(sorted(outer))}, which lives outside the "
                            "loss's statements: a loss function must not (JAX traces it)", hint)
            if not isinstance(u.node, cst.BaseSmallStatement):
                inner = [x for x in self.program.receiver_uses if u.node in x.ctx.path]
                if inner or any(u.node in s.ctx.path for s in steps.values()):
                    raise NotDerived(f"`{self._header(u)}` holds optimizer calls among the loss's statements: write "
                                "the loss function by hand", hint)

    def _check_live_in(self, bw, window, order, E, parts, scope, hint) -> None:
        """The region's inputs computed from the module earlier in the same iteration, outside
        the window (before the previous update, or outside the backward's block): the loss would
        read them as constants, and the gradients through them would be lost."""
        written, live_in = set(), set()
        for k in order:
            live_in |= E[k].duses - written
            written |= E[k].kills
        live_in |= effects(cst.Expr(bw.loss), parts).duses - written
        live_in -= {parts[0]}
        if not live_in:
            return
        tainted: dict[str, cst.CSTNode] = {}
        for u in self._preceding(window[0] if window else bw.unit):
            tainted = self._taint(u.node, parts, tainted)
        hit = sorted(live_in & set(tainted))
        if hit:
            node = tainted[hit[0]]
            brief = short(one_line(node)) if isinstance(node, cst.BaseSmallStatement) else hit[0]
            raise NotDerived(f"the loss reads {hit[0]}, computed from {'.'.join(parts)} (`{brief}`) before "
                        "the previous update or outside backward()'s block: compute it inside the loss function by "
                        "hand", hint)

    def _taint(self, node, parts, tainted: dict) -> dict:
        """The names holding values gradients could flow back from to the module, after `node`
        runs (name -> the statement that made it so). Statement by statement, through blocks:
        what a branch rebinds to a constant (`actions = actions.detach()`) stops being tainted
        there; after an `if`, what either path left tainted is."""
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                tainted = self._taint(small, parts, tainted)
            return tainted
        if isinstance(node, cst.BaseSmallStatement):
            e = self.effects(node, parts)
            if e.calls_module or e.duses & set(tainted):
                return {**tainted, **{n: node for n in e.writes - {parts[0]}}}
            return {n: v for n, v in tainted.items() if n not in e.kills}
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return tainted
        if is_no_grad_block(node):          # constants: what it binds is not tainted
            return {n: v for n, v in tainted.items() if n not in self.effects(node, parts).kills}
        if isinstance(node, cst.With):
            return self._taint_block(node.body, parts, tainted)
        if isinstance(node, cst.If):
            taken = self._taint_block(node.body, parts, tainted)
            other = self._taint(node.orelse, parts, tainted) if node.orelse is not None else tainted
            return {**other, **taken}
        if isinstance(node, cst.Else):
            return self._taint_block(node.body, parts, tainted)
        if isinstance(node, (cst.For, cst.While)):
            start = tainted
            if isinstance(node, cst.For) and (self.effects(cst.Expr(node.iter), parts).calls_module
                                              or self.effects(cst.Expr(node.iter), parts).duses & set(tainted)):
                start = {**tainted, **{n: node for n in self.effects(cst.Expr(node.target), ()).reads}}
            once = self._taint_block(node.body, parts, start)
            twice = self._taint_block(node.body, parts, {**start, **once})
            return {**tainted, **twice}
        # try and anything else: as one statement
        e = self.effects(node, parts)
        if e.calls_module or e.duses & set(tainted):
            return {**tainted, **{n: node for n in e.writes - {parts[0]}}}
        return tainted

    def _taint_block(self, suite, parts, tainted: dict) -> dict:
        for stmt in getattr(suite, "body", ()):
            tainted = self._taint(stmt, parts, tainted)
        return tainted

    def _bound_at(self, name: str, units: list[Unit], E, order) -> tuple[int, int]:
        """Where the region first binds `name` (statement, then place in its text): aux values
        come back in the order the code computes them (`output, hidden = model(...)`)."""
        for i, k in enumerate(order):
            if name in E[k].binds:
                found = re.search(rf"\b{re.escape(name)}\b", self.text(units[i]))
                return i, found.start() if found else 0
        return len(order), 0

    def _check_commute(self, window, E, R, dependents, kept, hint) -> None:
        """Moving the units after what stays, and the dependents after the units, must not change
        what any of them reads."""
        def clash(a, b) -> set[str]:
            ea, eb = E[a], E[b]
            return (ea.writes & (eb.reads | eb.writes)) | (eb.writes & ea.reads)

        for r in R:
            for k in kept:
                if r < k and clash(r, k):
                    raise NotDerived(self._clash_reason(window[k], clash(r, k)), hint)
            for d in dependents:
                if d < r and clash(d, r):
                    raise NotDerived(self._clash_reason(window[d], clash(d, r)), hint)
        for d in dependents:
            for k in kept:
                if d < k and clash(d, k):
                    raise NotDerived(self._clash_reason(window[k], clash(d, k)), hint)

    def _clash_reason(self, u: Unit, names: set[str]) -> str:
        return (f"`{self._brief(u)}` changes or reads {', '.join(sorted(names))} "
                "between the loss's statements: write the loss function by hand")

    # -- reads after the region ------------------------------------------------------------------------
    def _reads(self, scope: Scope) -> list[tuple[StmtContext, set[str]]]:
        """Every statement of a function (its nested functions too; the document's top level for
        the module scope) with the names it reads (computed once per scope)."""
        found = self._scope_reads.get(id(scope))
        if found is not None:
            return found
        out = []
        fn = scope.node if scope.kind != "module" else None
        for chunk in self._chunks_of(fn):
            for ctx in chunk.cache["facts"].statements:
                if fn is not None and not any(n is fn for n in ctx.path):
                    continue
                node = ctx.stmt
                if isinstance(node, cst.BaseSmallStatement):
                    reads = self.effects(node, ()).reads
                else:
                    reads = header_reads(node)
                out.append((ctx, reads))
        self._scope_reads[id(scope)] = out
        return out

    def _chunks_of(self, fn) -> list:
        """The chunks a function is in (one: a function is inside one top-level statement); every
        chunk for the top level (fn None)."""
        chunks = [c for c in self.program.primary.doc.chunks if c.module is not None]
        if fn is None:
            return chunks
        if self._fn_chunk is None:
            self._fn_chunk = {id(node): c for c in chunks for node in c.cache["facts"].functions}
        found = self._fn_chunk.get(id(fn))
        return [found] if found is not None else []

    def _read_after(self, name: str, units: list[Unit], dependents, anchor: Unit, scope: Scope) -> bool:
        program = self.program
        inside = {id(u.node) for u in units}
        order = program.order
        anchor_at = order(anchor.ctx)
        first_at = order(units[0].ctx) if units else anchor_at
        kills = [b.ctx for b in (scope.bindings.get(name, []) if scope.kind != "module"
                                 else program.module.bindings.get(name, []))
                 if b.ctx is not None and isinstance(b.ctx.stmt, (cst.Assign, cst.AnnAssign))]
        for ctx, reads in self._reads(scope):
            if name not in reads or id(ctx.stmt) in inside or any(id(n) in inside for n in ctx.path):
                continue
            at = order(ctx)
            if dependents and any(ctx.stmt is d.node or d.node in ctx.path for d in dependents):
                return True
            if anchor_at < at:
                if not any(anchor_at < order(k) < at and dominates(k, ctx) for k in kills):
                    return True
            elif at < first_at:
                loops = [lp for lp in anchor.ctx.loops if lp in ctx.path]
                if loops:
                    loop = loops[-1]
                    if isinstance(loop, cst.For) and name in effects(cst.Expr(loop.target), ()).reads:
                        continue        # the loop's own target rebinds it first
                    if not any(order(k) < at and dominates(k, ctx) and loop in k.path for k in kills):
                        return True
        return False

    def _names_in_scope(self, scope: Scope) -> set[str]:
        names = set(scope.bindings) if scope.kind != "module" else set(self.program.module.bindings)
        for _, reads in self._reads(scope):
            names |= reads
        return names

    def _loss_fn_name(self, scope: Scope, param: str, taken: set[str]) -> str:
        """`loss_fn`; `<module>_loss_fn` where the function steps several optimizers (a GAN);
        never a name the function already uses."""
        given = self._given.setdefault(id(scope), set())
        several = sum(1 for u in self.step_uses().values() if u.ctx.scope is scope and u.member in ("step", "update")) > 1
        options = ([f"{param}_loss_fn"] if several else []) + ["loss_fn", f"{param}_loss_fn", "compute_loss"]
        options += [f"loss_fn{n}" for n in range(2, 100)]
        name = next(o for o in options if o not in taken and o not in given)
        given.add(name)
        return name

    # -- hints for the optax target ------------------------------------------------------------------
    def _hint(self, units: list[Unit], bw: Backward | None = None) -> str:
        """`output = model(data); loss = ...`: the statements that compute the loss, and the loss
        itself where the backward computes it (`model(x).sum().backward()`). No line numbers: a
        message and a TODO must stay true while lines move."""
        texts = [self._brief(u) for u in units[:3]] + (["..."] if len(units) > 3 else [])
        if bw is not None and not isinstance(bw.loss, cst.Name):
            texts.append(short(one_line(bw.loss)))
        return "; ".join(texts)
