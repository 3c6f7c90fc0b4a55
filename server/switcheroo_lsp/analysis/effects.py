"""What a statement reads, binds and changes, and whether it runs the module a step trains: the
facts a training step's gradient region is cut from (gradients.py).

Names only, over one statement's libcst tree (small statements and whole compound ones):
- `reads`: names loaded; `writes`: names bound or changed in place (`x = ...`, `x += ...`,
  `x[i] = ...`, `x.attr = ...`, `x.append(...)`, `x.fill_(...)`, a method called for its effect);
  `kills`: names every run of the statement rebinds (a plain assignment, not one under an `if`);
- `calls_module`: the module is run (`model(x)`, `self.model.encoder(x)`) or handed to a call
  (`compute_loss(model, batch)`), outside `torch.no_grad()` and `.detach()`;
- `dreads`: the reads gradients can flow through (not under `no_grad()`, `.detach()`, `.item()`);
- `uses` (`duses`): the reads (`dreads`) of a value from before the statement, not of one the
  statement itself bound first (`for ft, gm in ...: f(ft)` does not use an outer `ft`).

Reads are over-approximated (a comprehension's own variables count): a region that reads too
much keeps a statement it could have left out, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .facts import children as _children, dotted

# Methods that change their receiver (besides torch's in-place `x.op_()` and a method called as a
# statement for its effect, which count too).
MUTATING = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "add", "discard",
            "sort", "reverse", "popitem"}
# What gives a value gradients cannot flow through.
CONSTANT_OF = {"detach", "item", "tolist", "numpy", "data"}
NO_GRAD = {"no_grad", "inference_mode"}
HOOKS = {"register_hook", "register_full_backward_hook", "register_backward_hook",
         "register_full_backward_pre_hook", "register_post_accumulate_grad_hook", "register_multi_grad_hook"}


@dataclass
class Effects:
    reads: set[str] = field(default_factory=set)
    dreads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    kills: set[str] = field(default_factory=set)
    mutates: set[str] = field(default_factory=set)      # changed in place (not rebound)
    calls_module: bool = False
    no_grad: bool = False         # the statement is a `with torch.no_grad():` block
    exits: str = ""               # 'return', 'break', ... leaving the statement's own code
    grad_read: bool = False       # `.grad` is read or written
    autograd: str = ""            # 'torch.autograd.grad', a hook registration, retain_graph...
    calls: set[str] = field(default_factory=set)       # dotted names called (for boundaries)
    uses: set[str] = field(default_factory=set)
    duses: set[str] = field(default_factory=set)
    binds: set[str] = field(default_factory=set)       # assigned (perhaps only on some paths), not only changed


def effects(node: cst.CSTNode, module: tuple[str, ...] = ()) -> Effects:
    """The effects of one statement (or an expression) with respect to `module` (dotted parts)."""
    w = _Walk(module)
    w.stmt(node, cond=False)
    return w.e


class _Walk:
    def __init__(self, module: tuple[str, ...]):
        self.module = tuple(module)
        self.e = Effects()
        self.loops = 0          # loops of the statement itself (its own break/continue stay inside)
        self.functions = 0
        self.bound: set[str] = set()    # bound on the way to what is read (not values from before)

    # -- statements ------------------------------------------------------------------------------
    def stmt(self, node, cond: bool, no_grad: bool = False) -> None:
        if isinstance(node, cst.SimpleStatementLine) or isinstance(node, cst.SimpleStatementSuite):
            for small in node.body:
                self.small(small, cond, no_grad)
            return
        if isinstance(node, cst.BaseSmallStatement):
            self.small(node, cond, no_grad)
            return
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            self.bind(node.name.value, cond)
            self.functions += 1
            for child in _children(node):
                if isinstance(child, (cst.BaseSuite,)):
                    self.block(child, True, no_grad)
                elif isinstance(child, cst.CSTNode):
                    self.expr(child, no_grad)
            self.functions -= 1
            return
        if isinstance(node, cst.If):
            self.expr(node.test, no_grad)
            self.block(node.body, True, no_grad)
            if node.orelse is not None:
                self.stmt(node.orelse, True, no_grad)
                # bound on every branch (`if c: v = a` / `else: v = b`): bound after the `if`
                both = _branch_kills(node, self.module)
                self.bound |= both
                if not cond:
                    self.e.kills |= both
            return
        if isinstance(node, cst.Else):
            self.block(node.body, True, no_grad)
            return
        if isinstance(node, (cst.For, cst.While)):
            saved = set(self.bound)
            if isinstance(node, cst.For):
                self.expr(node.iter, no_grad)
                self.target(node.target, True, no_grad)
            else:
                self.expr(node.test, no_grad)
            self.loops += 1
            self.block(node.body, True, no_grad)
            self.loops -= 1
            self.bound = saved
            if node.orelse is not None:
                self.stmt(node.orelse, True, no_grad)
            return
        if isinstance(node, cst.With):
            inner = no_grad
            for item in node.items:
                self.expr(item.item, no_grad)
                if _is_no_grad(item.item):
                    inner = True
                if item.asname is not None:
                    self.target(item.asname.name, cond, no_grad)
            if inner and not no_grad:
                self.e.no_grad = True
            self.block(node.body, cond, inner)
            return
        if isinstance(node, (cst.Try, cst.TryStar)):
            self.block(node.body, True, no_grad)
            for h in node.handlers:
                if h.type is not None:
                    self.expr(h.type, no_grad)
                if h.name is not None:
                    self.target(h.name.name, True, no_grad)
                self.block(h.body, True, no_grad)
            if node.orelse is not None:
                self.stmt(node.orelse, True, no_grad)
            if node.finalbody is not None:
                self.block(node.finalbody.body, cond, no_grad)
            return
        # anything else (match, async forms): its expressions and blocks, conditionally
        for child in _children(node):
            if isinstance(child, cst.BaseSuite):
                self.block(child, True, no_grad)
            elif isinstance(child, cst.BaseExpression):
                self.expr(child, no_grad)
            elif isinstance(child, cst.CSTNode):
                self.stmt(child, True, no_grad)

    def block(self, suite, cond: bool, no_grad: bool) -> None:
        saved = set(self.bound) if cond else None
        for s in suite.body:
            self.stmt(s, cond, no_grad)
        if saved is not None:
            self.bound = saved           # what a block that may not run binds is not bound after it

    def small(self, node, cond: bool, no_grad: bool) -> None:
        e = self.e
        if isinstance(node, cst.Expr):
            self.expr(node.value, no_grad)
            call = node.value
            if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
                # `losses.update(...)`, `batch.to(device)`: a method called for its effect.
                root = _root(call.func.value)
                if root is not None and call.func.attr.value not in CONSTANT_OF:
                    self.change(root)
        elif isinstance(node, cst.Assign):
            self.expr(node.value, no_grad)
            for t in node.targets:
                self.target(t.target, cond, no_grad)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self.expr(node.value, no_grad)
                self.target(node.target, cond, no_grad)
        elif isinstance(node, cst.AugAssign):
            self.expr(node.value, no_grad)
            if isinstance(node.target, cst.Name):
                self.read(node.target.value, no_grad)
                e.writes.add(node.target.value)
                e.binds.add(node.target.value)
            else:
                self.target(node.target, True, no_grad)
        elif isinstance(node, cst.Del):
            self.target(node.target, True, no_grad)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            names = node.names if not isinstance(node.names, cst.ImportStar) else []
            for alias in names:
                bound = alias.asname.name if alias.asname is not None else alias.name
                parts = dotted(bound)
                if parts:
                    self.bind(parts[0], cond)
        elif isinstance(node, cst.Return):
            if not self.functions:
                e.exits = e.exits or "return"
            if node.value is not None:
                self.expr(node.value, no_grad)
        elif isinstance(node, (cst.Break, cst.Continue)):
            if not self.loops and not self.functions:
                e.exits = e.exits or ("break" if isinstance(node, cst.Break) else "continue")
        elif isinstance(node, cst.Raise):
            for child in _children(node):
                self.expr(child, no_grad)
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            e.exits = e.exits or ("global" if isinstance(node, cst.Global) else "nonlocal")
        else:
            for child in _children(node):
                if isinstance(child, cst.BaseExpression):
                    self.expr(child, no_grad)

    # -- bindings ----------------------------------------------------------------------------------
    def bind(self, name: str, cond: bool) -> None:
        self.e.writes.add(name)
        self.e.binds.add(name)
        self.bound.add(name)
        if not cond:
            self.e.kills.add(name)

    def change(self, name: str) -> None:
        self.e.writes.add(name)
        self.e.mutates.add(name)

    def read(self, name: str, no_grad: bool) -> None:
        self.e.reads.add(name)
        if not no_grad:
            self.e.dreads.add(name)
        if name not in self.bound:
            self.e.uses.add(name)
            if not no_grad:
                self.e.duses.add(name)

    def target(self, t, cond: bool, no_grad: bool) -> None:
        if isinstance(t, cst.Name):
            self.bind(t.value, cond)
        elif isinstance(t, (cst.Tuple, cst.List)):
            for el in t.elements:
                self.target(el.value, cond, no_grad)
        elif isinstance(t, cst.StarredElement):
            self.target(t.value, cond, no_grad)
        elif isinstance(t, (cst.Subscript, cst.Attribute)):
            self.expr(t, no_grad)            # `x[i] = v` reads x (and i)
            if isinstance(t, cst.Attribute) and t.attr.value == "grad":
                self.e.grad_read = True
            root = _root(t.value)
            if root is not None:
                self.change(root)
        else:
            self.expr(t, no_grad)

    # -- expressions -------------------------------------------------------------------------------
    def expr(self, root, no_grad: bool) -> None:
        stack = [(root, no_grad)]
        e = self.e
        while stack:
            node, ng = stack.pop()
            if isinstance(node, cst.Name):
                self.read(node.value, ng)
                continue
            if isinstance(node, cst.Attribute):
                if node.attr.value == "grad":
                    e.grad_read = True
                if node.attr.value in CONSTANT_OF:
                    ng = True
                stack.append((node.value, ng))
                continue
            if isinstance(node, cst.Call):
                self.call(node, ng, stack)
                continue
            if isinstance(node, cst.NamedExpr):
                self.target(node.target, True, ng)
                stack.append((node.value, ng))
                continue
            if isinstance(node, cst.Lambda):
                stack.append((node.body, ng))
                continue
            for child in _children(node):
                if isinstance(child, cst.CSTNode):
                    stack.append((child, ng))

    def call(self, node: cst.Call, ng: bool, stack: list) -> None:
        e = self.e
        func = node.func
        parts = dotted(func)
        if parts:
            e.calls.add(".".join(parts))
            name = parts[-1]
            if name in HOOKS:
                e.autograd = e.autograd or f".{name}()"
            if parts[-2:] == ["autograd", "grad"] or parts[-2:] == ["autograd", "backward"]:
                e.autograd = e.autograd or ".".join(parts) + "()"
            if not ng and self.module and tuple(parts[:len(self.module)]) == self.module:
                e.calls_module = True
        inner = ng
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in CONSTANT_OF:
                inner = True
            root = _root(func.value)
            if root is not None and (method in MUTATING or (method.endswith("_") and not method.endswith("__"))):
                self.change(root)
            stack.append((func.value, inner))
        else:
            stack.append((func, ng))
        if isinstance(func, cst.Name) and func.value in ("float", "int", "bool", "len", "str"):
            inner = True
        for arg in node.args:
            if not ng and self.module and tuple(dotted(arg.value) or ()) == self.module:
                e.calls_module = True      # the module handed to a function: `loss_of(model, batch)`
            stack.append((arg.value, inner))


def _branch_kills(node, module) -> set[str]:
    """Names every branch of an if/elif/else chain binds (none when a branch is missing)."""
    if node is None:
        return set()
    if isinstance(node, cst.Else):
        return _block_kills(node.body, module)
    if node.orelse is None:
        return set()
    return _block_kills(node.body, module) & _branch_kills(node.orelse, module)


def _block_kills(suite, module) -> set[str]:
    w = _Walk(module)
    for stmt in suite.body:
        w.stmt(stmt, cond=False)
    return w.e.kills


def _is_no_grad(expr) -> bool:
    """`torch.no_grad()`, `th.no_grad()`, `no_grad()`, `torch.inference_mode()`."""
    if isinstance(expr, cst.Call):
        parts = dotted(expr.func)
        return bool(parts) and parts[-1] in NO_GRAD
    return False


def is_no_grad_block(node) -> bool:
    return isinstance(node, cst.With) and any(_is_no_grad(i.item) for i in node.items)


def _root(expr) -> str | None:
    """The name an expression hangs from (`x` for `x.a[0].b`), or None."""
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None
