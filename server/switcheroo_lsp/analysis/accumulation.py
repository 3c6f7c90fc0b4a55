"""Gradient accumulation: N backward() per update, read off the loop (a step under
`if (i + 1) % N == 0:` with its zero_grad, a micro-step loop `for _ in range(N)` before the step,
`with accelerator.accumulate(model):`), becomes `optax.MultiSteps(tx, every_k_schedule=N, ...)`
around the optimizer's transform, the update at every backward; gradients nothing ever zeroes
are a running sum (`optax.trace(decay=1.0)` first in the chain). Part of gradients.Gradients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from ..knowledge.wrappers import BACKWARDS
from .arguments import one_line
from .facts import ReceiverUse, Scope, dotted
from .portable import portable
from .statements import NotDerived, Unit, short, where

_FLOAT64 = re.compile(r"set_default_dtype\(\s*(?:torch\.|th\.)?(?:float64|double)\b|\.double\(\)")


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


class Accumulating:
    """The accumulation part of gradients.Gradients (a mixin: it reads the analysis through it)."""

    def _accumulation(self, bw, use: ReceiverUse, micro_loop: Unit | None, condition: Unit | None,
                      ident, parts, hint: str) -> Accumulation | None:
        found = self._accumulation_of(bw, use, micro_loop, condition, ident, parts, hint)
        if found is not None:
            # What accumulates is the optimizer's transform: every update of it would.
            others = [u for u in self.step_uses().values() if u is not use and u.member == "step"
                      and self.b.step_target(u)[1] == self.b.step_target(use)[1]]
            if others:
                o = others[0]
                raise NotDerived(f"{found.why}, but its optimizer is also updated by "
                            f"`{short(one_line(o.ctx.stmt))}`, which would accumulate too: write the accumulation "
                            "by hand", hint)
        return found

    def _accumulation_of(self, bw, use: ReceiverUse, micro_loop: Unit | None, condition: Unit | None,
                         ident, parts, hint: str) -> Accumulation | None:
        if self._dtype is None:        # the file trains in float64 (read once)
            self._dtype = "float64" if _FLOAT64.search(self.program.doc.source.text) else "float32"
        dtype = self._dtype
        accumulate = self._accelerate_context(bw, use)
        if accumulate is not None:
            n = accumulate
            return Accumulation(self._portable(n, use, ident, hint, "the accumulation steps"), True, dtype,
                                f"accelerator.accumulate: {n} micro-steps, the loss divided by them")
        zeroed = self._zeroed(use, ident, parts)
        if micro_loop is not None:
            n = _range_count(micro_loop.node)
            if n is None:
                raise NotDerived(f"backward() runs in a loop ({self._header(micro_loop)}) whose length is not a "
                            "range(N): accumulate with optax.MultiSteps by hand", hint)
            return Accumulation(self._portable(n, use, ident, hint, "the micro-step count"), False, dtype,
                                f"a micro-step loop: {one_line(n)} backward() per update", count=one_line(n))
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
        place = where(use.ctx.scope)
        if not use.ctx.loops or self._zero_grad_calls() or ident is None or ident.kind != "torch" \
                or ident not in self.b.a.construct_sites:
            raise NotDerived(f"no zero_grad() of it in {place}: whether torch's gradients add up across updates is not "
                        "known here: write the gradient computation by hand", hint)
        if any(c for c, _ in self.b.tracer.clips if self.program.in_primary(c.ctx)):
            raise NotDerived("its gradients are never zeroed and are clipped: torch clips their running sum in place; "
                        "write the gradient computation by hand", hint)

    def _zeroed(self, use: ReceiverUse, ident, parts) -> str:
        """Where the step's gradients are zeroed: 'every' (a zero_grad() of its optimizer, or of
        its module, in a block that holds the step, every iteration of the step's loop), 'with_step'
        (in the step's own block, or elsewhere), 'never'."""
        if ident is not None and ident.kind in ("optax", "nnx") and not self.b.target.derives_grads:
            # Already converted, with a target that only names the loss in a TODO: its zero_grad()
            # may have gone with an earlier fix; the TODO reads as fix-all's. (A target that derives
            # gradients looks for it: its zero_grad() fix takes the steps with it, engine.py.)
            return "with_step"
        mine = self.b.step_target(use)[1]
        scope = use.ctx.scope
        module_text = ".".join(parts)
        loop = use.ctx.loops[-1] if use.ctx.loops else None
        found = "never"
        for ctx, receiver in self._zero_grad_calls():
            if ctx.scope is not scope:
                continue
            if not (one_line(receiver) == module_text or self.b.tracer.receiver_ids(receiver, scope, ctx) == mine):
                continue
            every_iteration = loop is None or any(lp is loop for lp in ctx.loops)
            if ctx.body is not use.ctx.body and every_iteration and any(n is ctx.body for n in use.ctx.path):
                return "every"
            found = "with_step"
        return found

    def _zero_grad_calls(self) -> list:
        """(statement, receiver) of every `<x>.zero_grad()` in the document (computed once)."""
        if self._zeroings is None:
            self._zeroings = [(c.ctx, c.call.func.value) for c in self.program.calls
                              if isinstance(c.call.func, cst.Attribute) and c.call.func.attr.value == "zero_grad"
                              and self.program.in_primary(c.ctx)]
        return self._zeroings

    def _accelerate_context(self, bw, use: ReceiverUse) -> str | None:
        """`with accelerator.accumulate(model):` around the backward and the step: the
        accelerator's `gradient_accumulation_steps`."""
        for node in bw.unit.ctx.path:
            if isinstance(node, cst.With) and node in use.ctx.path:
                for item in node.items:
                    call = item.item
                    if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                            and call.func.attr.value == "accumulate"):
                        owner = call.func.value
                        kind = BACKWARDS.get(self.b.tracer.external_class(owner, use.ctx.scope) or "")
                        if kind == "accelerate" or (kind is None and bw.form == "accelerate"):
                            steps = self._accelerator_steps(owner, use.ctx.scope)
                            return None if steps == "1" else steps
        return None

    def _accelerator_steps(self, owner, scope: Scope) -> str:
        """How many micro-steps `accelerator.accumulate` counts: `Accelerator(...,
        gradient_accumulation_steps=E)`'s E; the attribute itself where the file sets it; "1"
        (accumulate does nothing) where neither."""
        attribute = f"{one_line(owner)}.gradient_accumulation_steps"
        if re.search(r"\.gradient_accumulation_steps\s*=[^=]", self.program.doc.source.text):
            return attribute
        bindings = self.b.tracer.bindings_of(owner, scope) or []
        calls = [bd.node for bd in bindings if bd.kind == "value" and isinstance(bd.node, cst.Call)]
        if len(calls) != 1:
            return attribute
        for arg in calls[0].args:
            if arg.keyword is not None and arg.keyword.value == "gradient_accumulation_steps":
                return one_line(arg.value)
            if arg.star:
                return attribute
        return "1"

    def _every_k(self, condition: Unit, bw, use: ReceiverUse, ident, hint: str) -> tuple[str, str, str]:
        """N and the phase of `if (i + 1) % N == 0:` (`i` counting the loop's iterations from a
        known start): every_k_schedule, and how it was read."""
        test = condition.node.test
        read = _modulo_test(test)
        if read is None:
            raise NotDerived(f"the update runs under `{self._header(condition)}` and the gradients are zeroed only "
                        "with it: accumulate with optax.MultiSteps by hand", hint)
        counter, offset, n = read
        start = self._counter_start(counter, condition, use)
        if start is None:
            raise NotDerived(f"the update runs when ({counter} + {offset}) % {one_line(n)} == 0, and where {counter} "
                        "starts is not known here: accumulate with optax.MultiSteps by hand", hint)
        n_text = one_line(n)
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
        raise NotDerived(f"the update runs when ({counter} + {offset}) % {n_text} == 0: accumulate with "
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
        node = cst.parse_expression(expr) if isinstance(expr, str) else expr
        if ident is None or ident.ctx is None:
            raise NotDerived(f"{what} ({one_line(node)}) must reach the optimizer's construction, which is not here",
                        hint)
        text = portable(self.b, node, use.ctx.scope, ident.ctx)
        if text is None:
            raise NotDerived(f"{what} ({one_line(node)}) is not visible where the optimizer is built "
                        f"({ident.name}(...)): wrap its transform "
                        "in optax.MultiSteps by hand", hint)
        return text

    def _nothing_runs_model_after(self, bw, found, parts, hint: str) -> None:
        """An accumulated update moves next to the call: what ran in between must not run the model."""
        clips = self._folded_clips()
        for u in self._statements_between(bw, found):
            if isinstance(u.node, cst.BaseSmallStatement) and self._is_ours(u, clips):
                continue
            if self.effects(u.node, parts).calls_module:
                raise NotDerived(f"`{self._brief(u)}` runs {'.'.join(parts)} between backward() and the update: "
                            "accumulate with optax.MultiSteps by hand", hint)

    def _undivided(self, bw, window: list[Unit], accumulate: "Accumulation | None"):
        """(the loss the function returns, the index of a `loss = loss / N` statement that stays
        outside it): a loss divided by the accumulation count N is what `use_grad_mean=True`
        averages, so the function returns it undivided, as a Flax user writes it."""
        loss = bw.loss
        if accumulate is None or accumulate.mean or not accumulate.count:
            return loss, None
        if (isinstance(loss, cst.BinaryOperation) and isinstance(loss.operator, cst.Divide)
                and one_line(loss.right) == accumulate.count):
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
                    and node.value.left.value == loss.value and one_line(node.value.right) == accumulate.count):
                accumulate.mean = True
                return loss, k
            return loss, None
        return loss, None


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
