"""Build the Optax expression for one torch optimizer call from its catalog row.

Input: the call's arguments bound to torch's signature (`ArgValue`s, made by the analysis from
the libcst tree). Output: an `Emission` whose transforms are structured (`TxCall`: a function
and its keywords, each keyword's value either new text or a reference to the user's own
argument), so that the rewrite can reuse the user's nodes verbatim, comments and all, and
messages can print the same expression on one line.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .catalog import ANY, BY_HAND, CHANGED, EXPR, FIXED, KNOWN_NONZERO, NONZERO, REQUIRED, ZERO, OptimizerRow

UNKNOWN = object()   # a value that is an expression, not a literal
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_DERIVED = re.compile(r"\{(\w+)\}\[(\d+)\]")
LINE_LIMIT = 88
_FALSY = (0, 0.0, False, None)


@dataclass(frozen=True)
class ArgValue:
    """One argument as the emitter sees it. `source` is its text on one line; `node` the libcst
    node it came from (None for values the fixes make up, such as a folded schedule)."""
    source: str
    literal: Any = UNKNOWN               # its value, when it is a literal
    elements: tuple["ArgValue", ...] | None = None   # the items of a tuple/list display
    atomic: bool = True                  # safe to embed without parentheses
    node: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Value:
    """A keyword's value in an emitted transform: its text, and when it is exactly one of the
    user's arguments (or one element of it, `betas=(a, b)` -> `b1=a`), which one."""
    text: str
    ref: tuple[str, int | None] | None = None


@dataclass(frozen=True)
class TxCall:
    """One transform of the emitted chain: `func(arg, ..., kw=value, ...)`."""
    func: str
    kws: tuple[tuple[str, Value], ...] = ()
    args: tuple[Value, ...] = ()

    def text(self) -> str:
        return f"{self.func}({', '.join([v.text for v in self.args] + [f'{k}={v.text}' for k, v in self.kws])})"


def tx_text(tx: "TxCall | str") -> str:
    return tx.text() if isinstance(tx, TxCall) else tx


@dataclass(frozen=True)
class Extras:
    """What the rest of the training loop folds into the optimizer: a schedule for its learning
    rate, a schedule for beta1 / momentum (OneCycleLR), and transforms that run first (clipping)."""
    learning_rate: str | None = None
    momentum: str | None = None
    prefix: tuple[str, ...] = ()
    decay_mask: str | None = None     # the leaves weight decay applies to (timm's exclusion of biases and norms)
    inject: tuple[str, ...] = ()      # torch hyperparameters the loop sets by hand ('lr'): kept in the state
    # Per parameter group, the ones set or read group by group (`param_groups[1]["lr"] = 0.0`): each
    # group's transform keeps its own in its state (multi_transform); () when none is.
    inject_groups: tuple[tuple[str, ...], ...] = ()


# Transforms whose weight decay takes a mask, and the keyword that does.
DECAY_MASK_KW = {"optax.adamw": "mask", "optax.add_decayed_weights": "mask", "optax.lion": "mask",
                 "optax.adadelta": "weight_decay_mask", "optax.nadamw": "mask", "optax.adamaxw": "mask"}


# Names a momentum schedule replaces; the transform then takes it through inject_hyperparams.
_MOMENTUM_NAMES = ("b1", "momentum")


@dataclass
class Emission:
    torch: str
    transforms: list = field(default_factory=list)      # TxCall, or text where nothing is the user's
    needs_jnp: bool = False
    needs_helpers: bool = False
    notes: list[str] = field(default_factory=list)
    exact: bool = True
    difference: str = ""
    problems: list[str] = field(default_factory=list)   # no faithful rewrite: OPX201
    placeholders: tuple[str, ...] = ()                  # names the user must define (OPX203)
    params_source: str | None = None
    recipes: list = field(default_factory=list)         # the catalog Variants used (tests, docs)
    # Per state holding hyperparameters set by hand (one; a multi_transform's: one per group): torch
    # key -> its names in that state's hyperparams, and -> the chain's links that read it (hover).
    injected: list = field(default_factory=list)
    injected_links: list = field(default_factory=list)
    injected_path: str = ""    # from the state to the link that keeps them ('[1]': a chain's second), '' the top

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.transforms)

    @property
    def texts(self) -> list[str]:
        return [tx_text(t) for t in self.transforms]

    @property
    def head(self) -> str:
        """What the fix converts to, for titles: 'optax.adam', 'optax.chain(add_decayed_weights, adam)'."""
        funcs = [_func_name(t) for t in self.texts]
        if len(funcs) == 1:
            return funcs[0] if not funcs[0].startswith("(") else "optax (chosen by a flag at run time)"
        return "optax.chain(" + ", ".join(f.rsplit(".", 1)[-1] for f in funcs) + ")"

    def expression(self, indent: str = "", optax_name: str = "optax") -> str:
        parts = [rename_optax(t, optax_name) for t in self.texts]
        if len(parts) == 1:
            return parts[0]
        one_line = f"{optax_name}.chain({', '.join(parts)})"
        if len(indent) + len(one_line) <= LINE_LIMIT or any(" if " in p for p in parts):
            return one_line
        inner = indent + "    "
        return f"{optax_name}.chain(\n" + "".join(f"{inner}{p},\n" for p in parts) + f"{indent})"

    def one_line(self) -> str:
        texts = self.texts
        if len(texts) == 1:
            return texts[0]
        return f"optax.chain({', '.join(texts)})"


_INJECTED = re.compile(r"optax\.inject_hyperparams\(([\w.]+)\)")


def _func_name(transform: str) -> str:
    """'optax.inject_hyperparams(optax.radam)(...)' -> 'optax.radam'; 'optax.adam(...)' -> 'optax.adam'."""
    m = _INJECTED.match(transform)
    if m:
        return m.group(1)
    return transform.split("(", 1)[0]


def rename_optax(text: str, optax_name: str) -> str:
    if optax_name == "optax":
        return text
    return re.sub(r"(?<![\w.])optax\.", optax_name + ".", text)


STAR = object()     # an argument passed with * or ** (keyword None)
_BY_HAND = "!"      # args[_BY_HAND + name]: the loop sets `name` by hand


def bind(row: OptimizerRow, positional: list, keywords: list[tuple[str | None, ArgValue]]
         ) -> tuple[dict[str, ArgValue], ArgValue | None, list[str]]:
    """Map a call's arguments to torch's signature: (args, params, problems). `positional` holds
    ArgValues (STAR for `*x`); `keywords` (name, ArgValue) pairs, name None for `**x`."""
    names = ["params"] + [n for n, _ in row.signature]
    allowed = set(names) | {n for n, _ in row.keyword_only}
    args: dict[str, ArgValue] = {}
    problems: list[str] = []
    for i, value in enumerate(positional):
        if value is STAR:
            problems.append("arguments passed with * cannot be mapped statically")
            continue
        if i >= len(names):
            message = f"{row.qualified} takes at most {len(names)} positional arguments"
            if message not in problems:
                problems.append(message)
            continue
        args[names[i]] = value
    for name, value in keywords:
        if name is None:
            problems.append("arguments passed with ** cannot be mapped statically")
        elif name not in allowed:
            hint = _close_name(name, allowed)
            problems.append(f"unknown argument {name!r} for {row.qualified}"
                            + (f" (did you mean {hint!r}?)" if hint else ""))
        elif name in args:
            problems.append(f"argument {name!r} given twice")
        else:
            args[name] = value
    params = args.pop("params", None)
    if params is None and not problems:
        problems.append("no parameters are passed")
    return args, params, problems


def _close_name(name: str, allowed: set[str]) -> str | None:
    import difflib
    match = difflib.get_close_matches(name, sorted(allowed - {"params"}), n=1, cutoff=0.75)
    return match[0] if match else None


def _effective(row: OptimizerRow, args: dict[str, ArgValue], name: str) -> Any:
    if name in args:
        return args[name].literal
    if name in row.derived:                      # `b1`: element 0 of `betas`
        base, index = _parse_derived(row, name)
        if base in args:
            value = args[base]
            if value.elements is not None and index < len(value.elements):
                return value.elements[index].literal
            return UNKNOWN
        return row.defaults()[base][index]
    return row.defaults().get(name)


def _holds(row: OptimizerRow, args: dict[str, ArgValue], cond: tuple, assume: dict[str, bool]) -> bool:
    for name, want in cond:
        if name in assume:
            value = assume[name]
        else:
            value = _effective(row, args, name)
        scheduled = "@" + name in args
        if want is ANY:
            ok = name in args
        elif want is NONZERO:
            ok = value is UNKNOWN or value not in _FALSY
        elif want is ZERO:
            ok = value is not UNKNOWN and value in _FALSY
        elif want is EXPR:
            ok = value is UNKNOWN and not scheduled
        elif want is KNOWN_NONZERO:
            ok = scheduled or (value is not UNKNOWN and value not in _FALSY)
        elif want is CHANGED:
            ok = name in args and (value is UNKNOWN or value != row.defaults().get(name))
        elif want is BY_HAND or want is FIXED:
            ok = (_BY_HAND + name in args) == (want is BY_HAND)
        else:
            ok = value is not UNKNOWN and value == want
        if not ok:
            return False
    return True


def _conditions(row: OptimizerRow):
    for variant in row.variants:
        yield from variant.when
        for tx in variant.chain:
            yield from tx.when


def _undecided_flags(row: OptimizerRow, args: dict[str, ArgValue]) -> list[str]:
    """Boolean arguments that choose a recipe but are expressions (`amsgrad=cfg.amsgrad`)."""
    flags = []
    candidates = list(_conditions(row))
    if "maximize" in row.defaults():
        candidates.append(("maximize", True))
    for name, want in candidates:
        if isinstance(want, bool) and name in args and args[name].literal is UNKNOWN and name not in flags:
            flags.append(name)
    return flags


def _parse_derived(row: OptimizerRow, name: str) -> tuple[str, int]:
    base, index = _DERIVED.fullmatch(row.derived[name]).groups()
    return base, int(index)


def _value_text(row: OptimizerRow, args: dict[str, ArgValue], name: str
                ) -> tuple[str, bool, bool, tuple[str, int | None] | None]:
    """(text, given by the user, atomic, which user argument it is verbatim) for a torch
    argument or a derived value."""
    if "@" + name in args:                       # replaced by a schedule (Extras)
        v = args["@" + name]
        return v.source, True, v.atomic, None
    if name in row.derived:
        base, index = _parse_derived(row, name)
        if base in args:
            value = args[base]
            if value.elements is not None and index < len(value.elements):
                element = value.elements[index]
                return element.source, True, element.atomic, (base, index)
            source = value.source if value.atomic else f"({value.source})"
            return f"{source}[{index}]", True, True, None
        return repr(row.defaults()[base][index]), False, True, None
    if name in args:
        v = args[name]
        return v.source, True, v.atomic, (name, None) if v.node is not None else None
    return repr(row.defaults()[name]), False, True, None


def _default_of(row: OptimizerRow, name: str) -> Any:
    if name in row.derived:
        base, index = _parse_derived(row, name)
        return row.defaults()[base][index]
    return row.defaults().get(name, REQUIRED)


def _same_default(torch_default: Any, optax_default: Any) -> bool:
    """torch's `momentum=0` and optax's `momentum=None` both mean no momentum."""
    if optax_default is None and torch_default in (0, 0.0, None):
        return True
    return torch_default == optax_default


def _render_tx(row: OptimizerRow, tx: catalog.Tx, args: dict[str, ArgValue], problems: list[str]) -> TxCall:
    parts: list[tuple[str, Value]] = []
    scheduled_lr = "__schedule__" in args
    for kw in tx.kws:
        template = kw.template
        if scheduled_lr and "{lr}" in template:
            if kw.schedule_template is not None:
                template = kw.schedule_template
            elif template != "{lr}" or not kw.schedulable:
                problems.append(f"{row.qualified}'s learning rate is not a plain scale here "
                                f"({tx.func.rsplit('.', 1)[-1]}: {kw.name}={kw.template}): fold the schedule in by hand")
        simple = re.fullmatch(r"\{(\w+)\}", template)
        if simple:
            text, given, _, ref = _value_text(row, args, simple.group(1))
            if not given and not kw.always and kw.optax_default is not REQUIRED and _same_default(
                    _default_of(row, simple.group(1)), kw.optax_default):
                continue
            parts.append((kw.name, Value(text, ref)))
        else:
            def sub(m):
                text, _, atomic, _ = _value_text(row, args, m.group(1))
                return text if atomic else f"({text})"
            parts.append((kw.name, Value(_PLACEHOLDER.sub(sub, template))))
    func = tx.func
    if not func.startswith("optax.inject_hyperparams(") and (
            any("@" + n in args and kw.template == "{%s}" % n for kw in tx.kws for n in _MOMENTUM_NAMES) or (
            "@momentum" in args and tx.func == "optax.trace")):
        func = f"optax.inject_hyperparams({func})"   # a scheduled beta1 / momentum
    return TxCall(func, tuple(parts))


def _chain_for(row: OptimizerRow, args: dict[str, ArgValue], assume: dict[str, bool],
               problems: list[str]) -> tuple[list, catalog.Variant]:
    variant = next(v for v in row.variants if _holds(row, args, v.when, assume))
    chain: list = []
    if variant.problem:
        problems.append(variant.problem)
        return chain, variant
    if _holds(row, args, (("maximize", True),), assume):
        chain.append("optax.scale(-1.0)")
    if variant.l2_weight_decay and "weight_decay" in row.defaults() and _holds(
            row, args, (("weight_decay", NONZERO),), assume):
        wd, _, _, ref = _value_text(row, args, "weight_decay")
        chain.append(TxCall("optax.add_decayed_weights", args=(Value(wd, ref),)))
    for tx in variant.chain:
        if _holds(row, args, tx.when, assume):
            chain.append(_render_tx(row, tx, args, problems))
    mask = args.get("@decay_mask")
    if mask is not None:
        chain = [_masked(t, mask.source, problems) for t in chain]
    return chain, variant


def _masked(tx, mask: str, problems: list[str]):
    """A transform whose weight decay applies only where `mask` says (timm's exclusion)."""
    if not isinstance(tx, TxCall):
        return tx
    func = _func_name(tx.func + "(")
    decays = func == "optax.add_decayed_weights" or any(
        k == "weight_decay" and v.text not in ("0", "0.0") for k, v in tx.kws)
    if not decays:
        return tx
    kw = DECAY_MASK_KW.get(func)
    if kw is None:
        problems.append(f"{func}'s weight decay takes no mask: timm's exclusion of biases and norm parameters "
                        "cannot follow it; build the parameter groups by hand")
        return tx
    return TxCall(tx.func, tx.kws + ((kw, Value(mask)),), tx.args)


def emit(row: OptimizerRow, args: dict[str, ArgValue], params: ArgValue | None, problems: list[str],
         extras: Extras | None = None, document: str = "") -> Emission:
    """The faithful Optax expression for a torch call bound to `row` (see `bind`); `document`
    is the whole file's text, searched for uses the rewrite cannot keep (row.unsupported)."""
    args = dict(args)
    out = Emission(torch=row.qualified, params_source=params.source if params else None)
    problems = list(problems)
    if extras is not None:
        problems = problems + _apply_extras(row, args, extras)
        for key in extras.inject:
            args[_BY_HAND + key] = ArgValue("True", literal=True)     # chooses a recipe (catalog.BY_HAND)
    if not problems and row.unsupported:
        problems.extend(u.problem for u in row.unsupported if re.search(u.pattern, document))
    out.problems = problems
    if problems:
        return out

    flags = _undecided_flags(row, args)
    render_problems: list[str] = []
    if not flags:
        chain, variant = _chain_for(row, args, {}, render_problems)
        out.transforms = chain
        variants = [variant]
    else:
        # A flag given as an expression picks the recipe at run time: `A if flag else B`.
        variants = []
        branches: dict[tuple[bool, ...], str] = {}
        for combo in itertools.product((True, False), repeat=len(flags)):
            chain, variant = _chain_for(row, args, dict(zip(flags, combo)), render_problems)
            if variant not in variants:
                variants.append(variant)
            texts = [tx_text(t) for t in chain]
            branches[combo] = texts[0] if len(texts) == 1 else f"optax.chain({', '.join(texts)})"
        out.transforms = [_conditional(flags, args, branches, ())]
    out.recipes = variants
    if render_problems:
        out.problems = list(dict.fromkeys(render_problems))
        out.transforms = []
        return out

    if extras is not None and extras.prefix:
        out.transforms = list(extras.prefix) + out.transforms
    if extras is not None and extras.inject:
        injected = inject_transforms(row, args, out.transforms, extras, flags)
        if isinstance(injected, str):
            out.problems, out.transforms = [injected], []
            return out
        out.transforms = injected.transforms
        out.injected, out.injected_links = [injected.names], [injected.links]
        out.injected_path = injected.path
    text = " ".join(out.texts)
    out.needs_jnp = "jnp." in text
    out.needs_helpers = f"{catalog.HELPERS}." in text
    out.exact = all(v.exact for v in variants)
    out.difference = "; ".join(v.difference for v in variants if v.difference)
    out.notes = _notes(row, args, variants)
    return out


def _apply_extras(row: OptimizerRow, args: dict[str, ArgValue], extras: Extras) -> list[str]:
    """Put the schedules into the arguments; what cannot be folded is a problem (some are
    found while rendering: a learning rate inside a formula without a schedule form)."""
    problems = []
    if extras.inject and extras.learning_rate is not None:
        problems.append("the learning rate is set by hand (param_groups) and by a scheduler: fold one into the "
                        "other by hand")
    if extras.learning_rate is not None:
        args["lr"] = ArgValue(extras.learning_rate, atomic=not extras.learning_rate.startswith("lambda"))
        args["__schedule__"] = ArgValue("True", literal=True)
    if extras.decay_mask is not None:
        args["@decay_mask"] = ArgValue(extras.decay_mask)
    if extras.momentum is not None:
        if "momentum" in row.defaults():
            args["momentum"] = ArgValue(extras.momentum, atomic=False)
            args["@momentum"] = args["momentum"]
        elif "b1" in row.derived:
            args["@b1"] = ArgValue(extras.momentum, atomic=False)
        else:
            problems.append(f"{row.qualified} has no momentum or beta1 for OneCycleLR to cycle")
    return problems


@dataclass(frozen=True)
class Injected:
    """Where the hyperparameters set by hand are kept: the transforms, and per torch key the names
    of its state's hyperparameters (`betas` -> b1, b2; renamed where the chain's own text uses the
    name) and the links of the chain that read it (only where the factory wraps a chain)."""
    transforms: list
    names: dict[str, tuple[str, ...]]
    links: dict[str, tuple[str, ...]]
    path: str = ""       # where in the state they are: '' its top, '[1]' the chain's second link's


_SENTINEL = "__switcheroo_injected_{}__"
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?!\w)(?!\s*=(?!=))")     # a name, not a keyword


def inject_transforms(row: OptimizerRow, args: dict[str, ArgValue], transforms: list, extras: Extras,
                      flags: list[str]) -> Injected | str:
    """The transforms with the hyperparameters the loop sets by hand (extras.inject: 'lr',
    'weight_decay', ...) kept in the state, at its top (`opt_state.hyperparams[...]`):
    `optax.inject_hyperparams(optax.adam)(learning_rate=lr, ...)` where each is one keyword of one
    transform; else a small factory around the whole chain, each injected name a parameter passed
    to the link the catalog puts that torch value in (`inject_hyperparams(lambda learning_rate,
    weight_decay: optax.chain(add_decayed_weights(weight_decay), adam(learning_rate=learning_rate)))(
    learning_rate=lr, weight_decay=wd)`). A string: why not."""
    from .hyperparams import STATIC_ARGS, optax_names
    keys = sorted(dict.fromkeys(extras.inject), key=lambda k: k != "lr")     # the learning rate first
    unknown = [k for k in keys if optax_names(k) is None]
    if unknown:
        return f"{', '.join(unknown)}: not a hyperparameter fix-all keeps in the state yet"
    if flags:
        return (f"{row.qualified}'s recipe is chosen at run time ({', '.join(flags)}): keep its "
                f"{_said(keys)} in the state by hand (optax.inject_hyperparams)")
    for key in keys:
        if key not in row.defaults():
            return (f"{row.qualified} has no learning rate to keep in the state" if key == "lr" else
                    f"{row.qualified}'s {key}: not a hyperparameter of {row.qualified}, nothing to keep in its state")
    if "momentum" in keys and "@momentum" in args or "betas" in keys and "@b1" in args:
        return "its momentum is set by hand (param_groups) and cycled by a scheduler: fold one into the other by hand"
    # Render the catalog's chain with a marker in place of each injected value: where a marker lands
    # is where the catalog puts that torch value (whichever link, whatever keyword).
    probe = dict(args)
    markers: dict[str, tuple[str, ...]] = {}
    for key in keys:
        names = optax_names(key)
        marks = tuple(_SENTINEL.format(n) for n in names)
        markers[key] = marks
        probe[key] = ArgValue(marks[0]) if len(names) == 1 else ArgValue(
            f"({', '.join(marks)})", elements=tuple(ArgValue(m) for m in marks))
    problems: list[str] = []
    chain, _ = _chain_for(row, probe, {}, problems)
    if problems:
        return "; ".join(problems)
    links = list(extras.prefix) + chain
    texts = [tx_text(t) for t in links]
    whole = " ".join(texts)
    for key in keys:
        for mark in markers[key]:
            if mark not in whole:
                return f"{row.qualified}'s rewrite has no {_said([key])} to keep in the state"
            if re.search(re.escape(mark) + r"\s*\[", whole):
                return (f"{row.qualified}'s {key} is a tuple its rewrite takes apart: keep it in the state by hand "
                        "(optax.inject_hyperparams)")
    pairs = [(key, name, mark) for key in keys for name, mark in zip(optax_names(key), markers[key])]

    # One transform taking each as its own keyword: inject that transform.
    tx = transforms[0] if len(transforms) == 1 and isinstance(transforms[0], TxCall) else None
    if tx is not None and len(texts) == 1 and not tx.func.startswith("optax.inject_hyperparams(") and all(
            whole.count(mark) == 1 and f"{name}={mark}" in whole for _, name, mark in pairs):
        names = {key: optax_names(key) for key in keys}
        have = {k for k, _ in tx.kws}
        static = tuple(k for k, _ in tx.kws if k in STATIC_ARGS)
        wrapped = f"optax.inject_hyperparams({tx.func}" + (f", static_args={static!r}" if static else "") + ")"
        outer = {name: _outer_value(row, args, key, name) for key, name, _ in pairs}
        # Keywords left out where torch's default is Optax's: given, so that the state keeps them.
        missing = [(name, Value(outer[name])) for _, name, _ in pairs if name not in have]
        first = [m for m in missing if m[0] == "learning_rate"]
        rest = [m for m in missing if m[0] != "learning_rate"]
        # An integer starts the state as an integer, which a later write would be truncated to
        # (nnx.Optimizer's state is assigned in place): a float of it.
        kws = tuple((k, Value(outer[k]) if k in outer and _is_int(v.text) else v) for k, v in tx.kws)
        return Injected([TxCall(wrapped, tuple(first) + kws + tuple(rest), tx.args)], names, {})

    # A link that injects itself and takes every value as its own keyword, which no other link
    # reads (RAdam's rewrite, alone or behind its L2 decay link): already kept, in that link's
    # state (`opt_state.hyperparams`, `opt_state[1].hyperparams`). A factory around it could not
    # reach them (the link keeps what it was built with in its state).
    if len(transforms) == len(texts):
        holders = [i for i, text in enumerate(texts) if any(mark in text for _, _, mark in pairs)]
        if len(holders) == 1 and texts[holders[0]].startswith("optax.inject_hyperparams(") and all(
                whole.count(mark) == 1 and f"{name}={mark}" in texts[holders[0]] for _, name, mark in pairs):
            tx = transforms[holders[0]]
            if isinstance(tx, TxCall) and all(name in {k for k, _ in tx.kws} for _, name, _ in pairs):
                return Injected(transforms, {key: optax_names(key) for key in keys}, {},
                                path=f"[{holders[0]}]" if len(texts) > 1 else "")
    # A chain (or a transform taking the value in a formula): a factory of the whole chain.
    for link, text in zip(links, texts):
        if not text.startswith("optax.inject_hyperparams("):
            continue
        held = [key for key, _, mark in pairs if mark in text and (not isinstance(link, TxCall) or any(
            mark in v.text and not v.text.lstrip().startswith("lambda") for _, v in link.kws + tuple(
                (None, a) for a in link.args)))]
        if held:
            return (f"{row.qualified}'s {_said(held[:1])} is a number of its rewrite's own "
                    f"{_func_name(text)} link, which keeps it in that link's state from the start: keep it by hand")
    taken = set(_IDENT.findall(whole))
    finals: dict[str, str] = {}
    for _, name, mark in pairs:
        final, n = name, 2
        while final in taken or final in finals.values():
            final, n = f"{name}_{n}", n + 1
        finals[mark] = final
    body = texts[0] if len(texts) == 1 else f"optax.chain({', '.join(texts)})"
    for mark, final in finals.items():
        body = body.replace(mark, final)
    params = ", ".join(finals[mark] for _, _, mark in pairs)
    values = ", ".join(f"{finals[mark]}={_outer_value(row, args, key, name)}" for key, name, mark in pairs)
    names = {key: tuple(finals[m] for m in markers[key]) for key in keys}
    used = {key: tuple(dict.fromkeys(_func_name(t) for t in texts if any(m in t for m in markers[key])))
            for key in keys}
    return Injected([f"optax.inject_hyperparams(lambda {params}: {body})({values})"], names, used)


def _is_int(text: str) -> bool:
    return re.fullmatch(r"\s*-?\d+\s*", text) is not None


def _said(keys) -> str:
    return ", ".join("learning rate" if k == "lr" else k for k in keys)


def _outer_value(row: OptimizerRow, args: dict[str, ArgValue], key: str, name: str) -> str:
    """The value the state starts from for Optax hyperparameter `name` of torch key `key` (the
    user's text, or torch's default; a number, so that a value written later keeps its dtype)."""
    from .hyperparams import optax_names
    names = optax_names(key)
    source = key if len(names) == 1 else next(
        (d for d, t in row.derived.items() if t == "{%s}[%d]" % (key, names.index(name))), key)
    text, _, _, _ = _value_text(row, args, source)
    literal = _effective(row, args, source)
    if isinstance(literal, int) and not isinstance(literal, bool) and _is_int(text):
        return repr(float(literal))
    return text


def _conditional(flags, args, branches, prefix) -> str:
    if len(prefix) == len(flags):
        return branches[prefix]
    flag = args[flags[len(prefix)]]
    cond = flag.source if flag.atomic else f"({flag.source})"
    yes = _conditional(flags, args, branches, prefix + (True,))
    no = _conditional(flags, args, branches, prefix + (False,))
    if yes == no:
        return yes   # this flag only passes through as a keyword
    return f"({yes} if {cond} else {no})"


def _notes(row: OptimizerRow, args: dict[str, ArgValue], variants) -> list[str]:
    notes = []
    undecided = _undecided_flags(row, args)
    if _holds(row, args, (("maximize", True),), {}) or "maximize" in undecided:
        notes.append(catalog.MAXIMIZE_NOTE)
    for note in row.notes:
        if _holds(row, args, note.when, {}) or any(n in undecided for n, _ in note.when):
            notes.append(note.text)
    if (any(v.l2_weight_decay for v in variants) and "weight_decay" in args
            and _holds(row, args, (("weight_decay", NONZERO),), {})
            and not any("weight_decay" in n.text for n in row.notes if _holds(row, args, n.when, {}))):
        notes.append(catalog.L2_NOTE_GENERIC)
    for variant in variants:
        notes.extend(n for n in variant.notes if n not in notes)
    dropped = [f for f in row.implementation_flags if f in args]
    if dropped:
        notes.append(catalog.FLAG_NOTE.format(flags=", ".join(dropped)))
    return notes
