"""LSP 3.17 notebook sync: a notebook's code cells analysed as one program, answered per cell.

pygls keeps each open notebook (its cells, in order) and each cell's text document; this module
keeps, per notebook, the analysis of its current cells (built by `program.analyze_cells`) and
what every cell was last sent. Diagnostics, code actions and hovers address cell URIs; an edit
that a fix makes to the program comes back as edits to the cell documents it changes.

Diagnostics are pushed to clients that cannot pull. A client that pulls asks per cell, and
re-asks only for the cells it edited; when a cell it did not edit has different diagnostics
now (the cell that built an optimizer was deleted, cells were moved), it is asked to refresh
(`workspace/diagnostic/refresh`). Never both to one client.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from lsprotocol import types as t

from ..engine import Analysis, Pos, Source, Span, apply, from_units, to_units
from ..notebooks.ipython import split_lines, without_placeholders
from ..notebooks.program import Cell, FixError, Program, Slot, analyze_cells
from .config import visible
from .hover import hover as explain



class SwitcherooServer(Protocol):
    """What this module asks of the language server: lsp.py's SwitcherooServer, which imports
    this module and registers its handlers (so this module does not import lsp.py)."""
    workspace: Any                      # pygls's: the notebooks and their cells
    client_capabilities: Any
    notebooks: "Notebooks"
    encoding: str
    debounce: float
    pulls: bool
    resolves_edits: bool
    versioned_edits: bool
    _pyproject: dict

    def feature(self, name: str, options: Any = None) -> Any: ...
    def settings_for(self, uri: str) -> Any: ...
    def excluded(self, uri: str) -> bool: ...
    def to_diagnostic(self, analysis: Analysis, finding: Any) -> t.Diagnostic: ...
    def to_range(self, analysis: Analysis, span: Span) -> t.Range: ...
    def text_document_publish_diagnostics(self, params: t.PublishDiagnosticsParams) -> None: ...
    def workspace_diagnostic_refresh(self, params: None) -> Any: ...
    def _settle_gc(self) -> None: ...

NOTEBOOK_FIX_ALL = "notebook.source.fixAll.switcheroo"
SYNC = t.NotebookDocumentSyncOptions(
    notebook_selector=[t.NotebookDocumentFilterWithCells(
        notebook="jupyter-notebook", cells=[t.NotebookCellLanguage(language="python")])],
    save=True)
log = logging.getLogger("switcheroo")


@dataclass
class Entry:
    """The analysis of one version of a notebook's code cells."""
    key: tuple                 # each code cell's (uri, version, text), in order
    cells: list[str]           # the code cells' URIs, in order
    program: Program
    analysis: Analysis
    diagnostics: dict = field(default_factory=dict)    # settings -> {cell uri: [Diagnostic]}
    fix_all: dict = field(default_factory=dict)        # settings -> WorkspaceEdit | None

    @property
    def editable(self) -> bool:
        """Edits are offered only when every code cell parses (never computed for another text)."""
        return not self.program.broken and self.analysis.syntax_error is None


@dataclass
class State:
    entry: Entry | None = None
    good: dict[str, str] = field(default_factory=dict)    # cell uri -> its last source that parsed
    sent: dict[str, tuple] = field(default_factory=dict)  # cell uri -> (version, diagnostics) last sent
    refreshed: tuple | None = None                        # the entry key a refresh was asked for


class Notebooks:
    def __init__(self, server: "SwitcherooServer", fix_all_kind: str, fix_all_title: str):
        self.ls = server
        self.fix_all_kind, self.fix_all_title = fix_all_kind, fix_all_title
        self.states: dict[str, State] = {}          # notebook uri -> State
        self.pending: dict[str, asyncio.Task] = {}

    # -- where things are ------------------------------------------------------------------------
    def locate(self, cell_uri: str) -> tuple[str, str] | None:
        """(notebook uri, the cell's uri as the notebook spells it) of an open notebook's cell;
        a request may escape the URI differently."""
        try:
            nb = self.ls.workspace.get_notebook_document(cell_uri=cell_uri)
        except RuntimeError:        # before initialize: no workspace yet
            return None
        if nb is None:
            return None
        plain = unquote(cell_uri)
        return nb.uri, next((c.document for c in nb.cells if unquote(c.document) == plain), cell_uri)

    def owns(self, uri: str) -> bool:
        """Is `uri` a cell of an open notebook?"""
        return self.locate(uri) is not None

    def _doc(self, uri: str):
        return self.ls.workspace.text_documents.get(unquote(uri))

    # -- analysis ------------------------------------------------------------------------------------
    def entry(self, nb_uri: str) -> Entry | None:
        """The analysis of the notebook's current cells, computed now if it is missing."""
        nb = self.ls.workspace.get_notebook_document(notebook_uri=nb_uri)
        if nb is None:
            return None
        state = self.states.setdefault(nb_uri, State())
        code = []
        for number, cell in enumerate(nb.cells, 1):
            doc = self._doc(cell.document)
            if cell.kind == t.NotebookCellKind.Code and doc is not None and doc.language_id in (None, "", "python"):
                code.append((cell.document, number, doc))
        # Not the notebook's version: running a cell bumps it (execution summaries), and the
        # analysis depends only on the code cells, in order.
        target = self.ls.settings_for(nb_uri).target
        key = (target, tuple((uri, doc.version, doc.source) for uri, _, doc in code))
        if state.entry is not None and state.entry.key == key:
            return state.entry
        cells = [Cell(uri, number, doc.source) for uri, number, doc in code]
        # The previous program's parse: the cells that did not change are not parsed again.
        previous = state.entry.analysis.doc if state.entry is not None else None
        program, analysis = analyze_cells(cells, stand_ins=state.good, previous=previous, target=target)
        uris = {c.key for c in cells}
        state.good = {u: s for u, s in state.good.items() if u in uris}
        state.good.update((s.cell.key, s.cell.source) for s in program.slots if not s.stand_in)
        state.entry = Entry(key, [c.key for c in cells], program, analysis)
        self.ls._settle_gc()
        return state.entry

    def cell_diagnostics(self, nb_uri: str, entry: Entry) -> dict[str, list[t.Diagnostic]]:
        settings = self.ls.settings_for(nb_uri)
        if settings in entry.diagnostics:
            return entry.diagnostics[settings]
        out: dict[str, list[t.Diagnostic]] = {uri: [] for uri in entry.cells}
        if not self.ls.excluded(nb_uri):
            for f in visible(entry.analysis.findings, settings):
                slot = entry.program.locate(f.span.start.line)
                if slot is not None:
                    d = self.ls.to_diagnostic(entry.analysis, f)
                    d.range = self._in_cell(slot, d.range)
                    out[slot.cell.key].append(d)
        entry.diagnostics[settings] = out
        return out

    def settle(self, nb_uri: str) -> None:
        """Analyse the notebook's current cells; push what changed, or ask a pulling client to
        refresh what it would otherwise not re-ask for."""
        entry = self.entry(nb_uri)
        if entry is None:
            return
        diagnostics = self.cell_diagnostics(nb_uri, entry)
        state = self.states[nb_uri]
        if not self.ls.pulls:
            for uri in entry.cells:
                doc = self._doc(uri)
                version = doc.version if doc else None
                if state.sent.get(uri) != (version, diagnostics[uri]):
                    state.sent[uri] = (version, diagnostics[uri])
                    self.ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
                        uri=uri, diagnostics=diagnostics[uri], version=version))
            return
        self._refresh_if_stale(state, entry, diagnostics)

    def _refresh_if_stale(self, state: State, entry: Entry, diagnostics: dict) -> None:
        if state.refreshed == entry.key:
            return
        for uri, (version, sent) in state.sent.items():
            doc = self._doc(uri)
            # A cell the client edited since it pulled is pulled again anyway.
            if doc is not None and doc.version == version and diagnostics.get(uri, []) != sent:
                state.refreshed = entry.key
                caps = self.ls.client_capabilities.workspace
                if caps and caps.diagnostics and caps.diagnostics.refresh_support:
                    self.ls.workspace_diagnostic_refresh(None)
                return

    def schedule(self, nb_uri: str, delay: float) -> None:
        old = self.pending.pop(nb_uri, None)
        if old is not None:
            old.cancel()       # a newer version supersedes it
        self.pending[nb_uri] = asyncio.get_running_loop().create_task(self._settle_later(nb_uri, delay))

    async def _settle_later(self, nb_uri: str, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            self.settle(nb_uri)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("analysis of %s failed", nb_uri)
        finally:
            if self.pending.get(nb_uri) is asyncio.current_task():
                del self.pending[nb_uri]

    def republish_all(self) -> None:
        for nb_uri in list(self.states):
            self.settle(nb_uri)

    def forget(self, nb_uri: str, cell_uris: list[str]) -> None:
        """Cells that closed (deleted, or their notebook closed): clear what they were sent."""
        state = self.states.get(nb_uri)
        for uri in cell_uris:
            if state is not None:
                state.sent.pop(uri, None)
                state.good.pop(uri, None)
            if not self.ls.pulls:
                self.ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # -- requests on a cell ----------------------------------------------------------------------------
    def _request(self, cell_uri: str) -> tuple[str, Entry, Slot] | None:
        found = self.locate(cell_uri)
        if found is None:
            return None
        nb_uri, key = found
        entry = self.entry(nb_uri)
        if entry is None or self.ls.excluded(nb_uri):
            return None
        slot = entry.program.slot_of(key)
        return (nb_uri, entry, slot) if slot is not None else None

    def pull(self, cell_uri: str) -> t.RelatedFullDocumentDiagnosticReport:
        nb_uri, key = self.locate(cell_uri)
        entry = self.entry(nb_uri)
        items = self.cell_diagnostics(nb_uri, entry).get(key, []) if entry else []
        doc = self._doc(key)
        state = self.states.setdefault(nb_uri, State())
        state.sent[key] = (doc.version if doc else None, items)
        if entry is not None:
            self._refresh_if_stale(state, entry, self.cell_diagnostics(nb_uri, entry))
        return t.RelatedFullDocumentDiagnosticReport(items=items)

    def code_action(self, params: t.CodeActionParams) -> list[t.CodeAction] | None:
        found = self._request(params.text_document.uri)
        if found is None or not found[1].editable:
            return None
        nb_uri, entry, slot = found
        analysis = entry.analysis
        only = params.context.only
        wants = (lambda kind: not only or any(kind == o or kind.startswith(f"{o}.") for o in only))
        findings = visible(analysis.findings, self.ls.settings_for(nb_uri))
        here_span = Span(self._in_program(entry, slot, params.range.start),
                         self._in_program(entry, slot, params.range.end))
        here = [f for f in findings if f.span.overlaps(here_span) and entry.program.locate(f.span.start.line) is slot]
        actions: list[t.CodeAction] = []
        if wants(t.CodeActionKind.QuickFix):
            done: set[str] = set()
            for f in here:
                fix = analysis.fix(f.key) if f.fixable else None
                if fix is None or fix.title in done:
                    continue
                done.add(fix.title)
                edit = self.workspace_edit(entry, fix.edits)
                if edit is not None:
                    actions.append(t.CodeAction(
                        title=fix.title, kind=t.CodeActionKind.QuickFix, is_preferred=True, edit=edit,
                        diagnostics=[self._diagnostic(entry, slot, g) for g in here if g.span == f.span and g.fixable]))
            for f in here:
                ignore = analysis.ignore_fix(f.key)
                edit = self.workspace_edit(entry, ignore.edits) if ignore is not None else None
                if edit is not None:
                    actions.append(t.CodeAction(title=ignore.title, kind=t.CodeActionKind.QuickFix, edit=edit,
                                                diagnostics=[self._diagnostic(entry, slot, f)]))
        if any(f.fixable for f in findings):
            # The whole notebook's fix: as the file's fix-all, and, only when asked for by that
            # name (`notebook.codeActionsOnSave`), as the notebook's; never both unasked.
            kinds = [self.fix_all_kind] if wants(self.fix_all_kind) else []
            if only and wants(NOTEBOOK_FIX_ALL):
                kinds.append(NOTEBOOK_FIX_ALL)
            for kind in kinds:
                if self.ls.resolves_edits:
                    actions.append(t.CodeAction(title=self.fix_all_title, kind=kind,
                                                data={"uri": params.text_document.uri, "fix_all": True}))
                else:
                    edit = self.fix_all_edit(nb_uri, entry)
                    if edit is not None:
                        actions.append(t.CodeAction(title=self.fix_all_title, kind=kind, edit=edit))
        return actions

    def resolve(self, action: t.CodeAction, cell_uri: str) -> t.CodeAction:
        found = self._request(cell_uri)
        if found is not None and found[1].editable and action.edit is None:
            action.edit = self.fix_all_edit(found[0], found[1])
        return action

    def fix_all_edit(self, nb_uri: str, entry: Entry) -> t.WorkspaceEdit | None:
        settings = self.ls.settings_for(nb_uri)
        if settings not in entry.fix_all:
            analysis = entry.analysis
            edits = analysis.fix_all({f.key for f in visible(analysis.findings, settings) if f.fixable})
            entry.fix_all[settings] = self.workspace_edit(entry, edits) if edits else None
        return entry.fix_all[settings]

    def hover(self, params: t.HoverParams) -> t.Hover | None:
        found = self._request(params.text_document.uri)
        if found is None:
            return None
        nb_uri, entry, slot = found
        if slot.stand_in:
            return None
        settings = self.ls.settings_for(nb_uri)
        result = explain(entry.analysis, self._in_program(entry, slot, params.position),
                         lambda f: settings.enabled(f.code))
        if result is None or entry.program.locate(result[1].start.line) is not slot:
            return None
        markdown, span = result
        return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=without_placeholders(markdown)),
                       range=self._in_cell(slot, self.ls.to_range(entry.analysis, span)))

    # -- positions and edits -----------------------------------------------------------------------------
    def _in_program(self, entry: Entry, slot: Slot, pos: t.Position) -> Pos:
        line = slot.line_in_program(pos.line)
        return Pos(line, from_units(entry.analysis.source.line(line), pos.character, self.ls.encoding))

    @staticmethod
    def _in_cell(slot: Slot, r: t.Range) -> t.Range:
        """A range the server computed on the program (client units: the lines are the same)."""
        return t.Range(start=t.Position(slot.line_in_cell(r.start.line), r.start.character),
                       end=t.Position(slot.line_in_cell(r.end.line), r.end.character))

    def _diagnostic(self, entry: Entry, slot: Slot, finding) -> t.Diagnostic:
        d = self.ls.to_diagnostic(entry.analysis, finding)
        d.range = self._in_cell(slot, d.range)
        return d

    def workspace_edit(self, entry: Entry, edits) -> t.WorkspaceEdit | None:
        """The program `edits` as edits to the cells they change (None if they cannot be)."""
        try:
            sources = entry.program.new_sources(apply(entry.program.text, edits))
        except FixError as e:
            log.info("no edit offered: %s", e)
            return None
        changes = []
        for uri in entry.cells:
            doc = self._doc(uri)
            if uri in sources and doc is not None:
                changes.append((uri, doc.version, line_edits(doc.source, sources[uri], self.ls.encoding)))
        if not changes:
            return None
        if self.ls.versioned_edits:
            return t.WorkspaceEdit(document_changes=[t.TextDocumentEdit(
                text_document=t.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=edits)
                for uri, version, edits in changes])
        return t.WorkspaceEdit(changes={uri: edits for uri, _, edits in changes})


def line_edits(old: str, new: str, encoding: str) -> list[t.TextEdit]:
    """`old` -> `new` as whole-line replacements of only the lines that differ."""
    old_lines = [c + b for c, b in split_lines(old)]
    new_lines = [c + b for c, b in split_lines(new)]
    starts = [0]
    for line in old_lines:
        starts.append(starts[-1] + len(line))
    source = Source(old)

    def position(offset: int) -> t.Position:
        pos = source.pos_at(offset)
        return t.Position(pos.line, to_units(source.line(pos.line), pos.col, encoding))

    out = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out.append(t.TextEdit(range=t.Range(start=position(starts[i1]), end=position(starts[i2])),
                                  new_text="".join(new_lines[j1:j2])))
    return out


def register(server: "SwitcherooServer") -> None:
    """The notebook sync handlers (pygls has already updated its workspace when they run)."""

    @server.feature(t.NOTEBOOK_DOCUMENT_DID_OPEN)
    def did_open(ls: "SwitcherooServer", params: t.DidOpenNotebookDocumentParams) -> None:
        ls.notebooks.schedule(params.notebook_document.uri, 0)

    @server.feature(t.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def did_change(ls: "SwitcherooServer", params: t.DidChangeNotebookDocumentParams) -> None:
        nb_uri = params.notebook_document.uri
        structure = params.change.cells.structure if params.change.cells else None
        if structure and structure.did_close:
            ls.notebooks.forget(nb_uri, [c.uri for c in structure.did_close])
        ls.notebooks.schedule(nb_uri, ls.debounce)

    @server.feature(t.NOTEBOOK_DOCUMENT_DID_SAVE)
    def did_save(ls: "SwitcherooServer", params: t.DidSaveNotebookDocumentParams) -> None:
        ls._pyproject.clear()     # a pyproject.toml may have appeared nearer to the notebook
        ls.notebooks.schedule(params.notebook_document.uri, 0)

    @server.feature(t.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def did_close(ls: "SwitcherooServer", params: t.DidCloseNotebookDocumentParams) -> None:
        nb_uri = params.notebook_document.uri
        task = ls.notebooks.pending.pop(nb_uri, None)
        if task is not None:
            task.cancel()
        ls.notebooks.forget(nb_uri, [c.uri for c in params.cell_text_documents])
        ls.notebooks.states.pop(nb_uri, None)
