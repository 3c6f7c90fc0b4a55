"""What a use of `<optimizer>.param_groups` does to its hyperparameters, read from the tree.

The forms that set or read the same value for every group convert (knowledge/hyperparams.py):
- `opt.param_groups[0]["lr"] = expr` (or `*=`...): a write of the first group's;
- `for g in opt.param_groups: g["lr"] = expr` (or `for i, g in enumerate(...)`, `i` unused):
  a write of every group's, the loop's body nothing but such writes;
- `opt.param_groups[0]["lr"]` read in an expression (logging).
Anything else is said in words (a string): why the use needs a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .facts import ReceiverUse, StmtContext
from .references import refs


@dataclass
class HyperUse:
    kind: str                                   # "write" | "loop" | "read"
    ctx: StmtContext                            # the statement rewritten (the write, the `for`, the read's)
    writes: tuple[tuple[str, str, str], ...]    # (torch key, operator '=' / '*=' ..., the value's text)
    read: cst.BaseExpression | None = None      # the read (`opt.param_groups[0]["lr"]`), swapped
    key: str = ""                               # the key read
    quote: str = '"'                            # how the key is quoted (inside an f-string, its other quote)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([w[0] for w in self.writes] + ([self.key] if self.key else [])))


def _code(node) -> str:
    return cst.Module(body=()).code_for_node(node)


def _literal_index(sub: cst.Subscript):
    if len(sub.slice) != 1 or not isinstance(sub.slice[0].slice, cst.Index):
        return None
    value = sub.slice[0].slice.value
    if isinstance(value, cst.Integer):
        return int(value.value)
    if isinstance(value, cst.SimpleString):
        return value.evaluated_value
    return None


def _key_of(node, holder) -> str | None:
    """'lr' for `<holder>["lr"]`."""
    if isinstance(node, cst.Subscript) and node.value is holder or (
            isinstance(node, cst.Subscript) and isinstance(holder, str) and isinstance(node.value, cst.Name)
            and node.value.value == holder):
        key = _literal_index(node)
        return key if isinstance(key, str) else None
    return None


def _write(small, holder) -> tuple[str, str, str] | None:
    """(key, operator, value) for `<holder>["key"] = value` / `<holder>["key"] op= value`."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        key = _key_of(small.targets[0].target, holder)
        return (key, "=", _code(small.value)) if key else None
    if isinstance(small, cst.AugAssign):
        key = _key_of(small.target, holder)
        return (key, _code(small.operator).strip(), _code(small.value)) if key else None
    return None


def _names_in(node, name: str) -> list[cst.Name]:
    found = []

    class _V(cst.CSTVisitor):
        def visit_Name(self, n):
            if n.value == name:
                found.append(n)

    node.visit(_V())
    return found


def read_use(use: ReceiverUse) -> HyperUse | str:
    """The form of one `param_groups` use, or why it is not one fix-all converts."""
    ctx, node = use.ctx, use.node
    r = refs(ctx.chunk)
    up = r.parent_of(node, ctx)
    stmt = ctx.stmt
    if isinstance(up, cst.Subscript) and up.value is node:
        if _literal_index(up) != 0:
            return ("a group is picked by its position: per-group hyperparameters (each group's transform in "
                    "optax.multi_transform with its own) are not converted yet")
        outer = r.parent_of(up, ctx)
        key = _key_of(outer, up)
        if key is None:
            return "its groups are used other than by a key written or read (param_groups[0][\"lr\"])"
        if isinstance(stmt, (cst.Assign, cst.AugAssign)):
            targets = [t.target for t in stmt.targets] if isinstance(stmt, cst.Assign) else [stmt.target]
            if any(t is outer for t in targets):
                write = _write(stmt, up)
                return HyperUse("write", ctx, (write,)) if write else "a write fix-all cannot read"
            if any(outer in _nodes(t) for t in targets):
                return "the group's value is written as part of an unpacking"
        if isinstance(stmt, (cst.AnnAssign, cst.Del, cst.For, cst.With)) or r.is_store(outer, ctx):
            return "the group's value is written in a form fix-all cannot read"
        return HyperUse("read", ctx, (), read=outer, key=key, quote=_quote_inside(outer, ctx, r))
    loop, index = None, None
    if (up is None or up is stmt) and isinstance(stmt, cst.For) and stmt.iter is node:
        loop = stmt
    elif isinstance(up, cst.Arg) and isinstance(stmt, cst.For) and isinstance(stmt.iter, cst.Call) \
            and isinstance(stmt.iter.func, cst.Name) and stmt.iter.func.value == "enumerate" \
            and len(stmt.iter.args) == 1 and stmt.iter.args[0] is up:
        loop = stmt
        target = stmt.target
        if not (isinstance(target, cst.Tuple) and len(target.elements) == 2
                and all(isinstance(e.value, cst.Name) for e in target.elements)):
            return "the loop over the groups unpacks them in a form fix-all cannot read"
        index = target.elements[0].value.value
    if loop is None:
        return "the groups are used in a form fix-all cannot follow (only param_groups[0][\"lr\"] and a loop " \
               "writing every group convert)"
    group = loop.target if index is None else loop.target.elements[1].value
    if not isinstance(group, cst.Name):
        return "the loop over the groups unpacks them in a form fix-all cannot read"
    if loop.orelse is not None or not isinstance(loop.body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return "the loop over the groups has an else clause"
    smalls = []
    lines = loop.body.body if isinstance(loop.body, cst.IndentedBlock) else [loop.body]
    for line in lines:
        if not isinstance(line, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return ("the loop over the groups sets them differently (a statement inside it picks groups): per-group "
                    "hyperparameters, each group's transform in optax.multi_transform with its own, are not "
                    "converted yet")
        smalls.extend(line.body)
    writes = []
    for small in smalls:
        write = _write(small, group.value)
        if write is None:
            return "the loop over the groups does more than set their values"
        writes.append(write)
    value_nodes = [s.value for s in smalls]
    if any(_names_in(v, group.value) for v in value_nodes):
        return (f"each group's value is computed from the group itself ({group.value}[...]): per-group "
                "hyperparameters are not converted yet")
    if index is not None and any(_names_in(v, index) for v in lines):
        return f"the writes depend on the group's index ({index}): per-group hyperparameters are not converted yet"
    names = [group.value] + ([index] if index is not None else [])
    for name in names:
        inside = {id(n) for n in _names_in(loop, name)}
        for n, nctx in r.names(name):
            if nctx.scope is ctx.scope and id(n) not in inside and not _rebound(name, nctx):
                return f"{name}, a torch parameter group, is used after the loop"
    return HyperUse("loop", ctx, tuple(writes))


def _quote_inside(node, ctx: StmtContext, r) -> str:
    """The quote a string written at `node` may use: inside an f-string, the one it does not."""
    up = r.parent_of(node, ctx)
    while up is not None and up is not ctx.stmt:
        if isinstance(up, cst.FormattedString):
            return "'" if '"' in up.start else '"'
        up = r.parent_of(up, ctx)
    return '"'


def _rebound(name: str, ctx: StmtContext) -> bool:
    """Is the occurrence inside a loop that binds `name` itself (another loop over the groups,
    checked on its own)?"""
    return any(isinstance(n, cst.For) and any(isinstance(x, cst.Name) and x.value == name
                                              for x in _nodes(n.target))
               for n in list(ctx.path) + [ctx.stmt])


def _nodes(node) -> list:
    found = []

    class _V(cst.CSTVisitor):
        def on_visit(self, n):
            found.append(n)
            return True

    node.visit(_V())
    return found
