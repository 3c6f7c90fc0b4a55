"""Markdown explanations for a flagged call, built from the analysis (no re-parse)."""

from __future__ import annotations

from ..analysis.findings import Site
from ..engine import Analysis, Finding, Pos, Span
from ..analysis.hyper_state import kept, moves
from ..knowledge.hyperparams import HOVER as HYPERPARAMS

SCHEDULE_NOTE = ("A schedule is a function of the update count, passed as `learning_rate`; optax "
                 "calls it with an int32 count, so in a float64 run its values carry float32 rounding.")
WHOLE_FLOWS = ("**Whole flows or nothing.** fix-all converts an optimizer only when it can account for every "
               "place its object reaches (names, attributes, calls, returns, wrappers, its scheduler): a program "
               "left half torch, half Optax would crash or silently stop training. Port the use named above by "
               "hand (or keep this optimizer torch); its construction, steps and scheduler then convert together.")
OWN_OPTIMIZER = ("**Writing it for Optax.** An Optax optimizer is a pair of pure functions; torch's "
                 "`self.state` becomes the state pytree and `step()`'s change to each parameter becomes the "
                 "update:\n\n```python\ndef my_optimizer(learning_rate):\n    def init(params):\n"
                 "        return jax.tree.map(jnp.zeros_like, params)    # the per-parameter state\n\n"
                 "    def update(grads, state, params=None):\n"
                 "        updates = jax.tree.map(lambda g: -learning_rate * g, grads)   # what step() adds\n"
                 "        return updates, state\n\n    return optax.GradientTransformation(init, update)\n```\n\n"
                 "Test it against the torch class on the same gradients, as switcheroo's own transforms are "
                 "(`switcheroo_optax`).")
FAITHFUL = ("**Numerically faithful:** the same parameters and gradients give torch's trajectory "
            "(tested by running both, float64).")


def hover(analysis: Analysis, pos: Pos, visible=None) -> tuple[str, Span] | None:
    """Markdown for the findings at `pos` (only those `visible` lets through, when given)."""
    findings = [f for f in analysis.finding_at(pos) if visible is None or visible(f)]
    if not findings:
        return None
    parts: list[str] = []
    explained: set[int] = set()      # OPX102 and OPX203 on one step share their explanation
    for finding in findings:
        site = analysis.site(finding.key)
        parts.append(f"### {finding.code} · switcheroo\n\n{finding.message}")
        if id(site.ctx.stmt) not in explained:
            explained.add(id(site.ctx.stmt))
            parts.extend(_explain(analysis, finding, site))
    parts.append(analysis.target.pattern)
    return "\n\n".join(p for p in parts if p), findings[0].span


def _explain(analysis: Analysis, finding: Finding, site: Site) -> list[str]:
    kind = finding.kind
    out = [_rewrite_block(analysis, finding.key)] if finding.fixable else []
    candidates = analysis.candidates(finding.key)
    if candidates:
        rows = []
        for c in candidates:
            when = f"when `{c['condition']}`: " if c["condition"] else ""
            becomes = f"`{c['rewrite']}`" if c["rewrite"] else f"no rewrite ({c['why']})" if c["key"] else "no rewrite"
            rows.append(f"{when}{c['label']} → {becomes}")
        out.append(_bullets("Chosen at run time: each class it may be", rows))
    if kind == "construct":
        notes = site.emission.notes if site.emission else []
        if notes:
            out.append(_bullets("Differences that apply to this call", notes))
        if site.emission and not site.emission.exact:
            out.append(f"**Not exact:** {site.emission.difference}")
        else:
            out.append(FAITHFUL)
        hyper = [s for s in analysis.result.sites.values()
                 if s.finding.kind == "hyperparam" and site.identity is not None and (
                     s.identity is site.identity or site.identity in s.ids)]
        if hyper:
            out.append(f"**Set by hand:** {HYPERPARAMS}.")
            h = hyper[0]
            groups = kept(analysis.target, h.receiver, h.names, h.hyper_state)
            if groups:
                out.append(_bullets("Each parameter group's transform is wrapped in `optax.inject_hyperparams` "
                                    "(`optax.multi_transform` keeps one state per group)", groups))
    elif kind == "hyperparam":
        out.append(f"**Where it lives now:** {HYPERPARAMS}.")
        out.append(_bullets("What moved where", moves(analysis.target, site.hyper, site.receiver, site.names,
                                                      site.hyper_state)))
    elif kind in ("step", "undefined"):
        if site.missing:
            out.append(f"**Define first:** {', '.join(f'`{m}`' for m in site.missing)} "
                       "(the rewrite adds a TODO comment naming them).")
        construct = analysis.construct_sites.get(site.identity) if site.identity else None
        if construct is not None:
            out.append(f"**Its optimizer:** {construct.finding.message}")
    if kind in ("step", "undefined", "zero_grad", "manual"):
        wrappers = {w.name: w.note for i in site.ids for w in i.wrappers}
        if wrappers:
            out.append(_bullets("Handed through", [f"`{name}`: {note}" for name, note in sorted(wrappers.items())]))
    elif kind in ("schedule", "schedule_undefined", "sched_step"):
        if site.schedule is not None:
            notes = list(site.schedule.notes)
            if site.schedule.kind != "plateau":
                notes.append(SCHEDULE_NOTE)
            out.append(_bullets("Differences that apply", notes))
    elif kind == "zero_grad":
        out.append("`jax.grad` returns new gradients on every call; torch accumulates into `.grad` until "
                   "`zero_grad()` clears it. The statement is removed (`pass` if a block would be left empty).")
    if kind in ("manual", "unmapped"):
        ident = site.identity
        if ident is not None and ident.kind == "custom" and ident.node is not None:
            out.append(OWN_OPTIMIZER)
        elif " stays torch" in finding.message:
            out.append(WHOLE_FLOWS)
        else:
            out.append("No automatic rewrite: this needs a decision only you can make.")
    return out


def _bullets(title: str, items: list[str]) -> str:
    return f"**{title}**\n\n" + "\n".join(f"- {i}" for i in items)


def _rewrite_block(analysis: Analysis, key: int) -> str:
    """The lines this finding's fix writes (imports left out)."""
    fix = analysis.fix(key)
    if fix is None:
        return ""
    blocks = []
    for edit in fix.edits:
        lines = [l.rstrip("\r") for l in edit.new_text.rstrip("\r\n").split("\n")]
        code = [l for l in lines if l.strip() and not l.lstrip().startswith(("import ", "from "))]
        if not code:
            continue
        indent = min(len(l) - len(l.lstrip()) for l in code)
        blocks.append("\n".join(l[indent:] for l in lines if l.strip()))
    if not blocks:
        blocks = ["(the statement is removed)"]
    body = "\n...\n".join(blocks)
    return f"**This fix writes** ({fix.title})\n\n```python\n{body}\n```"
