"""Which module a torch optimizer trains (`model` in `Adam(model.parameters())`), and the
expression a step elsewhere reaches it by.

Targets that wrap a module (`nnx.Optimizer(model, ...)`) need it. A construction whose
parameters are not one module's `.parameters()` (a bare tensor list, a filtered subset, groups
drawn from unrelated modules) has no such form, and `ModuleOf.why` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .facts import Scope, StmtContext, dotted
from .arguments import one_line

_PARAMETERS = ("parameters", "named_parameters")
_MATERIALIZE = ("list", "tuple")      # list(model.parameters()) is still every parameter of model


@dataclass(frozen=True)
class ModuleOf:
    node: cst.BaseExpression | None = None    # the module as written (the rewrite reuses it)
    why: str = ""                             # no module: why not

    @property
    def text(self) -> str:
        return one_line(self.node) if self.node is not None else ""


def module_of(params, groups=None) -> ModuleOf:
    """The module behind a construction's params argument (a node, already looked through a
    name bound to it), or its parameter groups (`Groups`)."""
    if groups is not None and not isinstance(groups, str):
        return _groups_module([g["params"].node for g in groups.groups])
    if isinstance(groups, str):         # a list of group dicts that cannot be read statically
        return ModuleOf(why=f"its parameter groups cannot be read: {groups}")
    if params is None:
        return ModuleOf(why="it is given no parameters")
    owner = parameters_owner(params)
    if owner is not None:
        return ModuleOf(owner)
    if isinstance(params, (cst.List, cst.Tuple)):
        return ModuleOf(why="its parameters are a bare list of tensors")
    if isinstance(params, (cst.ListComp, cst.GeneratorExp)) or (
            isinstance(params, cst.Call) and isinstance(params.func, cst.Name) and params.func.value == "filter"):
        return ModuleOf(why="its parameters are a filtered subset of a module's")
    return ModuleOf(why=f"{one_line(params)} is not a module's .parameters()")


def parameters_owner(node) -> cst.BaseExpression | None:
    """`model` for `model.parameters()`, `list(model.parameters())`, `m.named_parameters()`."""
    if (isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in _MATERIALIZE
            and len(node.args) == 1 and node.args[0].keyword is None and not node.args[0].star):
        node = node.args[0].value
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in _PARAMETERS):
        return None
    for arg in node.args:
        # parameters(recurse=False) leaves the submodules' parameters out: not the whole module.
        if not (arg.keyword is not None and arg.keyword.value == "recurse"
                and isinstance(arg.value, cst.Name) and arg.value.value == "True"):
            return None
    return node.func.value


def _groups_module(nodes: list) -> ModuleOf:
    """Groups over submodules of one module (`model.encoder`, `model.head`): that module."""
    paths = []
    for node in nodes:
        owner = parameters_owner(node) if node is not None else None
        parts = dotted(owner) if owner is not None else None
        if not parts:
            return ModuleOf(why="a parameter group's params are not a module's .parameters()")
        paths.append(parts)
    common = paths[0]
    for parts in paths[1:]:
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    if not common or common == ["self"]:
        owners = ", ".join(".".join(p) for p in paths)
        return ModuleOf(why=f"its parameter groups come from different modules ({owners})")
    return ModuleOf(cst.parse_expression(".".join(common)))


def reached_from(module: ModuleOf, construction: StmtContext | None, scope: Scope,
                 made_by: cst.Call | None = None) -> str:
    """The module's expression where a step in `scope` runs.

    - a module's own method returning an optimizer over `self` (`model.configure_optimizers()`,
      the call `made_by`): the object it was called on, `model`;
    - a step in a method whose class keeps the module it was given (`self.model = model`):
      `self.model` (the binding in the method that built the optimizer first, then any);
    - anywhere else: the construction's own expression.
    """
    text = module.text
    if not text or construction is None or not isinstance(module.node, cst.Name):
        return text
    built_in = construction.scope
    if (built_in is not None and text == built_in.self_name and scope.class_scope is not built_in.class_scope
            and isinstance(made_by, cst.Call) and isinstance(made_by.func, cst.Attribute)):
        return one_line(made_by.func.value)
    cls = scope.class_scope
    if scope is built_in or cls is None or scope.self_name is None or text in scope.bindings:
        return text
    kept = [(attr, b) for attr, bindings in cls.attr_bindings.items() for b in bindings
            if b.kind == "value" and isinstance(b.node, cst.Name) and b.node.value == text and b.ctx is not None]
    kept.sort(key=lambda item: item[1].ctx.scope is not built_in)
    return f"{scope.self_name}.{kept[0][0]}" if kept else text


def visible(name: str, scope: Scope, module_bindings: dict) -> bool:
    """Is `name` bound where `scope`'s code runs (its own scope, enclosing functions, the
    document's module)? Class bodies do not enclose their methods."""
    s, first = scope, True
    while s is not None and s.kind != "module":
        if (first or s.kind != "class") and (name in s.bindings or name in s.globals):
            return True
        first = False
        s = s.parent
    return name in module_bindings
