"""`clip_grad_norm_` / `clip_grad_value_` before a step -> the first transform of the optimizer's
chain (the statement goes; `total = clip_grad_norm_(...)` keeps `total` as the global norm)."""

from __future__ import annotations

from ..analysis.findings import Site
from ..analysis.tracing import Identity
from .changes import Folded, Plan


def plan_clip(p, site: Site, plan: Plan, folded: dict[Identity, Folded]) -> None:
    prefix = folded.setdefault(site.identity, Folded()).prefix
    if site.clip not in prefix:      # the same clipping before two steps of one optimizer: once in its chain
        prefix.append(site.clip)
    keep = [f"{site.norm_target} = {p.optax_name}.global_norm({site.norm_grads})"] if site.norm_target else []
    plan.replace(site.ctx, keep)
