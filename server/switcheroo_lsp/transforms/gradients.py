"""A step's gradient region (analysis/gradients.py) -> a loss function of the trained module and
the target's call of it, in place of `loss.backward()`:

    def loss_fn(model):
        output = model(data)                    # the region's statements, moved with their comments
        loss = F.nll_loss(output, target)
        return loss, output                     # the loss, and what later code reads (aux)
    (loss, output), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)

The def and the call go where the region's last statement was; the backward goes; statements
between the region's first and last one that read what it computes follow the call. The moved
statements are the user's own nodes: comments travel with them, continuation lines follow their
block (libcst indents them relative to it), and the module (`self.model`) becomes the function's
parameter. Accumulated gradients (`optax.MultiSteps` folded into the construction) update the
module at every backward; gradients never zeroed put `optax.trace(decay=1.0)` first in the chain.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.arguments import code
from ..analysis.findings import Site
from .changes import Folded, Plan
from .render import small_statement


def plan_gradients(p, site: Site, plan: Plan, folded: dict, target) -> bool:
    """Plan the region of a step's site (False: none to plan; the step keeps its TODO)."""
    gradients = site.gradients
    region = gradients.region if gradients is not None else None
    if region is None or not target.derives_grads:
        return False
    module = cst.parse_expression(region.module)
    moved = []
    for unit in region.units:
        node = _statement_of(unit)
        node = _renamed(node, module, region.param)
        moved.append(node)
    lead = []
    if moved and hasattr(moved[0], "leading_lines"):
        lead = list(moved[0].leading_lines)
        moved[0] = moved[0].with_changes(leading_lines=())
    returned = region.value if region.returns_value else code(_renamed(region.loss, module, region.param))
    if region.aux:
        aux = region.aux[0] if len(region.aux) == 1 else f"({', '.join(region.aux)})"
        returned = f"{returned}, {aux}"
    body = moved + [cst.SimpleStatementLine(body=[small_statement(f"return {returned}")])]
    params = [cst.Param(cst.Name(region.param))] + [cst.Param(cst.Name(n)) for n in region.extra]
    params = [prm.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
              for prm in params[:-1]] + params[-1:]
    fn = cst.FunctionDef(name=cst.Name(region.name), params=cst.Parameters(params=params),
                         body=cst.IndentedBlock(body=body), leading_lines=lead)
    after: list = [fn, target.grads_call(region, site.names)]
    if region.accumulate is not None and region.accumulate.keeps_sum:
        # Never zeroed: the running sum of the gradients, first in the chain.
        folded.setdefault(site.identity, Folded()).prefix.insert(0, f"{p.optax_name}.trace(decay=1.0)")
    elif region.moves_update:
        # Every backward updates: MultiSteps applies the accumulated update every N of them.
        after.extend(target.step_lines(site.receiver, site.names, site.plateau_state, p.optax_name))
        plan.remove(region.step.ctx)
        folded.setdefault(site.identity, Folded()).accumulate = region.accumulate
        if region.accumulate.condition is not None:
            plan.change(region.accumulate.condition.ctx).drop_if_empty = True
    for unit in region.dependents:
        after.append(_statement_of(unit))
    for unit in list(region.units) + list(region.dependents):
        change = plan.change(unit.ctx)
        change.texts = []
        change.moved = unit.whole_line
    anchor = plan.change(region.anchor.ctx)
    anchor.texts = []
    anchor.after.extend(after)
    if region.anchor is not region.backward.unit:
        plan.remove(region.backward.unit.ctx)
    return True


def _statement_of(unit) -> cst.BaseStatement:
    """The statement to move: its whole line (with the comments above and after it) when it is
    alone on it; else it alone (the line's comments stay where the line was)."""
    if unit.line is None:
        return unit.node
    if unit.whole_line:
        return unit.line.with_changes(body=[unit.node.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
    return cst.SimpleStatementLine(body=[unit.node.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])


def _renamed(node, module: cst.BaseExpression, param: str):
    """The module's expression (`self.model`, `self`) -> the loss function's parameter in `node`."""
    if isinstance(module, cst.Name):
        return node if module.value == param else node.visit(_RenameName(module.value, param))
    return node.visit(_RenameAttribute(code(module), param))


class _RenameName(cst.CSTTransformer):
    def __init__(self, old: str, new: str):
        super().__init__()
        self.old, self.new = old, new

    def leave_Name(self, original, updated):
        return updated.with_changes(value=self.new) if original.value == self.old else updated

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)       # `x.self` names no variable

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)


class _RenameAttribute(cst.CSTTransformer):
    def __init__(self, dotted: str, new: str):
        super().__init__()
        self.dotted, self.new = dotted, new

    def leave_Attribute(self, original, updated):
        if code(original.with_changes(lpar=[], rpar=[])) == self.dotted:
            return cst.Name(self.new, lpar=updated.lpar, rpar=updated.rpar)
        return updated
