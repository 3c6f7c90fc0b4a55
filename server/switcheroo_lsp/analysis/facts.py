"""One walk over a chunk's libcst tree: scopes, bindings, imports, calls and receivers.

The walk is per chunk (one top-level statement) and its result is cached on the chunk, so an
edit re-walks only the chunks it re-parsed. It descends only into what can hold names, calls
and statements, never into whitespace, commas or parentheses (a generic libcst visitor visits
those too and costs several times more).

It also counts statement units — simple statement lines, compound headers, decorators,
clauses — in the order they appear: the n-th unit of a chunk starts on the chunk's n-th logical
line, which the scanner found (document/chunks.py). That is how a node gets its line without
generating positions for the whole tree.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass, field

import libcst as cst

# Receiver methods and attributes that belong to torch optimizers.
OPTIMIZER_METHODS = {"step", "zero_grad", "state_dict", "load_state_dict", "add_param_group",
                     "update",   # an Optax optimizer's step: clipping before it is still ours to fold
                     "scale", "unscale_",   # a GradScaler's
                     "get_last_lr", "get_lr",   # a scheduler's
                     "train", "eval"}       # schedulefree's mode switches (constructions.py looks at those only)
OPTIMIZER_ATTRS = {"param_groups", "state"}


class _Weak:
    """An attribute held by weak reference. Scopes own their bindings and statements; the links
    back are weak, so a dropped analysis is freed by reference counting at once instead of
    waiting for the cyclic GC (whose full collections would walk every live syntax tree)."""

    def __set_name__(self, owner, name):
        self.attr = "_weak_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return None          # the dataclass default
        ref = obj.__dict__.get(self.attr)
        return ref() if ref is not None else None

    def __set__(self, obj, value):
        obj.__dict__[self.attr] = weakref.ref(value) if value is not None else None


@dataclass(eq=False)
class Binding:
    kind: str                  # "import" | "value" | "param" | "def" | "class" | "other" | "none"
    node: cst.CSTNode | None = None
    qualified: str | None = None    # for imports: what the name stands for
    scope: "Scope | None" = _Weak()
    ctx: "StmtContext | None" = None   # the statement that binds it
    index: int | None = None           # `a, b = f()`: the element of node's value it is


@dataclass(eq=False)
class Scope:
    kind: str                  # "module" | "class" | "function"
    node: cst.CSTNode
    parent: "Scope | None"
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)
    attr_bindings: dict[str, list[Binding]] = field(default_factory=dict)   # class scopes: self.<attr>
    self_name: str | None = None        # function scopes that are methods: their first parameter
    class_scope: "Scope | None" = None  # function scopes that are methods: their class
    name: str = ""                      # a function's or class's name
    returns: list = field(default_factory=list)       # functions: (returned expression, its statement)
    annotations: dict = field(default_factory=dict)   # classes: name -> annotation (`policy: Policy`,
                                                      # `self.x: T = ...`)

    def bind(self, name: str, binding: Binding) -> None:
        binding.scope = self
        self.bindings.setdefault(name, []).append(binding)


@dataclass(eq=False)
class StmtContext:
    """A statement and where it sits. `stmt` is a small statement (`x = 1`, an expression, an
    import) or, for the expressions of a compound statement's header, the compound statement;
    `line` the SimpleStatementLine/Suite holding a small statement; `unit` what owns its
    logical line (for positions); `body` the block whose statement list holds it."""
    stmt: cst.CSTNode
    line: cst.CSTNode | None
    unit: cst.CSTNode
    unit_index: int            # the unit's logical line, counted in the chunk
    body: cst.CSTNode          # Module | IndentedBlock | SimpleStatementSuite
    scope: Scope = _Weak()
    loops: tuple = ()          # enclosing for/while loops in the same function, outermost first
    seq: int = 0               # order of statements within the chunk
    elif_clause: bool = False  # the unit is an `elif` (generated as such for positions)
    chunk: object = _Weak()    # the ParsedChunk
    path: tuple = ()           # the nodes from the chunk's module down to the statement (for rewrites)


@dataclass(eq=False)
class CallSite:
    call: cst.Call
    ctx: StmtContext


@dataclass(eq=False)
class ReceiverUse:
    """`<receiver>.step()` and friends, or `<receiver>.param_groups`."""
    receiver: cst.BaseExpression
    member: str
    node: cst.CSTNode          # the Call (methods) or the Attribute (param_groups)
    ctx: StmtContext


@dataclass(eq=False)
class ChunkFacts:
    """What one chunk contributes; `module` holds the chunk's top-level bindings (merged with
    the other chunks' into the document's module scope by the analysis)."""
    module: Scope
    scopes: list[Scope]
    calls: list[CallSite]
    receiver_uses: list[ReceiverUse]
    functions: dict            # FunctionDef/ClassDef node -> its scope
    imports: list[StmtContext]
    statements: list[StmtContext]   # every top-level-or-nested statement context, in order
    units: int                 # statement units counted (to check against the scanner)


# Fields that never hold names, calls or statements (whitespace, punctuation, comments).
_SKIP_PREFIXES = ("whitespace", "lpar", "rpar", "comma", "semicolon", "operator", "leading_lines",
                  "lines_after_decorators", "trailing_whitespace", "header", "footer", "colon", "equal",
                  "dot", "lbracket", "rbracket", "lbrace", "rbrace", "newline", "asynchronous", "prefix",
                  "quote", "encoding", "default_", "indent", "star", "first_line", "last_line", "empty_lines")
_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = (cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)


def _fields(t: type) -> tuple[str, ...]:
    names = _FIELDS.get(t)
    if names is None:
        names = _FIELDS[t] = tuple(f.name for f in dataclasses.fields(t) if not f.name.startswith(_SKIP_PREFIXES))
    return names


def children(node: cst.CSTNode):
    """The child nodes that can hold names, calls or statements."""
    for name in _fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


def dotted(expr) -> list[str] | None:
    """`a.b.c` -> ['a', 'b', 'c']; None for anything else."""
    parts = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if isinstance(expr, cst.Name):
        parts.append(expr.value)
        return parts[::-1]
    return None


def is_none(node) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


class _Walker:
    def __init__(self, module: cst.Module, chunk):
        self.module = Scope("module", module, None)
        self.scopes = [self.module]
        self.calls: list[CallSite] = []
        self.receiver_uses: list[ReceiverUse] = []
        self.functions: dict = {}
        self.imports: list[StmtContext] = []
        self.statements: list[StmtContext] = []
        self.loops: tuple = ()
        self.units = 0
        self.chunk = chunk
        self.path: list = []

    def _unit(self) -> int:
        self.units += 1
        return self.units - 1

    def _ctx(self, stmt, line, unit, index, body, scope, elif_clause=False) -> StmtContext:
        ctx = StmtContext(stmt, line, unit, index, body, scope, self.loops, len(self.statements), elif_clause,
                          path=tuple(self.path))
        ctx.chunk = self.chunk
        self.statements.append(ctx)
        return ctx

    # -- statements ----------------------------------------------------------------------
    def block(self, body, scope: Scope, loop=None, unit=None, index=0, elif_clause=False) -> None:
        """A statement list: an IndentedBlock, a one-line SimpleStatementSuite (its statements sit
        on `unit`'s logical line) or the module."""
        outer = self.loops
        if loop is not None:
            self.loops = outer + (loop,)
        self.path.append(body)
        if isinstance(body, cst.SimpleStatementSuite):
            for small in body.body:
                self.small(small, body, unit, index, body, scope, elif_clause)
        else:
            for stmt in body.body:
                self.statement(stmt, body, scope)
        self.path.pop()
        self.loops = outer

    def statement(self, stmt, body, scope: Scope) -> None:
        self.path.append(stmt)
        if isinstance(stmt, cst.SimpleStatementLine):
            index = self._unit()
            for small in stmt.body:
                self.small(small, stmt, stmt, index, body, scope)
        else:
            self.compound(stmt, body, scope)
        self.path.pop()

    def compound(self, node, body, scope: Scope, elif_clause=False) -> None:
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            for dec in node.decorators:
                ctx = self._ctx(node, None, dec, self._unit(), body, scope)
                self.expr(dec.decorator, ctx)
        index = self._unit()
        ctx = self._ctx(node, None, node, index, body, scope, elif_clause)
        if isinstance(node, cst.FunctionDef):
            self.function(node, ctx, scope)
        elif isinstance(node, cst.ClassDef):
            for arg in list(node.bases) + list(node.keywords):
                self.expr(arg.value, ctx)
            scope.bind(node.name.value, Binding("class", node, ctx=ctx))
            cscope = Scope("class", node, scope, name=node.name.value)
            self.scopes.append(cscope)
            self.functions[node] = cscope
            outer, self.loops = self.loops, ()
            self.block(node.body, cscope, unit=node, index=index)
            self.loops = outer
        elif isinstance(node, cst.If):
            self.expr(node.test, ctx)
            self.block(node.body, scope, unit=node, index=index, elif_clause=elif_clause)
            self.orelse(node.orelse, body, scope)
        elif isinstance(node, cst.For):
            self.expr(node.iter, ctx)
            self.target(node.target, None, ctx)
            self.block(node.body, scope, loop=node, unit=node, index=index)
            self.orelse(node.orelse, body, scope)
        elif isinstance(node, cst.While):
            self.expr(node.test, ctx)
            self.block(node.body, scope, loop=node, unit=node, index=index)
            self.orelse(node.orelse, body, scope)
        elif isinstance(node, cst.With):
            for item in node.items:
                self.expr(item.item, ctx)
                if item.asname is not None:
                    self.target(item.asname.name, None, ctx)
            self.block(node.body, scope, unit=node, index=index)
        elif isinstance(node, (cst.Try, cst.TryStar)):
            self.block(node.body, scope, unit=node, index=index)
            for handler in node.handlers:
                h_index = self._unit()
                self.path.append(handler)
                h_ctx = self._ctx(handler, None, handler, h_index, body, scope)
                if handler.type is not None:
                    self.expr(handler.type, h_ctx)
                if handler.name is not None and isinstance(handler.name.name, cst.Name):
                    scope.bind(handler.name.name.value, Binding("other", handler, ctx=h_ctx))
                self.block(handler.body, scope, unit=handler, index=h_index)
                self.path.pop()
            self.orelse(node.orelse, body, scope)
            if node.finalbody is not None:
                f_index = self._unit()
                self.path.append(node.finalbody)
                self._ctx(node.finalbody, None, node.finalbody, f_index, body, scope)
                self.block(node.finalbody.body, scope, unit=node.finalbody, index=f_index)
                self.path.pop()
        elif isinstance(node, cst.Match):
            self.expr(node.subject, ctx)
            for case in node.cases:
                c_index = self._unit()
                self.path.append(case)
                c_ctx = self._ctx(case, None, case, c_index, body, scope)
                for sub in _walk(case.pattern):
                    name = getattr(sub, "name", None)
                    if isinstance(name, cst.Name):
                        scope.bind(name.value, Binding("other", sub, ctx=c_ctx))
                    rest = getattr(sub, "rest", None)
                    if isinstance(rest, cst.Name):
                        scope.bind(rest.value, Binding("other", sub, ctx=c_ctx))
                if case.guard is not None:
                    self.expr(case.guard, c_ctx)
                self.block(case.body, scope, unit=case, index=c_index)
                self.path.pop()
        else:                      # anything newer: its expressions, then its blocks
            for child in children(node):
                if isinstance(child, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                    self.block(child, scope, unit=node, index=index)
                elif isinstance(child, cst.BaseExpression):
                    self.expr(child, ctx)

    def orelse(self, node, body, scope: Scope) -> None:
        if node is None:
            return
        self.path.append(node)
        if isinstance(node, cst.If):                  # elif
            self.compound(node, body, scope, elif_clause=True)
        else:
            index = self._unit()
            self._ctx(node, None, node, index, body, scope)
            self.block(node.body, scope, unit=node, index=index)
        self.path.pop()

    def function(self, node: cst.FunctionDef, ctx: StmtContext, scope: Scope) -> None:
        params = node.params
        for p in _all_params(params):
            if p.default is not None:
                self.expr(p.default, ctx)
            if p.annotation is not None:
                self.expr(p.annotation.annotation, ctx)
        if node.returns is not None:
            self.expr(node.returns.annotation, ctx)
        scope.bind(node.name.value, Binding("def", node, ctx=ctx))
        fscope = Scope("function", node, scope, name=node.name.value)
        self.scopes.append(fscope)
        self.functions[node] = fscope
        positional = list(params.posonly_params) + list(params.params)
        if scope.kind == "class" and positional and not any(
                isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod" for d in node.decorators):
            fscope.self_name = positional[0].name.value
            fscope.class_scope = scope
        for p in _all_params(params):
            fscope.bind(p.name.value, Binding("param", p, ctx=ctx))
        outer, self.loops = self.loops, ()
        self.block(node.body, fscope, unit=node, index=ctx.unit_index)
        self.loops = outer

    def small(self, node, line, unit, index, body, scope: Scope, elif_clause=False) -> None:
        ctx = self._ctx(node, line, unit, index, body, scope, elif_clause)
        if isinstance(node, cst.Expr):
            self.expr(node.value, ctx)
        elif isinstance(node, cst.Assign):
            self.expr(node.value, ctx)
            for t in node.targets:
                self.target(t.target, node.value, ctx)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self.expr(node.value, ctx)
                self.target(node.target, node.value, ctx)
            self.expr(node.annotation.annotation, ctx)
            self._annotation(node.target, node.annotation.annotation, scope)
        elif isinstance(node, cst.AugAssign):
            self.expr(node.value, ctx)
            self.target(node.target, None, ctx)
        elif isinstance(node, cst.Import):
            self.imports.append(ctx)
            for alias in node.names:
                name = dotted(alias.name)
                if name is None:
                    continue
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    scope.bind(alias.asname.name.value, Binding("import", node, ".".join(name), ctx=ctx))
                else:
                    scope.bind(name[0], Binding("import", node, name[0], ctx=ctx))
        elif isinstance(node, cst.ImportFrom):
            self.imports.append(ctx)
            module = dotted(node.module) if node.module is not None else None
            absolute = not node.relative and module is not None
            if isinstance(node.names, cst.ImportStar):
                if absolute:
                    scope.bind("*", Binding("import", node, ".".join(module) + ".*", ctx=ctx))
                else:
                    relative = "." * len(node.relative) + (".".join(module) if module else "")
                    scope.bind("*", Binding("import", node, relative + ".*", ctx=ctx))
                return
            # A relative import keeps its dots (`..common.policies.X`): the workspace resolves it.
            prefix = "." * len(node.relative) + (".".join(module) + "." if module else "")
            for alias in node.names:
                name = dotted(alias.name)
                bound = alias.asname.name.value if alias.asname is not None and isinstance(
                    alias.asname.name, cst.Name) else (name[-1] if name else None)
                if bound is None:
                    continue
                if absolute:
                    scope.bind(bound, Binding("import", node, ".".join(module + name), ctx=ctx))
                else:
                    scope.bind(bound, Binding("import", node, prefix + ".".join(name), ctx=ctx))
        elif isinstance(node, cst.Global):
            scope.globals.update(item.name.value for item in node.names)
        elif isinstance(node, cst.Nonlocal):
            scope.nonlocals.update(item.name.value for item in node.names)
        elif isinstance(node, cst.Return):
            function = _function_of(scope)
            if function is not None:
                function.returns.append((node.value, ctx))
            if node.value is not None:
                self.expr(node.value, ctx)
        else:
            for child in children(node):
                self.expr(child, ctx)

    def _annotation(self, target, annotation, scope: Scope) -> None:
        """`policy: ActorCriticPolicy` in a class body, `self.policy: Policy = ...` in a method."""
        if isinstance(target, cst.Name) and scope.kind == "class":
            scope.annotations[target.value] = annotation
        elif (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and scope.kind == "function"
              and scope.class_scope is not None and target.value.value == scope.self_name):
            scope.class_scope.annotations.setdefault(target.attr.value, annotation)

    def target(self, target, value, ctx: StmtContext) -> None:
        scope = ctx.scope
        if isinstance(target, cst.Name):
            scope.bind(target.value, _value_binding(value, ctx))
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            literal = isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(elements) and not any(
                isinstance(e, cst.StarredElement) for e in value.elements)
            starred = any(isinstance(e, cst.StarredElement) for e in elements)
            for i, e in enumerate(elements):
                if literal:
                    self.target(e.value, value.elements[i].value if isinstance(e, cst.Element) else None, ctx)
                elif isinstance(e, cst.Element) and isinstance(e.value, cst.Name) and value is not None and not starred:
                    # `model, opt = accelerator.prepare(model, opt)`: element i of the value
                    scope.bind(e.value.value, Binding("value", value, ctx=ctx, index=i))
                elif (isinstance(e, cst.Element) and isinstance(e.value, cst.Attribute) and value is not None
                      and not starred and self._self_attribute(e.value, scope)):
                    # `self.model, self.opt = self.accelerator.prepare(self.model, self.opt)`
                    self.expr(e.value.value, ctx)
                    b = Binding("value", value, ctx=ctx, index=i)
                    b.scope = scope
                    scope.class_scope.attr_bindings.setdefault(e.value.attr.value, []).append(b)
                else:
                    self.target(e.value, None, ctx)
        elif isinstance(target, cst.Attribute):
            self.expr(target.value, ctx)
            if self._self_attribute(target, scope):
                b = _value_binding(value, ctx)
                b.scope = scope
                scope.class_scope.attr_bindings.setdefault(target.attr.value, []).append(b)
        elif isinstance(target, cst.StarredElement):
            self.target(target.value, None, ctx)
        else:
            self.expr(target, ctx)

    @staticmethod
    def _self_attribute(target: cst.Attribute, scope: Scope) -> bool:
        """`self.<attr>` in a method (what the class's attribute bindings record)."""
        return (scope.kind == "function" and scope.class_scope is not None and isinstance(target.value, cst.Name)
                and target.value.value == scope.self_name)

    # -- expressions ----------------------------------------------------------------------
    def expr(self, root, ctx: StmtContext) -> None:
        stack = [root]
        calls, uses = self.calls, self.receiver_uses
        while stack:
            node = stack.pop()
            t = type(node)
            if t is cst.Name or t in _LEAVES:
                continue
            if t is cst.Call:
                calls.append(CallSite(node, ctx))
                func = node.func
                if type(func) is cst.Attribute and func.attr.value in OPTIMIZER_METHODS:
                    uses.append(ReceiverUse(func.value, func.attr.value, node, ctx))
                stack.append(func)
                for arg in node.args:
                    stack.append(arg.value)
                continue
            if t is cst.Attribute:
                if node.attr.value in OPTIMIZER_ATTRS:
                    uses.append(ReceiverUse(node.value, node.attr.value, node, ctx))
                stack.append(node.value)
                continue
            if t is cst.NamedExpr:
                if isinstance(node.target, cst.Name):
                    ctx.scope.bind(node.target.value, Binding("other", node, ctx=ctx))
                stack.append(node.value)
                continue
            if t is cst.Lambda:
                # Parameters of a lambda live in their own scope; only its body's calls matter.
                stack.append(node.body)
                continue
            stack.extend(children(node))


def _function_of(scope: Scope) -> Scope | None:
    return scope if scope.kind == "function" else None


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(children(n))


def _all_params(params: cst.Parameters):
    out = list(params.posonly_params) + list(params.params) + list(params.kwonly_params)
    for extra in (params.star_arg, params.star_kwarg):
        if isinstance(extra, cst.Param):
            out.append(extra)
    return out


def _value_binding(value, ctx: StmtContext) -> Binding:
    if value is None:
        return Binding("other", ctx=ctx)
    if is_none(value):
        return Binding("none", value, ctx=ctx)
    return Binding("value", value, ctx=ctx)


def collect(module: cst.Module, chunk=None) -> ChunkFacts:
    w = _Walker(module, chunk)
    w.block(module, w.module)
    return ChunkFacts(w.module, w.scopes, w.calls, w.receiver_uses, w.functions, w.imports, w.statements, w.units)
