"""A generated expression that does not fit on its line, spread the way a formatter would.

The Optax expressions built from text (`optax.multi_transform({...}, param_labels)`, a chain
wrapped in `optax.inject_hyperparams(lambda ...)(...)`) come out on one line. Past the line
limit, a call puts each argument on a line of its own, one step deeper, with a trailing comma
(none after a sole argument) and `)` back at the call's own depth; a dict does the same with its
entries; an argument that still does not fit is spread in turn. What fits stays as it is, and
so does what is already on several lines (the user's own layout); starred arguments and `**`
entries are never split.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.arguments import code
from ..knowledge.emit import LINE_LIMIT

_NONE = cst.SimpleWhitespace("")


def fitted(node: cst.BaseExpression, column: int, indent: int, step: str, depth: int = 0) -> cst.BaseExpression:
    """`node`, starting at `column` on a line indented `indent` columns (its statement's) plus
    `depth` steps (`step` is the file's indentation unit)."""
    if column + len(code(node)) <= LINE_LIMIT or "\n" in code(node):
        return node
    if isinstance(node, cst.Call) and node.args and not any(a.star for a in node.args):
        func = node.func
        if isinstance(func, cst.Call) and column + len(code(func)) + 1 > LINE_LIMIT:
            # `inject_hyperparams(lambda ...: chain(...))(learning_rate=...)`: the inner call is
            # spread; the outer arguments follow its `)` when they fit there.
            func = fitted(func, column, indent, step, depth)
            last = indent + len(step) * depth + 1
            if last + len(code(node.with_changes(func=cst.Name("f")))) - 1 <= LINE_LIMIT:
                return node.with_changes(func=func)
        one = len(node.args) == 1
        args = [a.with_changes(value=fitted(a.value, indent + len(step) * (depth + 1) + len(_prefix(a)), indent,
                                            step, depth + 1),
                               comma=_comma(step, depth, last=i == len(node.args) - 1) if not one else
                               cst.MaybeSentinel.DEFAULT,
                               whitespace_after_arg=_line(step, depth) if one else a.whitespace_after_arg)
                for i, a in enumerate(node.args)]
        return node.with_changes(func=func, args=args, whitespace_before_args=_line(step, depth + 1),
                                 whitespace_after_func=_NONE)
    if isinstance(node, cst.Lambda):
        head = len(code(node)) - len(code(node.body))
        return node.with_changes(body=fitted(node.body, column + head, indent, step, depth))
    if isinstance(node, cst.Dict) and node.elements and all(isinstance(e, cst.DictElement) for e in node.elements):
        elements = []
        for i, e in enumerate(node.elements):
            key = code(e.key) + ": "
            value = fitted(e.value, indent + len(step) * (depth + 1) + len(key), indent, step, depth + 1)
            elements.append(e.with_changes(value=value, whitespace_before_colon=_NONE,
                                           whitespace_after_colon=cst.SimpleWhitespace(" "),
                                           comma=_comma(step, depth, last=i == len(node.elements) - 1)))
        return node.with_changes(elements=elements, lbrace=cst.LeftCurlyBrace(whitespace_after=_line(step, depth + 1)),
                                 rbrace=cst.RightCurlyBrace(whitespace_before=_NONE))
    return node


def _prefix(arg: cst.Arg) -> str:
    return f"{arg.keyword.value}=" if arg.keyword is not None else ""


def _line(step: str, depth: int) -> cst.ParenthesizedWhitespace:
    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                       last_line=cst.SimpleWhitespace(step * depth))


def _comma(step: str, depth: int, last: bool) -> cst.Comma:
    return cst.Comma(whitespace_before=_NONE, whitespace_after=_line(step, depth if last else depth + 1))
