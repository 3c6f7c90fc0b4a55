"""The pure core's entry point: source text in; findings, fixes and explanations out.

Front ends (the language server, the command line) and the tests call only this module. The
pipeline behind it: document (libcst parse per top-level statement, reused across edits) ->
analysis (facts, tracing, findings) -> knowledge (the torch -> Optax tables) -> transforms
(libcst rewrites of the statements a fix changes) -> edits (the changed lines only).
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass, field

from .analysis.analyze import AnalysisResult, SyntaxProblem
from .analysis.analyze import analyze as _analyze
from .analysis.arguments import code
from .analysis.findings import CODES, DOCS_URL, SEVERITIES, Finding, Fix, Site, TextEdit
from .analysis.noqa import NOQA
from .analysis.workspace import Workspace
from .document.parsed import ParsedDocument
from .document.text import Pos, Source, Span, from_units, to_units
from .edits import apply, chunk_edits
from .knowledge import catalog
from .targets import Target, target_named
from .transforms.plan import Planner, title
from .transforms.render import render


@dataclass(frozen=True)
class ConstructionRewrite:
    """A torch optimizer construction and the Optax expression fix-all writes in its place."""
    span: Span              # the torch call
    torch: str              # 'torch.optim.AdamW'
    call: str               # the call's source text
    optax: str              # the whole Optax expression, on one line (schedule and clipping folded in)
    schedule: str | None    # the learning-rate schedule folded in, if any
    clip: tuple[str, ...]   # clipping transforms folded in first, if any
    exact: bool             # False: an "(approximate)" rewrite
    written: str = ""       # what the target writes in the call's place, on one line (nnx.Optimizer(model, <optax>, ...))
    blocked: str = ""       # why fix-all leaves its flow torch for now ("" when it converts it)
    factory: str = ""       # the library call that builds it ('create_optimizer_v2'), if not the class


@dataclass(eq=False)
class Analysis:
    source: Source
    target: Target
    doc: ParsedDocument | None = None       # None: no torch in the text, nothing was parsed
    result: AnalysisResult | None = None
    _memo: dict = field(default_factory=dict)
    _context: dict = field(default_factory=dict)    # how it was analysed (workspace, path): alternatives re-run it
    # A first analysis made before the files it is traced with were read (analyze(wait=False)):
    # the findings other files could change are withheld until they are.
    complete: bool = True
    withheld: frozenset = frozenset()       # keys of the findings that wait for other files
    pending: tuple = ()                     # the files to read (paths) before it is complete

    @property
    def findings(self) -> list[Finding]:
        if self.result is None:
            return []
        if not self.withheld:
            return self.result.findings
        if "findings" not in self._memo:
            self._memo["findings"] = [f for f in self.result.findings if f.key not in self.withheld]
        return self._memo["findings"]

    @property
    def syntax_error(self) -> SyntaxProblem | None:
        return self.result.syntax_error if self.result is not None else None

    @property
    def construct_sites(self) -> dict:
        return self.result.construct_sites if self.result is not None else {}

    def site(self, key: int) -> Site | None:
        if self.result is None or key in self.withheld:
            return None
        return self.result.sites.get(key)

    def finding_at(self, pos: Pos) -> list[Finding]:
        return [f for f in self.findings if f.span.contains(pos)]

    # -- fixes ------------------------------------------------------------------------------------
    def _planner(self) -> Planner:
        if "planner" not in self._memo:
            self._memo["planner"] = Planner(self.result)
        return self._memo["planner"]

    def _edits(self, sites: list[Site]) -> list[TextEdit]:
        plan = self._planner().plan(sites)
        if not plan:
            return []
        doc = self.doc
        edits = []
        for i, new in render(doc, plan).items():
            edits.extend(chunk_edits(doc.source, doc.starts[i], doc.chunks[i].text, new))
        return sorted(edits, key=lambda e: (e.span.start, e.span.end))

    def fix(self, key: int) -> Fix | None:
        site = self.site(key)
        if site is None or not site.finding.fixable:
            return None
        steps = self._zeroed_with(site)
        name = title(site, self.target)
        if steps:
            name = f"{name}; {title(steps[0], self.target)}" + (f" (and {len(steps) - 1} more)" if len(steps) > 1 else "")
        return Fix(name, self._edits([site] + steps))

    def _zeroed_with(self, site: Site) -> list[Site]:
        """The steps an optimizer's zero_grad() zeroes for, in its scope, where the target
        derives gradients (its construction fixed already or not): removed alone, torch would add
        up their gradients, and a later fix of a step would no longer see where they were zeroed
        (never: `optax.trace`; every iteration, the step under an `if`: not MultiSteps). Its fix
        converts them with it, so fixes in any order end where fix-all does."""
        if not self.target.derives_grads or site.finding.kind != "zero_grad" or not site.ids \
                or any(i.kind not in ("torch", "optax", "nnx") for i in site.ids):
            return []
        return [s for k, s in self.result.sites.items() if s.finding.kind == "step" and s.finding.fixable
                and k not in self.withheld and s.ids == site.ids and s.ctx.scope is site.ctx.scope]

    def _fixable_sites(self, keys: set[int] | None) -> list[Site]:
        # An optimizer that `# noqa` keeps torch keeps everything about it torch too: the uses it
        # may share with another (a receiver built in the branches of a run-time choice), and so
        # that other's flow (one flow: all of it converts or none).
        kept = self._kept()
        return [s for k, s in self.result.sites.items() if s.finding.fixable and (keys is None or k in keys)
                and k not in self.withheld and not (s.ids & kept) and s.identity not in kept]

    def _kept(self) -> frozenset:
        kept = set(self.result.kept)
        todo = list(kept)
        while todo:
            for other in self.result.builder.reach.linked(todo.pop()):
                if other not in kept:
                    kept.add(other)
                    todo.append(other)
        return frozenset(kept)

    def fix_all(self, keys: set[int] | None = None) -> list[TextEdit]:
        """Every fix of the file as one consistent set of minimal edits (memoised: editors ask
        for code actions on every cursor move)."""
        if self.result is None or self.result.program is None:
            return []
        memo = ("fix_all", None if keys is None else frozenset(keys))
        if memo not in self._memo:
            sites = self._fixable_sites(keys)
            self._memo[memo] = self._edits(sites) if sites else []
        return self._memo[memo]

    def candidates(self, key: int) -> list[dict]:
        """For a construction whose class is chosen at run time: each class it may be, under which
        condition, and what it becomes ([{key, label, condition, rewrite, why}]); [] otherwise."""
        site = self.site(key)
        ident = site.identity if site is not None else None
        if ident is None or ident.choice is None or len(ident.choice.candidates) < 2:
            return []
        return self.result.builder.candidates(ident)

    def alternatives(self, key: int) -> list[Fix]:
        """For a construction whose class is chosen at run time and cannot convert as a whole: one
        fix per candidate class with a rewrite ("Convert as torch.optim.AdamW, the default"),
        converting the whole flow as if that class were the one chosen."""
        findings = self.result.findings if self.result is not None else []
        finding = findings[key] if 0 <= key < len(findings) and key not in self.withheld else None
        if finding is None or not finding.data.get("candidates"):
            return []
        memo = ("alternatives", key)
        if memo in self._memo:
            return self._memo[memo]
        site = self.site(key)
        ident = site.identity
        start = self.result.program.span(ident.call, ident.ctx).start
        out = []
        for candidate in finding.data["candidates"]:
            forced = analyze(self.source.text, self.target, forced={(start.line, start.col): candidate["key"]},
                             **self._context)
            keys = {i for i, s in forced.result.sites.items()
                    if s.finding.fixable and any(x.call is not None and forced.result.program.span(x.call, x.ctx).start
                                                 == start for x in set(s.ids) | {s.identity} if x is not None)}
            edits = forced.fix_all(keys) if keys else []
            if edits:
                out.append(Fix(f"Convert as {candidate['label']}", edits, preferred=False))
        self._memo[memo] = out
        return out

    def ignore_fix(self, key: int) -> Fix | None:
        """`# noqa: CODE` at the end of the line where the finding's statement starts."""
        findings = self.result.findings if self.result is not None else []
        finding = findings[key] if 0 <= key < len(findings) and key not in self.withheld else None
        if finding is None:
            return None
        line = finding.ignore_line
        text = self.source.line(line)
        m = NOQA.search(text)
        if m and m.group("codes"):
            codes = m.group("codes").rstrip()
            new = text[:m.start("codes")] + codes + ", " + finding.code + text[m.start("codes") + len(codes):]
        elif m:
            return None   # a bare `# noqa` already suppresses everything
        else:
            new = text.rstrip() + f"  # noqa: {finding.code}"
        return Fix(f"Ignore {finding.code} on this line",
                   [TextEdit(Span(Pos(line, 0), Pos(line, len(text))), new)], preferred=False)

    def flow_keys(self) -> set[tuple[str, int, int]]:
        """The optimizers this document's fixes convert, as (file, line, column) of their
        constructions: two files whose keys meet hold parts of one flow (fix them together)."""
        if self.result is None or self.result.program is None:
            return set()
        program = self.result.program
        keys = set()
        for site in self._fixable_sites(None):
            for ident in set(site.ids) | ({site.identity} if site.identity is not None else set()):
                if ident.call is not None and ident.ctx is not None:
                    unit = program.unit_of(ident.ctx)
                    start = program.span(ident.call, ident.ctx).start
                    keys.add((unit.path or "", start.line, start.col))
        return keys

    def related_paths(self) -> list[str]:
        """The project's files this document was traced with."""
        if self.result is None or self.result.program is None:
            return []
        return [u.path for u in self.result.program.units[1:] if u.path]

    def construction_rewrites(self) -> list[ConstructionRewrite]:
        """Each torch construction that fix-all converts, with the Optax expression it writes
        there (schedules and clipping folded in), in document order; also those whose flow it
        leaves torch for now (`blocked` says why), with the rewrite it would write."""
        if self.result is None or self.result.program is None:
            return []
        planner = Planner(self.result)
        blocked = {}
        sites = self._fixable_sites(None)
        for site in self.result.sites.values():
            data = site.finding.data
            if data.get("blocked") and data.get("kind") in ("construct", "schedule", "clip"):
                restored = dataclasses.replace(site.finding, kind=data["kind"], fixable=True)
                sites.append(dataclasses.replace(site, finding=restored))
                if data["kind"] == "construct":
                    blocked[site.identity] = data["blocked"]
        planner.plan(sites)
        out = []
        program = self.result.program
        for ident, (emission, extras) in planner.rewritten.items():
            span = program.span(ident.call, ident.ctx)
            transform = emission.one_line()
            module = planner.builder.module_for(ident).node if self.target.wrapper is not None else None
            out.append(ConstructionRewrite(
                span=span, torch=catalog.qualified_name(ident.name), call=self.source.segment(span),
                optax=transform, schedule=extras.learning_rate if extras else None,
                clip=tuple(extras.prefix) if extras else (), exact=emission.exact,
                written=self.target.construction_summary(transform, code(module) if module is not None else None),
                blocked=blocked.get(ident, ""), factory=ident.factory or ""))
        return sorted(out, key=lambda r: r.span.start)


def analyze(text: str, target: str | Target | None = None, previous: ParsedDocument | None = None,
            workspace: Workspace | None = None, path: str | None = None, wait: bool = True,
            forced: dict | None = None) -> Analysis:
    """Analyse a document. `previous`: the parse of an earlier version of the same document,
    whose unchanged top-level statements are reused. `workspace` and `path`: the project the
    document is part of, whose files that import it or that it imports are traced with it.
    `forced`: construction position -> the class a run-time choice is taken to be (alternatives).

    `wait=False` (the server): do not read other files now. When every file the document is
    traced with is already parsed (and the workspace knows who imports it), the analysis is
    complete; otherwise the document is analysed alone and what other files could change
    (settled.py) is withheld: `complete` is False and `pending` names the files to read."""
    chosen = target if target is not None and not isinstance(target, str) else target_named(target)
    source = Source(text)
    context = {"workspace": workspace, "path": path}
    if workspace is None or path is None:
        if "torch" not in text:
            return Analysis(source, chosen)       # nothing can be traced to torch: do not even parse
        doc = previous.replaced(text) if previous is not None else ParsedDocument.parse(text)
        return Analysis(doc.source, chosen, doc, _analyze(doc, chosen, forced=forced), _context=context)
    paths = workspace.unit_paths(path)
    knows = workspace.knows_importers
    if "torch" not in text and not any(workspace.has_torch(p) for p in paths) and (knows or wait):
        return Analysis(source, chosen)
    module, is_package = workspace.describe(path)
    first_party = frozenset(workspace.describe(p)[0].split(".", 1)[0] for p in paths) - {""}
    if wait or (knows and all(workspace.loaded(p) for p in paths)):
        units = workspace.units(paths)
        doc = previous.replaced(text) if previous is not None else ParsedDocument.parse(text)
        result = _analyze(doc, chosen, units, module, str(path), is_package, forced=forced)
        return Analysis(doc.source, chosen, doc, _first_party(result, first_party), _context=context)
    pending = tuple(p for p in paths if not workspace.loaded(p))
    if "torch" not in text:
        return Analysis(source, chosen, complete=False, pending=pending)
    doc = previous.replaced(text) if previous is not None else ParsedDocument.parse(text)
    result = _first_party(_analyze(doc, chosen, [], module, str(path), is_package, forced=forced), first_party)
    return Analysis(doc.source, chosen, doc, result, complete=False, pending=pending,
                    withheld=_withheld(result, workspace, path, text), _context=context)


def _first_party(result: AnalysisResult, names: frozenset) -> AnalysisResult:
    if result.program is not None:
        result.program.first_party = names
    return result


def reconsider(analysis: Analysis, workspace: Workspace, path: str) -> Analysis:
    """A first analysis again, now that the workspace knows more (who imports the document):
    the same parse and findings with what is withheld and what to read worked out anew, or the
    complete analysis if every file it is traced with is at hand."""
    if analysis.complete:
        return analysis
    text = analysis.source.text
    paths = workspace.unit_paths(path)
    if analysis.result is None or (workspace.knows_importers and all(workspace.loaded(p) for p in paths)):
        return analyze(text, analysis.target, previous=analysis.doc, workspace=workspace, path=path, wait=False)
    return Analysis(analysis.source, analysis.target, analysis.doc, analysis.result, complete=False,
                    pending=tuple(p for p in paths if not workspace.loaded(p)),
                    withheld=_withheld(analysis.result, workspace, path, text), _context=analysis._context)


def _withheld(result: AnalysisResult, workspace: Workspace, path: str, text: str) -> frozenset:
    """The keys of the findings other files could change: every one until the workspace knows
    who imports the document (any file may import any of its names), or when it builds no
    optimizer itself (its rewrites are then named after the optimizers of other files)."""
    if result.program is None or not result.findings:
        return frozenset()
    keys = frozenset(f.key for f in result.findings)
    own = any(i.ctx is not None and result.program.in_primary(i.ctx)
              and (i.kind == "torch" or (i.kind == "optax" and i.target is not None))
              for i in result.tracer.identities)
    doc = result.program.primary.doc
    chunks = list(zip(doc.start_lines, doc.chunks))
    lines = workspace.withheld_lines(path, text, chunks) if own and workspace.knows_importers else None
    if lines is None:
        return keys
    starts = sorted(lines)
    out = set()
    for f in result.findings:
        line = f.span.start.line
        i = bisect.bisect_right(starts, (line, float("inf"))) - 1
        if i >= 0 and starts[i][0] <= line <= starts[i][1]:
            out.add(f.key)
    return frozenset(out)


def analyze_project(texts: dict[str, str], target: str | Target | None = None,
                    roots=()) -> dict[str, Analysis]:
    """Analyse the files of one project (path -> text), each traced with the files it imports
    and the files that import it."""
    workspace = Workspace.from_texts(texts, roots)
    return {path: analyze(text, target, workspace=workspace, path=path) for path, text in texts.items()}


__all__ = ["Analysis", "analyze_project", "reconsider", "ConstructionRewrite", "analyze", "apply", "CODES", "DOCS_URL", "SEVERITIES", "Finding",
           "Fix", "TextEdit", "Pos", "Source", "Span", "from_units", "to_units", "ParsedDocument", "Workspace"]
