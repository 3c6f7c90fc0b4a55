"""Closed world: every place a torch optimizer's object reaches, and whether fix-all accounts
for each.

Tracing (tracing.py) answers "what may this receiver be?" for the uses it knows the shape of.
This module asks the converse of each construction: where does its object go? It follows it
forward, through the names and attributes it is bound to (flow-sensitively), tuple unpacking,
calls into the project's functions (their parameters), returns (every caller), wrappers
(knowledge/wrappers.py) and the schedulers built on it, to every use, and checks each: rewritten
(a step, a zero_grad, a scheduler folded in), reported with what to do (OPX202: `state_dict()`,
`param_groups`...), harmless (`print(opt)`, `if opt is None`), or not accounted for (handed to
a library, kept in a container, torch API the fix cannot rewrite, a use that tracing could not
tie to this optimizer alone). The first use not accounted for blocks the flow: fix-all leaves
it all torch, and the construction's finding names that use.

Uses through an attribute are found by the attribute's name everywhere in the program: read on
an object of a related class, or, with torch optimizer API, on an object whose class the
analysis cannot tell (`self = rref.local_value(); self.optimizer.step()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .arguments import one_line
from .facts import OPTIMIZER_ATTRS, OPTIMIZER_METHODS, Binding, CallSite, Scope, StmtContext, dotted
from .references import refs
from .tracing import Identity

# What torch optimizers and schedulers answer to: read on an object of unknown class, such an
# attribute name is taken to be the optimizer's.
OPTIMIZER_API = (OPTIMIZER_METHODS | OPTIMIZER_ATTRS | {
    "defaults", "register_step_pre_hook", "register_step_post_hook", "register_state_dict_pre_hook",
    "register_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_load_state_dict_post_hook",
    "get_last_lr", "get_lr", "last_epoch", "base_lrs"}) - {"update", "scale", "unscale_"}
# What a use already ported to Optax calls (`opt.update(grads, opt_state, params)`, nnx's
# `opt.update(model, grads)`, `opt.init(params)`).
OPTAX_API = {"update", "init"}
# Builtins that only look at an object (its repr, its identity).
HARMLESS_CALLS = {"print", "repr", "str", "id", "format"}


@dataclass(frozen=True)
class Blocker:
    """A use of an optimizer's object that fix-all cannot rewrite or follow."""
    what: str          # 'passed to torch.save()'
    where: str         # 'line 40', 'engine.py:40'
    order: tuple = ()  # its place in the program, for "the first"
    node: object = field(default=None, compare=False)   # the use, where it is a torch call that tracing
    ctx: object = field(default=None, compare=False)    # could not tie to this optimizer alone

    def __str__(self) -> str:
        return f"{self.what} ({self.where})"


class Reach:
    """The blockers of the program's torch constructions (memoised per construction)."""

    def __init__(self, builder):
        self.b = builder
        self.program = builder.program
        self.tracer = builder.tracer
        self._memo: dict[Identity, list[Blocker]] = {}
        self._linked: dict[Identity, set[Identity]] = {}
        self._callers: dict | None = None
        self._imports: dict | None = None
        self._attrs: dict[str, list] = {}

    def blocker(self, ident: Identity) -> Blocker | None:
        """The first use of `ident`'s object (or of its schedulers') that blocks its flow."""
        found = self.blockers(ident)
        return found[0] if found else None

    def blockers(self, ident: Identity) -> list[Blocker]:
        """Every use that blocks `ident`'s flow, in program order."""
        if ident not in self._memo:
            walk = _Walk(self, ident)
            self._memo[ident] = walk.run()
            self._linked[ident] = walk.linked
        return self._memo[ident]

    def linked(self, ident: Identity) -> set[Identity]:
        """Identities that share a use with `ident` (a receiver that may be either): one flow."""
        self.blocker(ident)
        return self._linked.get(ident, set())

    # -- program-wide tables, built on first need -------------------------------------------
    def callers(self, function: Scope) -> list[tuple[cst.Call, StmtContext]]:
        """The calls that run `function`, and calls of a method of its name on objects whose
        class is unknown (they may run it)."""
        if self._callers is None:
            self._callers = {}
            methods = self.tracer._methods
            for site in self.program.calls:
                func = site.call.func
                name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(
                    func, cst.Attribute) else None
                if name is None:
                    continue
                found = self.tracer.function_called(site.call, site.ctx.scope)
                if found is not None:
                    self._callers.setdefault(id(found), []).append((site.call, site.ctx))
                elif isinstance(func, cst.Attribute) and name in methods and self.tracer.class_of(
                        func.value, site.ctx.scope) is None and not self.tracer.library_module(
                        func.value, site.ctx.scope):
                    self._callers.setdefault(("method", name), []).append((site.call, site.ctx))
        out = list(self._callers.get(id(function), []))
        if function.parent is not None and function.parent.kind == "class":
            out += self._callers.get(("method", function.name), [])
        return out

    def attribute_reads(self, attr: str) -> list[tuple[cst.Attribute, StmtContext, Scope | None]]:
        """Every read of `<object>.<attr>` in the program, with the object's class where it is
        known (module attributes such as `torch.optim` left out)."""
        found = self._attrs.get(attr)
        if found is None:
            found = self._attrs[attr] = []
            for unit in self.program.units:
                for chunk in unit.doc.chunks:
                    if chunk.module is None or attr not in chunk.text:
                        continue
                    r = refs(chunk)
                    for node, ctx in r.attrs(attr):
                        if r.is_store(node, ctx):
                            continue
                        owner = self.tracer.class_of(node.value, ctx.scope)
                        if owner is not None or self.tracer.qualified(node, ctx.scope) is None:
                            found.append((node, ctx, owner))
        return found

    def optimizer_api(self, node, ctx: StmtContext) -> bool:
        """Is `node` used with torch optimizer API (`<node>.step()`, `<node>.param_groups`)?"""
        up = refs(ctx.chunk).parent_of(node, ctx)
        return isinstance(up, cst.Attribute) and up.value is node and up.attr.value in OPTIMIZER_API

    def importers(self, qualified: str) -> list[tuple[str, Binding]]:
        """Import bindings, anywhere in the program, of `package.module.name`."""
        if self._imports is None:
            self._imports = {}
            for scope in self.program.scopes:
                for name, bindings in scope.bindings.items():
                    for b in bindings:
                        if b.kind == "import" and b.qualified and not b.qualified.endswith(".*"):
                            absolute = self.tracer._absolute(b.qualified, scope)
                            if absolute:
                                self._imports.setdefault(absolute, []).append((name, b))
        return self._imports.get(qualified, [])


class _Walk:
    """Following one construction's object (and what is built on it) to its every use."""

    def __init__(self, reach: Reach, ident: Identity):
        self.reach = reach
        self.ident = ident
        self.b = reach.b
        self.program = reach.program
        self.tracer = reach.tracer
        self.work: list[tuple[cst.CSTNode, StmtContext, int | None]] = []
        self.seen: set = set()
        self.blockers: list[Blocker] = []
        self.linked: set[Identity] = set()
        self.members = {ident}       # the optimizer, and the schedulers built on it

    def run(self) -> list[Blocker]:
        self.push(self.ident.call, self.ident.ctx)
        steps = 0
        while self.work and steps < 4000:
            steps += 1
            node, ctx, index = self.work.pop()
            self.follow(node, ctx, index)
        if self.work:
            self.block("reaches more places than the analysis tracks", self.ident.call, self.ident.ctx)
        return sorted(self.blockers, key=lambda x: x.order)

    # -- bookkeeping ------------------------------------------------------------------------
    def push(self, node, ctx: StmtContext, index: int | None = None) -> None:
        key = (id(node), index)
        if key not in self.seen:
            self.seen.add(key)
            self.work.append((node, ctx, index))

    def once(self, key) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def block(self, what: str, node, ctx: StmtContext, untraced_use: bool = False) -> None:
        span = self.program.span(node, ctx)
        unit = self.program.unit_of(ctx)
        line = span.start.line + 1
        where = f"line {line}" if unit is self.program.primary else f"{_short(unit.path or unit.module_name)}:{line}"
        self.blockers.append(Blocker(what, where, (unit.index, span.start.line, span.start.col),
                                     node if untraced_use else None, ctx if untraced_use else None))

    def parent(self, node, ctx: StmtContext):
        return refs(ctx.chunk).parent_of(node, ctx)

    # -- one occurrence of the object -------------------------------------------------------
    def follow(self, node, ctx: StmtContext, index: int | None) -> None:
        """`node` evaluates to the object (`index` None) or to a tuple whose element `index` is."""
        up = self.parent(node, ctx)
        while True:           # what hands the value on unchanged
            if isinstance(up, cst.IfExp) and up.test is not node or isinstance(up, cst.BooleanOperation):
                node, up = up, self.parent(up, ctx)
            elif isinstance(up, cst.NamedExpr) and up.value is node:
                self.bind(up.target, ctx, index)
                node, up = up, self.parent(up, ctx)
            else:
                break
        if index is not None:
            return self.tuple_use(node, up, ctx, index)
        if isinstance(up, cst.Attribute) and up.value is node:
            return self.member(node, up, ctx)
        if isinstance(up, cst.Arg):
            call = self.parent(up, ctx)
            if isinstance(call, cst.Call) and up in call.args:
                return self.argument(node, up, call, ctx)
            return self.block("is used as a base or keyword of a class", node, ctx)
        if isinstance(up, cst.Element):
            holder = self.parent(up, ctx)
            if self._handed_to_accounted_call(holder, ctx):
                return None       # `SequentialLR(opt, schedulers=[warmup, decay])`: folded in with it
            if isinstance(holder, (cst.Tuple, cst.List)) and not any(
                    isinstance(e, cst.StarredElement) for e in holder.elements):
                return self.push(holder, ctx, holder.elements.index(up))
            return self.block(f"is kept in `{_snippet(holder, node)}`, which fix-all cannot follow", node, ctx)
        if isinstance(up, cst.DictElement):
            return self.block(f"is kept in `{_snippet(self.parent(up, ctx), node)}`, which fix-all cannot follow",
                              node, ctx)
        if isinstance(up, (cst.Assign, cst.AnnAssign)) and up.value is node:
            for target in ([t.target for t in up.targets] if isinstance(up, cst.Assign) else [up.target]):
                self.bind(target, ctx, None)
            return None
        if isinstance(up, cst.Return):
            return self.returned(node, ctx, None)
        if _harmless(node, up):
            return None
        return self.block(f"is used in `{_snippet(up, node)}`, which fix-all cannot follow", node, ctx)

    def _handed_to_accounted_call(self, container, ctx: StmtContext) -> bool:
        arg = self.parent(container, ctx)
        call = self.parent(arg, ctx) if isinstance(arg, cst.Arg) else None
        return isinstance(call, cst.Call) and self.accounted(call, ctx)

    def tuple_use(self, node, up, ctx: StmtContext, index: int) -> None:
        """A tuple holding the object at `index` (a wrapper's or a function's result)."""
        if isinstance(up, (cst.Assign, cst.AnnAssign)) and up.value is node:
            for target in ([t.target for t in up.targets] if isinstance(up, cst.Assign) else [up.target]):
                if isinstance(target, (cst.Tuple, cst.List)):
                    elements = target.elements
                    if any(isinstance(e, cst.StarredElement) for e in elements) or index >= len(elements):
                        self.block("is unpacked into a starred target", node, ctx)
                    else:
                        self.bind(elements[index].value, ctx, None)
                else:
                    self.bind(target, ctx, index)
            return None
        if isinstance(up, cst.Return):
            return self.returned(node, ctx, index)
        if isinstance(up, cst.Subscript) and up.value is node:
            element = _literal_index(up)
            if element == index:
                return self.follow(up, ctx, None)
            if element is not None:
                return None           # another element of the tuple
        if _harmless(node, up):
            return None
        if isinstance(up, cst.Element):        # nested: `return [opt_g, opt_d], [sched]`
            outer = node
            while isinstance(self.parent(outer, ctx), cst.Element):
                outer = self.parent(self.parent(outer, ctx), ctx)
            if isinstance(self.parent(outer, ctx), cst.Return) and not self.reach.callers(ctx.scope) \
                    and ctx.scope.kind == "function":
                return self.returned(outer, ctx, None)
            return self.block(f"is nested in `{_snippet(outer, node)}`, which fix-all cannot follow", node, ctx)
        call = self.parent(up, ctx) if isinstance(up, cst.Arg) else None
        if isinstance(call, cst.Call):
            return self.block(f"is passed to {_callee_text(call)}() in `{_snippet(node, node)}`, which fix-all does "
                              "not follow", node, ctx)
        return self.block(f"is kept in `{_snippet(node, node)}`, used as `{_snippet(up, node)}`, which fix-all cannot "
                          "follow", node, ctx)

    # -- where the object is bound ------------------------------------------------------------
    def bind(self, target, ctx: StmtContext, index: int | None) -> None:
        if isinstance(target, cst.Name):
            b = next((x for x in ctx.scope.bindings.get(target.value, []) if x.ctx is ctx), None)
            if b is None:
                return self.block(f"is bound to {target.value} in a way the analysis does not follow", target, ctx)
            return self.name_reads(target.value, b, index)
        if isinstance(target, cst.Attribute) and index is None:
            cls = self.tracer.class_of(target.value, ctx.scope)
            if cls is None:
                return self.block(f"is stored on {one_line(target.value)}, whose class the analysis cannot tell",
                                  target, ctx)
            return self.attr_reads(cls, target.attr.value)
        if isinstance(target, cst.Subscript):
            return self.block(f"is stored in {one_line(target.value)}[...]", target, ctx)
        return self.block(f"is unpacked into {one_line(target)}", target, ctx)

    def name_reads(self, name: str, b: Binding, index: int | None) -> None:
        """Every read of `name` that the binding `b` can reach."""
        if not self.once(("name", id(b), index)):
            return
        unit = self.program.unit_of(b.ctx)
        scope = b.scope
        module_level = scope is None or scope.kind == "module" or name in scope.globals
        chunks = unit.doc.chunks if module_level else [b.ctx.chunk]
        for chunk in chunks:
            if chunk.module is None or name not in chunk.text:
                continue
            r = refs(chunk)
            for node, ctx in r.names(name):
                if r.is_store(node, ctx):
                    continue
                bindings = self.tracer.lookup(name, ctx.scope)
                if not bindings or not any(x is b for x in bindings):
                    continue
                if not any(x is b for x in self.tracer.reaching(bindings, ctx)):
                    continue
                self.push(node, ctx, index)
        if module_level and unit.module_name:
            qualified = f"{unit.module_name}.{name}"
            for alias, other in self.reach.importers(qualified):     # `from train import optimizer`
                if other.ctx is not None:
                    self.name_reads(alias, other, index)
            for other in self.program.units:                          # `train.optimizer`
                for chunk in other.doc.chunks:
                    if chunk.module is None or name not in chunk.text:
                        continue
                    for node, ctx in refs(chunk).attrs(name):
                        if self.tracer.qualified(node, ctx.scope) == qualified:
                            self.push(node, ctx, index)

    def attr_reads(self, cls: Scope, attr: str) -> None:
        """Every read of `<object>.<attr>` where the object may be an instance of `cls`."""
        if not self.once(("attr", id(cls), attr)):
            return
        family = self.tracer.bases(cls)
        for node, ctx, owner in self.reach.attribute_reads(attr):
            if owner is not None:
                if any(owner is c for c in family) or any(cls is c for c in self.tracer.bases(owner)):
                    self.push(node, ctx)
            elif owner is None and self.reach.optimizer_api(node, ctx):
                self.push(node, ctx)

    # -- what is done with it -----------------------------------------------------------------
    def member(self, node, attribute: cst.Attribute, ctx: StmtContext) -> None:
        name = attribute.attr.value
        up = self.parent(attribute, ctx)
        use = up if isinstance(up, cst.Call) and up.func is attribute else attribute
        if refs(ctx.chunk).is_store(attribute, ctx) or isinstance(up, cst.AugAssign):
            return self.block(f"has {one_line(attribute)} assigned", attribute, ctx)
        if self.accounted(use, ctx):
            return None
        if use is not attribute and name in OPTAX_API:
            return None     # already written the Optax way (an earlier quick fix): the construction completes it
        shown = f"{one_line(attribute)}()" if use is not attribute else one_line(attribute)
        if name in OPTIMIZER_API:
            return self.block(f"reaches {shown}, which may act on another object too, so fix-all cannot rewrite it",
                              use, ctx, untraced_use=True)
        return self.block(f"reaches {shown}, torch API that fix-all cannot rewrite", use, ctx)

    def argument(self, node, arg: cst.Arg, call: cst.Call, ctx: StmtContext) -> None:
        built = self.tracer.construction(call)
        if built is not None and built.kind == "scheduler":
            return self.scheduler(built, call, ctx)
        if self.accounted(call, ctx):              # `scaler.step(opt)`, `scaler.unscale_(opt)`
            return None
        wrapper = self.tracer.wrapper_of(call, ctx.scope)
        if wrapper is not None:
            return self.wrapped(node, arg, call, ctx, wrapper)
        site = CallSite(call, ctx)
        callee, _ = self.tracer._callee(site)
        if callee is not None:
            params = [p for p, a in self.tracer._bind_call(site) if a is node]
            if not params:
                return self.block(f"is passed to {_callee_text(call)}() through *args or **kwargs", node, ctx)
            for p in params:
                self.name_reads(p.node.name.value, p, None)
            return None
        if isinstance(call.func, cst.Name) and call.func.value in HARMLESS_CALLS and self.tracer.lookup(
                call.func.value, ctx.scope) is None:
            return None
        return self.block(f"is passed to {_callee_text(call)}(), which fix-all does not follow", node, ctx)

    def wrapped(self, node, arg: cst.Arg, call: cst.Call, ctx: StmtContext, wrapper) -> None:
        """`accelerator.prepare(model, opt)`: what the wrapper hands back holds it."""
        if wrapper.results == "released":
            return None
        if wrapper.owns:
            return self.block(f"is handed to {wrapper.name}, whose engine keeps and steps it", node, ctx)
        positional = [a for a in call.args if a.keyword is None and not a.star]
        kind, _, rest = wrapper.results.partition(":")
        if kind == "same" and arg.keyword is None and not arg.star and arg in positional:
            if len(call.args) == 1:
                return self.push(call, ctx, None)
            return self.push(call, ctx, positional.index(arg))
        name, _, at = rest.partition("@")
        if kind == "keyword" and arg.keyword is not None and arg.keyword.value == name:
            return self.push(call, ctx, int(at))
        return self.block(f"is passed to {wrapper.name} in a way the analysis does not follow", node, ctx)

    def scheduler(self, sched: Identity, call: cst.Call, ctx: StmtContext) -> None:
        """A scheduler built on the optimizer folds into it: it must convert too."""
        if not self.accounted(call, ctx):
            why = self.b.scheduler_problem(sched)
            return self.block(f"drives a {sched.name} that stays torch" + (f" ({why})" if why else ""), call, ctx)
        self.members.add(sched)
        self.push(call, ctx)

    def returned(self, node, ctx: StmtContext, index: int | None) -> None:
        function = ctx.scope
        if function.kind != "function":
            return self.block("is returned outside a function", node, ctx)
        if not self.once(("returned", id(function), index)):
            return None
        callers = self.reach.callers(function)
        if not callers:
            cls = function.parent if function.parent is not None and function.parent.kind == "class" else None
            library = [one_line(a.value) for a in (cls.node.bases if cls is not None else ())
                       if self.tracer.class_ref(a.value, cls.parent) is None]
            who = f"only its base class {library[0]} may call" if library else "no analysed code calls"
            return self.block(f"is returned by {function.name}(), which {who}", node, ctx)
        for call, cctx in callers:
            self.push(call, cctx, index)
        return None

    # -- was a use rewritten or reported? -------------------------------------------------------
    def accounted(self, use, ctx: StmtContext) -> bool:
        """Does a finding rewrite or report this use as one of the flow's (a step, a zero_grad,
        `state_dict()`, a scheduler folded in)? Other files' uses: would their analysis?"""
        if self.program.in_primary(ctx):
            ids = self.b.handled.get(id(use))
        else:
            ids = self.b.would_handle(use, ctx)
        if not ids or not ids & self.members:
            return False
        self.linked |= set(ids) - self.members
        return True


def _harmless(node, up) -> bool:
    """Uses that only look at the object: `if opt is None`, `print(f"{opt}")`, a bare `opt`."""
    if isinstance(up, (cst.Expr, cst.Comparison, cst.ComparisonTarget, cst.FormattedStringExpression,
                       cst.Del, cst.Assert)):
        return True
    if isinstance(up, cst.UnaryOperation):
        return isinstance(up.operator, cst.Not)
    if isinstance(up, (cst.If, cst.While, cst.IfExp)):
        return up.test is node
    return False


def _literal_index(sub: cst.Subscript) -> int | None:
    if len(sub.slice) == 1 and isinstance(sub.slice[0].slice, cst.Index):
        value = sub.slice[0].slice.value
        if isinstance(value, cst.Integer):
            return int(value.value)
    return None


def _callee_text(call: cst.Call) -> str:
    parts = dotted(call.func)
    return ".".join(parts) if parts else one_line(call.func)


def _snippet(node, inner) -> str:
    text = one_line(node) if node is not None else one_line(inner)
    return text if len(text) <= 60 else text[:57] + "..."


def _short(path: str | None) -> str:
    if not path:
        return "another file"
    return path.replace("\\", "/").rsplit("/", 1)[-1]


__all__ = ["Reach", "Blocker", "OPTIMIZER_API"]
