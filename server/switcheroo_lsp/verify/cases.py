"""What verify runs for each construction: the torch calls (optimizer, the scheduler and the
clipping fix-all folded into it) and the Optax text fix-all writes, with every reference
replaced by its value. Pure: no torch here; torch's signatures come in as a function.

A reference gets its value from, in order: `--set <argument>=…` for an argument whose
expression is not a literal (`--set lr=3e-4` for `lr=cfg.lr * 2`), `--set <reference>=…`
(`--set cfg.lr=3e-4`), the document (hyperparams.py). The number of updates per epoch
(`count // len(train_loader)` in a schedule, `len(loader)` anywhere) is the verify problems'
own epoch unless given: it is a property of the data, not a hyperparameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import libcst as cst

from ..engine import Analysis, ConstructionRewrite
from . import literals as L
from .hyperparams import Document, Value

EPOCH = 10            # updates per epoch of the verify problems (their batches)
Signature = Callable[[str], list[tuple[str, Any]]]   # 'torch.optim.SGD' -> [(name, default), …]


@dataclass
class TorchCall:
    role: str                  # "optimizer" | "scheduler" | "clip"
    name: str                  # 'torch.optim.lr_scheduler.StepLR'
    node: cst.Call             # in the document (for its scope), or parsed from the call text


@dataclass
class Case:
    """One construction, as found: where, the rewrite, and the torch calls it stands for."""
    path: str
    line: int                  # 1-based
    column: int                # 1-based, in characters
    rewrite: ConstructionRewrite
    optimizer: TorchCall
    scheduler: TorchCall | None = None
    clips: list[TorchCall] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass
class Resolved:
    """A case ready to run: texts that name only libraries, literals and verify's own names
    (`_sw_params`, `_sw_groups`, `_sw_opt`, `_sw_labels`, `_sw_mask`)."""
    case: Case
    torch_optimizer: str
    torch_scheduler: str | None
    torch_clips: list[str]
    optax: str
    schedule: str | None
    per_epoch: bool
    epoch: int
    maximize: bool
    groups: list[dict] | None          # per parameter group: {"weight_decay": …} (None: one group)
    labels: list[str] | None           # multi_transform's keys, in group order
    values: dict[str, Value]           # reference text -> its value and where it came from
    notes: list[str] = field(default_factory=list)


@dataclass
class Unresolvable:
    case: Case
    missing: list[tuple[str, str, str]]     # (argument, its expression, why)
    problem: str = ""                       # a case verify cannot run at all


def find_cases(path: str, analysis: Analysis, doc: Document) -> list[Case]:
    """Each construction fix-all converts, with the scheduler and clipping folded into it."""
    source = analysis.source
    # (A flow fix-all leaves torch for now keeps what its findings would have folded in.)
    schedulers = [f for f in analysis.findings if "schedule" in f.data]
    clips = [f for f in analysis.findings if "transform" in f.data]
    cases = []
    for r in analysis.construction_rewrites():
        if not verifiable(analysis, r):
            continue
        case = Case(path, r.span.start.line + 1, r.span.start.col + 1, r,
                    TorchCall("optimizer", r.torch, _node(doc, source.segment(r.span), r.span)))
        if r.schedule is not None:
            # The finding whose schedule text is the one folded in: same text, same schedule.
            f = next((f for f in schedulers if f.data["schedule"] == r.schedule), None)
            if f is not None:
                case.scheduler = TorchCall("scheduler", f.data["torch"], _node(doc, source.segment(f.span), f.span))
        for transform in r.clip:
            f = next((f for f in clips if f.data["transform"] == transform), None)
            if f is not None:
                text = source.segment(f.span)
                case.clips.append(TorchCall("clip", _clip_name(text, f.message), _node(doc, text, f.span)))
        cases.append(case)
    return cases


def verifiable(analysis: Analysis, r) -> bool:
    """Does verify run this construction rewrite? torch's own optimizers and schedulers only: the
    libraries' (bitsandbytes, get_scheduler, create_optimizer_v2, a class chosen at run time) run
    in their own packages, and tests/numerics/test_libraries.py proves those rows."""
    if not r.torch.startswith("torch.optim.") or r.factory:
        return False
    return r.schedule is None or any(f.code == "OPX104" and f.data.get("schedule") == r.schedule
                                     and f.data.get("torch", "").startswith("torch.optim.") for f in analysis.findings)


def _node(doc: Document, text: str, span) -> cst.Call:
    found = doc.calls_at(span.start.line + 1, span.start.col)
    if found:
        return found[0]
    node = L.parse(text)        # not found by position (should not happen): scope-less
    assert isinstance(node, cst.Call), text
    return node


def _clip_name(text: str, message: str) -> str:
    head = L.dotted(L.parse(text).func) or ""
    last = head.rsplit(".", 1)[-1]
    if last.startswith("clip_grad_"):
        return f"torch.nn.utils.{last}"
    return message.split(" ", 1)[0]     # an alias: the finding's message names the function


# -- resolution -------------------------------------------------------------------------------------

@dataclass
class _Arg:
    call: TorchCall
    name: str            # the torch parameter name ('lr'), or 'argument 3'
    expr: cst.BaseExpression


def bind(call: TorchCall, signature: Signature) -> list[_Arg]:
    names = [n for n, _ in signature(call.name)]
    out = []
    for i, a in enumerate(call.node.args):
        if a.star:
            out.append(_Arg(call, "**" if a.star == "**" else "*", a.value))
        elif a.keyword is not None:
            out.append(_Arg(call, a.keyword.value, a.value))
        else:
            out.append(_Arg(call, names[i] if i < len(names) else f"argument {i + 1}", a.value))
    return out


class _Resolver:
    def __init__(self, case: Case, doc: Document, settings: dict[str, str], signature: Signature):
        self.case, self.doc, self.signature = case, doc, signature
        # --set values, by key; a value that is not a literal is reported by the command line.
        self.settings = {L.key(k): v for k, v in settings.items()}
        doc.given = {}
        for k, v in self.settings.items():
            try:
                doc.given[k] = Value(L.value_of(v), "--set")
            except L.NotLiteral:
                pass
        self.used: set[str] = set()
        self.values: dict[str, Value] = {}
        self.missing: dict[str, tuple[str, str, str]] = {}
        self.notes: list[str] = []

    # A --set given by argument name replaces that argument's expression wherever it occurs.
    def argument_settings(self, args: list[_Arg]) -> dict[str, tuple[Any, str]]:
        subs: dict[str, tuple[Any, str]] = {}
        for arg in args:
            if arg.name not in self.settings or not L.references(arg.expr):
                continue
            value = L.value_of(self.settings[arg.name])
            self.used.add(arg.name)
            self._destructure(arg.expr, value, f"--set {arg.name}", subs)
        return subs

    def _destructure(self, expr, value, source: str, subs: dict) -> None:
        subs[L.key(L.code(expr))] = (value, source)
        if isinstance(expr, (cst.Tuple, cst.List)) and isinstance(value, (tuple, list)) \
                and len(expr.elements) == len(value):
            for el, v in zip(expr.elements, value):     # betas=(cfg.b1, cfg.b2): optax gets b1=cfg.b1
                self._destructure(el.value, v, source, subs)

    def value(self, ref: cst.BaseExpression, at: cst.CSTNode, arg_names: list[str]) -> Value | None:
        k = L.key(L.code(ref))
        if k in self.values:
            return self.values[k]
        if k in self.settings:
            self.used.add(k)
            value = Value(L.value_of(self.settings[k]), "--set")
        else:
            try:
                value = self.doc.resolve(ref, at)
            except L.Unresolved as e:
                if k not in self.missing:
                    why = e.reason if e.text == L.code(ref) else f"{e.text}: {e.reason}"
                    self.missing[k] = (", ".join(dict.fromkeys(arg_names)) or "", L.code(ref), why)
                return None
        self.values[k] = value
        return value

    def epoch(self, ref: cst.BaseExpression, at: cst.CSTNode) -> Value:
        """Updates per epoch (`len(train_loader)`, a `steps_per_epoch` placeholder): given, static,
        or the verify problems' own."""
        k = L.key(L.code(ref))
        for name in (k, "steps_per_epoch"):
            if name in self.settings:
                self.used.add(name)
                value = Value(int(L.value_of(self.settings[name])), f"--set {name}")
                break
        else:
            try:
                value = self.doc.resolve(ref, at)
                value = Value(int(value.value), value.source)
            except (L.Unresolved, TypeError, ValueError):
                value = Value(EPOCH, "the verify problems' updates per epoch")
                note = f"{L.code(ref)} = {EPOCH}: the verify problems' updates per epoch (--set steps_per_epoch=N)"
                if note not in self.notes:
                    self.notes.append(note)
        self.values[k] = value
        return value


def resolve(case: Case, doc: Document, settings: dict[str, str], signature: Signature,
            used: set[str] | None = None) -> Resolved | Unresolvable:
    """The case with every reference given a value, or what is missing."""
    res = _Resolver(case, doc, settings, signature)
    r = case.rewrite
    opt_args = bind(case.optimizer, signature)
    calls = [case.optimizer] + ([case.scheduler] if case.scheduler else []) + case.clips
    all_args = {id(c): bind(c, signature) for c in calls}

    # 1. The torch side's structure: params, parameter groups, the optimizer a scheduler gets.
    torch_side = _torch_trees(case, doc, opt_args, all_args)
    if isinstance(torch_side, Unresolvable):
        return torch_side
    opt_tree, sched_tree, clip_trees, groups_node, group_nodes = torch_side

    # The Optax side's placeholders the rewrite asks the user to define (param_labels, decay_mask).
    optax_tree = L.parse(r.optax)
    labels, structure = _structure(optax_tree)
    optax_tree = L.replace(optax_tree, structure)
    schedule_tree = L.parse(r.schedule) if r.schedule else None

    # 2. --set by argument name.
    every_arg = [a for args in all_args.values() for a in args if a.name not in ("params", "*", "**")]
    if groups_node is not None:
        every_arg += [_Arg(case.optimizer, L.code(e.key) if not isinstance(e.key, cst.SimpleString) else e.key.evaluated_value, e.value)
                      for d in group_nodes for e in d.elements
                      if not (isinstance(e.key, cst.SimpleString) and e.key.evaluated_value == "params")]
    try:
        arg_subs = res.argument_settings(every_arg)
    except L.NotLiteral as e:
        return Unresolvable(case, [], f"--set needs a Python literal, not {e}")

    # 3. Epochs: `count // <x>` in the schedule means torch steps the scheduler once per epoch.
    epoch_keys = set()
    if schedule_tree is not None:
        epoch_keys = {L.key(L.code(n.right)) for n in _floordivs_of_count(schedule_tree)}
    per_epoch = bool(epoch_keys)

    # 4. Every remaining reference gets its value; the arguments it appears in name it in the
    # message when it has none. Torch calls first: their references resolve in their own scope.
    arg_of: dict[str, list[str]] = {}
    for a in every_arg:
        for ref in L.references(a.expr):
            arg_of.setdefault(L.key(L.code(ref)), []).append(a.name)
        arg_of.setdefault(L.key(L.code(a.expr)), []).append(a.name)
    trees: list[tuple[cst.BaseExpression, cst.CSTNode]] = [(opt_tree, case.optimizer.node)]
    if sched_tree is not None:
        trees.append((sched_tree, case.scheduler.node))
    trees += [(t, c.node) for t, c in zip(clip_trees, case.clips)]
    trees.append((optax_tree, case.optimizer.node))
    if schedule_tree is not None:
        trees.append((schedule_tree, case.optimizer.node))

    subs: dict[str, str] = {}
    for k, (v, source) in arg_subs.items():
        subs[k] = L.literal_code(v)
        res.values[k] = Value(v, source)
    epoch_values: dict[str, int] = {}
    for tree, at in trees:
        tree = L.replace(tree, {id(n): subs[L.key(L.code(n))] for n in L.find(tree, set(subs))})
        for ref in L.references(tree):
            k = L.key(L.code(ref))
            if k in subs:
                continue
            if k in epoch_keys or (isinstance(ref, cst.Call) and L.dotted(ref.func) == "len"):
                value = res.epoch(ref, at)
                epoch_values[k] = value.value
            else:
                value = res.value(ref, at, arg_of.get(k, []))
            if value is not None:
                subs[k] = L.literal_code(value.value)
    epoch = next((epoch_values[k] for k in sorted(epoch_keys) if k in epoch_values), EPOCH)

    if res.missing:
        if used is not None:
            used |= res.used | doc.given_used
        return Unresolvable(case, list(res.missing.values()))

    def final(tree: cst.BaseExpression) -> str:
        return L.code(L.replace(tree, {id(n): subs[L.key(L.code(n))] for n in L.find(tree, set(subs))}))

    # 5. What the runners need to know besides the texts.
    def literal(expr, default):
        return default if expr is None else L.value_of(final(expr))

    defaults = dict(signature(case.optimizer.name))
    named = {a.name: a.expr for a in opt_args}
    try:
        maximize = bool(literal(named.get("maximize"), False))
        groups = None
        if group_nodes:
            wd_default = literal(named.get("weight_decay"), defaults.get("weight_decay", 0.0))
            groups = []
            for d in group_nodes:
                entries = {e.key.evaluated_value: e.value for e in d.elements if isinstance(e.key, cst.SimpleString)}
                groups.append({"weight_decay": literal(entries.get("weight_decay"), wd_default)})
    except L.NotLiteral as e:
        return Unresolvable(case, [], f"cannot compute {e}")
    if not r.exact:
        res.notes.append("an approximate rewrite (its finding states the difference)")
    if r.blocked:
        res.notes.append(f"fix-all leaves this flow torch for now: {r.blocked}")
    if used is not None:
        used |= res.used | doc.given_used
    return Resolved(
        case=case, torch_optimizer=final(opt_tree), torch_scheduler=final(sched_tree) if sched_tree is not None else None,
        torch_clips=[final(t) for t in clip_trees], optax=final(optax_tree),
        schedule=final(schedule_tree) if schedule_tree is not None else None, per_epoch=per_epoch, epoch=epoch,
        maximize=maximize, groups=groups, labels=labels, values=res.values, notes=res.notes)


def _torch_trees(case: Case, doc: Document, opt_args: list[_Arg], all_args: dict):
    """The torch calls as verify evaluates them: the optimizer's params (or each group's) as
    `_sw_params` / `_sw_groups[i]`, the scheduler's optimizer as `_sw_opt`, a nested scheduler
    written in place, each callee by its full torch name."""
    params_arg = next((a for a in opt_args if a.name == "params"), None)
    if params_arg is None:
        return Unresolvable(case, [], "the call passes no parameters")
    groups_node = _groups_node(params_arg.expr, doc, case.optimizer.node)
    replacements: dict[int, str] = {}
    group_nodes: list[cst.Dict] = []
    if groups_node is not None:
        for i, el in enumerate(groups_node.elements):
            d = el.value
            if not isinstance(d, cst.Dict) or any(not isinstance(e, cst.DictElement) for e in d.elements):
                return Unresolvable(case, [], "a parameter group built with ** cannot be verified")
            group_nodes.append(d)
            for e in d.elements:
                if isinstance(e.key, cst.SimpleString) and e.key.evaluated_value == "params":
                    replacements[id(e.value)] = f"_sw_groups[{i}]"
        opt_tree = L.replace(case.optimizer.node, replacements | ({} if groups_node is params_arg.expr
                                                                  else {id(params_arg.expr): _code_with(groups_node, replacements)}))
    else:
        opt_tree = L.replace(case.optimizer.node, {id(params_arg.expr): "_sw_params"})
    opt_tree = opt_tree.with_changes(func=L.parse(case.optimizer.name))

    sched_tree = None
    if case.scheduler is not None:
        sargs = all_args[id(case.scheduler)]
        if not sargs:
            return Unresolvable(case, [], f"{case.scheduler.name} gets no optimizer")
        opt_key = L.key(L.code(sargs[0].expr))
        sched_tree = _inline_schedulers(case.scheduler.node, doc)
        sched_tree = L.replace(sched_tree, {id(n): "_sw_opt" for n in L.find(sched_tree, {opt_key})})
        sched_tree = sched_tree.with_changes(func=L.parse(case.scheduler.name))
    clip_trees = []
    for c in case.clips:
        cargs = all_args[id(c)]
        tree = L.replace(c.node, {id(cargs[0].expr): "_sw_params"}) if cargs else c.node
        clip_trees.append(tree.with_changes(func=L.parse(c.name)))

    return opt_tree, sched_tree, clip_trees, groups_node, group_nodes


def _code_with(node: cst.CSTNode, replacements: dict[int, str]) -> str:
    return L.code(L.replace(node, replacements))


def _groups_node(expr: cst.BaseExpression, doc: Document, at: cst.CSTNode) -> cst.List | cst.Tuple | None:
    """The list of group dicts the params argument is, directly or through one name."""
    node = _single_assignment(doc, expr.value, at) if isinstance(expr, cst.Name) else expr
    if isinstance(node, (cst.List, cst.Tuple)) and node.elements and all(
            isinstance(el, cst.Element) and isinstance(el.value, cst.Dict) for el in node.elements):
        return node
    return None


def _inline_schedulers(node: cst.Call, doc: Document) -> cst.Call:
    """SequentialLR(opt, [warmup, decay]) with `warmup = LinearLR(opt, …)` assigned once: the
    inner constructions written in place, so that the torch side builds them too."""
    at = node
    for _ in range(8):
        inline = {}
        for ref in L.references(node):
            if isinstance(ref, cst.Name):
                assigned = _single_assignment(doc, ref.value, at)
                if isinstance(assigned, cst.Call) and (L.dotted(assigned.func) or "").rsplit(".", 1)[-1] in L.SCHEDULER_NAMES:
                    inline[id(ref)] = L.code(assigned)
        if not inline:
            return node
        node = L.replace(node, inline)
    return node


def _single_assignment(doc: Document, name: str, at: cst.CSTNode) -> cst.BaseExpression | None:
    """The value of the one assignment to `name` visible from `at` (an enclosing function's,
    else the module's), if there is exactly one."""
    for scope in doc.enclosing(at) if at in doc.parents else []:
        if isinstance(scope, cst.FunctionDef):
            local = doc.assignments(scope.body, name)
            if local is not None:
                return local[0] if len(local) == 1 else None
    assigned = doc.assignments(doc.module, name)
    return assigned[0] if assigned and len(assigned) == 1 else None


def _floordivs_of_count(tree: cst.CSTNode) -> list[cst.BinaryOperation]:
    out = []

    def walk(n):
        if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.FloorDivide) \
                and isinstance(n.left, cst.Name) and n.left.value == "count" and L.is_reference(n.right):
            out.append(n)
        for c in n.children:
            walk(c)

    walk(tree)
    return out


def _structure(tree: cst.BaseExpression) -> tuple[list[str] | None, dict[int, str]]:
    """multi_transform's group keys, and the placeholders to bind: its labels argument and an
    adamw `mask=` name (the rewrite's TODO asks the user to define both)."""
    labels = None
    replacements: dict[int, str] = {}

    def walk(n):
        nonlocal labels
        if isinstance(n, cst.Call):
            name = L.dotted(n.func) or ""
            if name.endswith("multi_transform") and len(n.args) >= 2:
                transforms, label_arg = n.args[0].value, n.args[1].value
                if isinstance(transforms, cst.Dict):
                    labels = [e.key.evaluated_value for e in transforms.elements
                              if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)]
                if isinstance(label_arg, cst.Name):
                    replacements[id(label_arg)] = "_sw_labels"
            for a in n.args:
                if a.keyword is not None and a.keyword.value == "mask" and isinstance(a.value, cst.Name):
                    replacements[id(a.value)] = "_sw_mask"
        for c in n.children:
            walk(c)

    walk(tree)
    return labels, replacements


def unresolved_message(u: Unresolvable) -> str:
    what = f"{u.case.where}: {u.case.rewrite.torch}"
    if u.problem:
        return f"{what}: cannot verify: {u.problem}"
    parts = []
    for arg, expr, why in u.missing:
        label = f"{arg} ({expr})" if arg and arg != expr else expr
        parts.append(f"{label}: {why}")
    hint = next((m[0].split(", ")[0] for m in u.missing if m[0]), None) or u.missing[0][1]
    many = len(u.missing) != 1
    return (f"{what}: {len(u.missing)} argument{'s do' if many else ' does'} not resolve statically; "
            f"give {'each' if many else 'it'} with --set NAME=VALUE (e.g. --set {hint}=…): "
            + "; ".join(parts))
