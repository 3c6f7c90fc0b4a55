"""Where an optimizer's hyperparameters set by hand live once converted: one state (a single
group, or every group set alike), or each parameter group's own (the groups became an
`optax.multi_transform`, each label's transform wrapped in `optax.inject_hyperparams`).

The groups must be known where the optimizer is built (a literal list of group dicts, or one
module's `.parameters()`: one group); `group_writes.py` unrolls each use over them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst

from ..knowledge import catalog
from ..knowledge import hyperparams as injected_knowledge
from ..knowledge.param_groups import Groups, group_state
from .arguments import call_arguments
from .group_writes import Groups as GroupsInfo, group_of, unroll
from .hyperparams import HyperUse
from .modules import parameters_owner


@dataclass
class HyperState:
    keys: tuple[str, ...]                       # torch keys kept in the state ('lr', 'weight_decay')
    by_group: tuple[tuple[str, ...], ...]       # per group, its keys ((): one state for all)
    paths: tuple[str, ...]                      # per group, its state's place from the optimizer's ('' : the top)
    groups: GroupsInfo                          # what the unrolling knows (count 1: one state)
    sources: tuple[str, ...] = ()               # per group (several states), its params' text
    # per state (paths), torch key -> its names in that state's hyperparams (the emission's: `betas`
    # is b1, b2; a name the chain's own text uses is named apart) and -> the links that read it
    names: tuple[dict, ...] = ()
    links: tuple[dict, ...] = ()


def is_hyperparameter(key: str) -> bool:
    return injected_knowledge.optax_names(key) is not None


def form_keys(form: HyperUse) -> list[str]:
    """The keys a use writes or reads in the state (a loop's own reads of its groups' hyperparameters too)."""
    return list(dict.fromkeys(list(form.keys) + [k for k in form.group_reads if is_hyperparameter(k)]))


def group_info(builder, ident, forms: list[HyperUse], exact: bool) -> GroupsInfo | str | None:
    """The optimizer's groups as the unrolling sees them; a string: why they cannot be told apart;
    None: they are not written out where it is built (one group is taken only for a module's
    `.parameters()` or a list of tensors). `exact`: every param_groups use of the flow was read
    (else no group key is taken for a constant: an unread use may write it)."""
    groups = builder.groups_of(ident)
    if isinstance(groups, str):
        return groups
    outer: dict[str, str] = {k: repr(v) for k, v in _defaults(ident).items()
                             if isinstance(v, (int, float, tuple)) and not isinstance(v, bool)}
    if ident.call is not None:
        _, keywords = call_arguments(ident.call, ident.ctx.chunk.cache)
        outer.update({k: v.source for k, v in keywords if k is not None})
    if isinstance(groups, Groups):
        dicts = [{**outer, **{k: v.source for k, v in g.items() if k != "params"}} for g in groups.groups]
    else:
        node = builder._params_node(ident.call, ident.ctx)
        one = parameters_owner(node) is not None or (isinstance(node, (cst.List, cst.Tuple)) and not any(
            isinstance(e, cst.Element) and isinstance(e.value, cst.Dict) for e in node.elements))
        if not one:
            return None
        dicts = [dict(outer)]
    written = frozenset(k for f in forms for k, _, _ in f.writes)
    return GroupsInfo(len(dicts), [{k: v for k, v in d.items() if _literal(v)} for d in dicts], written,
                      is_hyperparameter, unread=not exact)


def _defaults(ident) -> dict:
    """torch's defaults of the class built; of a class chosen at run time, those every candidate
    shares (a group's `weight_decay` read in the loop is the same whichever is chosen)."""
    keys = [k for _, k in ident.choice.candidates] if ident.choice is not None and len(
        ident.choice.candidates) > 1 else [ident.name]
    rows = [catalog.OPTIMIZERS.get(k) if k else None for k in keys]
    if any(r is None for r in rows):
        return {}
    shared = dict(rows[0].defaults())
    for r in rows[1:]:
        other = r.defaults()
        shared = {k: v for k, v in shared.items() if k in other and other[k] == v}
    return shared


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def decide(builder, ident, forms: list[HyperUse], info: GroupsInfo | str | None, emission) -> HyperState | str:
    """One state where it trains like torch (every use alike, or one group), else one per group;
    why neither construction can keep them (`emission(extras)`: the builder's)."""
    from ..knowledge.emit import Extras
    keys = tuple(dict.fromkeys(k for f in forms for k in form_keys(f)))
    if not keys:
        return "nothing it sets or reads through param_groups converts"
    count = info.count if isinstance(info, GroupsInfo) else None
    why = ""
    if count == 1 or not any(f.per_group for f in forms):
        e = emission(Extras(inject=keys))
        if e is not None and e.ok:
            one = info if isinstance(info, GroupsInfo) and count == 1 else GroupsInfo(
                1, [info.constants[0] if isinstance(info, GroupsInfo) else {}], frozenset(keys), is_hyperparameter)
            return HyperState(keys, (), (e.injected_path,), one, names=tuple(e.injected), links=tuple(e.injected_links))
        why = "; ".join(e.problems) if e is not None and e.problems else "its construction has no rewrite"
    if isinstance(info, str):
        return f"its parameter groups cannot be told apart statically ({info})"
    if not isinstance(info, GroupsInfo) or info.count < 2:
        return why or "its construction cannot keep them in its state"
    per: list[list[str]] = [[] for _ in range(info.count)]

    def reader(g: int, key: str) -> str:
        per[g].append(key)
        return "_"

    for f in forms:
        unrolled = unroll(f, info, reader)
        if isinstance(unrolled, str):
            return unrolled
        for w in unrolled:
            per[w.group].append(w.key)
        if f.kind == "read":
            per[group_of(f, info.count)].append(f.key)
    by_group = tuple(tuple(dict.fromkeys(p)) for p in per)
    e = emission(Extras(inject=keys, inject_groups=by_group))
    if e is None or not e.ok:
        return "; ".join(e.problems) if e is not None and e.problems else "its construction has no rewrite"
    groups = builder.groups_of(ident)
    sources = tuple(g["params"].source for g in groups.groups) if isinstance(groups, Groups) else ()
    return HyperState(keys, by_group, tuple(group_state(i) for i in range(info.count)), info, sources,
                      names=tuple(e.injected), links=tuple(e.injected_links))


def where(target, receiver: str, names, state: HyperState, key: str, group: int, inner: bool = False,
          write: bool = False) -> str:
    """The expression reading (and writing) torch key `key` of group `group` in the converted state;
    `betas` is two of them: `(<b1>, <b2>)` (`write`: without the parentheses)."""
    places = [target.hyperparam(receiver, names, n, inner, state.paths[group]) for n in state_names(state, key, group)]
    if len(places) == 1:
        return places[0]
    return ", ".join(places) if write else f"({', '.join(places)})"


def state_names(state: HyperState, key: str, group: int) -> tuple[str, ...]:
    """The names torch key `key` of group `group` has in its state's hyperparams."""
    own = state.names[group].get(key) if group < len(state.names) else None
    return own or injected_knowledge.optax_names(key)


def message(builder, form: HyperUse, use, receiver: str, names, state: HyperState) -> str:
    """OPX107's: what the use sets or reads, and where that lives now."""
    def at(key: str, group: int) -> str:
        return where(builder.target, receiver, names, state, key, group)

    if form.kind == "read":
        return f"{builder.text(form.read, use.ctx)} → {at(form.key, group_of(form, state.groups.count))}"
    writes = unroll(form, state.groups, lambda g, k: at(k, g))
    first = form.writes[0]
    keys = ", ".join(repr(k) for k in form.keys)
    if form.kind == "write":
        what = f"{receiver}.param_groups[{form.group}][{first[0]!r}]"
    elif len(state.paths) == 1:
        what = f"every group's {keys} ({receiver}.param_groups)"
    else:
        what = f"each group's {keys}, group by group ({receiver}.param_groups)"
    places = ", ".join(dict.fromkeys(at(w.key, w.group) for w in writes))
    return f"{what} {first[1]} ... → {places} {first[1]} ..."


def moves(target, form: HyperUse, receiver: str, names, state: HyperState) -> list[str]:
    """What the hover lists: each torch value the use sets or reads, and where it lives now."""
    def torch_side(key: str, group: int) -> str:
        if len(state.paths) == 1:
            return f"`{key}`" if form.kind == "loop" else f"`param_groups[{form.group}][{key!r}]`"
        source = f" (`{state.sources[group]}`)" if group < len(state.sources) else ""
        return f"group {group}'s `{key}`{source}"

    if form.kind == "read":
        g = group_of(form, state.groups.count)
        pairs = [(form.key, g)]
    else:
        pairs = [(w.key, w.group) for w in unroll(form, state.groups, lambda g, k: "_")]
    return [f"{torch_side(k, g)} → `{where(target, receiver, names, state, k, g)}`{_link(state, k, g)}"
            for k, g in dict.fromkeys(pairs)]


def _link(state: HyperState, key: str, group: int) -> str:
    """Which links of the injected chain read it, and whether its name was set apart."""
    links = state.links[group].get(key, ()) if group < len(state.links) else ()
    said = ", ".join(f"`{f}`" for f in links)
    own = state_names(state, key, group)
    if own != injected_knowledge.optax_names(key):
        apart = (f"named {', '.join(f'`{n}`' for n in own)}: {', '.join(f'`{n}`' for n in injected_knowledge.optax_names(key))} "
                 "already names a value of yours the chain uses")
        return f" (read by {said} in the chain; {apart})" if said else f" ({apart})"
    return f" (read by {said} in the chain)" if said else ""


def kept(target, receiver: str, names, state: HyperState) -> list[str]:
    """What the construction's hover lists: where each group keeps the hyperparameters set by hand."""
    if len(state.paths) == 1:
        return []
    out = []
    for g, keys in enumerate(state.by_group):
        if keys:
            source = f" (`{state.sources[g]}`)" if g < len(state.sources) else ""
            out.append(f"group {g}{source}: {', '.join(f'`{k}`' for k in keys)} in `"
                       f"{where(target, receiver, names, state, keys[0], g).rsplit('.hyperparams', 1)[0]}"
                       f".hyperparams`")
    return out
