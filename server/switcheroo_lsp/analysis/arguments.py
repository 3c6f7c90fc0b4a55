"""A call's arguments as the knowledge tables take them: `ArgValue`s made from libcst nodes.

An ArgValue keeps the node (the rewrite reuses it verbatim, comments included), its literal
value where it has one, and its text on one line (messages and hovers quote it; an argument
written over several lines is joined, its comments left to the rewrite).
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from ..knowledge.emit import STAR, UNKNOWN, ArgValue
from ..knowledge.param_groups import Groups

_CODEGEN = cst.Module(body=())
_TENSOR_WRAPPERS = ("tensor", "as_tensor")      # torch.tensor(0.01) as an lr: Optax wants the number
_ATOMIC = (cst.Name, cst.Attribute, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString,
           cst.FormattedString, cst.Call, cst.Subscript, cst.Tuple, cst.List, cst.Dict, cst.Set)


def code(node: cst.CSTNode) -> str:
    """The node's code as written (several lines where it spans several)."""
    return _CODEGEN.code_for_node(node)


def one_line(node: cst.CSTNode) -> str:
    """The node's code on one line: line breaks inside brackets joined, comments left out."""
    text = code(node)
    if "\n" not in text and "\r" not in text:
        return text
    return code(node.visit(_OneLine()))


class _OneLine(cst.CSTTransformer):
    def leave_ParenthesizedWhitespace(self, original, updated):
        return cst.SimpleWhitespace(" ")

    def _tight(self, updated, attr):
        return updated.with_changes(**{attr: cst.SimpleWhitespace("")})

    def leave_LeftParen(self, original, updated):
        return self._tight(updated, "whitespace_after")

    def leave_LeftSquareBracket(self, original, updated):
        return self._tight(updated, "whitespace_after")

    def leave_LeftCurlyBrace(self, original, updated):
        return self._tight(updated, "whitespace_after")

    def leave_RightParen(self, original, updated):
        return self._tight(updated, "whitespace_before")

    def leave_RightSquareBracket(self, original, updated):
        return self._tight(updated, "whitespace_before")

    def leave_RightCurlyBrace(self, original, updated):
        return self._tight(updated, "whitespace_before")

    def leave_Call(self, original, updated):
        args = list(updated.args)
        if args:
            args[-1] = args[-1].with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
        return updated.with_changes(whitespace_before_args=cst.SimpleWhitespace(""), args=args)

    def leave_Comma(self, original, updated):
        return updated.with_changes(whitespace_before=cst.SimpleWhitespace(""),
                                    whitespace_after=cst.SimpleWhitespace(" "))


def literal_value(node) -> Any:
    """The value of a literal (numbers, strings, booleans, None, signed numbers, tuples and
    lists of those), else UNKNOWN."""
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary)):
        return node.evaluated_value
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        try:
            value = node.evaluated_value
        except Exception:          # noqa: BLE001 — an escape libcst cannot evaluate
            return UNKNOWN
        return UNKNOWN if value is None else value
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        inner = literal_value(node.expression)
        if isinstance(inner, (int, float, complex)) and not isinstance(inner, bool) and inner is not UNKNOWN:
            return -inner if isinstance(node.operator, cst.Minus) else +inner
        return UNKNOWN
    if isinstance(node, (cst.Tuple, cst.List)):
        if any(isinstance(e, cst.StarredElement) for e in node.elements):
            return UNKNOWN
        items = [literal_value(e.value) for e in node.elements]
        if any(i is UNKNOWN for i in items):
            return UNKNOWN
        return tuple(items) if isinstance(node, cst.Tuple) else items
    return UNKNOWN


def unwrap_tensor(node):
    """`torch.tensor(0.01)` -> `0.01` (a literal number wrapped in a tensor)."""
    if (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in _TENSOR_WRAPPERS
            and isinstance(node.func.value, cst.Name) and node.func.value.value == "torch"
            and len(node.args) == 1 and node.args[0].keyword is None and not node.args[0].star):
        inner = node.args[0].value
        value = literal_value(inner)
        if isinstance(value, (int, float)) and value is not UNKNOWN:
            return inner
    return node


def arg_value(node) -> ArgValue:
    node = unwrap_tensor(node)
    elements = None
    if isinstance(node, (cst.Tuple, cst.List)) and not any(isinstance(e, cst.StarredElement) for e in node.elements):
        elements = tuple(arg_value(e.value) for e in node.elements)
    atomic = isinstance(node, _ATOMIC) or bool(getattr(node, "lpar", ()))
    return ArgValue(one_line(node), literal_value(node), elements, atomic, node)


def call_arguments(call: cst.Call, cache: dict | None = None) -> tuple[list, list[tuple[str | None, ArgValue]]]:
    """(positional ArgValues, STAR for `*x`; (keyword, ArgValue) pairs, None for `**x`).
    `cache`: the chunk's (the call's nodes live as long as it does), so an edit elsewhere does
    not render every construction's arguments again."""
    if cache is not None:
        known = cache.setdefault("arguments", {})
        if id(call) not in known:
            known[id(call)] = call_arguments(call)
        return known[id(call)]
    positional, keywords = [], []
    for arg in call.args:
        if arg.star == "*":
            positional.append(STAR)
        elif arg.star == "**":
            keywords.append((None, arg_value(arg.value)))
        elif arg.keyword is not None:
            keywords.append((arg.keyword.value, arg_value(arg.value)))
        else:
            positional.append(arg_value(arg.value))
    return positional, keywords


def read_groups(node) -> Groups | None | str:
    """The groups of a literal list of dicts; a reason string when they cannot be read; None
    when `node` is not a list of groups at all."""
    if not isinstance(node, (cst.List, cst.Tuple)) or not any(
            isinstance(e, cst.Element) and isinstance(e.value, cst.Dict) for e in node.elements):
        return None
    groups = []
    for element in node.elements:
        if not isinstance(element, cst.Element) or not isinstance(element.value, cst.Dict):
            return "the groups mix dicts with other values"
        group = {}
        for item in element.value.elements:
            key = literal_value(item.key) if isinstance(item, cst.DictElement) else UNKNOWN
            if not isinstance(key, str) or not isinstance(item.key, (cst.SimpleString, cst.ConcatenatedString)):
                return "a group's keys are not plain strings (** or computed keys)"
            group[key] = arg_value(item.value)
        if "params" not in group:
            return "a group has no 'params'"
        groups.append(group)
    return Groups(node, groups)
