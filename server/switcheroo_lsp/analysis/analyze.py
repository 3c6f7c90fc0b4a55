"""`analyze(doc)`: the findings of one parsed document, with what their fixes need (sites)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..document.parsed import ParsedDocument
from ..document.text import Pos
from .constructions import Builder
from .findings import Finding, Site
from .noqa import drop_suppressed
from .program import Program, build
from .tracing import Identity, Tracer
from .training_loop import clip_findings, scheduler_findings


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    pos: Pos


@dataclass(eq=False)
class AnalysisResult:
    doc: ParsedDocument
    target: object
    findings: list[Finding] = field(default_factory=list)
    sites: dict[int, Site] = field(default_factory=dict)
    construct_sites: dict[Identity, Site] = field(default_factory=dict)
    kept: frozenset = frozenset()     # torch optimizers whose construction `# noqa` keeps as torch
    syntax_error: SyntaxProblem | None = None
    program: Program | None = None
    tracer: Tracer | None = None
    builder: Builder | None = None


def analyze(doc: ParsedDocument, target, units=(), module_name: str | None = None, path: str | None = None,
            is_package: bool = False, forced: dict | None = None) -> AnalysisResult:
    """The findings of `doc`; `units`: the project's documents it is traced with (workspace.py);
    `forced`: constructions whose class is chosen at run time, taken as one candidate
    ((line, column) -> catalog key: the "Convert as ..." code actions)."""
    result = AnalysisResult(doc, target)
    error = doc.syntax_error
    if error is not None:
        result.syntax_error = SyntaxProblem(f"syntax error: {error.message} (line {error.pos.line + 1})", error.pos)
        return result
    result.program = build(doc, units, module_name, path, is_package)
    result.tracer = Tracer(result.program, forced)
    b = result.builder = Builder(result)
    b.constructions()
    scheduler_findings(b)
    clip_findings(b)
    b.receivers()
    b.block_unconvertible_flows()
    b.finish()
    drop_suppressed(result)
    return result
