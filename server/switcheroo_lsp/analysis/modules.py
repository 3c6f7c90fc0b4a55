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
                 made_by: cst.Call | None = None, incoming: dict | None = None) -> str:
    """The module's expression where a step in `scope` runs.

    - a module's own method returning an optimizer over `self` (`model.configure_optimizers()`,
      the call `made_by`): the object it was called on, `model`;
    - a step in a function whose parameter every call site passes the module
      (`train(args, model, ...)` called as `train(args, gat_net, ...)`): that parameter;
    - a step in a method whose class keeps the module it was given (`self.model = model`,
      `self.model = model.to(device)`, `self.model = DDP(model)`): `self.model` (the binding in the
      method that built the optimizer first, then any);
    - anywhere else: the construction's own expression.
    """
    text = module.text
    if not text or construction is None or not isinstance(module.node, cst.Name):
        return text
    built_in = construction.scope
    if (built_in is not None and text == built_in.self_name and scope.class_scope is not built_in.class_scope
            and isinstance(made_by, cst.Call) and isinstance(made_by.func, cst.Attribute)):
        return one_line(made_by.func.value)
    if scope is not built_in and incoming:
        fed = _parameter_fed(text, scope, incoming)
        if fed:
            return fed
    cls = scope.class_scope
    if scope is built_in or cls is None or scope.self_name is None or text in scope.bindings:
        return text
    kept = [(attr, b) for attr, bindings in cls.attr_bindings.items() for b in bindings
            if b.kind == "value" and b.ctx is not None and _holds(b.node, text, cls, b.ctx.scope.self_name)]
    kept.sort(key=lambda item: item[1].ctx.scope is not built_in)
    return f"{scope.self_name}.{kept[0][0]}" if kept else text


# nn.Module methods that return the module itself, and wrappers whose forward runs the module
# they are given (its parameters are the module's).
_SELF_RETURNING = {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "train", "eval", "requires_grad_"}
_WRAPPERS = {"DistributedDataParallel", "DDP", "DataParallel", "FullyShardedDataParallel", "FSDP", "fully_shard",
             "compile"}


def _holds(node, text: str, cls: Scope, self_name: str | None, depth: int = 0) -> bool:
    """Does an attribute's value hold the module `text` (`model`, `model.to(device)`,
    `DDP(model, ...)`, `DDP(self.model)` where `self.model` holds it)?"""
    while isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _SELF_RETURNING:
            node = func.value
        elif (dotted(func) or [""])[-1] in _WRAPPERS and node.args and node.args[0].keyword is None:
            node = node.args[0].value
        else:
            return False
    if isinstance(node, cst.Name):
        return node.value == text
    if (depth == 0 and isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name)
            and node.value.value == self_name):
        return any(b.kind == "value" and _holds(b.node, text, cls, self_name, 1)
                   for b in cls.attr_bindings.get(node.attr.value, []))
    return False


def _parameter_fed(text: str, scope: Scope, incoming: dict) -> str:
    """The parameter of `scope` that every call site passes the module `text` ('' if none)."""
    for name, bindings in scope.bindings.items():
        params = [b for b in bindings if b.kind == "param"]
        if len(params) != 1 or len(bindings) != 1:
            continue
        args = incoming.get(params[0], [])
        if args and all(isinstance(a, cst.Name) and a.value == text for a, _ in args):
            return name
    return ""


def held_by(receiver, scope: Scope, tracer) -> str:
    """An optimizer kept on the module it trains (`self.critic.optimizer`, built over
    `self.critic.parameters()`): the module, when the receiver's owner is an instance of an
    `nn.Module` subclass of the program ('' otherwise)."""
    if not isinstance(receiver, cst.Attribute):
        return ""
    owner = receiver.value
    cls = tracer.class_of(owner, scope)
    if cls is None:
        return ""
    for c in tracer.bases(cls):
        for arg in getattr(c.node, "bases", ()):
            q = tracer.qualified(arg.value, c.parent) if c.parent is not None else None
            if q in ("torch.nn.Module", "torch.nn.modules.module.Module"):
                return one_line(owner)
    return ""


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
