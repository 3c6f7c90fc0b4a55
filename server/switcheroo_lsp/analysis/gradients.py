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

import re
from dataclasses import dataclass, field

import libcst as cst

from ..document.parsed import header_only
from .effects import HOOKS, Effects, effects, is_no_grad_block
from .facts import ReceiverUse, Scope, StmtContext, dotted
from .modules import held_by, reached_from, visible

# What calls `<receiver>.backward(loss)` with the loss as its argument (the class of the receiver).
BACKWARD_OWNERS = {
    "accelerate.Accelerator": "accelerate", "accelerate.accelerator.Accelerator": "accelerate",
    "lightning.Fabric": "fabric", "lightning.fabric.Fabric": "fabric", "lightning_fabric.Fabric": "fabric",
    "lightning.fabric.fabric.Fabric": "fabric",
}
_FLOAT64 = re.compile(r"set_default_dtype\(\s*(?:torch\.|th\.)?(?:float64|double)\b|\.double\(\)")


@dataclass(eq=False)
class Unit:
    """One statement of a block: a small statement (on its line) or a compound statement."""
    node: cst.CSTNode
    ctx: StmtContext
    line: cst.CSTNode | None = None         # the SimpleStatementLine of a small statement

    @property
    def whole_line(self) -> bool:
        return self.line is None or len(self.line.body) == 1


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


@dataclass(eq=False)
class Backward:
    unit: Unit
    loss: cst.BaseExpression      # the loss expression (`loss`, `output.sum()`, `loss / accum`)
    form: str                     # 'tensor' | 'scaler' | 'accelerate' | 'fabric'


@dataclass
class Accumulation:
    """N backward() per update: `optax.MultiSteps(tx, every_k_schedule=..., use_grad_mean=...)`."""
    every_k: str                  # `accum_steps`, or a schedule for a first update after fewer micro-steps
    mean: bool                    # the backward divides by N itself (accelerate): average
    dtype: str                    # the accumulator's dtype ('float32', 'float64')
    why: str                      # how N was read, for messages
    condition: Unit | None = None     # the `if` the step was under (its body may end up empty)
    count: str = ""               # N as the loop writes it (`accum_steps`): a division by it is the mean's
    keeps_sum: bool = False       # never zeroed: a running sum (optax.trace(decay=1.0)), not MultiSteps

    def keywords(self, jnp: str = "jnp") -> str:
        return (f"every_k_schedule={self.every_k}, use_grad_mean={self.mean}, "
                f"accumulator_dtype={jnp}.{self.dtype}")


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


@dataclass
class StepGradients:
    """What a step's rewrite knows about its gradients: a region, or why there is none (and,
    where a backward was found, the statements its loss is computed by, for a hint)."""
    region: Region | None = None
    reason: str = ""
    hint: str = ""                # where the loss is computed: 'lines 5-6 (output = model(data); loss = ...)'
    holds: str = ""               # what a loss function would hold (the region's statements), same form


class Gradients:
    """Per analysis: the regions of the steps, computed on demand (the builder asks per step)."""

    def __init__(self, builder):
        self.b = builder
        self.program = builder.program
        self._ctx_index: dict[int, dict[int, StmtContext]] = {}
        self._effects: dict[tuple[int, tuple], Effects] = {}
        self._step_stmts: dict[int, ReceiverUse] | None = None
        self._zero_grads: list[ReceiverUse] | None = None
        self._scope_reads: dict[int, list[tuple[StmtContext, set[str]]]] = {}
        self._given: dict[int, set[str]] = {}         # loss function names given, per scope

    # -- structure ---------------------------------------------------------------------------------
    def ctx_of(self, node, chunk) -> StmtContext | None:
        index = self._ctx_index.get(id(chunk))
        if index is None:
            index = self._ctx_index[id(chunk)] = {}
            for ctx in chunk.cache["facts"].statements:
                if ctx.unit is ctx.stmt or id(ctx.stmt) not in index:
                    index[id(ctx.stmt)] = ctx
        return index.get(id(node))

    def units(self, block, chunk) -> list[Unit] | None:
        """The statements of a block; the document's top level spans every chunk."""
        if isinstance(block, cst.Module):
            out = []
            for c in self.program.primary.doc.chunks:
                if c.module is not None:
                    out.extend(self._units_of(c.module.body, c))
            return out
        if isinstance(block, cst.SimpleStatementSuite):
            return None          # a one-line body: no room for a loss function
        return self._units_of(block.body, chunk)

    def _units_of(self, body, chunk) -> list[Unit]:
        out = []
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    ctx = self.ctx_of(small, chunk)
                    if ctx is not None:
                        out.append(Unit(small, ctx, stmt))
            else:
                ctx = self.ctx_of(stmt, chunk)
                if ctx is not None:
                    out.append(Unit(stmt, ctx))
        return out

    def effects(self, node, module: tuple[str, ...]) -> Effects:
        key = (id(node), module)
        found = self._effects.get(key)
        if found is None:
            found = self._effects[key] = effects(node, module)
        return found

    def text(self, unit: Unit) -> str:
        return self.program.text(unit.node, unit.ctx)

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
                    ids = b.tracer.receiver_ids(use.receiver, use.ctx.scope)
                    if ids and all(i.kind in ("torch", "optax", "annotated") for i in ids):
                        self._zero_grads.append(use)
                    continue
                _, ids = b.step_target(use)
                if ids and all(i.kind in ("torch", "optax", "annotated") for i in ids):
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
        try:
            found = self._of_step(use, module, ident)
        except _Stop as stop:
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
        loss_text = _one_line(bw.loss)
        scope = ctx.scope
        # The module, as the step's scope reaches it (a dotted name).
        parts = tuple(module.split(".")) if module and all(p.isidentifier() for p in module.split(".")) else ()
        hint = self._hint(self._region(bw, parts, scope, dry=True), bw)
        if not parts:
            raise _Stop("the module it trains is not known here (its optimizer is built elsewhere)"
                        if not module else f"the module {module} is not a plain name", hint)
        if not visible(parts[0], scope, self.program.module.bindings):
            raise _Stop(f"{module}, the module it trains, is not defined in {_where(scope)}", hint)
        nxt = self._next_update(use, found.levels)
        if nxt is not None:
            raise _Stop(f"{loss_text}.backward() also feeds {self.program.text(nxt.receiver, nxt.ctx)}"
                        f".{nxt.member}(): one loss for two optimizers needs both modules' gradients: compute them "
                        "by hand", hint)
        self._between(bw, use, found, parts, hint)
        accumulate = self._accumulation(bw, use, found.micro, found.condition, ident, parts, hint)
        region = self._region(bw, parts, scope, dry=False, hint=hint, accumulate=accumulate)
        region.accumulate = accumulate
        region.step = step_unit
        region.module = module
        region.backward_text = _short(_one_line(bw.unit.node), 80)
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
                raise _Stop("the update is in an elif, else or except clause: write the loss function by hand")
            units = self.units(block, ctx.chunk)
            if units is None:
                raise _Stop("it is on a one-line body (`if c: opt.step()`): write the loss function by hand")
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
                        raise _Stop(f"no backward() between the previous update "
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
                    raise _Stop(f"backward() runs under a condition (`{self._header(u)}`): "
                                "write the loss function by hand")
            if found:
                if len(found) > 1:
                    calls = "; ".join(self._brief(f[0]) for f in reversed(found))
                    raise _Stop(f"{len(found)} backward() calls ({calls}) feed this update: sum their losses in "
                                "one loss function by hand")
                backward, micro, k = found[0]
                return _Found(backward, micro, condition, levels, k)
            # Up one level: through `if` (the step is conditional), `with`, `try`; not out of a loop.
            if owner is None or isinstance(owner, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef)):
                break
            if isinstance(owner, cst.If):
                if i >= 3 and getattr(path[i - 3], "orelse", None) is owner:
                    raise _Stop("the update is in an elif branch: write the loss function by hand")
                if condition is None:
                    cond_ctx = self.ctx_of(owner, ctx.chunk)
                    condition = Unit(owner, cond_ctx) if cond_ctx is not None else None
            i -= 2
            node = path[i]
        raise _Stop(f"no backward() precedes it in {_where(ctx.scope)}")

    def _backward_in(self, u: Unit) -> str | None:
        """'here' (u is a backward), 'with' (a with-block holding one at its top), 'loop', 'cond',
        or None."""
        if isinstance(u.node, cst.BaseSmallStatement):
            return "here" if _backward_call(u.node) is not None else None
        if isinstance(u.node, (cst.FunctionDef, cst.ClassDef)):
            return None             # runs when called, not here
        found = False
        for sub in _walk_statements(u.node):
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
                raise _Stop("backward() is on a one-line body: write the loss function by hand")
            hits = [x for x in units if isinstance(x.node, cst.BaseSmallStatement) and _backward_call(x.node)]
            nested = [x for x in units if not isinstance(x.node, cst.BaseSmallStatement)
                      and any(_backward_call(s) for s in _walk_statements(x.node))]
            if len(hits) == 1 and not nested:
                return hits[0]
            if not hits and len(nested) == 1 and isinstance(nested[0].node, cst.With):
                u, block = nested[0], nested[0].node.body
                continue
            if strict:
                return None
            raise _Stop("several backward() calls, or one under a condition: write the loss function by hand")

    def _brief(self, u: Unit) -> str:
        """A statement on one short line, without its comments (a compound one: its header)."""
        if isinstance(u.node, cst.BaseSmallStatement):
            return _short(_one_line(u.node))
        return self._header(u) + " ..."

    def _header(self, u: Unit) -> str:
        """`if (i + 1) % accum == 0:`: a compound statement's header on one line."""
        text = " ".join(_one_line(header_only(u.node)).split())
        return text[:-len(" pass")] if text.endswith(": pass") else text

    def _backward_form(self, unit: Unit) -> Backward:
        call = _backward_call(unit.node)
        func = call.func
        receiver = func.value
        # `accelerator.backward(loss)`, `fabric.backward(loss)`: the loss is the argument.
        owner_kind = None
        if call.args and isinstance(receiver, (cst.Name, cst.Attribute)):
            qualified = self.b.tracer.external_class(receiver, unit.ctx.scope)
            owner_kind = BACKWARD_OWNERS.get(qualified or "")
            if owner_kind is None and (dotted(receiver) or [""])[-1].lower().endswith(("accelerator", "fabric")):
                owner_kind = "accelerate" if "accelerator" in (dotted(receiver) or [""])[-1].lower() else "fabric"
        if owner_kind is not None:
            args = [a for a in call.args if a.keyword is None]
            rest = [a for a in call.args if a.keyword is not None]
            if len(args) != 1 or args[0].star:
                raise _Stop(f"{_one_line(call)}: write the loss function by hand")
            self._check_keywords(rest, call)
            return Backward(unit, args[0].value, owner_kind)
        positional = [a for a in call.args if a.keyword is None]
        if positional:
            raise _Stop(f"{_one_line(call)} passes an explicit gradient: write the loss function by hand")
        self._check_keywords(list(call.args), call)
        # `scaler.scale(loss).backward()`: the loss is what is scaled.
        if (isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute)
                and receiver.func.attr.value == "scale" and len(receiver.args) == 1):
            ids = self.b.tracer.receiver_ids(receiver.func.value, unit.ctx.scope)
            if ids and all(i.kind == "scaler" for i in ids):
                return Backward(unit, receiver.args[0].value, "scaler")
        return Backward(unit, receiver, "tensor")

    def _check_keywords(self, args, call) -> None:
        for a in args:
            name = a.keyword.value if a.keyword is not None else ""
            value = _one_line(a.value)
            if name in ("retain_graph", "create_graph") and value not in ("False", "None"):
                why = ("keeps the graph for another backward: write the gradients by hand (one loss function "
                       "for every backward that shares the graph)" if name == "retain_graph" else
                       "builds a graph of the gradients: write the higher-order gradients by hand (jax.grad of "
                       "a function that calls jax.grad)")
                raise _Stop(f"backward({name}={value}) {why}")
            if name in ("inputs", "gradient"):
                raise _Stop(f"backward({name}=...) : write the gradient computation by hand")

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
            raise _Stop(f"{hooks} changes gradients: write the gradient computation by hand", hint)
        for ctx, _ in self._reads(use.ctx.scope):
            if isinstance(ctx.stmt, cst.BaseSmallStatement) and self.effects(ctx.stmt, ()).grad_read:
                raise _Stop(f"`{_short(_one_line(ctx.stmt))}` reads or changes .grad, which "
                            "torch's backward() fills: write the gradient computation by hand", hint)
        clips = self._folded_clips()
        for u in self._statements_between(bw, found):
            if isinstance(u.node, cst.BaseSmallStatement) and self._is_ours(u, clips):
                continue
            e = self.effects(u.node, parts)
            if e.grad_read:
                raise _Stop(f"`{self._brief(u)}` reads or changes .grad between backward() and the update: "
                            "fold it into the optimizer's chain by hand", hint)
            if any(c.endswith((".parameters", ".named_parameters")) for c in e.calls):
                raise _Stop(f"`{self._brief(u)}` handles the parameters between "
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
        """The clipping calls whose fix folds them into the optimizer's chain (OPX106)."""
        out = set()
        for f in self.b.a.findings:
            if f.code == "OPX106":
                stmt = self.b._pending[f.key].ctx.stmt
                value = getattr(stmt, "value", None)
                if isinstance(value, cst.Call):
                    out.add(id(value))
        return out

    def _is_ours(self, u: Unit, clips: set[int]) -> bool:
        """A zero_grad, a traced clip, a scheduler step, the scaler's calls: what other findings
        handle."""
        value = getattr(u.node, "value", None)
        if isinstance(value, cst.Call) and id(value) in clips:
            return True
        return any(use.ctx.stmt is u.node for use in self.program.receiver_uses)

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
            elif not isinstance(u.node, cst.BaseSmallStatement) and start.node in _walk_statements(u.node):
                out.extend(self._after_in(self.units(u.node.body, u.ctx.chunk) or [], start))
                seen = True
        return out

    # -- accumulation ------------------------------------------------------------------------------
    def _accumulation(self, bw: Backward, use: ReceiverUse, micro_loop: Unit | None, condition: Unit | None,
                      ident, parts, hint: str) -> Accumulation | None:
        found = self._accumulation_of(bw, use, micro_loop, condition, ident, parts, hint)
        if found is not None:
            # What accumulates is the optimizer's transform: every update of it would.
            others = [u for u in self.step_uses().values() if u is not use and u.member == "step"
                      and self.b.step_target(u)[1] == self.b.step_target(use)[1]]
            if others:
                o = others[0]
                raise _Stop(f"{found.why}, but its optimizer is also updated by "
                            f"`{_short(_one_line(o.ctx.stmt))}`, which would accumulate too: write the accumulation "
                            "by hand", hint)
        return found

    def _accumulation_of(self, bw: Backward, use: ReceiverUse, micro_loop: Unit | None, condition: Unit | None,
                         ident, parts, hint: str) -> Accumulation | None:
        dtype = "float64" if _FLOAT64.search(self.program.doc.source.text) else "float32"
        accumulate = self._accelerate_context(bw, use)
        if accumulate is not None:
            n = accumulate
            return Accumulation(self._portable(n, use, ident, hint, "the accumulation steps"), True, dtype,
                                f"accelerator.accumulate: {n} micro-steps, the loss divided by them")
        zeroed = self._zeroed(use, ident, parts)
        if micro_loop is not None:
            n = _range_count(micro_loop.node)
            if n is None:
                raise _Stop(f"backward() runs in a loop ({self._header(micro_loop)}) whose length is not a "
                            "range(N): accumulate with optax.MultiSteps by hand", hint)
            return Accumulation(self._portable(n, use, ident, hint, "the micro-step count"), False, dtype,
                                f"a micro-step loop: {_one_line(n)} backward() per update", count=_one_line(n))
        if condition is None:
            if zeroed == "never":
                self._never_zeroed(use, ident, hint)
                return Accumulation("", False, dtype, "its gradients are never zeroed: torch adds every backward() "
                                    "to the last ones, as optax.trace(decay=1.0) first in the chain does",
                                    keeps_sum=True)
            return None
        if zeroed == "every":
            return None           # every iteration starts afresh: the update stays under its `if`
        every, why, count = self._every_k(condition, bw, use, ident, hint)
        return Accumulation(every, False, dtype, why, condition, count=count)

    def _never_zeroed(self, use: ReceiverUse, ident, hint: str) -> None:
        """Gradients torch never zeroes are a running sum: faithful as `optax.trace(decay=1.0)`
        first in the chain, only where that is sure: the step and its backward in a loop, no
        zero_grad() anywhere in the file, no clipping (torch clips the sum in place), and the
        optimizer built here."""
        where = _where(use.ctx.scope)
        zeroes = any(isinstance(c.call.func, cst.Attribute) and c.call.func.attr.value == "zero_grad"
                     for c in self.program.calls if self.program.in_primary(c.ctx))
        if not use.ctx.loops or zeroes or ident is None or ident.kind != "torch" \
                or ident not in self.b.a.construct_sites:
            raise _Stop(f"no zero_grad() of it in {where}: whether torch's gradients add up across updates is not "
                        "known here: write the gradient computation by hand", hint)
        if any(c for c, _ in self.b.tracer.clips if self.program.in_primary(c.ctx)):
            raise _Stop("its gradients are never zeroed and are clipped: torch clips their running sum in place; "
                        "write the gradient computation by hand", hint)

    def _zeroed(self, use: ReceiverUse, ident, parts) -> str:
        """'every' (a zero_grad of this optimizer or its module runs every iteration, before the
        backward), 'with_step' (only next to the step), 'never'."""
        self.step_uses()
        mine = self.b.step_target(use)[1]
        scope = use.ctx.scope
        module_text = ".".join(parts)
        found = "never"
        step_block = use.ctx.body
        for z in self._zero_grads:
            if z.ctx.scope is not scope:
                continue
            ids = self.b.tracer.receiver_ids(z.receiver, scope)
            if ids != mine:
                continue
            if z.ctx.body is step_block:
                found = "with_step" if found == "never" else found
            elif z.ctx.body in use.ctx.path and not any(isinstance(n, cst.If) for n in z.ctx.path[-3:]):
                return "every"
            else:
                found = "with_step" if found == "never" else found
        # `model.zero_grad()` / `netD.zero_grad()` zero the module's gradients too.
        for call in self.program.calls:
            func = call.call.func
            if (call.ctx.scope is scope and isinstance(func, cst.Attribute) and func.attr.value == "zero_grad"
                    and _one_line(func.value) == module_text):
                if call.ctx.body in use.ctx.path:
                    return "every"
                found = "with_step" if found == "never" else found
        return found

    def _accelerate_context(self, bw: Backward, use: ReceiverUse) -> str | None:
        """`with accelerator.accumulate(model):` around the backward and the step: the
        accelerator's `gradient_accumulation_steps`."""
        for node in bw.unit.ctx.path:
            if isinstance(node, cst.With) and node in use.ctx.path:
                for item in node.items:
                    call = item.item
                    if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                            and call.func.attr.value == "accumulate"):
                        owner = call.func.value
                        kind = BACKWARD_OWNERS.get(self.b.tracer.external_class(owner, use.ctx.scope) or "")
                        if kind == "accelerate" or (kind is None and bw.form == "accelerate"):
                            steps = self._accelerator_steps(owner, use.ctx.scope)
                            return None if steps == "1" else steps
        return None

    def _accelerator_steps(self, owner, scope: Scope) -> str:
        """How many micro-steps `accelerator.accumulate` counts: `Accelerator(...,
        gradient_accumulation_steps=E)`'s E; the attribute itself where the file sets it; "1"
        (accumulate does nothing) where neither."""
        attribute = f"{_one_line(owner)}.gradient_accumulation_steps"
        if re.search(r"\.gradient_accumulation_steps\s*=[^=]", self.program.doc.source.text):
            return attribute
        bindings = self.b.tracer.bindings_of(owner, scope) or []
        calls = [bd.node for bd in bindings if bd.kind == "value" and isinstance(bd.node, cst.Call)]
        if len(calls) != 1:
            return attribute
        for arg in calls[0].args:
            if arg.keyword is not None and arg.keyword.value == "gradient_accumulation_steps":
                return _one_line(arg.value)
            if arg.star:
                return attribute
        return "1"

    def _every_k(self, condition: Unit, bw: Backward, use: ReceiverUse, ident, hint: str) -> tuple[str, str, str]:
        """N and the phase of `if (i + 1) % N == 0:` (`i` counting the loop's iterations from a
        known start): every_k_schedule, and how it was read."""
        test = condition.node.test
        read = _modulo_test(test)
        if read is None:
            raise _Stop(f"the update runs under `{self._header(condition)}` and the gradients are zeroed only "
                        "with it: accumulate with optax.MultiSteps by hand", hint)
        counter, offset, n = read
        start = self._counter_start(counter, condition, use)
        if start is None:
            raise _Stop(f"the update runs when ({counter} + {offset}) % {_one_line(n)} == 0, and where {counter} "
                        "starts is not known here: accumulate with optax.MultiSteps by hand", hint)
        n_text = _one_line(n)
        portable = self._portable(n, use, ident, hint, "the accumulation steps")
        # The first update comes after m0 + 1 micro-steps (m0: the first iteration that passes).
        if isinstance(n, cst.Integer):
            k = int(n.value)
            m0 = (-(start + offset)) % k
            if m0 == k - 1:
                return portable, f"an update every {k} backward()", n_text
            return (f"lambda step: jnp.where(step == 0, {m0 + 1}, {portable})",
                    f"the first update after {m0 + 1} backward(), then one every {k}", n_text)
        # N unknown: the phase is known only for the usual forms.
        shift = (start + offset)
        if shift == 1:
            return portable, f"an update every {n_text} backward()", n_text
        if shift == 0:
            return (f"lambda step: jnp.where(step == 0, 1, {portable})",
                    f"the first update after 1 backward(), then one every {n_text}", n_text)
        raise _Stop(f"the update runs when ({counter} + {offset}) % {n_text} == 0: accumulate with "
                    "optax.MultiSteps by hand", hint)

    def _counter_start(self, counter: str, condition: Unit, use: ReceiverUse) -> int | None:
        """The counter's value at the loop's first iteration: `for i, b in enumerate(x[, s])`,
        `for i in range(n)`."""
        for loop in reversed(use.ctx.loops):
            if not isinstance(loop, cst.For):
                continue
            target, it = loop.target, loop.iter
            if not isinstance(it, cst.Call):
                continue
            func = dotted(it.func) or []
            if func == ["enumerate"] and isinstance(target, cst.Tuple) and target.elements and \
                    isinstance(target.elements[0].value, cst.Name) and target.elements[0].value.value == counter:
                start = it.args[1].value if len(it.args) > 1 else None
                if start is None:
                    return 0
                return int(start.value) if isinstance(start, cst.Integer) else None
            if func == ["range"] and isinstance(target, cst.Name) and target.value == counter:
                if len(it.args) == 1:
                    return 0
                first = it.args[0].value
                return int(first.value) if isinstance(first, cst.Integer) and len(it.args) == 2 else None
        return None

    def _portable(self, expr, use: ReceiverUse, ident, hint: str, what: str) -> str:
        """`expr` (text or node) as it reads where the optimizer is built."""
        from .training_loop import _portable
        node = cst.parse_expression(expr) if isinstance(expr, str) else expr
        if ident is None or ident.ctx is None:
            raise _Stop(f"{what} ({_one_line(node)}) must reach the optimizer's construction, which is not here",
                        hint)
        text = _portable(self.b, node, use.ctx.scope, ident.ctx)
        if text is None:
            raise _Stop(f"{what} ({_one_line(node)}) is not visible where the optimizer is built "
                        f"({ident.name}(...)): wrap its transform "
                        "in optax.MultiSteps by hand", hint)
        return text

    def _nothing_runs_model_after(self, bw: Backward, found: "_Found", parts, hint: str) -> None:
        """An accumulated update moves next to the call: what ran in between must not run the model."""
        clips = self._folded_clips()
        for u in self._statements_between(bw, found):
            if isinstance(u.node, cst.BaseSmallStatement) and self._is_ours(u, clips):
                continue
            if self.effects(u.node, parts).calls_module:
                raise _Stop(f"`{self._brief(u)}` runs {'.'.join(parts)} between backward() and the update: "
                            "accumulate with optax.MultiSteps by hand", hint)

    # -- the region ----------------------------------------------------------------------------------
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
        ignore = {root} if root else set()
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
            raise _Stop(f"{_one_line(bw.loss)} does not run {'.'.join(parts)} in the statements since the previous "
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
                    raise _Stop(f"`{self._brief(anchor)}` shares its line with other statements: write the "
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
        for n in sorted(written_all - {value_name} - ignore):
            if self._read_after(n, units, dependents and [window[k] for k in dependents], anchor, scope):
                if n not in defined and n not in extra:
                    raise _Stop(f"{n} is bound only on some paths of the loss's statements and read after them: "
                                "write the loss function by hand", hint)
                aux.append(n)
        param = parts[-1] if parts[-1] != "self" else "model"
        region_reads = set().union(*(E[k].reads for k in R)) | loss_e.reads if R else set(loss_e.reads)
        if len(parts) > 1 and param in region_reads | written_all:
            param = "module"
        name = self._loss_fn_name(scope, param, fn_names)
        return Region(bw, units, anchor, [window[k] for k in dependents], ".".join(parts), param, extra, aux,
                      value_name, _one_line(loss), returns_value, name, loss=loss)

    def _undivided(self, bw: Backward, window: list[Unit], accumulate: Accumulation | None):
        """(the loss the function returns, the index of a `loss = loss / N` statement that stays
        outside it): a loss divided by the accumulation count N is what `use_grad_mean=True`
        averages, so the function returns it undivided, as a Flax user writes it."""
        loss = bw.loss
        if accumulate is None or accumulate.mean or not accumulate.count:
            return loss, None
        if (isinstance(loss, cst.BinaryOperation) and isinstance(loss.operator, cst.Divide)
                and _one_line(loss.right) == accumulate.count):
            accumulate.mean = True
            return loss.left, None
        if not isinstance(loss, cst.Name):
            return loss, None
        for k in range(len(window) - 1, -1, -1):
            node = window[k].node
            if loss.value not in self.effects(node, ()).writes:
                continue
            if (isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name)
                    and node.targets[0].target.value == loss.value and isinstance(node.value, cst.BinaryOperation)
                    and isinstance(node.value.operator, cst.Divide) and isinstance(node.value.left, cst.Name)
                    and node.value.left.value == loss.value and _one_line(node.value.right) == accumulate.count):
                accumulate.mean = True
                return loss, k
            return loss, None
        return loss, None

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
                raise _Stop(f"`{self._brief(u)}` ({e.exits}) leaves the loss's statements: write the loss "
                            "function by hand", hint)
            outer = e.mutates - written - {parts[0]}
            if outer:
                raise _Stop(f"`{self._brief(u)}` changes {', '.join(sorted(outer))}, which lives outside the "
                            "loss's statements: a loss function must not (JAX traces it)", hint)
            if not isinstance(u.node, cst.BaseSmallStatement):
                inner = [x for x in self.program.receiver_uses if u.node in x.ctx.path]
                if inner or any(u.node in s.ctx.path for s in steps.values()):
                    raise _Stop(f"`{self._header(u)}` holds optimizer calls among the loss's statements: write "
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
            brief = _short(_one_line(node)) if isinstance(node, cst.BaseSmallStatement) else hit[0]
            raise _Stop(f"the loss reads {hit[0]}, computed from {'.'.join(parts)} (`{brief}`) before "
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

    def _preceding(self, unit: Unit) -> list[Unit]:
        """The statements that run before `unit` in the same iteration of the innermost loop (or
        call of the function): preceding ones in its block and in every enclosing block."""
        ctx = unit.ctx
        path = ctx.path
        out: list[Unit] = []
        i = len(path) - 1
        current = unit.node if isinstance(path[i], cst.SimpleStatementLine) else path[i]
        while i >= 1:
            block = path[i - 1]
            if not isinstance(block, (cst.Module, cst.IndentedBlock)):
                break
            units = self.units(block, ctx.chunk) or []
            at = next((k for k, u in enumerate(units) if u.node is current), None)
            if at is None:
                break
            out = units[:at] + out
            owner = path[i - 2] if i >= 2 else None
            if owner is None or isinstance(owner, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef)):
                break
            i -= 2
            current = path[i]
        return out

    def _check_commute(self, window, E, R, dependents, kept, hint) -> None:
        """Moving the units after what stays, and the dependents after the units, must not change
        what any of them reads."""
        def clash(a, b) -> set[str]:
            ea, eb = E[a], E[b]
            return (ea.writes & (eb.reads | eb.writes)) | (eb.writes & ea.reads)

        for r in R:
            for k in kept:
                if r < k and clash(r, k):
                    raise _Stop(self._clash_reason(window[k], clash(r, k)), hint)
            for d in dependents:
                if d < r and clash(d, r):
                    raise _Stop(self._clash_reason(window[d], clash(d, r)), hint)
        for d in dependents:
            for k in kept:
                if d < k and clash(d, k):
                    raise _Stop(self._clash_reason(window[k], clash(d, k)), hint)

    def _clash_reason(self, u: Unit, names: set[str]) -> str:
        return (f"`{self._brief(u)}` changes or reads {', '.join(sorted(names))} "
                "between the loss's statements: write the loss function by hand")

    # -- reads after the region ------------------------------------------------------------------------
    def _reads(self, scope: Scope) -> list[tuple[StmtContext, set[str]]]:
        """Every statement of a function (its nested functions too; the document's top level for
        the module scope) with the names it reads."""
        found = self._scope_reads.get(id(scope))
        if found is not None:
            return found
        out = []
        fn = scope.node if scope.kind != "module" else None
        for chunk in self.program.primary.doc.chunks:
            if chunk.module is None:
                continue
            for ctx in chunk.cache["facts"].statements:
                if fn is not None and fn not in ctx.path:
                    continue
                node = ctx.stmt
                if isinstance(node, cst.BaseSmallStatement):
                    reads = self.effects(node, ()).reads
                else:
                    reads = _header_reads(node)
                out.append((ctx, reads))
        self._scope_reads[id(scope)] = out
        return out

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
                if not any(anchor_at < order(k) < at and _dominates(k, ctx) for k in kills):
                    return True
            elif at < first_at:
                loops = [lp for lp in anchor.ctx.loops if lp in ctx.path]
                if loops:
                    loop = loops[-1]
                    if isinstance(loop, cst.For) and name in effects(cst.Expr(loop.target), ()).reads:
                        continue        # the loop's own target rebinds it first
                    if not any(order(k) < at and _dominates(k, ctx) and loop in k.path for k in kills):
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
        several = sum(1 for u in self.step_uses().values() if u.ctx.scope is scope and u.member == "step") > 1
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
            texts.append(_short(_one_line(bw.loss)))
        return "; ".join(texts)


class _Stop(Exception):
    def __init__(self, reason: str, hint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def _dominates(k: StmtContext, c: StmtContext) -> bool:
    """Does statement k (before c) run whenever c does? Its block holds c, or it is in with-blocks
    (which always run their body) inside a block that holds c."""
    path = k.path
    block = k.body
    i = len(path) - 2           # path[-1] is k's line (or k itself), path[-2] its block
    while True:
        if block in c.path:
            return True
        owner = path[i - 1] if i >= 1 else None
        if not isinstance(owner, cst.With) or i < 2:
            return False
        i -= 2
        block = path[i]


def _backward_call(node) -> cst.Call | None:
    """The backward call a small statement is (`x.backward(...)` as an expression statement)."""
    if isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
        func = node.value.func
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":
            return node.value
    return None


def _walk_statements(node):
    """Every small and compound statement inside a compound statement (itself included)."""
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.SimpleStatementLine) or isinstance(n, cst.SimpleStatementSuite):
            out.extend(n.body)
            continue
        out.append(n)
        for name in ("body", "orelse", "handlers", "finalbody"):
            child = getattr(n, name, None)
            if isinstance(child, (list, tuple)):
                stack.extend(child)
            elif isinstance(child, cst.BaseSuite):
                stack.extend(child.body)
            elif isinstance(child, cst.CSTNode):
                stack.append(child)
    return out


def _header_reads(node) -> set[str]:
    """The names a compound statement's header reads."""
    parts = []
    for name in ("test", "iter", "items", "subject", "decorators", "bases"):
        value = getattr(node, name, None)
        if isinstance(value, cst.CSTNode):
            parts.append(value)
        elif isinstance(value, (list, tuple)):
            parts.extend(v for v in value if isinstance(v, cst.CSTNode))
    reads = set()
    for p in parts:
        e = effects(cst.Expr(p.item if isinstance(p, cst.WithItem) else getattr(p, "value", p)
                             if isinstance(p, (cst.Arg, cst.Decorator)) else p), ())
        reads |= e.reads
    return reads


def _modulo_test(test) -> tuple[str, int, cst.BaseExpression] | None:
    """`(i + a) % N == 0` (or `0 == ...`): (counter, a, N)."""
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
            and isinstance(test.comparisons[0].operator, cst.Equal)):
        return None
    left, right = test.left, test.comparisons[0].comparator
    if isinstance(left, cst.Integer) and left.value == "0":
        left, right = right, left
    if not (isinstance(right, cst.Integer) and right.value == "0"):
        return None
    if not (isinstance(left, cst.BinaryOperation) and isinstance(left.operator, cst.Modulo)):
        return None
    counted, n = left.left, left.right
    if isinstance(counted, cst.Name):
        return counted.value, 0, n
    if (isinstance(counted, cst.BinaryOperation) and isinstance(counted.operator, cst.Add)
            and isinstance(counted.left, cst.Name) and isinstance(counted.right, cst.Integer)):
        return counted.left.value, int(counted.right.value), n
    return None


def _range_count(loop) -> cst.BaseExpression | None:
    """`for _ in range(N):` -> N."""
    if isinstance(loop, cst.For) and isinstance(loop.iter, cst.Call) and (dotted(loop.iter.func) or []) == ["range"] \
            and len(loop.iter.args) == 1 and loop.iter.args[0].keyword is None:
        return loop.iter.args[0].value
    return None


def _where(scope: Scope) -> str:
    node = scope.node
    if isinstance(node, cst.FunctionDef):
        return f"{node.name.value}()"
    return "this file"


def _one_line(node) -> str:
    from .arguments import one_line
    return one_line(node)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


__all__ = ["Gradients", "Region", "StepGradients", "Accumulation", "Backward", "Unit", "is_no_grad_block"]
