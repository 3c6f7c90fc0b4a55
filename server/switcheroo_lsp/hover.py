"""Markdown explanations for a flagged call, built from the analysis (no re-parse)."""

from __future__ import annotations

from .analysis import Analysis
from .rewrite import apply
from .source import Pos, Source, Span

PATTERN = (
    "**The Optax pattern.** An Optax optimizer is a pair of pure functions. "
    "`state = opt.init(params)` builds its state once; each step, "
    "`updates, state = opt.update(grads, state, params)` returns the updates and the new state, and "
    "`params = optax.apply_updates(params, updates)` returns the new parameters. Nothing is mutated, "
    "and `jax.grad` returns fresh gradients, so nothing needs zeroing."
)


def hover(analysis: Analysis, pos: Pos) -> tuple[str, Span] | None:
    findings = analysis.finding_at(pos)
    if not findings:
        return None
    parts: list[str] = []
    for finding in findings:
        site = analysis.site(finding.key)
        parts.append(f"### {finding.code} · switcheroo\n\n{finding.message}")
        if finding.kind == "construct":
            parts.append(_rewrite_block(analysis, finding.key))
            notes = site.emission.notes if site.emission else []
            if notes:
                parts.append("**Differences that apply to this call**\n\n" + "\n".join(f"- {n}" for n in notes))
            if site.emission and not site.emission.exact:
                parts.append(f"**Not exact:** {site.emission.difference}")
            else:
                parts.append("**Numerically faithful:** the same parameters and gradients give torch's "
                             "trajectory (tested by running both, float64).")
        elif finding.kind in ("step", "undefined"):
            if finding.kind == "step":
                parts.append(_rewrite_block(analysis, finding.key))
            if site.missing:
                parts.append(f"**Define first:** {', '.join(f'`{m}`' for m in site.missing)} "
                             "(the rewrite adds a TODO comment naming them).")
            ident = site.identity
            if ident is not None and ident.kind == "torch":
                construct = next((f for f in analysis.findings if f.kind == "construct"
                                  and analysis.site(f.key).identity is ident), None)
                if construct is not None:
                    parts.append(f"**Its optimizer:** {construct.message}")
        elif finding.kind == "zero_grad":
            parts.append("`jax.grad` returns new gradients on every call; torch accumulates into `.grad` "
                         "until `zero_grad()` clears it. The statement is removed (`pass` if a block "
                         "would be left empty).")
        elif finding.kind in ("manual", "unmapped"):
            parts.append("No automatic rewrite: this needs a decision only you can make.")
    parts.append(PATTERN)
    first = findings[0]
    return "\n\n".join(p for p in parts if p), first.span


def _rewrite_block(analysis: Analysis, key: int) -> str:
    """The exact lines this call's fix produces."""
    fix = analysis.fix(key)
    if fix is None:
        return ""
    site = analysis.site(key)
    source = analysis.source
    stmt_lines = range(site.ctx.stmt.lineno - 1, site.ctx.stmt.end_lineno)
    edit = next((e for e in fix.edits if e.span.start.line in stmt_lines or
                 (e.span.start.line <= stmt_lines.start < e.span.end.line)), None)
    if edit is None:
        return ""
    text = edit.new_text.rstrip("\r\n") or "(removed)"
    text = "\n".join(line.rstrip("\r") for line in text.split("\n"))
    lines = text.split("\n")
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    body = "\n".join(l[indent:] for l in lines)
    return f"**This call becomes** ({fix.title})\n\n```python\n{body}\n```"


__all__ = ["hover", "PATTERN", "apply", "Source"]
