"""Where a converted step's gradients come from: the `backward()` that feeds it and the
statements its loss is computed by (the gradient region), so that a target that derives
gradients (Flax NNX) can write them as a loss function of the trained module:

    output = model(data)                      def loss_fn(model):
    loss = F.nll_loss(output, target)     →       output = model(data)
    loss.backward()                               loss = F.nll_loss(output, target)
    optimizer.step()                              return loss, output
                                              (loss, output), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
                                              optimizer.update(model, grads)

The backward is looked for from the step back to the previous update (any optimizer's step) in
the same iteration: `loss.backward()`, `scaler.scale(loss).backward()`, `accelerator.backward(loss)`,
`fabric.backward(loss)`. The region is the statements of the backward's block, since the previous
update, that the loss depends on (its backward data slice) and that run the module (its forward
slice from a call of the module, not through `torch.no_grad()` or `.detach()`), plus what
initialises what they accumulate into. Values the region computes that later code reads are
returned as aux; statements between the region's first and last statement that read them move
after the call; the others stay where they were, and must commute with what moves past them.

Gradient accumulation (N backward per update) becomes `optax.MultiSteps`: a step under
`if (i + 1) % N == 0:` with its zero_grad, a micro-step loop `for _ in range(N)` before the step,
`with accelerator.accumulate(model):`. What cannot be derived is a reason (OPX203 says it).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ..knowledge.wrappers import BACKWARDS
from .accumulation import Accumulating, Accumulation
from .arguments import one_line
from .effects import HOOKS
from .facts import ReceiverUse, StmtContext, dotted
from .modules import held_by, reached_from, visible
from .region import Backward, Region, RegionCutting
from .statements import NotDerived, Statements, Unit, short, walk_statements, where

@dataclass(eq=False)
class _Level:
    """One block on the way from the step up: its statements, where the step (or what holds it)
    is, and the compound statement that owns the block."""
    units: list[Unit]
    at: int
    owner: cst.CSTNode | None


@dataclass(eq=False)
class _Found:
    backward: Unit
    micro: Unit | None            # the micro-step loop holding the backward
    condition: Unit | None        # the `if` the step is under
    levels: list[_Level]
    index: int                    # where the backward (or what holds it) is in the last level


@dataclass
class StepGradients:
    """What a step's rewrite knows about its gradients: a region, or why there is none (and,
    where a backward was found, the statements its loss is computed by, for a hint)."""
    region: Region | None = None
    reason: str = ""
    hint: str = ""                # where the loss is computed: 'lines 5-6 (output = model(data); loss = ...)'
    holds: str = ""               # what a loss function would hold (the region's statements), same form


class Gradients(RegionCutting, Accumulating, Statements):
    """Per analysis: the regions of the steps, computed on demand (the builder asks per step)."""

    def __init__(self, builder):
        super().__init__(builder.program)
        self.b = builder
        self._step_stmts: dict[int, ReceiverUse] | None = None
        self._zero_grads: list[ReceiverUse] | None = None
        self._scope_reads: dict[int, list[tuple[StmtContext, set[str]]]] = {}
        self._given: dict[int, set[str]] = {}         # loss function names given, per scope
        self._zeroings: list | None = None
        self._clips: set[int] | None = None
        self._receiver_stmts: set[int] | None = None
        self._fn_chunk: dict | None = None
        self._dtype: str | None = None

    # -- steps and zero_grads ----------------------------------------------------------------------
    def step_uses(self) -> dict[int, ReceiverUse]:
        """Traced steps by the small statement holding them."""
        if self._step_stmts is None:
            self._step_stmts = {}
            self._zero_grads = []
            b = self.b
            for use in self.program.receiver_uses:
                if use.member not in ("step", "update", "zero_grad"):
                    continue
                if use.member == "zero_grad":
                    ids = b.tracer.receiver_ids(use.receiver, use.ctx.scope, use.ctx)
                    if ids and all(i.kind in ("torch", "optax", "annotated", "nnx") for i in ids):
                        self._zero_grads.append(use)
                    continue
                _, ids = b.step_target(use)
                if ids and all(i.kind in ("torch", "optax", "annotated", "nnx") for i in ids):
                    self._step_stmts[id(use.ctx.stmt)] = use
        return self._step_stmts

    def _holds_step(self, unit: Unit) -> ReceiverUse | None:
        steps = self.step_uses()
        if id(unit.node) in steps:
            return steps[id(unit.node)]
        if unit.line is None:
            for use in steps.values():
                if unit.node in use.ctx.path:
                    return use
        return None

    # -- the search ----------------------------------------------------------------------------------
    def for_step(self, use: ReceiverUse, names, ident, receiver, target) -> StepGradients:
        """A step's gradients: for a target that derives them, the region its rewrite moves into
        a loss function (or why there is none); for the others, where the loss is computed."""
        scope = use.ctx.scope
        if names.grads in self.b.bound_names(scope):
            return StepGradients()          # the code computes its gradients itself
        module = names.module or reached_from(self.b.module_for(ident), ident.ctx if ident else None, scope,
                                              self.b._made_by(receiver, scope), self.b.tracer.incoming) or held_by(
            receiver, scope, self.b.tracer)
        if not module and not target.derives_grads:
            module = _named_module(names.params, scope, self.program.module.bindings)
        try:
            found = self._of_step(use, module, ident)
        except NotDerived as stop:
            return StepGradients(reason=stop.reason, hint=stop.hint)
        region = found.region
        found.holds = self._hint(region.units, region.backward)
        if not target.derives_grads:
            found.region = None
        return found

    def _of_step(self, use: ReceiverUse, module: str, ident) -> StepGradients:
        ctx = use.ctx
        step_unit = Unit(ctx.stmt, ctx, ctx.line if isinstance(ctx.line, cst.SimpleStatementLine) else None)
        found = self._find_backward(use, step_unit)
        bw = self._backward_form(found.backward)
        loss_text = one_line(bw.loss)
        scope = ctx.scope
        # The module, as the step's scope reaches it (a dotted name).
        parts = tuple(module.split(".")) if module and all(p.isidentifier() for p in module.split(".")) else ()
        hint = self._hint(self._region(bw, parts, scope, dry=True), bw)
        if not parts:
            raise NotDerived("the module it trains is not known here (its optimizer is built elsewhere)"
                        if not module else f"the module {module} is not a plain name", hint)
        if not visible(parts[0], scope, self.program.module.bindings):
            raise NotDerived(f"{module}, the module it trains, is not defined in {where(scope)}", hint)
        nxt = self._next_update(use, found.levels)
        if nxt is not None:
            raise NotDerived(f"{loss_text}.backward() also feeds {self.program.text(nxt.receiver, nxt.ctx)}"
                        f".{nxt.member}(): one loss for two optimizers needs both modules' gradients: compute them "
                        "by hand", hint)
        self._between(bw, use, found, parts, hint)
        accumulate = self._accumulation(bw, use, found.micro, found.condition, ident, parts, hint)
        region = self._region(bw, parts, scope, dry=False, hint=hint, accumulate=accumulate)
        region.accumulate = accumulate
        region.step = step_unit
        region.module = module
        region.backward_text = short(one_line(bw.unit.node), 80)
        if region.moves_update:
            self._nothing_runs_model_after(bw, found, parts, hint)
        return StepGradients(region=region, hint=hint)

    def _find_backward(self, use: ReceiverUse, step_unit: Unit) -> "_Found":
        """From the step back to the previous update: the backward that feeds it, the micro-step
        loop it is in (if any), the `if` the step is under (if any), and the levels walked."""
        ctx = use.ctx
        path = list(ctx.path)          # Module, stmt, block, stmt, block, ..., line
        node = ctx.stmt
        condition = None
        levels: list[_Level] = []
        i = len(path) - 1
        while i >= 1:
            block, holder = path[i - 1], path[i]
            current = node if isinstance(holder, cst.SimpleStatementLine) else holder
            if not isinstance(block, (cst.Module, cst.IndentedBlock, cst.SimpleStatementSuite)):
                raise NotDerived("the update is in an elif, else or except clause: write the loss function by hand")
            units = self.units(block, ctx.chunk)
            if units is None:
                raise NotDerived("it is on a one-line body (`if c: opt.step()`): write the loss function by hand")
            at = next((k for k, u in enumerate(units) if u.node is current), None)
            if at is None:
                break
            owner = path[i - 2] if i >= 2 else None
            levels.append(_Level(units, at, owner))
            found = []
            for k in range(at - 1, -1, -1):
                u = units[k]
                prev = self._holds_step(u)
                if prev is not None:
                    if not found:
                        raise NotDerived(f"no backward() between the previous update "
                                    f"({self.program.text(prev.receiver, prev.ctx)}.{prev.member}()) and this one")
                    break
                kind = self._backward_in(u)
                if kind == "here":
                    found.append((u, None, k))
                elif kind == "loop":
                    found.append((self._inner_backward(u), u, k))
                elif kind == "with":
                    found.append((self._inner_backward(u), None, k))
                elif kind == "cond":
                    raise NotDerived(f"backward() runs under a condition (`{self._header(u)}`): "
                                "write the loss function by hand")
            if found:
                if len(found) > 1:
                    calls = "; ".join(self._brief(f[0]) for f in reversed(found))
                    raise NotDerived(f"{len(found)} backward() calls ({calls}) feed this update: sum their losses in "
                                "one loss function by hand")
                backward, micro, k = found[0]
                return _Found(backward, micro, condition, levels, k)
            # Up one level: through `if` (the step is conditional), `with`, `try`; not out of a loop.
            if owner is None or isinstance(owner, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef)):
                break
            if isinstance(owner, cst.If):
                if i >= 3 and getattr(path[i - 3], "orelse", None) is owner:
                    raise NotDerived("the update is in an elif branch: write the loss function by hand")
                if condition is None:
                    cond_ctx = self.ctx_of(owner, ctx.chunk)
                    condition = Unit(owner, cond_ctx) if cond_ctx is not None else None
            i -= 2
            node = path[i]
        raise NotDerived(f"no backward() precedes it in {where(ctx.scope)}")

    def _backward_in(self, u: Unit) -> str | None:
        """'here' (u is a backward), 'with' (a with-block holding one at its top), 'loop', 'cond',
        or None."""
        if isinstance(u.node, cst.BaseSmallStatement):
            return "here" if _backward_call(u.node) is not None else None
        if isinstance(u.node, (cst.FunctionDef, cst.ClassDef)):
            return None             # runs when called, not here
        found = False
        for sub in walk_statements(u.node):
            if _backward_call(sub) is not None:
                found = True
                break
        if not found:
            return None
        if isinstance(u.node, cst.With):
            inner = self._inner_backward(u, strict=True)
            return "with" if inner is not None else "cond"
        if isinstance(u.node, (cst.For, cst.While)):
            inner = self._inner_backward(u, strict=True)
            return "loop" if inner is not None else "cond"
        return "cond"

    def _inner_backward(self, u: Unit, strict: bool = False) -> Unit | None:
        """The backward at the top of a with-block or a loop body (through nested with-blocks)."""
        block = u.node.body
        while True:
            units = self.units(block, u.ctx.chunk)
            if units is None:
                if strict:
                    return None
                raise NotDerived("backward() is on a one-line body: write the loss function by hand")
            hits = [x for x in units if isinstance(x.node, cst.BaseSmallStatement) and _backward_call(x.node)]
            nested = [x for x in units if not isinstance(x.node, cst.BaseSmallStatement)
                      and any(_backward_call(s) for s in walk_statements(x.node))]
            if len(hits) == 1 and not nested:
                return hits[0]
            if not hits and len(nested) == 1 and isinstance(nested[0].node, cst.With):
                u, block = nested[0], nested[0].node.body
                continue
            if strict:
                return None
            raise NotDerived("several backward() calls, or one under a condition: write the loss function by hand")



    def _backward_form(self, unit: Unit) -> Backward:
        call = _backward_call(unit.node)
        func = call.func
        receiver = func.value
        # `accelerator.backward(loss)`, `fabric.backward(loss)`: the loss is the argument.
        owner_kind = None
        if call.args and isinstance(receiver, (cst.Name, cst.Attribute)):
            qualified = self.b.tracer.external_class(receiver, unit.ctx.scope)
            owner_kind = BACKWARDS.get(qualified or "")
            if owner_kind is None and (dotted(receiver) or [""])[-1].lower().endswith(("accelerator", "fabric")):
                owner_kind = "accelerate" if "accelerator" in (dotted(receiver) or [""])[-1].lower() else "fabric"
        if owner_kind is not None:
            args = [a for a in call.args if a.keyword is None]
            rest = [a for a in call.args if a.keyword is not None]
            if len(args) != 1 or args[0].star:
                raise NotDerived(f"{one_line(call)}: write the loss function by hand")
            self._check_keywords(rest, call)
            return Backward(unit, args[0].value, owner_kind)
        positional = [a for a in call.args if a.keyword is None]
        if positional:
            raise NotDerived(f"{one_line(call)} passes an explicit gradient: write the loss function by hand")
        self._check_keywords(list(call.args), call)
        # `scaler.scale(loss).backward()`: the loss is what is scaled.
        if (isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute)
                and receiver.func.attr.value == "scale" and len(receiver.args) == 1):
            ids = self.b.tracer.receiver_ids(receiver.func.value, unit.ctx.scope, unit.ctx)
            if ids and all(i.kind == "scaler" for i in ids):
                return Backward(unit, receiver.args[0].value, "scaler")
        return Backward(unit, receiver, "tensor")

    def _check_keywords(self, args, call) -> None:
        for a in args:
            name = a.keyword.value if a.keyword is not None else ""
            value = one_line(a.value)
            if name in ("retain_graph", "create_graph") and value not in ("False", "None"):
                why = ("keeps the graph for another backward: write the gradients by hand (one loss function "
                       "for every backward that shares the graph)" if name == "retain_graph" else
                       "builds a graph of the gradients: write the higher-order gradients by hand (jax.grad of "
                       "a function that calls jax.grad)")
                raise NotDerived(f"backward({name}={value}) {why}")
            if name in ("inputs", "gradient"):
                raise NotDerived(f"backward({name}=...) : write the gradient computation by hand")

    def _next_update(self, use: ReceiverUse, levels: list["_Level"]) -> ReceiverUse | None:
        """Another optimizer's step right after this one, before any backward: one loss, two updates."""
        mine = self.b.step_target(use)[1]
        for level in levels:
            for u in level.units[level.at + 1:]:
                if self._backward_in(u) is not None:
                    return None
                other = self._holds_step(u)
                if other is not None:
                    return other if self.b.step_target(other)[1] != mine else None
            if level.owner is None or isinstance(level.owner, (cst.For, cst.While, cst.FunctionDef)):
                return None
        return None

    def _between(self, bw: Backward, use: ReceiverUse, found: "_Found", parts, hint: str) -> None:
        """What runs between the backward and the step must not touch the gradients (clipping
        folds into the chain; zero_grad, schedulers are the rewrite's), and no hook may."""
        hooks = self._hooks()
        if hooks:
            raise NotDerived(f"{hooks} changes gradients: write the gradient computation by hand", hint)
        for ctx, _ in self._reads(use.ctx.scope):
            if isinstance(ctx.stmt, cst.BaseSmallStatement) and self.effects(ctx.stmt, ()).grad_read:
                raise NotDerived(f"`{short(one_line(ctx.stmt))}` reads or changes .grad, which "
                            "torch's backward() fills: write the gradient computation by hand", hint)
        clips = self._folded_clips()
        for u in self._statements_between(bw, found):
            if isinstance(u.node, cst.BaseSmallStatement) and self._is_ours(u, clips):
                continue
            e = self.effects(u.node, parts)
            if e.grad_read:
                raise NotDerived(f"`{self._brief(u)}` reads or changes .grad between backward() and the update: "
                            "fold it into the optimizer's chain by hand", hint)
            if any(c.endswith((".parameters", ".named_parameters")) for c in e.calls):
                raise NotDerived(f"`{self._brief(u)}` handles the parameters between "
                            "backward() and the update: fold it into the optimizer's chain by hand", hint)

    def _hooks(self) -> str:
        """A gradient hook or torch.autograd call anywhere in the file ('' when none)."""
        if not hasattr(self, "_hook_found"):
            self._hook_found = ""
            for site in self.program.calls:
                if not self.program.in_primary(site.ctx):
                    continue
                parts = dotted(site.call.func) or []
                if parts and (parts[-1] in HOOKS or parts[-2:] in (["autograd", "grad"], ["autograd", "backward"])):
                    self._hook_found = f"{'.'.join(parts)}()"
                    break
        return self._hook_found

    def _folded_clips(self) -> set[int]:
        """The clipping calls whose fix folds them into the optimizer's chain (OPX106; clipping's
        findings are all made before the steps')."""
        if self._clips is None:
            self._clips = set()
            for f in self.b.a.findings:
                if f.code == "OPX106":
                    value = getattr(self.b._pending[f.key].ctx.stmt, "value", None)
                    if isinstance(value, cst.Call):
                        self._clips.add(id(value))
        return self._clips

    def _is_ours(self, u: Unit, clips: set[int]) -> bool:
        """A zero_grad, a traced clip, a scheduler step, the scaler's calls: what other findings
        handle."""
        value = getattr(u.node, "value", None)
        if isinstance(value, cst.Call) and id(value) in clips:
            return True
        if self._receiver_stmts is None:
            self._receiver_stmts = {id(use.ctx.stmt) for use in self.program.receiver_uses}
        return id(u.node) in self._receiver_stmts

    def _statements_between(self, bw: Backward, found: "_Found") -> list[Unit]:
        """The statements that run after the backward and before the step."""
        out = []
        level = found.levels[-1]
        holder = level.units[found.index]
        if holder.node is not bw.unit.node:      # inside a with-block or a micro-step loop
            out.extend(self._after_in(self.units(holder.node.body, holder.ctx.chunk) or [], bw.unit))
        out.extend(level.units[found.index + 1:level.at])
        for inner in reversed(found.levels[:-1]):
            out.extend(inner.units[:inner.at])
        return out

    def _after_in(self, units: list[Unit], start: Unit) -> list[Unit]:
        out, seen = [], False
        for u in units:
            if seen:
                out.append(u)
            elif u.node is start.node:
                seen = True
            elif not isinstance(u.node, cst.BaseSmallStatement) and start.node in walk_statements(u.node):
                out.extend(self._after_in(self.units(u.node.body, u.ctx.chunk) or [], start))
                seen = True
        return out


def _backward_call(node) -> cst.Call | None:
    """The backward call a small statement is (`x.backward(...)` as an expression statement)."""
    if isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
        func = node.value.func
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":
            return node.value
    return None


__all__ = ["Gradients", "Region", "StepGradients", "Accumulation", "Backward", "Unit"]


def _named_module(params: str, scope, bindings) -> str:
    """The module an already converted optimizer trains, read back from the name its
    `opt.init(<module>_params)` gives its parameters (the name a fix writes): a hint only, so that
    a step's TODO reads the same whether its construction was fixed before it or with it."""
    base = params[:-len("_params")] if params.endswith("_params") else ""
    return base if base.isidentifier() and visible(base, scope, bindings) else ""
