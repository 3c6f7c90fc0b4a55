"""What a use of `<optimizer>.param_groups` does to its hyperparameters, read from the tree.

The forms that convert (knowledge/hyperparams.py):
- `opt.param_groups[k]["lr"] = expr` (or `*=`...): a write of group k's (k a literal);
- `for g in opt.param_groups: g["lr"] = expr` (or `for i, g in enumerate(...)`): a write of every
  group's, the loop's body nothing but such writes and `if`s over them; the values and the
  conditions may use the index and the group's own keys (`g["lr_scale"]`), unrolled per group
  where the groups are known (group_writes.py);
- `opt.param_groups[k]["lr"]` read in an expression (logging).
Anything else is said in words (a string): why the use needs a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .arguments import code
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
    group: int = 0                              # write / read: the group's position (a literal; -1 the last)
    body: tuple = ()                            # loop: its statements (writes, and `if`s over writes)
    group_name: str = ""                        # loop: the name each group is bound to
    index: str | None = None                    # loop: enumerate's index name
    uniform: bool = True                        # loop: every group written alike (no `if`, index or group read)
    group_reads: tuple[str, ...] = ()           # loop: the keys read from the group itself

    @property
    def per_group(self) -> bool:
        """Does it tell the groups apart (a position other than the first, a loop setting each its own)?"""
        return self.group != 0 if self.kind != "loop" else not self.uniform

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([w[0] for w in self.writes] + ([self.key] if self.key else [])))


def _literal_index(sub: cst.Subscript):
    if len(sub.slice) != 1 or not isinstance(sub.slice[0].slice, cst.Index):
        return None
    value = sub.slice[0].slice.value
    if isinstance(value, cst.Integer):
        return int(value.value)
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus) \
            and isinstance(value.expression, cst.Integer):
        return -int(value.expression.value)
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
        return (key, "=", code(small.value)) if key else None
    if isinstance(small, cst.AugAssign):
        key = _key_of(small.target, holder)
        return (key, code(small.operator).strip(), code(small.value)) if key else None
    return None


def names_in(node, name: str | None = None) -> list[cst.Name]:
    """The names in `node` (only those spelt `name`, when given)."""
    found = []

    class _V(cst.CSTVisitor):
        def visit_Name(self, n):
            if name is None or n.value == name:
                found.append(n)

    node.visit(_V())
    return found


def read_use(use: ReceiverUse, constant=None) -> HyperUse | str:
    """The form of one `param_groups` use, or why it is not one fix-all converts. `constant(name)`:
    the integer a name always holds (`te_idx = 1`, its only binding), or None."""
    ctx, node = use.ctx, use.node
    r = refs(ctx.chunk)
    up = r.parent_of(node, ctx)
    stmt = ctx.stmt
    if isinstance(up, cst.Subscript) and up.value is node:
        group = _literal_index(up)
        index = up.slice[0].slice.value if len(up.slice) == 1 and isinstance(up.slice[0].slice, cst.Index) else None
        if group is None and constant is not None and isinstance(index, cst.Name):
            group = constant(index.value)
        if not isinstance(group, int):
            return (f"a group is picked by a value fix-all cannot read statically ({code(up.slice[0].slice)}): "
                    "which group it is cannot be told")
        outer = r.parent_of(up, ctx)
        key = _key_of(outer, up)
        if key is None:
            return "its groups are used other than by a key written or read (param_groups[0][\"lr\"])"
        if isinstance(stmt, (cst.Assign, cst.AugAssign)):
            targets = [t.target for t in stmt.targets] if isinstance(stmt, cst.Assign) else [stmt.target]
            if any(t is outer for t in targets):
                write = _write(stmt, up)
                return HyperUse("write", ctx, (write,), group=group) if write else "a write fix-all cannot read"
            if any(outer in _nodes(t) for t in targets):
                return "the group's value is written as part of an unpacking"
        if isinstance(stmt, (cst.AnnAssign, cst.Del, cst.For, cst.With)) or r.is_store(outer, ctx):
            return "the group's value is written in a form fix-all cannot read"
        return HyperUse("read", ctx, (), read=outer, key=key, quote=_quote_inside(outer, ctx, r), group=group)
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
        return "the groups are used in a form fix-all cannot follow (it converts a group by its index and a for " \
               "loop over the groups or their enumerate(), not a comprehension, zip() or len())"
    group = loop.target if index is None else loop.target.elements[1].value
    if not isinstance(group, cst.Name):
        return "the loop over the groups unpacks them in a form fix-all cannot read"
    if loop.orelse is not None or not isinstance(loop.body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return "the loop over the groups has an else clause"
    lines = tuple(loop.body.body if isinstance(loop.body, cst.IndentedBlock) else [loop.body])
    writes: list = []
    why = _read_body(lines, group.value, writes)
    if why:
        return why
    reads = tuple(dict.fromkeys(k for line in lines for k in _group_reads(line, group.value)))
    if any(n for line in lines for n in _bare(line, group.value)):
        return f"the loop uses the group ({group.value}) other than by its keys"
    uniform = not reads and not any(isinstance(line, cst.If) for line in lines) and not (
        index is not None and any(names_in(line, index) for line in lines))
    names = [group.value] + ([index] if index is not None else [])
    for name in names:
        inside = {id(n) for n in names_in(loop, name)}
        for n, nctx in r.names(name):
            if nctx.scope is ctx.scope and id(n) not in inside and not _rebound(name, nctx):
                return f"{name}, a torch parameter group, is used after the loop"
    return HyperUse("loop", ctx, tuple(writes), body=lines, group_name=group.value, index=index, uniform=uniform,
                    group_reads=reads)


def _read_body(lines, group: str, writes: list) -> str:
    """Collect the writes of a loop body made of writes and `if`s over them; why not, else ''."""
    for line in lines:
        if isinstance(line, cst.If):
            branch = line
            while branch is not None:
                body = branch.body
                why = _read_body(tuple(body.body if isinstance(body, cst.IndentedBlock) else [body]), group, writes)
                if why:
                    return why
                branch = branch.orelse
                if isinstance(branch, cst.Else):
                    inner = branch.body
                    why = _read_body(tuple(inner.body if isinstance(inner, cst.IndentedBlock) else [inner]), group,
                                     writes)
                    if why:
                        return why
                    branch = None
            continue
        if not isinstance(line, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return "the loop over the groups does more than set their values (a statement other than a write or if)"
        for small in line.body:
            write = _write(small, group)
            if write is None:
                return "the loop over the groups does more than set their values"
            writes.append(write)
    return ""


def group_read_key(node, group: str) -> str | None:
    """'lr_scale' for `<group>["lr_scale"]`."""
    return _key_of(node, group)


def _group_reads(node, group: str) -> list[str]:
    """The keys read from the group (`g["lr_scale"]`) in values and conditions (not write targets)."""
    found = []

    class _V(cst.CSTVisitor):
        def visit_Assign(self, n):
            n.value.visit(self)
            return False

        def visit_AugAssign(self, n):
            n.value.visit(self)
            return False

        def visit_Subscript(self, n):
            key = _key_of(n, group)
            if key is not None:
                found.append(key)
                return False
            return True

    node.visit(_V())
    return found


def _bare(node, group: str) -> list:
    """Uses of the group's name that are not `<group>["key"]` (a method, the dict handed on)."""
    found = []

    class _V(cst.CSTVisitor):
        def visit_Subscript(self, n):
            if _key_of(n, group) is not None:
                return False
            return True

        def visit_Name(self, n):
            if n.value == group:
                found.append(n)

    node.visit(_V())
    return found


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
