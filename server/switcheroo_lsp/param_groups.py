"""torch parameter groups -> optax.multi_transform (or adamw's mask for weight-decay groups).

`SGD([{"params": a}, {"params": b, "lr": 0.01}], lr=0.1, momentum=0.9)` trains each group with
its own hyperparameters and its own state: `optax.multi_transform({"group0": sgd(0.1, ...),
"group1": sgd(0.01, ...)}, param_labels)` does the same (measured 1.8e-15). What Optax needs that
torch does not say is which leaf of the params pytree is in which group: `param_labels` (or the
decay mask) is left for the user to define, named in a TODO and OPX203.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .catalog import OptimizerRow
from .emit import Emission, Extras, emit

LABELS = "param_labels"
DECAY_MASK = "decay_mask"


@dataclass
class Groups:
    node: ast.List | ast.Tuple              # the list of group dicts
    groups: list[dict[str, ast.expr]]       # key -> value, per group


def read_groups(node: ast.expr | None) -> Groups | None | str:
    """The groups of a literal list of dicts; a reason string when they cannot be read; None
    when `node` is not a list of groups at all."""
    if not isinstance(node, (ast.List, ast.Tuple)) or not any(isinstance(e, ast.Dict) for e in node.elts):
        return None
    groups = []
    for element in node.elts:
        if not isinstance(element, ast.Dict):
            return "the groups mix dicts with other values"
        group = {}
        for key, value in zip(element.keys, element.values):
            if key is None or not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return "a group's keys are not plain strings (** or computed keys)"
            group[key.value] = value
        if "params" not in group:
            return "a group has no 'params'"
        groups.append(group)
    return Groups(node, groups)


def emit_groups(row: OptimizerRow, call: ast.Call, groups: Groups, source, extras: Extras | None = None) -> Emission:
    """One Optax optimizer per group, joined by multi_transform (or adamw's mask)."""
    per_group: list[Emission] = []
    if any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args):
        out = Emission(torch=row.qualified)
        out.problems = ["arguments passed with * or ** cannot be mapped statically"]
        return out
    names = [n for n, _ in row.signature]
    outer = {names[i]: a for i, a in enumerate(call.args[1:]) if i < len(names)}
    outer.update({k.arg: k.value for k in call.keywords if k.arg != "params"})
    for group in groups.groups:
        # A group's own value wins over the optimizer's.
        merged = {**outer, **{k: v for k, v in group.items() if k != "params"}}
        synthetic = ast.Call(func=call.func, args=[group["params"]],
                             keywords=[ast.keyword(arg=k, value=v) for k, v in merged.items()])
        ast.copy_location(synthetic, call)
        emission = emit(row, synthetic, source)
        if emission.problems:
            out = Emission(torch=row.qualified)
            out.problems = [f"group {len(per_group)}: {p}" for p in emission.problems]
            return out
        per_group.append(emission)
    out = Emission(torch=row.qualified)
    out.exact = all(e.exact for e in per_group)
    out.difference = "; ".join(e.difference for e in per_group if e.difference)
    out.needs_jnp = any(e.needs_jnp for e in per_group)
    out.needs_helpers = any(e.needs_helpers for e in per_group)
    mask = _decay_mask_form(row, groups, per_group, source)
    if mask is not None:
        out.transforms = [mask]
        out.placeholders = (DECAY_MASK,)
        out.notes = [f"two groups that differ only in weight decay: optax.adamw's mask= applies it to the "
                     f"first group's leaves; define {DECAY_MASK} (a pytree of bools like params)"]
    else:
        inner = ", ".join(f'"group{i}": {e.one_line()}' for i, e in enumerate(per_group))
        out.transforms = [f"optax.multi_transform({{{inner}}}, {LABELS})"]
        out.placeholders = (LABELS,)
        members = "; ".join(f"group{i} = {source.node_text(g['params'])}" for i, g in enumerate(groups.groups))
        out.notes = [f"each torch parameter group keeps its own hyperparameters and state; define {LABELS}, a "
                     f"pytree like params naming each leaf's group ({members})"]
    for e in per_group:
        out.notes.extend(n for n in e.notes if n not in out.notes)
    if extras is not None and extras.prefix:
        out.transforms = list(extras.prefix) + out.transforms
    if extras is not None and (extras.learning_rate or extras.momentum):
        out.problems.append("a scheduler over parameter groups scales each group's lr: fold it in by hand")
    return out


def _decay_mask_form(row: OptimizerRow, groups: Groups, per_group: list[Emission], source) -> str | None:
    """AdamW with [{params: a, weight_decay: wd}, {params: b, weight_decay: 0}]: adamw(mask=...)."""
    if row.torch != "AdamW" or len(groups.groups) != 2:
        return None
    keys = [set(g) - {"params"} for g in groups.groups]
    if keys != [{"weight_decay"}, {"weight_decay"}]:
        return None
    wd = [g["weight_decay"] for g in groups.groups]
    zero = [isinstance(v, ast.Constant) and v.value in (0, 0.0) for v in wd]
    if zero != [False, True]:
        return None
    text = per_group[0].one_line()
    if not text.startswith("optax.adamw(") or not text.endswith(")"):
        return None
    return f"{text[:-1]}, mask={DECAY_MASK})"
