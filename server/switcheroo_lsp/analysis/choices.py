"""What a class or a name chosen at run time may be, resolved statically.

Training scripts pick their optimizer class at run time::

    if args.use_8bit_adam:
        optimizer_class = bnb.optim.AdamW8bit
    else:
        optimizer_class = torch.optim.AdamW
    optimizer = optimizer_class(params, lr=args.learning_rate)

and name their optimizer or schedule by a string (`{"adam": torch.optim.Adam, ...}[args.optim]`,
`getattr(torch.optim, args.optimizer)`, `get_scheduler(args.lr_scheduler, ...)`). This module
reads such a choice into a tree: a `Leaf` is one expression the value may be, a `Branch` the
author's condition between two subtrees (the test of an `if`, of an `a if c else b`, or the
comparison a dict lookup makes). A `Leaf` with no node is a value nothing here can know (a
parameter, a name bound where the trace does not follow). Strings come from literals, names bound
to them, and argparse: an `args.x` whose `add_argument` has `choices=` may be any of them, one
without may be its `default` or anything else.

The tree keeps the author's conditions, so a rewrite can make the same choice in Optax:
`(optax.adamw(...) if args.use_8bit_adam else optax.adamw(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .arguments import literal_value, one_line
from .facts import dotted


@dataclass(eq=False)
class Leaf:
    node: cst.BaseExpression | None      # None: not known statically
    why: str = ""                         # for an unknown leaf: what it is


@dataclass(eq=False)
class Branch:
    test: str                             # the condition's source text
    then: "Leaf | Branch"
    orelse: "Leaf | Branch"
    reads: tuple[str, ...] = ()           # the dotted names the test reads


@dataclass
class Strings:
    """The strings an expression may hold: `values` (all of them when `complete`), where they come
    from (`origin`: "argparse --optim choices", ...), and the argparse default."""
    values: list[str] = field(default_factory=list)
    complete: bool = False
    origin: str = ""
    default: str | None = None


def leaves(tree) -> list[Leaf]:
    if isinstance(tree, Leaf):
        return [tree]
    return leaves(tree.then) + leaves(tree.orelse)


def render(tree, text_of) -> str:
    """The tree as a conditional expression; `text_of(leaf)` is each leaf's text."""
    if isinstance(tree, Leaf):
        return text_of(tree)
    then, orelse = render(tree.then, text_of), render(tree.orelse, text_of)
    if then == orelse:
        return then
    return f"({then} if {tree.test} else {orelse})"


def conditions(tree, leaf: Leaf, path: tuple = ()) -> tuple[str, ...] | None:
    """The conditions under which `leaf` is the value ('not (...)' for an else), or None."""
    if isinstance(tree, Leaf):
        return path if tree is leaf else None
    known = tree.test != "?"             # "?": a choice the scan could not read (it lists what may be)
    found = conditions(tree.then, leaf, path + ((tree.test,) if known else ()))
    if found is not None:
        return found
    return conditions(tree.orelse, leaf, path + ((f"not ({tree.test})",) if known else ()))


# -- a name's value where it is used -------------------------------------------------------------------

def _assigned(stmt, name: str):
    """For a small statement binding `name`: (True, value or None when not a plain value); else (False, None)."""
    if isinstance(stmt, cst.Assign):
        for target in stmt.targets:
            t = target.target
            if isinstance(t, cst.Name) and t.value == name:
                return True, stmt.value if len(stmt.targets) == 1 else None
            if _binds(t, name):
                return True, None
        return False, None
    if isinstance(stmt, cst.AnnAssign):
        if isinstance(stmt.target, cst.Name) and stmt.target.value == name:
            return True, stmt.value
        return False, None
    if isinstance(stmt, (cst.AugAssign,)) and _binds(stmt.target, name):
        return True, None
    if isinstance(stmt, (cst.Import, cst.ImportFrom)) and not isinstance(stmt.names, cst.ImportStar):
        for alias in stmt.names:
            bound = alias.asname.name.value if alias.asname is not None else one_line(alias.name).split(".")[0]
            if bound == name:
                return True, None
    if isinstance(stmt, cst.Del) and _binds(stmt.target, name):
        return True, None
    return False, None


def _binds(target, name: str) -> bool:
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_binds(e.value, name) for e in target.elements)
    if isinstance(target, cst.StarredElement):
        return _binds(target.value, name)
    return False


class _Binds(cst.CSTVisitor):
    def __init__(self, name: str):
        self.name, self.found = name, False

    def visit_Name(self, node: cst.Name):
        return None

    def visit_Assign(self, node):
        if _assigned(node, self.name)[0]:
            self.found = True

    def visit_AnnAssign(self, node):
        if _assigned(node, self.name)[0]:
            self.found = True

    def visit_AugAssign(self, node):
        if _assigned(node, self.name)[0]:
            self.found = True

    def visit_For(self, node):
        if _binds(node.target, self.name):
            self.found = True

    def visit_Import(self, node):
        if _assigned(node, self.name)[0]:
            self.found = True

    def visit_ImportFrom(self, node):
        if _assigned(node, self.name)[0]:
            self.found = True

    def visit_FunctionDef(self, node):
        if node.name.value == self.name:
            self.found = True
        return False                 # another scope

    def visit_ClassDef(self, node):
        if node.name.value == self.name:
            self.found = True
        return False

    def visit_Lambda(self, node):
        return False


def _touches(node, name: str) -> bool:
    v = _Binds(name)
    node.visit(v)
    return v.found


def _test_reads(test) -> tuple[str, ...]:
    out = []
    stack = [test]
    while stack:
        n = stack.pop()
        parts = dotted(n) if isinstance(n, (cst.Name, cst.Attribute)) else None
        if parts:
            out.append(".".join(parts))
            continue
        stack.extend(c for c in n.children if isinstance(c, cst.CSTNode))
    return tuple(out)


class _Scan:
    """The value of one name along the statements before its use."""

    def __init__(self, name: str):
        self.name = name

    def block(self, statements, current):
        for stmt in statements:
            current = self.statement(stmt, current)
        return current

    def statement(self, stmt, current):
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                current = self.small(small, current)
            return current
        if isinstance(stmt, cst.If):
            return self.if_(stmt, current)
        if isinstance(stmt, cst.With) and isinstance(stmt.body, cst.IndentedBlock):
            return self.block(stmt.body.body, current)
        if _touches(stmt, self.name):
            return Leaf(None, f"{self.name} is bound in a loop or try block")
        return self.invalidate(stmt, current)

    def small(self, small, current):
        bound, value = _assigned(small, self.name)
        if bound:
            return Leaf(value, "" if value is not None else f"{self.name} is not bound to a plain value")
        return self.invalidate(small, current)

    def if_(self, node: cst.If, current):
        then = self.block(node.body.body, current) if isinstance(node.body, cst.IndentedBlock) else \
            self.block([cst.SimpleStatementLine(node.body.body)], current)
        if isinstance(node.orelse, cst.If):
            orelse = self.if_(node.orelse, current)
        elif isinstance(node.orelse, cst.Else):
            body = node.orelse.body
            orelse = self.block(body.body, current) if isinstance(body, cst.IndentedBlock) else \
                self.block([cst.SimpleStatementLine(body.body)], current)
        else:
            orelse = current
        if then is current and orelse is current:
            return current
        return Branch(one_line(node.test), then, orelse, _test_reads(node.test))

    def invalidate(self, stmt, current):
        """A statement that rebinds what a condition reads makes that condition stale here."""
        if isinstance(current, Leaf):
            return current
        targets = []
        if isinstance(stmt, cst.Assign):
            targets = [t.target for t in stmt.targets]
        elif isinstance(stmt, (cst.AnnAssign, cst.AugAssign)):
            targets = [stmt.target]
        written = {".".join(dotted(t)) for t in targets if dotted(t)}
        if written and _stale(current, written):
            return Leaf(None, "a condition that chose it is rebound before the call")
        return current


def _stale(tree, written: set[str]) -> bool:
    if isinstance(tree, Leaf):
        return False
    if any(r == w or r.startswith(w + ".") for r in tree.reads for w in written):
        return True
    return _stale(tree.then, written) or _stale(tree.orelse, written)


def value_at(name: str, ctx, program=None) -> Leaf | Branch:
    """The value `name` has at the statement `ctx` (in its function, or module), as a tree."""
    scan = _Scan(name)
    current: Leaf | Branch = Leaf(None, f"{name} is not bound before its use here")
    path = list(ctx.path) + [ctx.line if ctx.line is not None else ctx.stmt]
    start = 0
    for i, node in enumerate(path):          # the innermost function holding the use
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            start = i + 1
    if start == 0 and program is not None:
        # At module level each top-level statement is its own chunk: the earlier ones that bind
        # the name come first, in order.
        here = program.order(ctx)
        earlier = {}
        for b in program.module.bindings.get(name, []):
            if b.ctx is not None and b.ctx.chunk is not ctx.chunk and program.order(b.ctx) < here and len(b.ctx.path) > 1:
                earlier[id(b.ctx.path[1])] = (program.order(b.ctx), b.ctx.path[1])
        for _, top in sorted(earlier.values(), key=lambda x: x[0]):
            current = scan.statement(top, current)
    for i in range(start, len(path) - 1):
        node, inner = path[i], path[i + 1]
        body = getattr(node, "body", None)
        if isinstance(body, (list, tuple)) and any(s is inner for s in body):
            before = []
            for s in body:
                if s is inner:
                    break
                before.append(s)
            current = scan.block(before, current)
            if isinstance(inner, (cst.For, cst.While)) and _touches(inner, name):
                return Leaf(None, f"{name} is rebound inside the loop around its use")
        elif isinstance(node, cst.SimpleStatementLine) and isinstance(inner, cst.BaseSmallStatement):
            for small in node.body:
                if small is inner:
                    break
                current = scan.small(small, current)
    return current


# -- strings --------------------------------------------------------------------------------------------

def argparse_options(program) -> dict[str, list[dict]]:
    """Every `add_argument` of the program by its destination: [{'choices': [...] | None,
    'default': value | UNSET, 'flag': '--optim'}]."""
    cache = getattr(program, "_argparse", None)
    if cache is not None:
        return cache
    out: dict[str, list[dict]] = {}
    for site in program.calls:
        call = site.call
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_argument"):
            continue
        flags = [literal_value(a.value) for a in call.args if a.keyword is None and not a.star]
        flags = [f for f in flags if isinstance(f, str)]
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        dest = literal_value(keywords["dest"]) if "dest" in keywords else None
        if not isinstance(dest, str):
            long = [f for f in flags if f.startswith("--")]
            name = (long or flags or [""])[0]
            dest = name.lstrip("-").replace("-", "_")
        if not dest:
            continue
        choices = literal_value(keywords["choices"]) if "choices" in keywords else None
        default = literal_value(keywords["default"]) if "default" in keywords else None
        out.setdefault(dest, []).append({
            "choices": list(choices) if isinstance(choices, (list, tuple)) else None,
            "default": default, "flag": (flags or [dest])[0]})
    try:
        program._argparse = out
    except AttributeError:
        pass
    return out


def strings(node, scope, tracer, program, seen=frozenset()) -> Strings:
    """The strings `node` may hold."""
    value = literal_value(node)
    if isinstance(value, str):
        return Strings([value], True)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in (
            "lower", "upper", "strip") and not node.args:
        inner = strings(node.func.value, scope, tracer, program, seen)
        convert = {"lower": str.lower, "upper": str.upper, "strip": str.strip}[node.func.attr.value]
        return Strings([convert(v) for v in inner.values], inner.complete, inner.origin,
                       convert(inner.default) if isinstance(inner.default, str) else inner.default)
    if isinstance(node, cst.Name) and id(node) not in seen:
        bindings = tracer.lookup(node.value, scope) or []
        found, complete = [], bool(bindings)
        for b in bindings:
            if b.kind == "value" and b.index is None:
                s = strings(b.node, b.scope, tracer, program, seen | {id(node)})
                found.extend(v for v in s.values if v not in found)
                complete = complete and s.complete
            elif b.kind == "param" and b.node.default is not None:
                s = strings(b.node.default, scope, tracer, program, seen | {id(node)})
                found.extend(v for v in s.values if v not in found)
                complete = False
            else:
                complete = False
        return Strings(found, complete)
    if isinstance(node, cst.Attribute):
        options = argparse_options(program).get(node.attr.value)
        if options:
            flag = options[0]["flag"]
            default = options[0]["default"] if len(options) == 1 else None
            if all(o["choices"] is not None for o in options):
                values = []
                for o in options:
                    values.extend(str(c) for c in o["choices"] if str(c) not in values)
                return Strings(values, True, f"argparse {flag} choices", default if isinstance(default, str) else None)
            values = [default] if isinstance(default, str) else []
            return Strings(values, False, f"argparse {flag}", default if isinstance(default, str) else None)
    return Strings()
