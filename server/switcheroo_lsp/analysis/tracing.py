"""Trace names and receivers to the optimizers constructed in a project.

A value is traced to a set of optimizer identities (constructions, annotated parameters) only
through what can be followed statically: names bound in the same or an enclosing scope;
`self.<attr>` and `<object>.<attr>` through the class the object is an instance of (its methods'
assignments, its annotations, its base classes); parameters annotated `torch.optim.Optimizer` or
fed a traced optimizer at every call site (in any file of the program); what a function or
method returns (`model.configure_optimizers(...)`, `return opt, sched` unpacked in order, every
branch's return); and what a wrapper hands back (`accelerator.prepare`, knowledge/wrappers.py).
Anything else (`env.step(a)`, `model.zero_grad()`, a loop variable) stays untraced and is never
flagged; a receiver that might be several things is an optimizer only if every one of them is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..knowledge import catalog
from ..knowledge.factories import SCHEDULE_FACTORIES, TIMM_FACTORY, TIMM_PATHS, ZERO_FACTORY, ZERO_PATHS, timm_name
from ..knowledge.libraries import UNMAPPED
from ..knowledge.schedules import SCHEDULER_CLASSES, SCHEDULERS
from ..knowledge.wrappers import FUNCTIONS, HOOK_METHODS, HOOKS, METHODS, SCALERS, Wrapper, result_argument
from . import choices as choosing
from .facts import Binding, CallSite, Scope, StmtContext, dotted, is_none
from .program import Program

# torch 2.13's optimizer classes (torch.optim.__all__ minus the base class).
TORCH_OPTIMIZERS = {"ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS",
                    "Muon", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam"}
TORCH_OPTIMIZER_BASE = {"torch.optim.Optimizer", "torch.optim.optimizer.Optimizer"}
# The class names of the optimizers from other libraries (catalog rows and known classes without
# one): a variable assigned one may hold an optimizer class.
LIBRARY_CLASS_NAMES = {q.rsplit(".", 1)[1] for q in list(catalog.CLASSES) + list(UNMAPPED)
                       if not q.startswith("torch.optim.")}

# Optax factories whose result is an optimizer (a converted one still gets `.step()` flagged).
OPTAX_OPTIMIZERS = {
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw", "adan",
    "amsgrad", "fromage", "lamb", "lars", "lbfgs", "lion", "nadam", "nadamw", "noisy_sgd", "novograd",
    "optimistic_gradient_descent", "polyak_sgd", "radam", "rmsprop", "rprop", "sgd", "sign_sgd", "sm3",
    "yogi", "chain", "named_chain", "multi_transform", "MultiSteps", "inject_hyperparams",
}
HELPER_MODULE = "switcheroo_optax"
# What a converted program holds in place of a torch optimizer or scheduler: its leftover torch
# calls (`scheduler.state_dict()` on what is now a schedule function) are still reported.
NNX_OPTIMIZERS = {"flax.nnx.Optimizer", "flax.nnx.optimizer.Optimizer", "flax.nnx.training.optimizer.Optimizer"}
OPTAX_SCHEDULES = {"exponential_decay", "join_schedules", "sgdr_schedule"}   # besides every `*_schedule`
# torch.distributed.optim's optimizers: a sharded or remote optimizer has no one Optax rewrite.
DISTRIBUTED_OPTIMIZERS = {
    "torch.distributed.optim.DistributedOptimizer", "torch.distributed.optim.optimizer.DistributedOptimizer",
    "torch.distributed.optim.ZeroRedundancyOptimizer",
    "torch.distributed.optim.zero_redundancy_optimizer.ZeroRedundancyOptimizer",
}
CLIP_FUNCTIONS = {
    "torch.nn.utils.clip_grad_norm_": "norm", "torch.nn.utils.clip_grad.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad_value_": "value", "torch.nn.utils.clip_grad.clip_grad_value_": "value",
}

OTHER = "other"       # definitely not an optimizer
UNKNOWN = "unknown"   # nothing known (an unbound name, a parameter nobody passes)
RELEASED = "released"  # what `accelerator.free_memory(opt)` hands back: nothing to trace, nothing against

_NOT_OPTIMIZERS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString,
                   cst.FormattedString, cst.Lambda, cst.BinaryOperation, cst.Comparison, cst.List, cst.Tuple,
                   cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp, cst.GeneratorExp)


@dataclass(eq=False)
class Identity:
    """One optimizer object of the program: a construction, or an annotated parameter."""
    kind: str                      # "torch" | "optax" | "nnx" | "optax_schedule" | "annotated" | "scheduler"
                                   # | "scaler" | "custom"
                                   # (an optimizer class with no rewrite: the project's own subclass of
                                   # torch.optim.Optimizer, torch.distributed.optim) | "untraced" (what a
                                   # caller passes to a parameter that also receives optimizers)
    name: str                      # torch class ('Adam') or optax factory or ''
    call: cst.Call | None
    ctx: StmtContext | None
    target: cst.CSTNode | None = None  # what the construction is assigned to (a Name, an Attribute, a Param)
    chosen_by: str = ""            # a class picked at run time: the expression picking it (`self.optimizer_class`)
    wrappers: list = field(default_factory=list)   # the Wrappers it is handed through
    node: cst.CSTNode | None = None    # "untraced": the argument; "custom": the class's definition
    choice: "Choice | None" = None  # a class chosen at run time between candidates (choices.py)
    factory: str = ""              # built by a library factory (timm's create_optimizer_v2): its name

    @property
    def var(self) -> str:
        """The name the optimizer lives under: `opt_g`, `optimizer` (for `self.optimizer`)."""
        t = self.target
        if isinstance(t, cst.Name):
            return t.value
        if isinstance(t, cst.Attribute):
            return t.attr.value
        if isinstance(t, cst.Param):
            return t.name.value
        return "opt"


@dataclass(eq=False)
class Choice:
    """The classes a construction's callee may be (`optimizer_class(...)` after an if/else, a dict
    lookup, `getattr(torch.optim, name)`): the tree of the author's conditions, each leaf's catalog
    key (None: not known statically), and what chooses (`args.optim`, for messages)."""
    tree: object
    keys: dict                      # id(leaf) -> key | None
    expression: str
    origin: str = ""                # where the candidates come from: "argparse --optim choices"
    default: str | None = None      # the key argparse's default names, if any

    @property
    def candidates(self) -> list[tuple[object, str | None]]:
        """(leaf, key) in the tree's order."""
        return [(leaf, self.keys.get(id(leaf))) for leaf in choosing.leaves(self.tree)]

    @property
    def complete(self) -> bool:
        return all(key is not None for _, key in self.candidates)


def keyword(call: cst.Call, name: str):
    """The value of `name=` in a call, or None."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def positional(call: cst.Call) -> list:
    """The positional argument values, up to the first `*`/`**` or keyword."""
    out = []
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            break
        out.append(arg.value)
    return out


def argument(call: cst.Call, index: int, name: str):
    """The argument passed at position `index` or as `name=`."""
    args = positional(call)
    return args[index] if index < len(args) else keyword(call, name)


class Tracer:
    def __init__(self, program: Program, forced: dict | None = None):
        self.program = program
        self.forced = forced or {}      # (line, column) of a construction -> the class it is taken to be
        self.identities: list[Identity] = []
        self._by_call: dict[int, Identity] = {}
        self._param_ids: dict[Binding, frozenset | str] = {}
        self._member_annotated: dict[tuple, Identity] = {}
        self.incoming: dict[Binding, list[tuple[cst.BaseExpression, Scope]]] = {}
        self.calls_to: dict[Scope, int] = {}      # how many call sites each function has
        self._arg_at: dict[int, StmtContext] = {}  # id(an argument fed to a parameter) -> its statement
        self._untraced: dict[Binding, Identity] = {}
        self._optimizer_classes: list[Scope] | None = None
        self._sole: dict[str, Scope | None] = {}     # method name -> the one method so named returning an optimizer
        self._tops: set[str] | None = None           # the program's top-level package names
        self.clips: list[tuple[CallSite, str]] = []
        self._classes: dict[int, Scope | None] = {}
        self._qualified: dict[tuple[int, int], str | None] = {}
        self._class_holders: set[str] | None = None
        # Names of the program's methods: `x.backward()` is nobody's method here, so what `x` is
        # need not be worked out (most calls of a file are like that).
        self._methods = {name for scope in program.scopes if scope.kind == "class"
                         for name, bs in scope.bindings.items() if any(b.kind == "def" for b in bs)}
        self._active: set[int] = set()      # class_of questions being answered (recursion guard)
        self._cut = False
        self._receivers: dict | None = None
        self._bases: dict[int, list[Scope]] = {}
        self._choices: dict[int, Choice] = {}
        self._factories: dict[int, str] = {}
        self._collect_incoming()        # first: a class chosen by a parameter looks at its callers
        self._find_constructions()
        self._bind_targets()
        self._trace_parameters()

    # -- names ---------------------------------------------------------------------------------
    def lookup(self, name: str, scope: Scope) -> list[Binding] | None:
        """The bindings a name used in `scope` refers to (class scopes are skipped for nested
        functions, as Python does); a chunk's module scope stands for its document's."""
        first = True
        while scope is not None:
            if scope.kind == "module":
                return self.program.module_scope(scope).bindings.get(name)
            if first or scope.kind != "class":
                if name in scope.globals:
                    return self._module_of(scope).bindings.get(name)
                if name in scope.bindings and name not in scope.nonlocals:
                    return scope.bindings[name]
            first = False
            scope = scope.parent
        return None

    def _module_of(self, scope: Scope) -> Scope:
        while scope.parent is not None:
            scope = scope.parent
        return self.program.module_scope(scope)

    def qualified(self, expr, scope: Scope) -> str | None:
        """What a dotted name stands for through the imports (`optim.Adam` -> 'torch.optim.Adam');
        a relative import keeps its leading dots."""
        key = (id(expr), id(scope))
        if key not in self._qualified:
            self._qualified[key] = self._qualify(expr, scope)
        return self._qualified[key]

    def _qualify(self, expr, scope: Scope) -> str | None:
        parts = dotted(expr)
        if not parts:
            return None
        bindings = self.lookup(parts[0], scope)
        if bindings is None:
            for b in self._module_of(scope).bindings.get("*", []):
                module = b.qualified[:-2]
                candidate = f"{module}.{parts[0]}"
                if optimizer_key(candidate) or module.startswith("optax"):
                    return ".".join([candidate] + parts[1:])
            return None
        quals = {b.qualified for b in bindings if b.kind == "import"}
        if len(quals) != 1 or any(b.kind != "import" for b in bindings):
            return None   # shadowed or rebound: do not guess
        return ".".join([quals.pop()] + parts[1:])

    def torch_class(self, call: cst.Call, scope: Scope) -> str | None:
        q = self.qualified(call.func, scope)
        return optimizer_key(q) if q else None

    # -- definitions across the program -----------------------------------------------------------
    def definition(self, expr, scope: Scope, seen=frozenset()):
        """The function or class scope a name (or `module.name`, or an imported name) stands for."""
        if isinstance(expr, cst.Name):
            bindings = self.lookup(expr.value, scope)
            if bindings is None:        # `from utils import *` of a module of the program
                for star in self._module_of(scope).bindings.get("*", []):
                    found = self._imported(f"{star.qualified[:-2]}.{expr.value}", scope, seen)
                    if found is not None:
                        return found
                return None
            if len(bindings) != 1:
                return None
            return self._binding_definition(bindings[0], scope, seen)
        if isinstance(expr, cst.Attribute):
            q = self.qualified(expr, scope)
            if q is not None:
                return self._imported(q, scope, seen)
        return None

    def _binding_definition(self, b: Binding, scope: Scope, seen):
        if b.kind in ("def", "class"):
            return self.program.functions.get(b.node)
        if b.kind == "import" and b.qualified:
            return self._imported(b.qualified, scope, seen)
        return None

    def _imported(self, qualified: str, scope: Scope, seen):
        """`package.module.Name` (or `..module.Name`) -> the scope defining Name in the program."""
        if qualified in seen or len(seen) > 16:
            return None
        seen = seen | {qualified}
        absolute = self._absolute(qualified, scope)
        if absolute is None:
            return None
        parts = absolute.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            unit = self.program.modules.get(".".join(parts[:cut]))
            if unit is None:
                continue
            rest = parts[cut:]
            bindings = unit.module.bindings.get(rest[0])
            if len(rest) != 1:
                return None                 # `module.Class.method` is not followed
            if not bindings:
                for star in unit.module.bindings.get("*", []):       # re-exported with `import *`
                    found = self._imported(f"{star.qualified[:-2]}.{rest[0]}", unit.module, seen)
                    if found is not None:
                        return found
                return None
            if len(bindings) != 1:
                return None
            return self._binding_definition(bindings[0], unit.module, seen)
        return None

    def _absolute(self, qualified: str, scope: Scope) -> str | None:
        if not qualified.startswith("."):
            return qualified
        unit = self.program.unit_of_scope(self._module_of(scope))
        if unit is None or not unit.module_name:
            return None
        level = len(qualified) - len(qualified.lstrip("."))
        package = unit.module_name.split(".")
        if not unit.is_package:
            package = package[:-1]
        if level - 1 > len(package):
            return None
        base = package[:len(package) - (level - 1)]
        rest = qualified.lstrip(".")
        return ".".join(base + ([rest] if rest else []))

    # -- classes and instances ---------------------------------------------------------------------
    def class_ref(self, expr, scope: Scope) -> Scope | None:
        """The class a name refers to (a class of the program)."""
        found = self.definition(expr, scope)
        return found if found is not None and found.kind == "class" else None

    def bases(self, cls: Scope) -> list[Scope]:
        """The class and its bases in the program, in lookup order."""
        known = self._bases.get(id(cls))
        if known is not None:
            return known
        out, stack = [], [cls]
        self._bases[id(cls)] = out      # a class that (through imports) derives from itself ends here
        while stack and len(out) < 32:
            c = stack.pop(0)
            if c in out:
                continue
            out.append(c)
            node = c.node
            for arg in getattr(node, "bases", ()):
                base = self.class_ref(arg.value, c.parent) if c.parent is not None else None
                if base is not None:
                    stack.append(base)
        return out

    def member_bindings(self, cls: Scope, attr: str) -> list[Binding]:
        """`self.<attr> = ...` in the class's methods and its bases' (the first class that sets it),
        or a class-level `attr = ...`."""
        for c in self.bases(cls):
            if attr in c.attr_bindings:
                return c.attr_bindings[attr]
            if attr in c.bindings and all(b.kind == "value" for b in c.bindings[attr]):
                return c.bindings[attr]
        return []

    def member_annotation(self, cls: Scope, attr: str):
        for c in self.bases(cls):
            if attr in c.annotations:
                return c.annotations[attr], c
        return None

    def method(self, cls: Scope, name: str) -> Scope | None:
        for c in self.bases(cls):
            bindings = c.bindings.get(name)
            if bindings:
                b = bindings[-1]
                return self.program.functions.get(b.node) if b.kind == "def" else None
        return None

    def class_of(self, expr, scope: Scope, seen=frozenset()) -> Scope | None:
        """The program's class that `expr` is an instance of, where that is known."""
        key = id(expr)
        if key in self._classes:
            return self._classes[key]
        if key in self._active or len(self._active) > 48:
            self._cut = True            # a cycle (through calls, bindings): not followed
            return None
        outermost = not self._active
        if outermost:
            self._cut = False
        self._active.add(key)
        try:
            found = self._class_of(expr, scope, seen | {key})
        finally:
            self._active.discard(key)
        if outermost and not self._cut:  # answers cut short by a cycle are not kept
            self._classes[key] = found
        return found

    def _class_of(self, expr, scope: Scope, seen) -> Scope | None:
        if isinstance(expr, cst.Call):
            cls = self.class_ref(expr.func, scope)
            if cls is not None:
                return cls
            function = self.function_called(expr, scope)      # `GPT.from_pretrained(...)`, a factory
            if function is None or function in seen:
                return None
            found = {self.class_of(value, ctx.scope, seen | {function}) for value, ctx in function.returns
                     if value is not None}
            return found.pop() if len(found) == 1 and None not in found else None
        if isinstance(expr, cst.Name):
            method = scope if scope.kind == "function" else None
            if method is not None and method.class_scope is not None and expr.value == method.self_name:
                return method.class_scope
            bindings = self.lookup(expr.value, scope) or []
            at = self._use_of(expr)
            if at is not None:
                bindings = self._reaching(bindings, at)
            return self._class_of_bindings(bindings, seen)
        if isinstance(expr, cst.Attribute):
            owner = self.class_of(expr.value, scope, seen)
            if owner is None:
                return None
            found = self._class_of_bindings(self.member_bindings(owner, expr.attr.value), seen)
            if found is not None:
                return found
            annotated = self.member_annotation(owner, expr.attr.value)
            if annotated is not None:
                return self._annotated_class(annotated[0], annotated[1])
        return None

    def _class_of_bindings(self, bindings: list[Binding], seen) -> Scope | None:
        found = set()
        for b in bindings:
            if b.kind == "value" and b.index is None:
                c = self.class_of(b.node, b.scope, seen)
            elif b.kind == "param":
                ann = b.node.annotation
                c = self._annotated_class(ann.annotation, b.scope.parent) if ann is not None else None
            elif b.kind == "none":
                continue
            else:
                c = None
            if c is None:
                return None
            found.add(c)
        return found.pop() if len(found) == 1 else None

    def _annotated_class(self, ann, scope: Scope) -> Scope | None:
        if isinstance(ann, cst.SimpleString):
            try:
                ann = cst.parse_expression(ann.evaluated_value)
            except (cst.ParserSyntaxError, ValueError, TypeError):
                return None
        if isinstance(ann, cst.Subscript) and dotted(ann.value) and dotted(ann.value)[-1] == "Optional":
            inner = [e.slice.value for e in ann.slice if isinstance(e.slice, cst.Index)]
            return self._annotated_class(inner[0], scope) if len(inner) == 1 else None
        return self.class_ref(ann, scope) if scope is not None else None

    def bindings_of(self, expr, scope: Scope) -> list[Binding] | None:
        """What a name or `<object>.<attr>` was assigned (None: neither)."""
        if isinstance(expr, cst.Name):
            return self.lookup(expr.value, scope) or []
        if isinstance(expr, cst.Attribute):
            owner = self.class_of(expr.value, scope)
            return self.member_bindings(owner, expr.attr.value) if owner is not None else []
        return None

    def external_class(self, expr, scope: Scope) -> str | None:
        """The qualified class of an object from a library (`accelerator = Accelerator()`,
        `fabric: L.Fabric`), for the wrappers table."""
        bindings = self.bindings_of(expr, scope)
        if bindings is None:
            return None
        found = set()
        for b in bindings:
            if b.kind == "value" and isinstance(b.node, cst.Call) and b.index is None:
                found.add(self.qualified(b.node.func, b.scope))
            elif b.kind == "param" and b.node.annotation is not None:
                found.add(self.qualified(b.node.annotation.annotation, b.scope.parent))
            else:
                return None
        found.discard(None)
        return found.pop() if len(found) == 1 else None

    # -- constructions --------------------------------------------------------------------------
    # -- classes chosen at run time ----------------------------------------------------------------
    def choice_of(self, func, ctx: StmtContext) -> Choice | None:
        """The candidates of a callee chosen at run time, when at least one is an optimizer class
        and none is known to be anything else."""
        if isinstance(func, cst.Name):
            if func.value not in self.class_holders() and not self._dict_holder(func.value, ctx.scope):
                return None
            tree = choosing.value_at(func.value, ctx, self.program)
            if isinstance(tree, choosing.Leaf) and tree.node is None:
                if "rebound" not in tree.why and "loop" not in tree.why:
                    return None      # a parameter or a global: the holders' single-class trace decides
                # The scan gave up (a condition rebound, a loop): every value bound here, and more.
                values = [b.node for b in self.lookup(func.value, ctx.scope) or [] if b.kind == "value"]
                for value in reversed(values):
                    tree = choosing.Branch("?", choosing.Leaf(value), tree)
            origin = func.value
        elif isinstance(func, cst.Subscript) or (isinstance(func, cst.Call) and isinstance(func.func, cst.Name)
                                                 and func.func.value == "getattr"):
            tree, origin = choosing.Leaf(func), cst.Module(body=()).code_for_node(func)
        else:
            return None
        info: dict = {}
        tree = self._expand(tree, ctx, 0, info)
        if tree is None:
            return None
        keys = {}
        for leaf in choosing.leaves(tree):
            if leaf.node is None:
                keys[id(leaf)] = None
                continue
            q = self.qualified(leaf.node, ctx.scope)
            key = optimizer_key(q) if q else None
            if key is None:
                return None          # something other than an optimizer class may be called
            keys[id(leaf)] = key
        if not any(keys.values()):
            return None
        default = info.get("default")
        return Choice(tree, keys, info.get("expression", origin), info.get("origin", ""),
                      default if default in keys.values() else None)

    def _dict_holder(self, name: str, scope: Scope) -> bool:
        return any(b.kind == "value" and isinstance(b.node, cst.Dict) for b in self.lookup(name, scope) or [])

    def _expand(self, tree, ctx: StmtContext, depth: int, info: dict):
        """Leaves that are themselves choices (`a if c else b`, a dict lookup, getattr) as branches."""
        if depth > 6:
            return tree
        if isinstance(tree, choosing.Branch):
            then = self._expand(tree.then, ctx, depth + 1, info)
            orelse = self._expand(tree.orelse, ctx, depth + 1, info)
            return choosing.Branch(tree.test, then, orelse, tree.reads)
        node = tree.node
        if isinstance(node, cst.IfExp):
            return choosing.Branch(one_line_text(node.test), self._expand(choosing.Leaf(node.body), ctx, depth + 1, info),
                                   self._expand(choosing.Leaf(node.orelse), ctx, depth + 1, info))
        if isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            table = node.value
            if isinstance(table, cst.Name):
                bound = [b for b in self.lookup(table.value, ctx.scope) or [] if b.kind == "value"]
                table = bound[0].node if len(bound) == 1 else table
            if isinstance(table, cst.Dict):
                return self._lookup(table, node.slice[0].slice.value, ctx, depth, info)
            return choosing.Leaf(None, f"{one_line_text(node)} is not a dict written out here")
        if (isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "getattr"
                and len(node.args) in (2, 3) and all(a.keyword is None and not a.star for a in node.args)):
            return self._getattr(node, ctx, info)
        return tree

    def _lookup(self, table: cst.Dict, key, ctx: StmtContext, depth: int, info: dict):
        """`{"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[key]`: one branch per entry it may hit."""
        entries = []
        for element in table.elements:
            if not isinstance(element, cst.DictElement):
                return choosing.Leaf(None, "the dict is built with **")
            k = choosing.literal_value(element.key)
            if not isinstance(k, str):
                return choosing.Leaf(None, "the dict's keys are not strings")
            entries.append((k, element.value))
        names = choosing.strings(key, ctx.scope, self, self.program)
        info.update(strings=True, expression=one_line_text(key), origin=names.origin)
        if names.complete:
            entries = [(k, v) for k, v in entries if k in names.values] or entries
        if isinstance(names.default, str):
            info["default_name"] = names.default
            match = [v for k, v in entries if k == names.default]
            if match:
                q = self.qualified(match[0], ctx.scope)
                info["default"] = optimizer_key(q) if q else None
        key_text = one_line_text(key)
        tree = self._expand(choosing.Leaf(entries[-1][1]), ctx, depth + 1, info) if entries else choosing.Leaf(None)
        for k, v in reversed(entries[:-1]):
            tree = choosing.Branch(f"{key_text} == {k!r}", self._expand(choosing.Leaf(v), ctx, depth + 1, info), tree,
                                   (key_text,))
        return tree

    def _getattr(self, node: cst.Call, ctx: StmtContext, info: dict):
        """`getattr(torch.optim, name)`: the classes of that module the name may be."""
        module, name = node.args[0].value, node.args[1].value
        module_text, name_text = one_line_text(module), one_line_text(name)
        names = choosing.strings(name, ctx.scope, self, self.program)
        info.update(strings=True, expression=name_text, origin=names.origin)
        values = list(names.values)
        if isinstance(names.default, str):
            q = self.qualified(module, ctx.scope)
            info["default"] = optimizer_key(f"{q}.{names.default}") if q else None
        leaves = [choosing.Leaf(cst.parse_expression(f"{module_text}.{v}")) for v in values if v.isidentifier()]
        tree = leaves[-1] if names.complete and leaves else choosing.Leaf(
            None, f"{name_text} may name any attribute of {module_text}")
        for v, leaf in reversed(list(zip(values, leaves))[:len(leaves) - (1 if names.complete else 0)]):
            tree = choosing.Branch(f"{name_text} == {v!r}", leaf, tree, (name_text,))
        return tree

    def _find_constructions(self) -> None:
        for site in self.program.calls:
            kind, name, chosen_by = self._construction_kind(site)
            if kind:
                node = self.class_ref(site.call.func, site.ctx.scope) if kind == "custom" else None
                ident = Identity(kind, name, site.call, site.ctx, chosen_by=chosen_by, node=node,
                                 choice=self._choices.get(id(site.call)), factory=self._factories.get(id(site.call), ""))
                self.identities.append(ident)
                self._by_call[id(site.call)] = ident

    def optimizer_classes(self) -> list[Scope]:
        """The program's classes that subclass a torch optimizer (`class LARS(torch.optim.Optimizer)`,
        directly or through other classes of the program): optimizers with no rewrite."""
        if self._optimizer_classes is None:
            found = []
            for scope in self.program.scopes:
                if scope.kind == "class" and any(
                        self._torch_optimizer_base(arg.value, c.parent)
                        for c in self.bases(scope) if c.parent is not None for arg in c.node.bases):
                    found.append(scope)
            self._optimizer_classes = found
        return self._optimizer_classes

    def _torch_optimizer_base(self, expr, scope: Scope) -> bool:
        q = self.qualified(expr, scope)
        return q is not None and (q in TORCH_OPTIMIZER_BASE or normal_torch(q) is not None)

    def _construction_kind(self, site: CallSite) -> tuple[str | None, str, str]:
        func = site.call.func
        choice = self.choice_of(func, site.ctx)
        if choice is not None and self.forced:
            start = self.program.span(site.call, site.ctx).start
            key = self.forced.get((start.line, start.col))
            if key is not None and key in [k for _, k in choice.candidates]:
                return "torch", key, ""          # "Convert as <candidate>": the choice made by hand
        if choice is not None:
            self._choices[id(site.call)] = choice
            known = [key for _, key in choice.candidates if key is not None]
            return "torch", choice.default or known[0], ""
        if isinstance(func, cst.Call):   # optax.inject_hyperparams(optax.adam)(...)
            func = func.func
        parts = dotted(func) if func is site.call.func else None
        if parts and any(c.name == parts[-1] for c in self.optimizer_classes()):
            cls = self.class_ref(func, site.ctx.scope)
            if cls is not None and any(cls is c for c in self.optimizer_classes()):
                return "custom", cls.name, ""
        q = self.qualified(func, site.ctx.scope)
        if q is None:
            if func is site.call.func and isinstance(func, (cst.Name, cst.Attribute)) and (
                    (func.value if isinstance(func, cst.Name) else func.attr.value) in self.class_holders()):
                chosen = self.torch_class_value(func, site.ctx.scope)
                if chosen:
                    return "torch", chosen, cst.Module(body=()).code_for_node(func)
            return None, "", ""
        if func is site.call.func:
            cls = optimizer_key(q)
            if cls:
                return "torch", cls, ""
            if q in ZERO_PATHS:                  # ZeroRedundancyOptimizer(params, optimizer_class=torch.optim.AdamW, ...)
                self._factories[id(site.call)] = ZERO_FACTORY
                cls = argument(site.call, 1, "optimizer_class")
                q_cls = self.qualified(cls, site.ctx.scope) if cls is not None else None
                return "torch", (optimizer_key(q_cls) if q_cls else None) or ZERO_FACTORY, ""
            if q in TIMM_PATHS:                  # create_optimizer_v2(model, opt="adamw", ...)
                self._factories[id(site.call)] = TIMM_FACTORY
                opt = argument(site.call, 1, "opt")
                value = choosing.literal_value(opt) if opt is not None else "sgd"
                named = timm_name(value)[0] if isinstance(value, str) else None
                return "torch", named.key if named is not None and named.key else TIMM_FACTORY, ""
            if q in SCALERS:
                return "scaler", q.rsplit(".", 1)[-1], ""
            if q in DISTRIBUTED_OPTIMIZERS:
                return "custom", q, ""
            if q.startswith("torch."):
                parts = q.split(".")
                if parts[:3] == ["torch", "optim", "lr_scheduler"] and len(parts) == 4 and parts[3] in SCHEDULERS:
                    return "scheduler", parts[3], ""
                if q in CLIP_FUNCTIONS:
                    self.clips.append((site, CLIP_FUNCTIONS[q]))
                return None, "", ""
            if q in SCHEDULER_CLASSES:           # transformers' / diffusers' schedule functions
                return "scheduler", SCHEDULER_CLASSES[q], ""
            if q in SCHEDULE_FACTORIES:          # get_scheduler(name, optimizer, ...)
                return "scheduler", SCHEDULE_FACTORIES[q].qualified, ""
        head, _, last = q.rpartition(".")
        if head == HELPER_MODULE and "schedule" in last and "schedule_free" not in last:
            return "optax_schedule", last, ""    # switcheroo_optax's schedules (transformers', diffusers')
        if (head == "optax" and last in OPTAX_OPTIMIZERS) or head == HELPER_MODULE:
            return "optax", last, ""
        if q in NNX_OPTIMIZERS:
            return "nnx", "Optimizer", ""
        if head in ("optax", "optax.schedules") and (last.endswith("_schedule") or last in OPTAX_SCHEDULES):
            return "optax_schedule", last, ""
        return None, "", ""

    def class_holders(self) -> set[str]:
        """Names that may hold a torch optimizer class (`optimizer_class = th.optim.Adam`, a
        parameter defaulting to one, `self.optimizer_class = optimizer_class`): only calls of
        these can build an optimizer through a variable."""
        if self._class_holders is None:
            holders: set[str] = set()
            classes = TORCH_OPTIMIZERS | LIBRARY_CLASS_NAMES
            for scope in self.program.scopes:
                for name, bindings in scope.bindings.items():
                    for b in bindings:
                        value = b.node.default if b.kind == "param" else b.node if b.kind == "value" else None
                        if value is not None and _names_a_class(value, classes):
                            holders.add(name)
            for scope in self.program.scopes:       # `self.x = x` of a holder holds it too
                for attr, bindings in scope.attr_bindings.items():
                    if any(b.kind == "value" and (dotted(b.node) or [""])[-1] in holders | TORCH_OPTIMIZERS
                           | LIBRARY_CLASS_NAMES
                           for b in bindings):
                        holders.add(attr)
            self._class_holders = holders
        return self._class_holders

    def torch_class_value(self, expr, scope: Scope, seen=frozenset()) -> str | None:
        """The torch optimizer class an expression holds (`self.optimizer_class`, whose value is
        a parameter defaulting to `torch.optim.Adam`), when every way it can be set agrees."""
        if id(expr) in seen or len(seen) > 16:
            return None
        seen = seen | {id(expr)}
        q = self.qualified(expr, scope)
        if q is not None:
            return optimizer_key(q)
        bindings = self.bindings_of(expr, scope)
        if bindings is None:
            return None
        found = set()
        for b in bindings:
            if b.kind == "value" and b.index is None:
                found.add(self.torch_class_value(b.node, b.scope, seen))
            elif b.kind == "param" and b.node.default is not None:
                found.add(self.torch_class_value(b.node.default, b.scope.parent, seen))
                for arg, where in self.incoming.get(b, []):
                    found.add(self.torch_class_value(arg, where, seen))
            else:
                return None
        return found.pop() if len(found) == 1 and None not in found else None

    def _bind_targets(self) -> None:
        for ident in self.identities:
            stmt = ident.ctx.stmt
            if isinstance(stmt, cst.Assign) and stmt.value is ident.call and len(stmt.targets) == 1:
                ident.target = stmt.targets[0].target
            elif isinstance(stmt, cst.AnnAssign) and stmt.value is ident.call:
                ident.target = stmt.target
            if not isinstance(ident.target, (cst.Name, cst.Attribute)):
                ident.target = None

    def construction(self, call) -> Identity | None:
        return self._by_call.get(id(call))

    # -- values -----------------------------------------------------------------------------------
    def value_ids(self, expr, scope: Scope, seen=frozenset(), index: int | None = None,
                  at: StmtContext | None = None) -> frozenset | str:
        """The optimizers an expression may be (`index`: element `index` of its value; `at`: the
        statement it is read in, whose position decides which bindings of a name reach it)."""
        if expr is None:
            return UNKNOWN
        if isinstance(expr, cst.Call):
            return self.call_ids(expr, scope, seen, index)
        if index is not None:
            if isinstance(expr, (cst.Tuple, cst.List)):
                elements = expr.elements
                if index < len(elements) and isinstance(elements[index], cst.Element):
                    return self.value_ids(elements[index].value, scope, seen)
                return UNKNOWN
            if isinstance(expr, cst.Name):
                bindings = self._bindings_at(expr.value, scope, at)
                return self._combine(bindings, seen, index) if bindings else UNKNOWN
            return UNKNOWN
        if isinstance(expr, cst.Name):
            if expr.value in ("None", "True", "False"):
                return UNKNOWN if expr.value == "None" else OTHER
            return self.name_ids(expr.value, scope, seen, at)
        if isinstance(expr, cst.Attribute):
            return self.attr_ids(expr, scope, seen)
        if isinstance(expr, cst.Lambda):          # `lambda count: optax.exponential_decay(...)(count // n)`
            inner = expr.body
            while isinstance(inner, cst.Call):
                if id(inner) in self._by_call:
                    return frozenset([self._by_call[id(inner)]]) if self._by_call[id(inner)].kind == "optax_schedule" \
                        else OTHER
                inner = inner.func
            return OTHER
        if isinstance(expr, _NOT_OPTIMIZERS):
            return OTHER
        return UNKNOWN

    def name_ids(self, name: str, scope: Scope, seen=frozenset(), at: StmtContext | None = None) -> frozenset | str:
        bindings = self._bindings_at(name, scope, at)
        if not bindings:
            return UNKNOWN
        return self._combine(bindings, seen)

    def _bindings_at(self, name: str, scope: Scope, at: StmtContext | None) -> list[Binding] | None:
        bindings = self.lookup(name, scope)
        return self.reaching(bindings, at) if bindings and at is not None else bindings

    def attr_ids(self, expr: cst.Attribute, scope: Scope, seen=frozenset()) -> frozenset | str:
        """`<object>.<attr>` through the class the object is an instance of."""
        owner = self.class_of(expr.value, scope)
        if owner is None:
            return UNKNOWN
        attr = expr.attr.value
        bindings = self.member_bindings(owner, attr)
        if bindings:
            return self._combine(bindings, seen)
        annotated = self.member_annotation(owner, attr)
        if annotated is not None and self._is_optimizer_annotation(annotated[0], annotated[1]):
            key = (id(annotated[1]), attr)
            ident = self._member_annotated.get(key)
            if ident is None:
                ident = self._member_annotated[key] = Identity("annotated", "", None, None, target=expr)
                self.identities.append(ident)
            return frozenset([ident])
        return UNKNOWN

    def call_ids(self, call: cst.Call, scope: Scope, seen, index: int | None) -> frozenset | str:
        ident = self._by_call.get(id(call))
        if ident is not None:
            return frozenset([ident]) if index is None else UNKNOWN
        wrapper = self.wrapper_of(call, scope)
        if wrapper is not None:
            args = positional(call)
            keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
            if wrapper.results == "released":
                return RELEASED
            arg = result_argument(wrapper, args, keywords, index)
            if arg is None:
                return UNKNOWN
            found = self.value_ids(arg, scope, seen)
            if isinstance(found, frozenset):
                for i in found:
                    if wrapper not in i.wrappers:
                        i.wrappers.append(wrapper)
            return found
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in HOOK_METHODS:
            hook = self.hook_of(call.func, scope)
            if hook is not None:
                return self._configured_ids(hook, seen, index)
        callee = self.function_called(call, scope)
        if callee is not None:
            return self.returned_ids(callee, seen, index)
        return OTHER if index is None else UNKNOWN

    def hook_of(self, func: cst.Attribute, scope: Scope) -> Scope | None:
        """`self.optimizers()` in a LightningModule: the subclass's `configure_optimizers`
        (knowledge/wrappers.py HOOKS), whose result the library hands back."""
        cls = self.class_of(func.value, scope)
        if cls is None:
            return None
        for c in self.bases(cls):
            for arg in getattr(c.node, "bases", ()):
                hook = HOOKS.get(self.qualified(arg.value, c.parent) or "", {}).get(func.attr.value)
                if hook:
                    return self.method(cls, hook)
        return None

    def _configured_ids(self, hook: Scope, seen, index: int | None) -> frozenset | str:
        """The optimizers a hook's returns configure, in order (element `index`, or the one)."""
        if hook in seen:
            return UNKNOWN
        found: set[Identity] = set()
        for value, ctx in hook.returns:
            items = _configured(value)
            if index is None and len(items) != 1 or index is not None and index >= len(items):
                return UNKNOWN
            r = self.value_ids(items[0 if index is None else index], ctx.scope, seen | {hook}, at=ctx)
            if not isinstance(r, frozenset):
                return UNKNOWN
            found |= r
        return frozenset(found) if found else UNKNOWN

    def wrapper_of(self, call: cst.Call, scope: Scope) -> Wrapper | None:
        func = call.func
        q = self.qualified(func, scope)
        if q is not None and q in FUNCTIONS:
            return FUNCTIONS[q]
        if isinstance(func, cst.Attribute):
            cls = self.external_class(func.value, scope)
            if cls is not None:
                return METHODS.get(cls, {}).get(func.attr.value)
        return None

    def _use_of(self, name: cst.Name) -> StmtContext | None:
        """The statement a name is read in, when it is a call's receiver (`model.configure(...)`)."""
        if self._receivers is None:
            self._receivers = {}
            for site in self.program.calls:
                func = site.call.func
                if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
                    self._receivers[id(func.value)] = site.ctx
        return self._receivers.get(id(name))

    def _reaching(self, bindings: list[Binding], at: StmtContext) -> list[Binding]:
        """`reaching`, or every binding where none reaches (a class is still worth knowing)."""
        return self.reaching(bindings, at) or bindings

    def reaching(self, bindings: list[Binding], at: StmtContext) -> list[Binding]:
        """The bindings of a name that can reach a read of it in statement `at`: not one made
        after the read in the same scope (`model = torch.compile(model)` after
        `model.configure_optimizers()`) unless a loop holds both, nor one that a later binding
        in the same scope overwrites on every path to the read (`import torch.optim as optim`,
        then `optim = torch.optim.Adam(...)`: `optim.step()` sees only the optimizer). Bindings
        of enclosing scopes all reach (a nested function runs later)."""
        order = self.program.order
        here = order(at)
        local = [b for b in bindings if b.ctx is not None and b.ctx.chunk is not None and _same_scope(b.scope, at.scope)]
        out = []
        for b in bindings:
            if not any(b is x for x in local):
                out.append(b)
                continue
            mine = order(b.ctx)
            if mine >= here and not _common_loop(b.ctx, at):
                continue
            if any(k is not b and mine < order(k.ctx) < here and _dominates(k.ctx, at) for k in local):
                continue
            out.append(b)
        return out

    def function_called(self, call: cst.Call, scope: Scope) -> Scope | None:
        """The program's function (or method) a call runs, where it is known."""
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in self._methods:
            owner = self.class_of(func.value, scope)
            if owner is not None:
                return self.method(owner, func.attr.value)
            cls = self.class_ref(func.value, scope)           # a classmethod: `GPT.from_pretrained(...)`
            if cls is not None:
                return self.method(cls, func.attr.value)
            if self.library_module(func.value, scope):
                return None
            return self._sole_factory(func.attr.value)
        found = self.definition(func, scope)
        return found if found is not None and found.kind == "function" else None

    def library_module(self, expr, scope: Scope) -> bool:
        """Does `expr` name a library's module or one of its members through the imports
        (`F`, `torch.nn.functional`), not the program's? Its functions are not the program's
        methods (settled.py relies on it: what such calls return never waits for other files)."""
        q = self.qualified(expr, scope)
        if q is None or q.startswith("."):
            return False
        if self._tops is None:
            self._tops = {m.split(".")[0] for m in self.program.modules}
        return q.split(".")[0] not in self._tops

    def _sole_factory(self, name: str) -> Scope | None:
        """On an object whose class is unknown (`model.configure_optimizers(...)`, `model` an
        untyped parameter): the method of that name, when it is the one method of the program
        so named that returns an optimizer."""
        if name not in self._sole:
            self._sole[name] = None          # asked again while answering: no
            found = [f for f in self.program.scopes if f.kind == "function" and f.name == name
                     and f.parent is not None and f.parent.kind == "class" and f.returns]
            returning = [f for f in found if isinstance(self.returned_ids(f, frozenset(), None), frozenset)]
            self._sole[name] = returning[0] if len(returning) == 1 else None
        return self._sole[name]

    def returned_ids(self, function: Scope, seen, index: int | None) -> frozenset | str:
        """What a function returns, when every return statement agrees."""
        if function in seen:
            return UNKNOWN
        seen = seen | {function}
        if not function.returns:
            return OTHER
        found: set[Identity] = set()
        unknown = False
        for value, ctx in function.returns:
            if value is None:
                r = OTHER
            elif index is not None and isinstance(value, (cst.Tuple, cst.List)):
                elements = value.elements
                r = self.value_ids(elements[index].value, ctx.scope, seen) if index < len(elements) and isinstance(
                    elements[index], cst.Element) else UNKNOWN
            else:
                r = self.value_ids(value, ctx.scope, seen, index)
            if r == OTHER:
                return OTHER
            if r == UNKNOWN:
                unknown = True
            else:
                found |= r
        if unknown:
            return UNKNOWN
        return frozenset(found) if found else UNKNOWN

    def _combine(self, bindings: list[Binding], seen, index: int | None = None) -> frozenset | str:
        found: set[Identity] = set()
        unknown = False
        for b in bindings:
            if b in seen:
                continue
            if b.kind == "none":
                continue
            if b.kind == "value":
                if b.index is not None and index is not None:
                    r = UNKNOWN              # unpacked twice: not followed
                else:
                    r = self.value_ids(b.node, b.scope, seen | {b}, b.index if b.index is not None else index)
            elif b.kind == "param":
                r = self._param_ids.get(b, UNKNOWN) if index is None else UNKNOWN
            else:
                r = OTHER
            if r == OTHER:
                return OTHER
            if r == UNKNOWN:
                unknown = True
            elif r != RELEASED:
                found |= r
        if unknown:
            return UNKNOWN
        return frozenset(found) if found else UNKNOWN

    # -- parameters -------------------------------------------------------------------------------
    def _collect_incoming(self) -> None:
        """Every call site's arguments, by the parameter of the program's function they feed."""
        incoming = self.incoming
        for site in self.program.calls:
            callee, _ = self._callee(site)
            if callee is not None:
                self.calls_to[callee] = self.calls_to.get(callee, 0) + 1
            for param, arg in self._bind_call(site):
                incoming.setdefault(param, []).append((arg, site.ctx.scope))
                self._arg_at[id(arg)] = site.ctx

    def _trace_parameters(self) -> None:
        incoming = self.incoming
        annotated = self._annotated_params()
        for b, ident in annotated.items():
            self._param_ids[b] = frozenset([ident])
        # Parameters pass optimizers on to other functions: iterate to a fixed point.
        for _ in range(8):
            changed = False
            for param, args in incoming.items():
                results = [self.value_ids(a, s, at=self._arg_at.get(id(a))) for a, s in args]
                traced = [r for r in results if isinstance(r, frozenset)]
                if traced and OTHER not in results:
                    new = frozenset().union(*traced)
                    if UNKNOWN in results:
                        # Some caller passes what cannot be traced: that object is stepped here too.
                        new |= {self._untraced_at(param, args[results.index(UNKNOWN)])}
                elif param in annotated:
                    new = frozenset([annotated[param]])
                else:
                    new = UNKNOWN
                if self._param_ids.get(param, UNKNOWN) != new:
                    self._param_ids[param] = new
                    changed = True
            if not changed:
                break

    def _untraced_at(self, param: Binding, arg) -> Identity:
        """What an untraced argument passes to a parameter that also receives optimizers."""
        ident = self._untraced.get(param)
        if ident is None:
            ident = self._untraced[param] = Identity("untraced", "", None, self._arg_at.get(id(arg[0])),
                                                     target=param.node, node=arg[0])
            self.identities.append(ident)
        return ident

    def _annotated_params(self) -> dict[Binding, Identity]:
        out = {}
        for scope in self.program.scopes:
            if scope.kind != "function":
                continue
            for bindings in scope.bindings.values():
                for b in bindings:
                    if b.kind == "param" and b.node.annotation is not None and self._is_optimizer_annotation(
                            b.node.annotation.annotation, scope.parent):
                        ident = Identity("annotated", "", None, None, target=b.node)
                        self.identities.append(ident)
                        out[b] = ident
        return out

    def _is_optimizer_annotation(self, ann, scope: Scope) -> bool:
        if isinstance(ann, cst.SimpleString):
            try:
                ann = cst.parse_expression(ann.evaluated_value)
            except (cst.ParserSyntaxError, ValueError, TypeError):
                return False
        if isinstance(ann, cst.Subscript):      # Optional[Optimizer]
            return any(isinstance(e.slice, cst.Index) and self._is_optimizer_annotation(e.slice.value, scope)
                       for e in ann.slice)
        if isinstance(ann, cst.BinaryOperation):  # Optimizer | None
            return any(self._is_optimizer_annotation(s, scope) for s in (ann.left, ann.right))
        q = self.qualified(ann, scope)
        return q in TORCH_OPTIMIZER_BASE or (q is not None and optimizer_key(q) is not None)

    def _bind_call(self, site: CallSite):
        """(parameter binding, argument expression) pairs for a call to a function or class
        defined in the program."""
        callee, skip = self._callee(site)
        if callee is None:
            return
        params = callee.node.params
        ordered = (list(params.posonly_params) + list(params.params))[skip:]
        index = 0
        for arg in site.call.args:
            if arg.star:
                return
            if arg.keyword is None:
                if index < len(ordered):
                    b = _param_binding(callee, ordered[index].name.value)
                    if b is not None:
                        yield b, arg.value
                index += 1
            else:
                b = _param_binding(callee, arg.keyword.value)
                if b is not None:
                    yield b, arg.value

    def _callee(self, site: CallSite) -> tuple[Scope | None, int]:
        """The function a call site binds parameters of, and how many leading parameters
        (`self`) the call does not pass."""
        func, scope = site.call.func, site.ctx.scope
        functions = self.program.functions
        if isinstance(func, cst.Name) or (isinstance(func, cst.Attribute) and self.qualified(func, scope)):
            found = self.definition(func, scope)
            if found is None:
                return None, 0
            if found.kind == "function":
                return found, 0
            init = found.bindings.get("__init__")
            if init and len(init) == 1 and init[0].kind == "def":
                return functions.get(init[0].node), 1
            return None, 0
        if isinstance(func, cst.Attribute) and func.attr.value in self._methods:
            owner = self.class_of(func.value, scope)
            if owner is not None:
                method = self.method(owner, func.attr.value)
                if method is not None:
                    return method, 1
        return None, 0

    # -- receivers --------------------------------------------------------------------------------
    def receiver_ids(self, receiver, scope: Scope, at: StmtContext | None = None) -> frozenset:
        r = self.value_ids(receiver, scope, at=at) if isinstance(receiver, (cst.Name, cst.Attribute)) else OTHER
        return r if isinstance(r, frozenset) else frozenset()


def _configured(value) -> list:
    """What a `configure_optimizers` return statement configures, in order: `opt`, `[opt_g,
    opt_d]`, `([opt_g, opt_d], [sched])`, `{"optimizer": opt, ...}`, `[{"optimizer": ...}]`."""
    if isinstance(value, cst.Dict):
        found = [e.value for e in value.elements if isinstance(e, cst.DictElement)
                 and isinstance(e.key, cst.SimpleString) and e.key.evaluated_value == "optimizer"]
        return found[:1]
    if isinstance(value, (cst.Tuple, cst.List)):
        elements = [e.value for e in value.elements if isinstance(e, cst.Element)]
        if len(elements) != len(value.elements):
            return []
        if elements and isinstance(elements[0], (cst.List, cst.Tuple)):
            return _configured(elements[0])
        out = []
        for e in elements:
            out.extend(_configured(e) if isinstance(e, cst.Dict) else [e])
        return out
    return [value] if value is not None else []


def _same_scope(a: Scope | None, b: Scope | None) -> bool:
    return a is b or (a is not None and b is not None and a.kind == "module" and b.kind == "module")


def _common_loop(a: StmtContext, b: StmtContext) -> bool:
    return bool(set(map(id, a.loops)) & set(map(id, b.loops)))


def _dominates(k: StmtContext, at: StmtContext) -> bool:
    """Does statement `k`, earlier than `at`, run on every path to `at`? (`k`'s block holds `at`,
    or `k` is a top-level statement of the module.)"""
    if k.chunk is not at.chunk:
        return isinstance(k.body, cst.Module)
    return any(n is k.body for n in at.path)


def _names_a_class(value, classes: set[str]) -> bool:
    """`torch.optim.AdamW`, or `bnb.optim.AdamW8bit if flag else torch.optim.AdamW`."""
    if isinstance(value, cst.IfExp):
        return _names_a_class(value.body, classes) or _names_a_class(value.orelse, classes)
    parts = dotted(value)
    return bool(parts) and parts[-1] in classes


def one_line_text(node) -> str:
    return choosing.one_line(node)


def _param_binding(scope: Scope, name: str) -> Binding | None:
    for b in scope.bindings.get(name, []):
        if b.kind == "param":
            return b
    return None


def normal_torch(q: str) -> str | None:
    """'torch.optim.Adam' / 'torch.optim.adam.Adam' -> 'Adam'; anything else -> None."""
    parts = q.split(".")
    if len(parts) == 3 and parts[:2] == ["torch", "optim"] and parts[2] in TORCH_OPTIMIZERS:
        return parts[2]
    if (len(parts) == 4 and parts[:2] == ["torch", "optim"] and parts[2].islower()
            and parts[2] != "lr_scheduler" and parts[3] in TORCH_OPTIMIZERS):
        return parts[3]
    return None


def optimizer_key(q: str) -> str | None:
    """The catalog key of the optimizer class a qualified name stands for ('torch.optim.adam.Adam'
    -> 'Adam', 'bitsandbytes.optim.AdamW8bit' -> itself), a known class without a row included
    (libraries.UNMAPPED: its construction says why); anything else -> None."""
    found = normal_torch(q)
    if found:
        return found
    if q in catalog.CLASSES:
        return catalog.CLASSES[q]
    return q if q in UNMAPPED else None


__all__ = ["Tracer", "Identity", "dotted", "is_none", "keyword", "positional", "argument", "normal_torch",
           "optimizer_key"]
