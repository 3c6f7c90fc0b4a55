"""A `param_groups` use unrolled over the optimizer's known groups: each write (and read) of a
group's hyperparameter addressed to that group's own state.

`for i, g in enumerate(opt.param_groups): g["lr"] = lr; if i == 0: g["weight_decay"] = wd` over
two groups is, group by group, in torch's order: group 0's lr, group 0's weight decay, group 1's
lr. The index becomes its value, a condition on it (or on a key the group dicts give at
construction, never written) is decided, `g["lr_scale"]` becomes that group's constant, and
`g["lr"]` read in a value becomes a read of that group's state. Anything not decidable here is
said in words (a string): the use stays torch with it.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Callable

import libcst as cst

from .arguments import code
from .hyperparams import HyperUse, group_read_key, names_in


@dataclass(frozen=True)
class GroupWrite:
    group: int
    key: str            # torch's key ('lr')
    op: str             # '=', '*=' ...
    value: str          # the value's text, the group's own reads and index put in


@dataclass
class Groups:
    """What the unrolling knows of the groups."""
    count: int
    constants: list[dict[str, str]]         # per group: key -> the literal text it has at construction
    written: frozenset[str]                 # the keys the flow writes somewhere (not constants)
    hyperparameter: Callable[[str], bool]   # is the key one the state keeps (read it there)?
    unread: bool = False                    # a use of the groups was not read: any key may be set there


Reader = Callable[[int, str], str]          # (group, key) -> the expression reading it from the state


def unroll(form: HyperUse, groups: Groups, read: Reader) -> list[GroupWrite] | str:
    """The writes of `form`, group by group; why not (a string)."""
    n = groups.count
    if form.kind in ("write", "read"):
        g = group_of(form, n)
        if not 0 <= g < n:
            return f"param_groups[{form.group}]: the optimizer has {n} group{'s' if n != 1 else ''}"
        if form.kind == "read":
            return []
        key, op, value = form.writes[0]
        return [GroupWrite(g, key, op, value)]
    out: list[GroupWrite] = []
    for g in range(n):
        why = _lines(form, form.body, g, groups, read, out)
        if why:
            return why
    return out


def group_of(form: HyperUse, count: int) -> int:
    """The group a write or read addresses (a negative position counted from the end)."""
    return form.group + count if form.group < 0 else form.group


def _lines(form: HyperUse, lines, g: int, groups: Groups, read: Reader, out: list) -> str:
    for line in lines:
        if isinstance(line, cst.If):
            branch = line
            while branch is not None:
                taken = _decide(branch.test, form, g, groups)
                if isinstance(taken, str):
                    return taken
                if taken:
                    why = _lines(form, _block(branch.body), g, groups, read, out)
                    if why:
                        return why
                    break
                branch = branch.orelse
                if isinstance(branch, cst.Else):
                    why = _lines(form, _block(branch.body), g, groups, read, out)
                    if why:
                        return why
                    break
            continue
        for small in line.body:
            target = small.targets[0].target if isinstance(small, cst.Assign) else small.target
            key = group_read_key(target, form.group_name)
            op = "=" if isinstance(small, cst.Assign) else code(small.operator).strip()
            value = _substitute(small.value, form, g, groups, read)
            if value.startswith("\0"):
                return value[1:]
            out.append(GroupWrite(g, key, op, value))
    return ""


def _block(body) -> tuple:
    return tuple(body.body if isinstance(body, cst.IndentedBlock) else [body])


def _substitute(value: cst.BaseExpression, form: HyperUse, g: int, groups: Groups, read: Reader) -> str:
    """The value's text for group g; a string starting with NUL: why it cannot be written."""
    problem: list[str] = []
    if _binds(value, {form.index, form.group_name} - {None}):
        return f"\0the value rebinds the loop's names inside it ({code(value)})"

    class _T(cst.CSTTransformer):
        def leave_Name(self, original, updated):
            if form.index is not None and original.value == form.index:
                return cst.Integer(str(g))
            return updated

        def leave_Subscript(self, original, updated):
            key = group_read_key(original, form.group_name)
            if key is None:
                return updated
            if groups.hyperparameter(key):
                return _atom(read(g, key))
            text = groups.constants[g].get(key)
            if key in groups.written or groups.unread:
                problem.append(f"group {g}'s {key!r} is read in the loop and may be set elsewhere"
                               + (" (a use of the groups fix-all cannot read)" if groups.unread else ""))
                return updated
            if text is None:
                problem.append(f"group {g} is given no literal {key!r} where the optimizer is built")
                return updated
            return _atom(text)

    new = value.visit(_T())
    if problem:
        return "\0" + problem[0]
    return code(new)


def _binds(node, names: set[str]) -> bool:
    """Does a comprehension, lambda or `:=` inside `node` bind one of `names` (its uses are not the loop's)?"""
    found = []

    class _V(cst.CSTVisitor):
        def visit_CompFor(self, n):
            found.extend(x.value for x in names_in(n.target))

        def visit_Lambda(self, n):
            found.extend(p.name.value for p in n.params.params + n.params.kwonly_params + n.params.posonly_params)

        def visit_NamedExpr(self, n):
            found.extend(x.value for x in names_in(n.target))

    node.visit(_V())
    return bool(set(found) & names)


def _atom(text: str) -> cst.BaseExpression:
    """The expression `text`, parenthesised unless it is one atom (a literal, a name, a subscript)."""
    node = cst.parse_expression(text)
    if isinstance(node, (cst.Name, cst.Attribute, cst.Subscript, cst.Call, cst.Integer, cst.Float,
                         cst.SimpleString)):
        return node
    return cst.parse_expression(f"({text})")


_COMPARE = {cst.Equal: operator.eq, cst.NotEqual: operator.ne, cst.LessThan: operator.lt,
            cst.LessThanEqual: operator.le, cst.GreaterThan: operator.gt, cst.GreaterThanEqual: operator.ge,
            cst.In: lambda a, b: a in b, cst.NotIn: lambda a, b: a not in b, cst.Is: operator.is_,
            cst.IsNot: operator.is_not}


class _Undecided(Exception):
    pass


def _decide(test, form: HyperUse, g: int, groups: Groups) -> bool | str:
    """The value of an `if`'s test for group g: its index, literals, keys given at construction."""
    try:
        return bool(_eval(test, form, g, groups))
    except TypeError:       # `i < "a"`, `i in 3`: Python itself would raise
        return (f"the loop picks groups by a condition fix-all cannot decide for each group "
                f"({code(test)})")
    except _Undecided as e:
        return (f"the loop picks groups by a condition fix-all cannot decide for each group "
                f"({code(test)}{': ' + str(e) if str(e) else ''})")


def _eval(node, form: HyperUse, g: int, groups: Groups):
    if isinstance(node, cst.Name):
        if node.value == form.index:
            return g
        if node.value in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.value]
        raise _Undecided(f"{node.value} is not known here")
    if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
        return ast.literal_eval(node.value)
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return tuple(_eval(e.value, form, g, groups) for e in node.elements)
    if isinstance(node, cst.UnaryOperation):
        inner = _eval(node.expression, form, g, groups)
        if isinstance(node.operator, cst.Not):
            return not inner
        if isinstance(node.operator, cst.Minus):
            return -inner
        raise _Undecided("")
    if isinstance(node, cst.BooleanOperation):
        left = _eval(node.left, form, g, groups)
        if isinstance(node.operator, cst.And):
            return left and _eval(node.right, form, g, groups)
        return left or _eval(node.right, form, g, groups)
    if isinstance(node, cst.Comparison):
        left = _eval(node.left, form, g, groups)
        for target in node.comparisons:
            right = _eval(target.comparator, form, g, groups)
            if not _COMPARE[type(target.operator)](left, right):
                return False
            left = right
        return True
    if isinstance(node, cst.Subscript):
        key = group_read_key(node, form.group_name)
        if key is not None:
            text = groups.constants[g].get(key)
            if text is None or key in groups.written or groups.unread:
                raise _Undecided(f"group {g}'s {key!r} is set as it runs or not given at construction")
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise _Undecided(f"group {g}'s {key!r} is not a literal") from None
    raise _Undecided("")
