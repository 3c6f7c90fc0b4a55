"""Static resolution of the references a construction needs, in the user's own document.

What resolves (and nothing that would need running the program):
- names: the enclosing functions' parameters (their default, else what every call of the
  function in this file passes, when that is one value), a name assigned once in an enclosing
  function, a module-level constant assigned once (top level, or in a top-level
  `if`/`try`/`with` block), each evaluated the same way in turn;
- `<x>.<name>`: `<x>` typed or built as a dataclass (`cfg: Config`, `cfg = Config(lr=…)`)
  gives that field; else every `add_argument(…, default=…)` (dest `name`) and every dataclass
  field `name` of the file, when they agree on one value;
- `self.<name>`: the enclosing class's field, or its single `self.<name> = …` assignment
  (typically a constructor parameter's default).
Everything else raises `Unresolved` with the reason, for the message that asks for `--set`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from .literals import NotLiteral, Unresolved, code, dotted, evaluate, key

_MAX_DEPTH = 24      # names defined through names: enough for real code, a stop for cycles


@dataclass(frozen=True)
class Value:
    value: Any
    source: str          # where it came from, shown to the user: "argparse --lr", "module constant LR"


@dataclass
class _Option:
    flag: str
    default: cst.BaseExpression | None
    type_name: str | None
    action: str | None
    call: cst.Call


def _string(node: cst.BaseExpression) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _kwarg(call: cst.Call, name: str) -> cst.BaseExpression | None:
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def _assigned_names(target: cst.BaseExpression) -> list[str]:
    return [target.value] if isinstance(target, cst.Name) else []


class Document:
    """One parsed document and what can be read off it without running it."""

    def __init__(self, text: str):
        self.module = cst.parse_module(text)
        wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        self.positions = wrapper.resolve(PositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.given: dict[str, Value] = {}          # values given for references (--set), by key
        self.given_used: set[str] = set()
        self.options: dict[str, list[_Option]] = {}
        self.dataclasses: dict[str, cst.ClassDef] = {}
        self._collect(self.module)

    # -- what the file declares -------------------------------------------------------------------
    def _collect(self, node: cst.CSTNode) -> None:
        for child in node.children:
            if isinstance(child, cst.ClassDef) and any(self._is_dataclass_decorator(d.decorator) for d in child.decorators):
                self.dataclasses[child.name.value] = child
            if isinstance(child, cst.Call) and isinstance(child.func, cst.Attribute) \
                    and child.func.attr.value == "add_argument":
                self._add_option(child)
            self._collect(child)

    @staticmethod
    def _is_dataclass_decorator(node: cst.BaseExpression) -> bool:
        target = node.func if isinstance(node, cst.Call) else node
        name = dotted(target) or ""
        return name.rsplit(".", 1)[-1] in ("dataclass", "define", "frozen")

    def _add_option(self, call: cst.Call) -> None:
        flags = [s for s in (_string(a.value) for a in call.args if a.keyword is None) if s]
        if not flags:
            return
        dest = _string(_kwarg(call, "dest")) if _kwarg(call, "dest") is not None else None
        if dest is None:
            long = next((f for f in flags if f.startswith("--")), None)
            chosen = long or flags[0]
            dest = chosen.lstrip("-").replace("-", "_")
        type_node = _kwarg(call, "type")
        action = _kwarg(call, "action")
        self.options.setdefault(dest, []).append(_Option(
            flag=next((f for f in flags if f.startswith("--")), flags[0]), default=_kwarg(call, "default"),
            type_name=dotted(type_node) if type_node is not None else None,
            action=_string(action) if action is not None else None, call=call))

    # -- positions and scopes ---------------------------------------------------------------------
    def calls_at(self, line: int, col: int) -> list[cst.Call]:
        """Calls starting at 1-based `line`, 0-based `col` (outermost first)."""
        out = []

        def walk(node):
            if isinstance(node, cst.Call):
                pos = self.positions[node].start
                if (pos.line, pos.column) == (line, col):
                    out.append(node)
            for child in node.children:
                walk(child)

        walk(self.module)
        return out

    def enclosing(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """Enclosing FunctionDef / ClassDef nodes, innermost first."""
        out = []
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, (cst.FunctionDef, cst.ClassDef)):
                out.append(current)
            current = self.parents.get(current)
        return out

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, ref: cst.BaseExpression, at: cst.CSTNode, depth: int = 0) -> Value:
        """The value of reference `ref` as seen from node `at`."""
        text = code(ref)
        given = self.given.get(key(text))
        if given is not None:       # --set cfg.weight_decay also reaches `decay = cfg.weight_decay`
            self.given_used.add(key(text))
            return given
        if depth > _MAX_DEPTH:
            raise Unresolved(text, "defined in terms of itself")
        if isinstance(ref, cst.Name):
            return self._name(ref.value, at, depth)
        if isinstance(ref, cst.Attribute):
            chain = (dotted(ref) or "").split(".")
            if len(chain) >= 2 and chain[0] == "self":
                return self._self_attribute(text, chain[1:], at, depth)
            if len(chain) >= 2:
                return self._attribute(text, chain, at, depth)
        if isinstance(ref, cst.Subscript):          # cfg["lr"] with cfg a dict this file writes down
            index = ref.slice[0].slice.value
            base = self.resolve(ref.value, at, depth + 1)
            name = index.evaluated_value
            if isinstance(base.value, dict) and name in base.value:
                return Value(base.value[name], f"{base.source}[{name!r}]")
            raise Unresolved(text, f"{code(ref.value)} has no key {name!r}")
        if isinstance(ref, cst.Call) and dotted(ref.func) == "len":
            raise Unresolved(text, "a length known only when the program runs")
        raise Unresolved(text, "known only when the program runs")

    def value_of(self, expr: cst.BaseExpression, at: cst.CSTNode, depth: int, source: str) -> Value:
        try:
            value = evaluate(expr, lambda r: self.resolve(r, at, depth + 1).value)
        except NotLiteral as e:
            raise Unresolved(code(expr), f"not a literal ({e})") from None
        except Unresolved:
            raise
        except Exception as e:       # 1 / 0, a wrong subscript, …: not resolvable either
            raise Unresolved(code(expr), f"cannot be computed ({e})") from None
        return Value(value, source)

    def _name(self, name: str, at: cst.CSTNode, depth: int) -> Value:
        for scope in self.enclosing(at):
            if not isinstance(scope, cst.FunctionDef):
                continue        # class bodies are not visible from their methods
            params = scope.params
            for p in [*params.posonly_params, *params.params, *params.kwonly_params]:
                if p.name.value == name:
                    if p.default is None:
                        return self._passed(scope, p, depth)
                    return self.value_of(p.default, scope, depth,
                                         f"default of {scope.name.value}({name}=…)")
            assigned = self.assignments(scope.body, name)
            if assigned is not None:
                return self._single(name, assigned, f"in {scope.name.value}()", depth)
        if self._imported(name):
            raise Unresolved(name, "imported from another module")
        assigned = self.assignments(self.module, name)
        if assigned:
            return self._single(name, assigned, "at module level", depth, constant=True)
        raise Unresolved(name, "not defined in this file")

    def _passed(self, func: cst.FunctionDef, param: cst.Param, depth: int) -> Value:
        """A parameter without a default: what the file's calls of the function pass for it,
        when they all pass the same (`model.configure_optimizers(0.1, 6e-4, (0.9, 0.95))`)."""
        name, fname = param.name.value, func.name.value
        sites = self._call_sites(func)
        if not sites:
            raise Unresolved(name, f"a parameter of {fname}() without a default, not called in this file")
        positional = [*func.params.posonly_params, *func.params.params]
        values: list[Value] = []
        for call, skipped in sites:
            expr = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == name), None)
            if expr is None and param in positional:
                index = positional.index(param) - skipped
                plain = [a for a in call.args if a.keyword is None]
                if any(a.star for a in plain[:index + 1]):
                    raise Unresolved(name, f"a parameter of {fname}(), passed through *args")
                expr = plain[index].value if 0 <= index < len(plain) else None
            if expr is None:
                raise Unresolved(name, f"a parameter of {fname}() that a call does not pass")
            line = self.positions[call].start.line
            values.append(self.value_of(expr, call, depth, f"passed to {fname}() on line {line}"))
        if len({repr(v.value) for v in values}) != 1:
            raise Unresolved(name, f"{fname}() is called with different {name}: "
                             + ", ".join(f"{v.value!r} ({v.source})" for v in values))
        return values[0]

    def _call_sites(self, func: cst.FunctionDef) -> list[tuple[cst.Call, int]]:
        """The file's calls of `func` (a method by any receiver, `__init__` by its class's name),
        each with the number of leading parameters the call does not pass (self)."""
        owner = self.parents.get(self.parents.get(func))       # FunctionDef -> IndentedBlock -> ClassDef
        method = isinstance(owner, cst.ClassDef) and not any(
            dotted(d.decorator) == "staticmethod" for d in func.decorators)
        name = owner.name.value if method and func.name.value == "__init__" else func.name.value
        out = []
        for node in _walk_all(self.module):
            if isinstance(node, cst.Call):
                callee = node.func
                called = callee.value if isinstance(callee, cst.Name) else (
                    callee.attr.value if isinstance(callee, cst.Attribute) else None)
                if called == name:
                    out.append((node, 1 if method else 0))
        return out

    def _single(self, name: str, assigned: list, where: str, depth: int, constant: bool = False) -> Value:
        if len(assigned) != 1 or assigned[0] is None:
            raise Unresolved(name, f"assigned more than once {where}" if len(assigned) > 1
                             else f"bound by a loop, import or augmented assignment {where}")
        value_node = assigned[0]
        return self.value_of(value_node, value_node, depth,
                             f"module constant {name}" if constant else f"{name} = … {where}")

    def assignments(self, body: cst.CSTNode, name: str) -> list | None:
        """Values assigned to `name` in this scope (None entries for non-simple bindings), not
        descending into nested functions or classes; None when the name is not bound here."""
        found: list = []
        bound = False

        def walk(node):
            nonlocal bound
            for child in node.children:
                if isinstance(child, (cst.FunctionDef, cst.ClassDef)):
                    if child.name.value == name:
                        bound = True
                        found.append(None)
                    continue
                if isinstance(child, cst.Assign):
                    for t in child.targets:
                        if name in _assigned_names(t.target):
                            bound = True
                            found.append(child.value)
                        elif name in {n.value for n in _all_names(t.target)}:
                            bound = True
                            found.append(None)      # tuple unpacking: not followed
                elif isinstance(child, cst.AnnAssign) and name in _assigned_names(child.target):
                    bound = True
                    found.append(child.value)
                elif _binds_otherwise(child, name):
                    bound = True
                    found.append(None)
                walk(child)

        walk(body)
        return found if bound else None

    def _imported(self, name: str) -> bool:
        for node in _walk_all(self.module):
            if isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    bound_as = alias.asname.name if alias.asname else alias.name
                    if isinstance(bound_as, cst.Name) and bound_as.value == name:
                        return True
        return False

    # -- attributes -----------------------------------------------------------------------------
    def _attribute(self, text: str, chain: list[str], at: cst.CSTNode, depth: int) -> Value:
        typed = self._dataclass_of(chain[0], at)
        if typed is not None:
            cls, overrides = typed
            if len(chain) == 2 and chain[1] in overrides:
                return self.value_of(overrides[chain[1]], at, depth, f"{chain[0]} = {cls.name.value}({chain[1]}=…)")
            return self._field_chain(text, cls, chain[1:], depth)
        name = chain[-1]
        candidates: list[Value] = []
        problems: list[str] = []
        for option in self.options.get(name, []):
            try:
                candidates.append(self._option_value(option, depth))
            except Unresolved as e:
                problems.append(e.reason)
        for cls in self.dataclasses.values():
            field = self._field(cls, name)
            if field is not None:
                try:
                    candidates.append(self._field_value(cls, name, field, depth))
                except Unresolved as e:
                    problems.append(e.reason)
        if problems:
            raise Unresolved(text, "; ".join(problems))
        values = {repr(c.value) for c in candidates}
        if len(values) == 1:
            return Value(candidates[0].value, " and ".join(dict.fromkeys(c.source for c in candidates)))
        if not candidates:
            raise Unresolved(text, f"no argparse option or dataclass field named {name} in this file")
        raise Unresolved(text, "ambiguous: " + ", ".join(f"{c.source} = {c.value!r}" for c in candidates))

    def _option_value(self, option: _Option, depth: int) -> Value:
        source = f"argparse {option.flag}"
        if option.default is None:
            if option.action in ("store_true", "store_false"):
                return Value(option.action == "store_false", source)
            raise Unresolved(option.flag, f"argparse {option.flag} has no default")
        value = self.value_of(option.default, option.call, depth, source)
        if isinstance(value.value, str) and option.type_name in ("float", "int"):
            try:   # argparse applies `type` to a string default
                return Value({"float": float, "int": int}[option.type_name](value.value), source)
            except ValueError:
                raise Unresolved(option.flag, f"argparse {option.flag}: default {value.value!r} is not a number") from None
        return value

    @staticmethod
    def _field(cls: cst.ClassDef, name: str) -> cst.CSTNode | None:
        for stmt in cls.body.body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.target.value == name:
                    return small
                if isinstance(small, cst.Assign) and any(_assigned_names(t.target) == [name] for t in small.targets):
                    return small
        return None

    def _field_value(self, cls: cst.ClassDef, name: str, field: cst.CSTNode, depth: int) -> Value:
        source = f"dataclass {cls.name.value}.{name}"
        value = field.value
        if value is None:
            raise Unresolved(name, f"{source} has no default")
        if isinstance(value, cst.Call) and (dotted(value.func) or "").rsplit(".", 1)[-1] == "field":
            default = _kwarg(value, "default")
            if default is None:
                raise Unresolved(name, f"{source} has no plain default")
            value = default
        return self.value_of(value, field, depth, source)

    def _field_chain(self, text: str, cls: cst.ClassDef, chain: list[str], depth: int) -> Value:
        field = self._field(cls, chain[0])
        if field is None:
            raise Unresolved(text, f"dataclass {cls.name.value} has no field {chain[0]}")
        if len(chain) == 1:
            return self._field_value(cls, chain[0], field, depth)
        nested = self._nested_dataclass(field)
        if nested is None:
            raise Unresolved(text, f"dataclass {cls.name.value}.{chain[0]} is not a dataclass of this file")
        return self._field_chain(text, nested, chain[1:], depth)

    def _nested_dataclass(self, field: cst.CSTNode) -> cst.ClassDef | None:
        names = []
        if isinstance(field, cst.AnnAssign):
            names.append(dotted(field.annotation.annotation))
        value = getattr(field, "value", None)
        if isinstance(value, cst.Call):
            names.append(dotted(value.func))
            factory = _kwarg(value, "default_factory")
            if factory is not None:
                names.append(dotted(factory))
        return next((self.dataclasses[n] for n in names if n in self.dataclasses), None)

    def _dataclass_of(self, name: str, at: cst.CSTNode) -> tuple[cst.ClassDef, dict] | None:
        """The dataclass `name` holds where `at` is, from a parameter annotation or a single
        assignment `name = Cls(…)` (with the keyword arguments that override defaults)."""
        for scope in self.enclosing(at):
            if not isinstance(scope, cst.FunctionDef):
                continue
            for p in [*scope.params.posonly_params, *scope.params.params, *scope.params.kwonly_params]:
                if p.name.value == name:
                    ann = dotted(p.annotation.annotation) if p.annotation else None
                    return (self.dataclasses[ann], {}) if ann in self.dataclasses else None
            assigned = self.assignments(scope.body, name)
            if assigned is not None:
                return self._built(assigned)
        assigned = self.assignments(self.module, name)
        return self._built(assigned) if assigned else None

    def _built(self, assigned: list) -> tuple[cst.ClassDef, dict] | None:
        if len(assigned) != 1 or not isinstance(assigned[0], cst.Call):
            return None
        call = assigned[0]
        cls = self.dataclasses.get(dotted(call.func) or "")
        if cls is None or any(a.keyword is None for a in call.args):
            return None
        return cls, {a.keyword.value: a.value for a in call.args}

    def _self_attribute(self, text: str, chain: list[str], at: cst.CSTNode, depth: int) -> Value:
        cls = next((s for s in self.enclosing(at) if isinstance(s, cst.ClassDef)), None)
        if cls is None:
            raise Unresolved(text, "self outside a class")
        if len(chain) != 1:
            raise Unresolved(text, "an attribute of an attribute of self")
        name = chain[0]
        field = self._field(cls, name)
        if field is not None:
            return self._field_value(cls, name, field, depth)
        assigned = []
        for node in _walk_all(cls):
            if isinstance(node, cst.Assign):
                for t in node.targets:
                    if isinstance(t.target, cst.Attribute) and dotted(t.target) == f"self.{name}":
                        assigned.append(node.value)
                    elif isinstance(t.target, cst.Tuple) and isinstance(node.value, cst.Tuple) \
                            and len(t.target.elements) == len(node.value.elements):
                        # self.model, self.clip = model, clip
                        for el, value in zip(t.target.elements, node.value.elements):
                            if isinstance(el.value, cst.Attribute) and dotted(el.value) == f"self.{name}":
                                assigned.append(value.value)
            elif isinstance(node, (cst.AnnAssign, cst.AugAssign)) and isinstance(node.target, cst.Attribute) \
                    and dotted(node.target) == f"self.{name}":
                assigned.append(node.value if isinstance(node, cst.AnnAssign) else None)
        if len(assigned) != 1 or assigned[0] is None:
            raise Unresolved(text, f"self.{name} is assigned {'more than once' if assigned else 'nowhere'} in {cls.name.value}")
        value = self.value_of(assigned[0], assigned[0], depth, f"self.{name} in {cls.name.value}")
        return value


def _binds_otherwise(node: cst.CSTNode, name: str) -> bool:
    """A binding verify does not follow: `x += …`, `for x in …`, `with … as x`, `import x`."""
    if isinstance(node, (cst.AugAssign, cst.For)):
        target = node.target
    elif isinstance(node, cst.AsName):
        target = node.name
    elif isinstance(node, cst.ImportAlias):
        if node.asname is not None:
            return False            # its AsName child is seen on its own
        target = node.name if isinstance(node.name, cst.Name) else None
        if isinstance(node.name, cst.Attribute):        # `import a.b` binds `a`
            return (dotted(node.name) or "").split(".", 1)[0] == name
    else:
        return False
    return name in {n.value for n in _all_names(target)}


def _all_names(node) -> list[cst.Name]:
    if node is None:
        return []
    if isinstance(node, cst.Name):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for el in node.elements for n in _all_names(el.value)]
    if isinstance(node, cst.StarredElement):
        return _all_names(node.value)
    return []


def _walk_all(node: cst.CSTNode):
    yield node
    for child in node.children:
        yield from _walk_all(child)
