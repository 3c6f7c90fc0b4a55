"""torch parameter groups -> optax.multi_transform (or adamw's mask for weight-decay groups).

`SGD([{"params": a}, {"params": b, "lr": 0.01}], lr=0.1, momentum=0.9)` trains each group with
its own hyperparameters and its own state: `optax.multi_transform({"group0": sgd(0.1, ...),
"group1": sgd(0.01, ...)}, param_labels)` does the same (measured 1.8e-15). What Optax needs that
torch does not say is which leaf of the params pytree is in which group: `param_labels` (or the
decay mask) is left for the user to define, named in a TODO and OPX203.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import OptimizerRow
from .emit import ArgValue, Emission, Extras, bind, emit

LABELS = "param_labels"
DECAY_MASK = "decay_mask"
# Where group i's hyperparameters are, from the optimizer's state, once its transform in the
# multi_transform is wrapped in optax.inject_hyperparams (optax 0.2.8: a PartitionState whose
# inner_states[label] is a MaskedState around the InjectHyperparamsState). Measured in
# tests/numerics/test_hyperparams.py.
GROUP_STATE = '.inner_states["{label}"].inner_state'


def label(i: int) -> str:
    return f"group{i}"


def group_state(i: int) -> str:
    return GROUP_STATE.format(label=label(i))


def ignored_keys(row: OptimizerRow, group: dict) -> list[str]:
    """A group's keys torch's optimizer never reads (`"lr_scale": 0.1`, `"name": "head"`): torch
    keeps them in the group's dict for the training loop's own use."""
    if row.module != "torch.optim":
        return []
    known = set(row.defaults()) | {"params"}
    return [k for k in group if k not in known]


@dataclass
class Groups:
    node: Any                               # the list of group dicts (a libcst node)
    groups: list[dict[str, ArgValue]]       # key -> value, per group


def emit_groups(row: OptimizerRow, outer: dict[str, ArgValue], groups: Groups, extras: Extras | None = None,
                document: str = "") -> Emission:
    """One Optax optimizer per group, joined by multi_transform (or adamw's mask). `outer`
    holds the optimizer's own arguments (params excluded)."""
    if len(groups.groups) == 1:
        # One group is no grouping: its keys are the optimizer's arguments.
        group = groups.groups[0]
        merged = {**outer, **{k: v for k, v in group.items() if k != "params" and k not in ignored_keys(row, group)}}
        args, params, problems = bind(row, [group["params"]], list(merged.items()))
        return emit(row, args, params, problems, extras, document=document)
    per_group: list[Emission] = []
    by_group = extras.inject_groups if extras is not None else ()
    for i, group in enumerate(groups.groups):
        # A group's own value wins over the optimizer's.
        merged = {**outer, **{k: v for k, v in group.items() if k != "params" and k not in ignored_keys(row, group)}}
        args, params, problems = bind(row, [group["params"]], list(merged.items()))
        inject = Extras(inject=by_group[i]) if by_group and by_group[i] else None
        emission = emit(row, args, params, problems, inject, document=document)
        if emission.injected_path and not emission.problems:
            emission.problems = ["the values set by hand would be kept inside a link of the group's own chain: "
                                 "keep them by hand (optax.inject_hyperparams)"]
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
    mask = None if by_group else _decay_mask_form(row, groups, per_group)
    if by_group and extras.prefix:
        out.problems.append("the hyperparameters set by hand per group, with clipping folded in front of the "
                            "groups' transforms: keep them by hand (optax.inject_hyperparams)")
        return out
    if mask is not None and extras is not None and extras.inject:
        # Every group's learning rate set alike (the loop over all of them): adamw's, in the state.
        merged = {**outer, **{k: v for k, v in groups.groups[0].items() if k != "params"}}
        args, params, problems = bind(row, [groups.groups[0]["params"]], list(merged.items()))
        first = emit(row, args, params, problems, Extras(inject=extras.inject), document=document)
        text = first.one_line() if first.ok else ""
        mask = (text.replace("optax.inject_hyperparams(optax.adamw)(", "optax.inject_hyperparams(optax.adamw, "
                             "static_args=('mask',))(", 1)[:-1] + f", mask={DECAY_MASK})") if text.startswith(
            "optax.inject_hyperparams(optax.adamw)(") and text.endswith(")") else None
        if mask is None or extras.prefix or any(k != "lr" for k in extras.inject):
            out.problems.append("the learning rate set by hand over these parameter groups cannot be kept in one "
                                "state: keep it by hand (optax.inject_hyperparams)")
            return out
    if mask is not None:
        out.transforms = [mask]
        if extras is not None and extras.inject:
            out.injected, out.injected_links = first.injected, first.injected_links
        out.placeholders = (DECAY_MASK,)
        out.notes = [f"two groups that differ only in weight decay: optax.adamw's mask= applies it to the "
                     f"first group's leaves; define {DECAY_MASK} (a pytree of bools like params)"]
    else:
        inner = ", ".join(f'"{label(i)}": {e.one_line()}' for i, e in enumerate(per_group))
        out.transforms = [f"optax.multi_transform({{{inner}}}, {LABELS})"]
        if by_group:
            out.injected = [e.injected[0] if e.injected else {} for e in per_group]
            out.injected_links = [e.injected_links[0] if e.injected_links else {} for e in per_group]
        out.placeholders = (LABELS,)
        members = "; ".join(f"group{i} = {g['params'].source}" for i, g in enumerate(groups.groups))
        out.notes = [f"each torch parameter group keeps its own hyperparameters and state; define {LABELS}, a "
                     f"pytree like params naming each leaf's group ({members})"]
    for e in per_group:
        out.notes.extend(n for n in e.notes if n not in out.notes)
    if extras is not None and extras.prefix:
        out.transforms = list(extras.prefix) + out.transforms
    if extras is not None and extras.inject and not by_group and not (mask is not None and mask.startswith("optax.inject")):
        out.problems.append("the learning rate set by hand (param_groups) over groups that became an "
                            "optax.multi_transform: each group's transform keeps its own, set group by group")
    if extras is not None and (extras.learning_rate or extras.momentum):
        out.problems.append("a scheduler over parameter groups scales each group's lr: fold it in by hand")
    return out


def _decay_mask_form(row: OptimizerRow, groups: Groups, per_group: list[Emission]) -> str | None:
    """AdamW with [{params: a, weight_decay: wd}, {params: b, weight_decay: 0}]: adamw(mask=...)."""
    if row.torch != "AdamW" or len(groups.groups) != 2:
        return None
    keys = [set(g) - {"params"} for g in groups.groups]
    if keys != [{"weight_decay"}, {"weight_decay"}]:
        return None
    wd = [g["weight_decay"] for g in groups.groups]
    zero = [v.literal in (0, 0.0) and v.literal is not False for v in wd]
    if zero != [False, True]:
        return None
    text = per_group[0].one_line()
    if not text.startswith("optax.adamw(") or not text.endswith(")"):
        return None
    return f"{text[:-1]}, mask={DECAY_MASK})"
