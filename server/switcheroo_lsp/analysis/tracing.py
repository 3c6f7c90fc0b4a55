"""Trace names and receivers to the optimizers constructed in a file.

Precision first: a receiver is traced only through names bound in the same or an enclosing
scope, `self.<attr>` assigned in the same class, parameters annotated `torch.optim.Optimizer`,
and parameters that receive a traced optimizer at the file's own call sites. Anything else
(`env.step(a)`, `model.zero_grad()`, a loop variable) stays untraced and is never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ..knowledge.schedules import SCHEDULERS
from .facts import Binding, CallSite, Scope, StmtContext, dotted, is_none
from .program import Program

# torch 2.13's optimizer classes (torch.optim.__all__ minus the base class).
TORCH_OPTIMIZERS = {"ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS",
                    "Muon", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam"}
TORCH_OPTIMIZER_BASE = {"torch.optim.Optimizer", "torch.optim.optimizer.Optimizer"}

# Optax factories whose result is an optimizer (a converted one still gets `.step()` flagged).
OPTAX_OPTIMIZERS = {
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw", "adan",
    "amsgrad", "fromage", "lamb", "lars", "lbfgs", "lion", "nadam", "nadamw", "noisy_sgd", "novograd",
    "optimistic_gradient_descent", "polyak_sgd", "radam", "rmsprop", "rprop", "sgd", "sign_sgd", "sm3",
    "yogi", "chain", "named_chain", "multi_transform", "MultiSteps", "inject_hyperparams",
}
HELPER_MODULE = "switcheroo_optax"
CLIP_FUNCTIONS = {
    "torch.nn.utils.clip_grad_norm_": "norm", "torch.nn.utils.clip_grad.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad_value_": "value", "torch.nn.utils.clip_grad.clip_grad_value_": "value",
}

OTHER = "other"       # definitely not an optimizer
UNKNOWN = "unknown"   # nothing known (an unbound name, a parameter nobody passes)

_NOT_OPTIMIZERS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString,
                   cst.FormattedString, cst.Lambda, cst.BinaryOperation, cst.Comparison, cst.List, cst.Tuple,
                   cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp, cst.GeneratorExp)


@dataclass(eq=False)
class Identity:
    """One optimizer object of the file: a construction, or an annotated parameter."""
    kind: str                      # "torch" | "optax" | "annotated" | "scheduler"
    name: str                      # torch class ('Adam') or optax factory or ''
    call: cst.Call | None
    ctx: StmtContext | None
    target: cst.CSTNode | None = None  # what the construction is assigned to (a Name, an Attribute, a Param)

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
    def __init__(self, program: Program):
        self.program = program
        self.identities: list[Identity] = []
        self._by_call: dict[int, Identity] = {}
        self._param_ids: dict[Binding, frozenset | str] = {}
        self.incoming: dict[Binding, list[tuple[cst.BaseExpression, Scope]]] = {}
        self.calls_to: dict[Scope, int] = {}      # how many call sites each local function has
        self.clips: list[tuple[CallSite, str]] = []
        self._find_constructions()
        self._bind_targets()
        self._trace_parameters()

    # -- qualified names -------------------------------------------------------------
    def lookup(self, name: str, scope: Scope) -> list[Binding] | None:
        """The bindings a name used in `scope` refers to (class scopes are skipped for nested
        functions, as Python does); every chunk's module scope stands for the document's."""
        module = self.program.module
        first = True
        while scope is not None:
            if scope.kind == "module":
                return module.bindings.get(name)
            if first or scope.kind != "class":
                if name in scope.globals:
                    return module.bindings.get(name)
                if name in scope.bindings:
                    return scope.bindings[name]
            first = False
            scope = scope.parent
        return module.bindings.get(name)

    def qualified(self, expr, scope: Scope) -> str | None:
        parts = dotted(expr)
        if not parts:
            return None
        bindings = self.lookup(parts[0], scope)
        if bindings is None:
            for b in self.program.module.bindings.get("*", []):
                module = b.qualified[:-2]
                candidate = f"{module}.{parts[0]}"
                if normal_torch(candidate) or module.startswith("optax"):
                    return ".".join([candidate] + parts[1:])
            return None
        quals = {b.qualified for b in bindings if b.kind == "import"}
        if len(quals) != 1 or any(b.kind != "import" for b in bindings):
            return None   # shadowed or rebound: do not guess
        return ".".join([quals.pop()] + parts[1:])

    def torch_class(self, call: cst.Call, scope: Scope) -> str | None:
        q = self.qualified(call.func, scope)
        return normal_torch(q) if q else None

    # -- constructions --------------------------------------------------------------
    def _find_constructions(self) -> None:
        for site in self.program.calls:
            kind, name = self._construction_kind(site)
            if kind:
                ident = Identity(kind, name, site.call, site.ctx)
                self.identities.append(ident)
                self._by_call[id(site.call)] = ident

    def _construction_kind(self, site: CallSite) -> tuple[str | None, str]:
        func = site.call.func
        if isinstance(func, cst.Call):   # optax.inject_hyperparams(optax.adam)(...)
            func = func.func
        q = self.qualified(func, site.ctx.scope)
        if q is None:
            return None, ""
        if func is site.call.func:
            cls = normal_torch(q)
            if cls:
                return "torch", cls
            if q.startswith("torch."):
                parts = q.split(".")
                if parts[:3] == ["torch", "optim", "lr_scheduler"] and len(parts) == 4 and parts[3] in SCHEDULERS:
                    return "scheduler", parts[3]
                if q in CLIP_FUNCTIONS:
                    self.clips.append((site, CLIP_FUNCTIONS[q]))
                return None, ""
        head, _, last = q.rpartition(".")
        if (head == "optax" and last in OPTAX_OPTIMIZERS) or head == HELPER_MODULE:
            return "optax", last
        return None, ""

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

    # -- values -----------------------------------------------------------------------
    def value_ids(self, expr, scope: Scope, seen=frozenset()) -> frozenset | str:
        if expr is None:
            return UNKNOWN
        if isinstance(expr, cst.Call):
            ident = self._by_call.get(id(expr))
            return frozenset([ident]) if ident else OTHER
        if isinstance(expr, cst.Name):
            if expr.value in ("None", "True", "False"):
                return UNKNOWN if expr.value == "None" else OTHER
            return self.name_ids(expr.value, scope, seen)
        if isinstance(expr, cst.Attribute):
            return self.attr_ids(expr, scope, seen)
        if isinstance(expr, _NOT_OPTIMIZERS):
            return OTHER
        return UNKNOWN

    def name_ids(self, name: str, scope: Scope, seen=frozenset()) -> frozenset | str:
        bindings = self.lookup(name, scope)
        if not bindings:
            return UNKNOWN
        return self._combine(bindings, seen)

    def attr_ids(self, expr: cst.Attribute, scope: Scope, seen=frozenset()) -> frozenset | str:
        """`self.<attr>` inside a method of the class that assigns it."""
        if not isinstance(expr.value, cst.Name) or scope.kind != "function" or scope.class_scope is None:
            return UNKNOWN
        if expr.value.value != scope.self_name:
            return UNKNOWN
        bindings = scope.class_scope.attr_bindings.get(expr.attr.value)
        if not bindings:
            return UNKNOWN
        return self._combine(bindings, seen)

    def _combine(self, bindings: list[Binding], seen) -> frozenset | str:
        found: set[Identity] = set()
        unknown = False
        for b in bindings:
            if b in seen:
                continue
            if b.kind == "none":
                continue
            if b.kind == "value":
                r = self.value_ids(b.node, b.scope, seen | {b})
            elif b.kind == "param":
                r = self._param_ids.get(b, UNKNOWN)
            else:
                r = OTHER
            if r == OTHER:
                return OTHER
            if r == UNKNOWN:
                unknown = True
            else:
                found |= r
        if unknown:
            return UNKNOWN
        return frozenset(found) if found else UNKNOWN

    # -- parameters -------------------------------------------------------------------
    def _trace_parameters(self) -> None:
        incoming = self.incoming
        for site in self.program.calls:
            callee, _ = self._callee(site)
            if callee is not None:
                self.calls_to[callee] = self.calls_to.get(callee, 0) + 1
            for param, arg in self._bind_call(site):
                incoming.setdefault(param, []).append((arg, site.ctx.scope))
        annotated = self._annotated_params()
        for b, ident in annotated.items():
            self._param_ids[b] = frozenset([ident])
        # Parameters pass optimizers on to other functions: iterate to a fixed point.
        for _ in range(8):
            changed = False
            for param, args in incoming.items():
                results = [self.value_ids(a, s) for a, s in args]
                traced = [r for r in results if isinstance(r, frozenset)]
                if traced and OTHER not in results:
                    new = frozenset().union(*traced)
                elif param in annotated:
                    new = frozenset([annotated[param]])
                else:
                    new = UNKNOWN
                if self._param_ids.get(param, UNKNOWN) != new:
                    self._param_ids[param] = new
                    changed = True
            if not changed:
                break

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
        return q in TORCH_OPTIMIZER_BASE or (q is not None and normal_torch(q) is not None)

    def _bind_call(self, site: CallSite):
        """(parameter binding, argument expression) pairs for a call to a function or class
        defined in this file."""
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
        func, scope = site.call.func, site.ctx.scope
        functions = self.program.functions
        if isinstance(func, cst.Name):
            bindings = self.lookup(func.value, scope)
            if not bindings or len(bindings) != 1:
                return None, 0
            b = bindings[0]
            if b.kind == "def":
                return functions.get(b.node), 0
            if b.kind == "class":
                cscope = functions.get(b.node)
                init = cscope.bindings.get("__init__") if cscope else None
                if init and len(init) == 1 and init[0].kind == "def":
                    return functions.get(init[0].node), 1
            return None, 0
        if (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                and scope.kind == "function" and scope.class_scope is not None
                and func.value.value == scope.self_name):
            bindings = scope.class_scope.bindings.get(func.attr.value)
            if bindings and len(bindings) == 1 and bindings[0].kind == "def":
                return functions.get(bindings[0].node), 1
        return None, 0

    # -- receivers --------------------------------------------------------------------
    def receiver_ids(self, receiver, scope: Scope) -> frozenset:
        r = self.value_ids(receiver, scope) if isinstance(receiver, (cst.Name, cst.Attribute)) else OTHER
        return r if isinstance(r, frozenset) else frozenset()


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


__all__ = ["Tracer", "Identity", "dotted", "is_none", "keyword", "positional", "argument", "normal_torch"]
