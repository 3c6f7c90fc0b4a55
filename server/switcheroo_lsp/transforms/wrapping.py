"""The target's optimizer object around the Optax transform, as libcst nodes:
`nnx.Optimizer(model, <transform>, wrt=nnx.Param)`.

`model` is the user's own node (from `model.parameters()`). A torch call written with `(` and
a line break keeps that shape: the module on the first argument line with the comments the
params argument had, the transform below it (indented one step further), each keyword on its
own line. A call on one line stays on one line while it fits; a long one is spread the same way.
A call that hangs its arguments after `(` hugs the transform, which keeps that layout:
`nnx.Optimizer(model, optax.adam(learning_rate=0.1,` ... `), wrt=nnx.Param)`.
"""

from __future__ import annotations

from typing import Callable

import libcst as cst

from ..knowledge.emit import LINE_LIMIT

_SPACE = cst.SimpleWhitespace(" ")
_NONE = cst.SimpleWhitespace("")
_EQUAL = cst.AssignEqual(whitespace_before=_NONE, whitespace_after=_NONE)
_CODEGEN = cst.Module(body=())


def wrap(call: cst.Call, params: cst.Arg | None, build: Callable[..., cst.BaseExpression], wrapper,
         module: cst.BaseExpression, line_start: int, default_indent: str, indent: str = "") -> cst.Call:
    """`wrapper.func(module, <transform>, kw=value...)` replacing the torch `call`. `build` turns
    a torch call into the transform's nodes (given the column it will start at); `params` is the
    call's params argument; `line_start` is how many characters precede the call on its line;
    `indent` is the statement's indentation."""
    func = cst.parse_expression(wrapper.func)
    keywords = [cst.Arg(cst.parse_expression(v), keyword=cst.Name(k), equal=_EQUAL) for k, v in wrapper.keywords]
    open_ws = call.whitespace_before_args
    if isinstance(open_ws, cst.ParenthesizedWhitespace) and params is not None and call.args and call.args[0] is params:
        # Spread from `(`: the comment after `(` and the params argument's go with the module.
        lead, trail, stripped = _params_comments(call, params)
        transform = build(stripped, None, inside=(len(indent) if open_ws.indent else 0) + len(open_ws.last_line.value))
        close = _closing(call)
        return _spread(func, module, transform, keywords, open_ws.last_line, open_ws.indent, lead, trail, close,
                       open_ws.first_line)
    # Hugged, the transform starts after `wrapper(module, `: arguments aligned under its bracket follow it.
    transform = build(call, line_start + len(wrapper.func) + 1 + len(_CODEGEN.code_for_node(module)) + 2)
    hugged = cst.Call(func=func, args=_commas([cst.Arg(module), cst.Arg(transform)] + keywords))
    text = _CODEGEN.code_for_node(hugged)
    if "\n" not in text and line_start + len(text) <= LINE_LIMIT:
        return hugged
    if "\n" in text and "\n" in _CODEGEN.code_for_node(call):
        return hugged           # the user's own layout (hanging from `(`) is kept as it is
    # Spread: the transform on a line of its own, one step in.
    transform = build(call, len(indent) + len(default_indent), inside=len(indent) + len(default_indent))
    return _spread(func, module, transform, keywords, cst.SimpleWhitespace(default_indent), True, [], None,
                   cst.ParenthesizedWhitespace(indent=True, last_line=_NONE))


def _spread(func, module, transform, keywords, last_line: cst.SimpleWhitespace, indent: bool, lead: list,
            trail: cst.TrailingWhitespace | None, close: cst.ParenthesizedWhitespace,
            opened: cst.TrailingWhitespace | None = None) -> cst.Call:
    def line(first=None):
        return cst.ParenthesizedWhitespace(first_line=first or cst.TrailingWhitespace(), indent=indent,
                                           last_line=last_line)

    args = [cst.Arg(module), cst.Arg(shifted(transform, last_line.value))] + keywords
    out = []
    for i, arg in enumerate(args):
        after = close if i == len(args) - 1 else line(trail if i == 0 else None)
        out.append(arg.with_changes(comma=cst.Comma(whitespace_after=after)))
    open_ws = line(opened).with_changes(empty_lines=[
        _comment_line(x.comment, indent, last_line) if x.comment is not None else x for x in lead])
    return cst.Call(func=func, args=out, whitespace_before_args=open_ws)


def _params_comments(call: cst.Call, params: cst.Arg) -> tuple[list, cst.TrailingWhitespace | None, cst.Call]:
    """(the lines above the params argument, the comment after it, the call without them; the
    comment after `(` is left for the caller to take from the original call)."""
    open_ws = call.whitespace_before_args
    lead = list(open_ws.empty_lines)
    stripped_open = open_ws.with_changes(empty_lines=[], first_line=cst.TrailingWhitespace())
    trail, new_params = None, params
    comma = params.comma
    if isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace):
        first = comma.whitespace_after.first_line
        if first.comment is not None:
            trail = first
            new_params = params.with_changes(comma=comma.with_changes(
                whitespace_after=comma.whitespace_after.with_changes(first_line=cst.TrailingWhitespace())))
    elif isinstance(params.whitespace_after_arg, cst.ParenthesizedWhitespace):
        first = params.whitespace_after_arg.first_line
        if first.comment is not None:
            trail = first
            new_params = params.with_changes(whitespace_after_arg=params.whitespace_after_arg.with_changes(
                first_line=cst.TrailingWhitespace()))
    args = [new_params] + list(call.args[1:])
    return lead, trail, call.with_changes(whitespace_before_args=stripped_open, args=args)


def _closing(call: cst.Call) -> cst.ParenthesizedWhitespace:
    """Where the torch call's `)` was, when it had a line of its own (else at the statement's
    indentation)."""
    last = call.args[-1] if call.args else None
    ws = None
    if last is not None:
        ws = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return cst.ParenthesizedWhitespace(indent=ws.indent, last_line=ws.last_line)
    return cst.ParenthesizedWhitespace(indent=True, last_line=_NONE)


def _comment_line(comment: cst.Comment, indent: bool, last_line: cst.SimpleWhitespace) -> cst.EmptyLine:
    return cst.EmptyLine(indent=indent, whitespace=last_line, comment=comment)


def _commas(args: list[cst.Arg]) -> list[cst.Arg]:
    return [a.with_changes(comma=cst.Comma(whitespace_after=_SPACE)) for a in args[:-1]] + args[-1:]


def shifted(node: cst.CSTNode, by: str) -> cst.CSTNode:
    """The node with every line it continues onto indented `by` further (it moves one level
    deeper inside the wrapper); a node on one line is returned as it is."""
    if not by or "\n" not in _CODEGEN.code_for_node(node):
        return node
    return node.visit(_Shift(by))


class _Shift(cst.CSTTransformer):
    def __init__(self, by: str):
        super().__init__()
        self.by = by

    def leave_ParenthesizedWhitespace(self, original, updated):
        lines = [line.with_changes(whitespace=cst.SimpleWhitespace(line.whitespace.value + self.by))
                 if line.comment is not None else line for line in updated.empty_lines]
        return updated.with_changes(empty_lines=lines,
                                    last_line=cst.SimpleWhitespace(updated.last_line.value + self.by))
