"""Expressions of the user's code as libcst trees: which references an expression needs, safe
evaluation of literal values, and substitution of values for references.

A *reference* is what verify must be given a value for: a name (`LR`), an attribute chain on
a name (`args.lr`, `cfg.optim.betas`), a string subscript of one (`config["lr"]`), or a call it
cannot evaluate itself (`len(loader)`, `cfg.get("lr")`). Library names (`torch.…`, `optax.…`,
`math.pi`), literals, and names bound inside the expression (lambda parameters, comprehension
targets) are not references. Nothing here runs user code: values are computed by `evaluate`,
which only knows literals, arithmetic and a few pure builtins.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Iterator

import libcst as cst

_MODULE = cst.Module(body=[])

# Roots whose attributes are library names, not the user's hyperparameters.
LIBRARY_ROOTS = frozenset({"torch", "optim", "lr_scheduler", "nn", "math", "optax", "jnp", "jax",
                           "switcheroo_optax", "np", "numpy"})
# Names verify itself binds in the texts it evaluates (the params and the optimizer it builds).
INTERNAL = frozenset({"_sw_params", "_sw_groups", "_sw_opt", "_sw_labels", "_sw_mask"})
SAFE_CALLS: dict[str, Callable] = {"float": float, "int": int, "abs": abs, "min": min, "max": max,
                                   "round": round, "bool": bool, "pow": pow}
MATH_CONSTANTS = {"math.pi": math.pi, "math.e": math.e, "math.inf": math.inf, "math.tau": math.tau}
MATH_CALLS = {f"math.{n}": getattr(math, n) for n in ("sqrt", "exp", "log", "log10", "log2", "cos", "sin", "floor", "ceil")}
# torch.optim.lr_scheduler classes, so that a nested scheduler imported by its bare name
# (`SequentialLR(opt, [LinearLR(opt, …), …])`) reads as a library call, not as a reference.
SCHEDULER_NAMES = frozenset({
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
    "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR", "LRScheduler",
})
_BINARY = {cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
           cst.Divide: operator.truediv, cst.FloorDivide: operator.floordiv, cst.Modulo: operator.mod,
           cst.Power: operator.pow}


class Unresolved(Exception):
    """A reference without a value; `text` is how the user's code spells it."""

    def __init__(self, text: str, reason: str = ""):
        super().__init__(text)
        self.text = text
        self.reason = reason


class NotLiteral(Exception):
    """An expression `evaluate` cannot compute (a comparison, an f-string, …)."""


def parse(text: str) -> cst.BaseExpression:
    return cst.parse_expression(text)


def code(node: cst.CSTNode) -> str:
    return _MODULE.code_for_node(node)


def key(text: str) -> str:
    """Identity of an expression's text, blind to spacing and line breaks (the emitted Optax
    text puts a multi-line argument on one line) and to how a string subscript is quoted."""
    joined = "".join(text.split())
    if "[" not in joined:
        return joined
    try:
        node = parse(text.strip())
    except cst.ParserSyntaxError:
        return joined
    return _canonical(node) or joined


def _canonical(node: cst.BaseExpression) -> str | None:
    """`cfg["lr"]` and `cfg['lr']` alike: `cfg['lr']`."""
    if isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        index = node.slice[0].slice.value
        base = _canonical(node.value) or "".join(code(node.value).split())
        if isinstance(index, cst.SimpleString):
            return f"{base}[{index.evaluated_value!r}]"
        return f"{base}[{''.join(code(index).split())}]"
    return None


def dotted(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name / Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def _bound_by(node: cst.CSTNode) -> set[str]:
    """Names a lambda or comprehension binds."""
    names: set[str] = set()
    if isinstance(node, cst.Lambda):
        params = node.params
        for p in [*params.posonly_params, *params.params, *params.kwonly_params]:
            names.add(p.name.value)
        for p in (params.star_arg, params.star_kwarg):
            if isinstance(p, cst.Param):
                names.add(p.name.value)
    elif isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
        comp = node.for_in
        while comp is not None:
            names |= {n.value for n in _names_in(comp.target)}
            comp = comp.inner_for_in
    return names


def _names_in(node: cst.CSTNode) -> Iterator[cst.Name]:
    if isinstance(node, cst.Name):
        yield node
    for child in node.children:
        yield from _names_in(child)


def _children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The expression children of `node`: never keyword names, attribute names or parameters."""
    if isinstance(node, cst.Arg):
        yield node.value
    elif isinstance(node, cst.Attribute):
        yield node.value
    elif isinstance(node, cst.Lambda):
        for p in [*node.params.posonly_params, *node.params.params, *node.params.kwonly_params]:
            if p.default is not None:
                yield p.default
        yield node.body
    elif isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute)):
        yield from (a.value for a in node.args)        # a library callee is no reference
    elif isinstance(node, cst.CompFor):
        yield node.iter
        yield from (i.search for i in node.ifs)
        if node.inner_for_in is not None:
            yield node.inner_for_in
    else:
        yield from node.children


def _library_call(name: str | None, bound: set[str]) -> bool:
    if name is None:
        return False
    root = name.split(".", 1)[0]
    return (root in LIBRARY_ROOTS or root in INTERNAL or name in SAFE_CALLS or name in SCHEDULER_NAMES
            or root in bound)


def is_reference(node: cst.CSTNode, bound: set[str] = frozenset()) -> bool:
    if isinstance(node, cst.Name):
        return node.value not in ("True", "False", "None") and node.value not in bound \
            and node.value not in INTERNAL and node.value not in LIBRARY_ROOTS
    if isinstance(node, cst.Attribute):
        name = dotted(node)
        if name is None:
            return False
        root = name.split(".", 1)[0]
        return root not in LIBRARY_ROOTS and root not in bound and root not in INTERNAL
    if isinstance(node, cst.Subscript):
        index = node.slice[0].slice if len(node.slice) == 1 else None
        return (isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString)
                and is_reference(node.value, bound))
    if isinstance(node, cst.Call):
        if not isinstance(node.func, (cst.Name, cst.Attribute)):
            return False            # `(lambda step: …)(count)`: look inside instead
        name = dotted(node.func)
        return name == "len" or not _library_call(name, bound)
    return False


def _walk(node: cst.CSTNode, bound: set[str], visit: Callable[[cst.CSTNode, set[str]], bool]) -> None:
    """Calls visit(expr, bound) on every expression node, outermost first; visit returns
    False to stop descending there."""
    if isinstance(node, cst.BaseExpression) and not visit(node, bound):
        return
    inner = bound | _bound_by(node)
    for child in _children(node):
        _walk(child, inner, visit)


def references(node: cst.CSTNode, bound: frozenset[str] = frozenset()) -> list[cst.BaseExpression]:
    """The outermost references in `node`, in source order."""
    out: list[cst.BaseExpression] = []

    def visit(expr, names):
        if is_reference(expr, names):
            out.append(expr)
            return False
        return True

    _walk(node, set(bound), visit)
    return out


def find(node: cst.CSTNode, keys: set[str]) -> list[cst.BaseExpression]:
    """The outermost expressions in `node` whose text has one of these keys."""
    out: list[cst.BaseExpression] = []

    def visit(expr, names):
        if key(code(expr)) in keys:
            out.append(expr)
            return False
        return True

    _walk(node, set(), visit)
    return out


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: dict[int, str]):
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node, updated_node):
        new = self.replacements.get(id(original_node))
        if new is None:
            return updated_node
        return parse(f"({new})")       # parenthesized: `-0.5` must stay `(-0.5) ** 2`


def replace(tree: cst.BaseExpression, replacements: dict[int, str]) -> cst.BaseExpression:
    """`tree` with the nodes whose id() is a key replaced by that expression text."""
    if not replacements:
        return tree
    if id(tree) in replacements:
        return parse(f"({replacements[id(tree)]})")
    return tree.visit(_Replace(replacements))


def literal_code(value: Any) -> str:
    """Python source for a value `evaluate` produced."""
    if isinstance(value, float) and not math.isfinite(value):
        return "float('nan')" if math.isnan(value) else ("float('inf')" if value > 0 else "-float('inf')")
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal_code(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal_code(k)}: {literal_code(v)}" for k, v in value.items()) + "}"
    return repr(value)


def evaluate(node: cst.BaseExpression, lookup: Callable[[cst.BaseExpression], Any]) -> Any:
    """The value of a literal expression; `lookup(ref)` gives each reference's value (or raises
    Unresolved). Raises NotLiteral for anything else."""
    if is_reference(node):
        return lookup(node)
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary)):
        return node.evaluated_value
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        if value is None:
            raise NotLiteral(code(node))
        return value
    if isinstance(node, cst.Name):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        items = []
        for el in node.elements:
            if not isinstance(el, cst.Element):
                raise NotLiteral(code(node))
            items.append(evaluate(el.value, lookup))
        return tuple(items) if isinstance(node, cst.Tuple) else (set(items) if isinstance(node, cst.Set) else items)
    if isinstance(node, cst.Dict):
        out = {}
        for el in node.elements:
            if not isinstance(el, cst.DictElement):
                raise NotLiteral(code(node))
            out[evaluate(el.key, lookup)] = evaluate(el.value, lookup)
        return out
    if isinstance(node, cst.UnaryOperation):
        value = evaluate(node.expression, lookup)
        op = type(node.operator)
        if op is cst.Minus:
            return -value
        if op is cst.Plus:
            return +value
        if op is cst.Not:
            return not value
        raise NotLiteral(code(node))
    if isinstance(node, cst.BinaryOperation):
        op = _BINARY.get(type(node.operator))
        if op is None:
            raise NotLiteral(code(node))
        left, right = evaluate(node.left, lookup), evaluate(node.right, lookup)
        if op is operator.pow and isinstance(right, (int, float)) and abs(right) > 1000:
            raise NotLiteral(code(node))      # no runaway integer powers
        return op(left, right)
    if isinstance(node, cst.BooleanOperation):
        left = evaluate(node.left, lookup)
        if isinstance(node.operator, cst.And):
            return left and evaluate(node.right, lookup)
        return left or evaluate(node.right, lookup)
    if isinstance(node, cst.IfExp):
        return evaluate(node.body if evaluate(node.test, lookup) else node.orelse, lookup)
    if isinstance(node, cst.Attribute) and dotted(node) in MATH_CONSTANTS:
        return MATH_CONSTANTS[dotted(node)]
    if isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        return evaluate(node.value, lookup)[evaluate(node.slice[0].slice.value, lookup)]
    if isinstance(node, cst.Call):
        name = dotted(node.func)
        fn = SAFE_CALLS.get(name) or MATH_CALLS.get(name)
        if fn is None or any(a.keyword is not None or a.star for a in node.args):
            raise NotLiteral(code(node))
        return fn(*(evaluate(a.value, lookup) for a in node.args))
    raise NotLiteral(code(node))


class _DropComments(cst.CSTTransformer):
    def leave_TrailingWhitespace(self, original_node, updated_node):
        return updated_node.with_changes(comment=None)

    def leave_EmptyLine(self, original_node, updated_node):
        return cst.RemoveFromParent() if updated_node.comment is not None else updated_node


def one_line(text: str) -> str:
    """A call's text on one line, without its comments (for a header)."""
    try:
        text = code(parse(text).visit(_DropComments()))
    except cst.ParserSyntaxError:
        pass
    out = " ".join(text.split()).replace("( ", "(").replace(" )", ")")
    return out[:-2] + ")" if out.endswith(",)") else out      # a multi-line call's trailing comma


def value_of(text: str) -> Any:
    """A literal given as text (`--set lr=3e-4`, `--set betas=(0.9,0.95)`); NotLiteral if it is
    not one (a reference counts as not literal here)."""
    try:
        node = parse(text.strip())
    except cst.ParserSyntaxError as e:
        raise NotLiteral(text) from e

    def no_refs(ref):
        raise NotLiteral(code(ref))

    return evaluate(node, no_refs)
