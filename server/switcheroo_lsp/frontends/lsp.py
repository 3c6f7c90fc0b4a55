"""The language server: translates LSP to the core and back, nothing else.

One analysis per open document version. Diagnostics are pushed to clients that cannot pull
and pulled by those that can — never both. Code actions and hovers are answered from the
analysis of the current version; a change schedules a fresh analysis and cancels the pending
one, so typing bursts never queue stale work.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument, Workspace

from .. import __version__
from ..engine import Workspace as Project
from ..engine import (CODES, DOCS_URL, Analysis, Finding, Pos, Source, Span, TextEdit, analyze, from_units,
                      reconsider, to_units)
from ..targets import target_named
from .config import Settings, load_pyproject, visible
from .hover import hover as explain
from . import gc_pause
from . import notebook_sync as notebooks
from . import verify_lsp
from .indexing import Indexer, Loader
from .remembered import Remembered

FIX_ALL = "source.fixAll.switcheroo"
FIX_ALL_TITLE = "switcheroo: convert every torch.optim use in this file to {}"
SEVERITY = {"error": t.DiagnosticSeverity.Error, "warning": t.DiagnosticSeverity.Warning,
            "information": t.DiagnosticSeverity.Information, "hint": t.DiagnosticSeverity.Hint}
log = logging.getLogger("switcheroo")
SAVE_AFTER = 3.0      # seconds without a newly remembered analysis before the cache file is written


class _Unanswerable:
    """Stands in for a message pygls could not read; the error reply has already been sent."""
    jsonrpc = "invalid"


class Protocol(LanguageServerProtocol):
    """pygls drops requests whose params do not deserialize; JSON-RPC wants an error reply."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                self._send_response(data["id"], error=t.ResponseError(
                    code=JsonRpcInvalidParams.CODE, message=f"invalid params for {data.get('method')}: {exc}"))
            return _Unanswerable()


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class Document(TextDocument):
    """pygls splits lines with str.splitlines, which also breaks at form feeds, U+2028 and
    other characters the LSP does not count as line ends: an incremental change after one of
    them would land on the wrong line."""

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(_LINE.findall(self.source))

    def _apply_incremental_change(self, change: t.TextDocumentContentChangePartial) -> None:
        # pygls lands a character just past the end of a line after the line break (or between
        # \r and \n), and one short on a last line without a break. The LSP: a character past
        # the end of its line means the end of that line; past the last line, the end of the text.
        lines = self.lines
        start, end = sorted((self._offset(lines, change.range.start), self._offset(lines, change.range.end)))
        self._source = self.source[:start] + change.text + self.source[end:]

    def _offset(self, lines: tuple[str, ...], pos: t.Position) -> int:
        if pos.line >= len(lines):
            return len(self.source)
        encoding = self.position_codec.encoding
        content = lines[pos.line].rstrip("\r\n")
        return (sum(map(len, lines[:pos.line]))
                + from_units(content, pos.character, str(getattr(encoding, "value", encoding) or "utf-16")))


class DocumentWorkspace(Workspace):
    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None) -> Document:
        return Document(doc_uri, source=source, version=version, language_id=language_id,
                        sync_kind=self._sync_kind, position_codec=self.position_codec)


@dataclass
class Entry:
    version: int | None
    analysis: Analysis
    good: Analysis | None        # the last analysis that parsed (shown while the file does not)
    fix_all: dict = field(default_factory=dict)   # settings -> the whole-file WorkspaceEdit
    stale: bool = False          # other files changed: analyse again (the document did not)


class SwitcherooServer(LanguageServer):
    def __init__(self):
        super().__init__("switcheroo-lsp", __version__, protocol_cls=Protocol,
                         notebook_document_sync=notebooks.SYNC)
        self.entries: dict[str, Entry] = {}
        self.notebooks = notebooks.Notebooks(self, FIX_ALL, FIX_ALL_TITLE)   # cells: see notebook_sync.py
        self.pending: dict[str, asyncio.Task] = {}
        self._analyses = 0
        self.init_settings = Settings()      # initializationOptions
        self.client_settings: Settings | None = None    # workspace/configuration, didChangeConfiguration
        self.debounce = _milliseconds(os.environ.get("SWITCHEROO_DEBOUNCE_MS"), 75)
        # The project's files, for optimizers built in one file and stepped in another.
        self.codebase = Project(background=True)
        self.indexer = Indexer(self)            # the workspace index, in a worker process
        self.loader = Loader(self)              # the files open documents are traced with
        self._published: dict[str, tuple] = {}      # uri -> (version, diagnostics) last pushed
        self._pulled: dict[str, list] = {}          # uri -> diagnostics last pulled
        self._quiet: dict[str, bool] = {}
        self.remembered: Remembered | None = None     # findings of earlier analyses (remembered.py)
        self._recalled: dict[str, tuple] = {}     # uri -> (version, diagnostics) shown from them
        self._saving: asyncio.TimerHandle | None = None
        self._on_disk: set[str] = set()     # uris opened or saved since their last complete analysis
        # folder -> (its project settings, the pyproject.toml they came from, its mtime)
        self._pyproject: dict[Path, tuple[Settings, Path | None, int | None]] = {}

    def report_server_error(self, error, source):
        # An unreadable message gets a log line, not a popup in the user's editor.
        if isinstance(error, json.JSONDecodeError):
            # JSON-RPC wants `"id": null` here; pygls's serializer would drop a None id, and a
            # response without an id reads as a malformed notification to the client.
            self.protocol._send_data({"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32700, "message": f"parse error: {error}"}})
        log.error("%s: %s", type(error).__name__, error)

    # -- capabilities -----------------------------------------------------------------------------
    @property
    def pulls(self) -> bool:
        caps = self.client_capabilities
        return bool(caps and caps.text_document and caps.text_document.diagnostic)

    @property
    def resolves_edits(self) -> bool:
        """Can the client fetch a code action's edit lazily (codeAction/resolve)?"""
        caps = self.client_capabilities
        action = caps.text_document.code_action if caps and caps.text_document else None
        support = action.resolve_support if action else None
        return bool(support and "edit" in (support.properties or []))

    @property
    def versioned_edits(self) -> bool:
        caps = self.client_capabilities
        ws = caps.workspace if caps else None
        return bool(ws and ws.workspace_edit and ws.workspace_edit.document_changes)

    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding if self.workspace else None
        return str(getattr(enc, "value", enc) or "utf-16")

    # -- settings -----------------------------------------------------------------------------------
    @property
    def editor_settings(self) -> Settings:
        """The latest settings the editor sent. initializationOptions are the editor's settings
        at start; a configuration sent later supersedes them as a whole, so that a setting the
        user removed (VS Code then omits the key) stops applying."""
        return self.client_settings if self.client_settings is not None else self.init_settings

    def warn(self, problems) -> None:
        for problem in problems:
            self.window_log_message(t.LogMessageParams(type=t.MessageType.Warning, message=problem))

    def project(self, uri: str) -> tuple[Settings, Path | None]:
        """`[tool.switcheroo]` of the nearest pyproject.toml and its folder; reread once it changes."""
        path = to_fs_path(uri)
        if not path:
            return Settings(), None
        folder = Path(path).parent
        cached = self._pyproject.get(folder)
        if cached is None or _mtime(cached[1]) != cached[2]:
            settings, root = load_pyproject(folder)
            found = root / "pyproject.toml" if root else None
            cached = self._pyproject[folder] = (settings, found, _mtime(found))
            self.warn(settings.problems)
        return cached[0], cached[1].parent if cached[1] else None

    def settings_for(self, uri: str) -> Settings:
        return self.project(uri)[0].merged(self.editor_settings)

    def excluded(self, uri: str) -> bool:
        path = to_fs_path(uri)
        if not path:
            return False
        _, root = self.project(uri)
        return self.settings_for(uri).excluded(Path(path), root)

    # -- analysis -----------------------------------------------------------------------------------
    def entry(self, uri: str) -> Entry | None:
        """The analysis of the document's current version, computed now if it is missing."""
        doc = self.workspace.text_documents.get(unquote(uri))    # pygls keys them unquoted
        if doc is None or self.notebooks.owns(uri):     # a cell is analysed with its notebook
            return None
        entry = self.entries.get(uri)
        target = target_named(self.settings_for(uri).target)
        same = (entry is not None and entry.version == doc.version and entry.analysis.source.text == doc.source
                and entry.analysis.target is target)
        if same and not entry.stale:
            return entry
        # The previous version's parse: its unchanged top-level statements are not parsed again
        # (a new target with the same text re-analyses the same parse). A document another
        # one was traced with is parsed already.
        previous = entry.analysis.doc if entry is not None else None
        path = to_fs_path(uri)
        if path:
            self.codebase.set_open(path, doc.source)
            if previous is None:
                previous = self.codebase.parse_at_hand(path, doc.source)
        # Never waits for other files: what they could change is withheld until the loader has
        # read them (analyze(wait=False), analysis/settled.py), then published if it changed.
        with gc_pause.paused():     # its collections would walk all the server keeps
            analysis = analyze(doc.source, target, previous=previous, workspace=self.codebase if path else None,
                               path=path, wait=False)
            if path and not analysis.complete and self.indexer.take_scan():
                analysis = reconsider(analysis, self.codebase, path)    # the index came in meanwhile
        if path:
            if analysis.doc is not None:
                self.codebase.remember(path, analysis.doc)
            if analysis.complete:
                self.loader.forget(uri)
                if uri in self._on_disk:     # opened or saved: its text may be the disk's (not after a keystroke)
                    self._on_disk.discard(uri)
                    self.keep_findings(uri, path, analysis)
            elif analysis.pending:
                self.loader.want(uri, analysis.pending)
        if same and entry.analysis.complete and not analysis.complete:
            # Other files changed under a document that did not: it keeps showing its complete
            # findings (true of the files as they were) until the files it now waits for are read.
            entry.stale = False
            return entry
        good = analysis if analysis.syntax_error is None else (entry.good if entry else None)
        entry = Entry(doc.version, analysis, good)
        self.entries[uri] = entry
        self._settle_gc()
        return entry

    def recall(self, uri: str) -> list[t.Diagnostic] | None:
        """A document's remembered findings, if its text and its neighbours' are those of an
        earlier complete analysis (None: they are not); pushed at once to clients that are
        pushed to. Looked up once per version."""
        doc = self.workspace.text_documents.get(unquote(uri))
        path = to_fs_path(uri)
        if self.remembered is None or doc is None or not path or self.notebooks.owns(uri):
            return None
        if uri in self._recalled and self._recalled[uri][0] == doc.version:
            return self._recalled[uri][1]
        settings = self.settings_for(uri)
        self.codebase.set_open(path, doc.source)
        hit = self.remembered.get(self.remembered.key(self.codebase, path, settings.target))
        if hit is None:
            self._recalled[uri] = (doc.version, None)
            return None
        source = Source(doc.source)
        diagnostics = [] if self.excluded(uri) else [
            self.row_diagnostic(source, row, key, settings)
            for row, key in zip(hit["rows"], hit["keys"]) if settings.enabled(row["code"])]
        self._recalled[uri] = (doc.version, diagnostics)
        if not self.pulls:
            self._published[uri] = (doc.version, diagnostics)
            self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
                uri=uri, diagnostics=diagnostics, version=doc.version))
        return diagnostics

    def row_diagnostic(self, source: Source, row: dict, key: int, settings: Settings) -> t.Diagnostic:
        """A remembered finding as to_diagnostic() makes it from the analysis's own."""
        span = Span(Pos(row["line"] - 1, row["column"] - 1), Pos(row["end_line"] - 1, row["end_column"] - 1))
        code = row["code"]
        return t.Diagnostic(
            range=self.source_range(source, span), message=row["message"],
            severity=SEVERITY[settings.severity_of(code, CODES[code][0])], code=code, source="switcheroo",
            code_description=t.CodeDescription(href=DOCS_URL.format(code=code.lower())),
            data={"fixable": row["fixable"], "key": key})

    def keep_findings(self, uri: str, path: str, analysis: Analysis) -> None:
        """Remember a complete analysis of a text on disk; written to the cache soon after."""
        if self.remembered is None:
            return
        try:
            kept = self.remembered.keep(self.codebase, path, self.settings_for(uri).target, analysis)
        except Exception:
            log.exception("remembering the findings of %s failed", path)
            return
        if kept:
            if self._saving is not None:
                self._saving.cancel()
            self._saving = asyncio.get_running_loop().call_later(SAVE_AFTER, self.save_findings)

    def save_findings(self) -> None:
        self._saving = None
        if self.remembered is not None:
            self.remembered.save()

    def _settle_gc(self) -> None:
        """Move what is alive now (the analyses kept for code actions and hovers) out of the
        cyclic GC's sight: its full collections would otherwise walk every kept syntax tree on
        each keystroke (measured: 2x the analysis at 5k lines). Analyses hold no reference
        cycles, so a replaced one is still freed at once by reference counting; now and then
        the GC gets to look at everything, for whatever cycles others leave behind."""
        self._analyses += 1
        if self._analyses % 256 == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()

    def schedule(self, uri: str, delay: float, quiet: bool = False) -> None:
        """Analyse a document soon. `quiet`: because another file changed; publish only if its
        diagnostics changed (a document's own open, change and save always publish)."""
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()     # a newer version supersedes it: never queue stale work
            quiet = quiet and self._quiet.get(uri, True)
        self._quiet[uri] = quiet
        self.pending[uri] = asyncio.get_running_loop().create_task(self._analyse_later(uri, delay))

    async def _analyse_later(self, uri: str, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            if uri not in self.entries:
                await self.indexer.scan_in_flight()
                self.indexer.take_scan()
                self.recall(uri)
            entry = self.entry(uri)
            if entry is not None and not self.pulls:
                self.publish(uri, entry, quiet=self._quiet.pop(uri, False))
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("analysis of %s failed", uri)
        finally:
            if self.pending.get(uri) is asyncio.current_task():
                del self.pending[uri]

    def diagnostics(self, uri: str, entry: Entry) -> list[t.Diagnostic]:
        if self.excluded(uri):
            return []
        shown = entry.good if entry.analysis.syntax_error else entry.analysis
        if shown is None:
            return []
        return [self.to_diagnostic(shown, f) for f in visible(shown.findings, self.settings_for(uri))]

    def publish(self, uri: str, entry: Entry, quiet: bool = False) -> None:
        version, recalled = self._recalled.get(uri, (None, None))
        if recalled is not None:
            if version == entry.version and not entry.analysis.complete:
                return      # the remembered findings stand until the complete analysis
            del self._recalled[uri]
            quiet = quiet or self._published.get(uri, (None,))[0] == entry.version
        diagnostics = self.diagnostics(uri, entry)
        if quiet and self._published.get(uri) == (entry.version, diagnostics):
            return          # analysed again (another file, the index): nothing new to show
        self._published[uri] = (entry.version, diagnostics)
        self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics, version=entry.version))

    def on_index(self) -> None:
        """The index has read the workspace: who imports each document is known now; analyse
        the open documents again (what they withheld may be final now, or wait for importers)."""
        for entry in self.entries.values():
            entry.stale = True
        self.republish_all(quiet=True)

    def on_facts(self) -> None:
        """The index's per-file facts arrived: first analyses may withhold less."""
        stale = [uri for uri, entry in self.entries.items() if not entry.analysis.complete]
        for uri in stale:
            self.entries[uri].stale = True
            self.schedule(uri, 0, quiet=True)

    def complete(self, uri: str) -> None:
        """Every file a document is traced with is read: its complete analysis, published if it
        adds anything (it never withdraws what the first one showed)."""
        entry = self.entries.get(uri)
        if entry is None:
            return
        entry.stale = True
        if self.pulls:
            fresh = self.entry(uri)
            if fresh is not None and self._pulled.get(uri) != self.diagnostics(uri, fresh):
                self.republish_all(quiet=True)
            return
        self.schedule(uri, 0, quiet=True)

    def file_changed(self, uri: str) -> None:
        """Another file's text changed: the open documents traced with it are analysed again."""
        path = to_fs_path(uri)
        if not path:
            return
        key = str(Path(path).resolve())
        for other, entry in list(self.entries.items()):
            if other != uri and key in {str(Path(p).resolve()) for p in entry.analysis.related_paths()}:
                entry.stale = True              # its facts came from the old text
                self.schedule(other, self.debounce, quiet=True)

    def republish_all(self, quiet: bool = False) -> None:
        if self.pulls:
            caps = self.client_capabilities.workspace
            if caps and caps.diagnostics and caps.diagnostics.refresh_support:
                self.workspace_diagnostic_refresh(None)
            return
        for uri in [doc.uri for doc in self.workspace.text_documents.values()]:   # as the client spelt it
            if uri in self.pending and uri not in self.entries:
                continue        # its first analysis is on its way (and may show remembered findings first)
            entry = self.entry(uri)
            if entry is not None:
                self.publish(uri, entry, quiet=quiet)
        self.notebooks.republish_all()

    # -- conversions --------------------------------------------------------------------------------
    def to_range(self, analysis: Analysis, span: Span) -> t.Range:
        return self.source_range(analysis.source, span)

    def source_range(self, src: Source, span: Span) -> t.Range:
        enc = self.encoding
        return t.Range(
            start=t.Position(span.start.line, to_units(src.line(span.start.line), span.start.col, enc)),
            end=t.Position(span.end.line, to_units(src.line(span.end.line), span.end.col, enc)))

    def from_position(self, analysis: Analysis, pos: t.Position) -> Pos:
        line = min(max(pos.line, 0), analysis.source.line_count - 1)
        return Pos(line, from_units(analysis.source.line(line), pos.character, self.encoding))

    def to_diagnostic(self, analysis: Analysis, f: Finding) -> t.Diagnostic:
        return t.Diagnostic(
            range=self.to_range(analysis, f.span), message=f.message, severity=SEVERITY[f.severity],
            code=f.code, source="switcheroo", code_description=t.CodeDescription(href=f.docs),
            data={"fixable": f.fixable, "key": f.key})

    def workspace_edit(self, uri: str, version: int | None, analysis: Analysis,
                       edits: list[TextEdit]) -> t.WorkspaceEdit:
        text_edits = [t.TextEdit(range=self.to_range(analysis, e.span), new_text=e.new_text) for e in edits]
        if self.versioned_edits:
            return t.WorkspaceEdit(document_changes=[t.TextDocumentEdit(
                text_document=t.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=text_edits)])
        return t.WorkspaceEdit(changes={uri: text_edits})


def _milliseconds(value, default: float) -> float:
    """A debounce in seconds from a millisecond count; anything unreadable keeps the default."""
    try:
        ms = float(value)
    except (TypeError, ValueError):
        ms = default
    return max(0.0, ms if ms == ms else default) / 1000


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path else None
    except OSError:
        return None


server = SwitcherooServer()
notebooks.register(server)


@server.feature(t.INITIALIZE)
def on_initialize(ls: SwitcherooServer, params: t.InitializeParams) -> None:
    ls.workspace.__class__ = DocumentWorkspace     # pygls made it just before this handler
    folders = [f.uri for f in params.workspace_folders or []] or ([params.root_uri] if params.root_uri else [])
    roots = [p for p in (to_fs_path(u) for u in folders) if p]
    ls.codebase = Project(roots, background=True)
    ls.indexer.start()          # who imports whom is read at once (a thread); progress once initialized
    ls.init_settings = Settings.from_mapping(params.initialization_options or {}, "initializationOptions")
    opts = params.initialization_options
    if isinstance(opts, dict) and "debounce_ms" in opts:
        ls.debounce = _milliseconds(opts["debounce_ms"], ls.debounce * 1000)


@server.feature(t.INITIALIZED)
async def on_initialized(ls: SwitcherooServer, params: t.InitializedParams) -> None:
    ls.indexer.initialized()
    ls.warn(ls.init_settings.problems)
    before = ls.editor_settings
    await refresh_configuration(ls)
    if ls.editor_settings != before:
        ls.republish_all()     # documents opened while the configuration was on its way
    await watch_python_files(ls)


async def watch_python_files(ls: SwitcherooServer) -> None:
    """Ask the client to report changes to the workspace's Python files on disk."""
    caps = ls.client_capabilities.workspace if ls.client_capabilities else None
    watched = caps.did_change_watched_files if caps else None
    if not (watched and watched.dynamic_registration and ls.codebase.roots):
        return
    try:
        await ls.client_register_capability_async(t.RegistrationParams(registrations=[t.Registration(
            id="switcheroo-python-files", method=t.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=t.DidChangeWatchedFilesRegistrationOptions(
                watchers=[t.FileSystemWatcher(glob_pattern="**/*.py")]))]))
    except Exception as e:          # the client refused: files on disk are read again on save only
        log.warning("could not watch files: %s", e)


async def refresh_configuration(ls: SwitcherooServer) -> None:
    caps = ls.client_capabilities.workspace if ls.client_capabilities else None
    if not (caps and caps.configuration):
        return
    try:
        result = await ls.workspace_configuration_async(
            t.ConfigurationParams(items=[t.ConfigurationItem(section="switcheroo")]))
    except Exception as e:          # a client that answers badly keeps the settings it had
        log.warning("workspace/configuration failed: %s", e)
        return
    section = result[0] if result else None
    if section is None:      # nothing configured there: initializationOptions stand
        ls.client_settings = None
        return
    ls.client_settings = Settings.from_mapping(section, "workspace/configuration")
    ls.warn(ls.client_settings.problems)


@server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration(ls: SwitcherooServer, params: t.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and isinstance(settings.get("switcheroo"), dict):
        # Replaces the previous configuration: a key the user removed must stop applying.
        ls.client_settings = Settings.from_mapping(settings["switcheroo"], "workspace/didChangeConfiguration")
        ls.warn(ls.client_settings.problems)
    else:
        await refresh_configuration(ls)
    ls.republish_all()


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SwitcherooServer, params: t.DidOpenTextDocumentParams) -> None:
    ls._on_disk.add(params.text_document.uri)
    ls.schedule(params.text_document.uri, 0)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SwitcherooServer, params: t.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, ls.debounce)
    ls.file_changed(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: SwitcherooServer, params: t.DidSaveTextDocumentParams) -> None:
    ls._pyproject.clear()     # a pyproject.toml may have appeared nearer to the file
    ls._on_disk.add(params.text_document.uri)
    ls.schedule(params.text_document.uri, 0)
    ls.file_changed(params.text_document.uri)


@server.feature(t.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: SwitcherooServer, params: t.DidChangeWatchedFilesParams) -> None:
    for change in params.changes:
        path = to_fs_path(change.uri)
        if not path:
            continue
        ls.codebase.changed(path)        # a file that appeared or went joins or leaves the listing
        ls.file_changed(change.uri)
    ls.indexer.start(scan=False)         # their facts (and the cache) brought up to date in the worker


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SwitcherooServer, params: t.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    task = ls.pending.pop(uri, None)
    if task is not None:
        task.cancel()
    ls.entries.pop(uri, None)
    ls._recalled.pop(uri, None)
    ls._on_disk.discard(uri)
    ls._published.pop(uri, None)
    ls._pulled.pop(uri, None)
    ls.loader.forget(uri)
    path = to_fs_path(uri)
    if path:
        ls.codebase.set_open(path, None)     # read from disk again, as other files see it
    if not ls.pulls:
        ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(t.TEXT_DOCUMENT_DIAGNOSTIC,
                t.DiagnosticOptions(identifier="switcheroo", inter_file_dependencies=False,
                                    workspace_diagnostics=False))
def pull_diagnostics(ls: SwitcherooServer, params: t.DocumentDiagnosticParams):
    uri = params.text_document.uri
    if ls.notebooks.owns(uri):
        return ls.notebooks.pull(uri)
    entry = ls.entry(uri)
    items = ls.diagnostics(uri, entry) if entry else []
    if entry is not None and not entry.analysis.complete:
        # Until the complete analysis, what an earlier one of the same texts found (remembered.py).
        recalled = ls.recall(uri)
        if recalled is not None:
            items = recalled
    ls._pulled[uri] = items
    return t.RelatedFullDocumentDiagnosticReport(items=items)


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION,
                t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix, FIX_ALL, notebooks.NOTEBOOK_FIX_ALL],
                                    resolve_provider=True))
def code_action(ls: SwitcherooServer, params: t.CodeActionParams) -> list[t.CodeAction] | None:
    uri = params.text_document.uri
    if ls.notebooks.owns(uri):
        return ls.notebooks.code_action(params)
    entry = ls.entry(uri)
    if entry is None or entry.analysis.syntax_error or ls.excluded(uri):
        return None       # never offer edits computed for another text
    analysis, version = entry.analysis, entry.version
    only = params.context.only
    wants = (lambda kind: not only or any(kind == o or kind.startswith(f"{o}.") for o in only))
    findings = visible(analysis.findings, ls.settings_for(uri))
    start = ls.from_position(analysis, params.range.start)
    end = ls.from_position(analysis, params.range.end)
    here = [f for f in findings if f.span.overlaps(Span(start, end))]
    actions: list[t.CodeAction] = []
    if wants(t.CodeActionKind.QuickFix):
        done: set[str] = set()
        for f in here:
            diags = [ls.to_diagnostic(analysis, g) for g in here if g.span == f.span and g.fixable]
            fix = analysis.fix(f.key) if f.fixable else None
            if fix is not None and fix.title not in done:
                done.add(fix.title)
                actions.append(t.CodeAction(
                    title=fix.title, kind=t.CodeActionKind.QuickFix, diagnostics=diags, is_preferred=True,
                    edit=ls.workspace_edit(uri, version, analysis, fix.edits)))
        for f in here:
            for alternative in analysis.alternatives(f.key):    # "Convert as torch.optim.AdamW, the default"
                actions.append(t.CodeAction(
                    title=alternative.title, kind=t.CodeActionKind.QuickFix, diagnostics=[ls.to_diagnostic(analysis, f)],
                    edit=ls.workspace_edit(uri, version, analysis, alternative.edits)))
        for f in here:
            ignore = analysis.ignore_fix(f.key)
            if ignore is not None:
                actions.append(t.CodeAction(
                    title=ignore.title, kind=t.CodeActionKind.QuickFix,
                    diagnostics=[ls.to_diagnostic(analysis, f)],
                    edit=ls.workspace_edit(uri, version, analysis, ignore.edits)))
    if wants(FIX_ALL) and any(f.fixable for f in findings):
        if ls.resolves_edits:
            # Editors ask on every cursor move; the whole file's edit is built only when chosen.
            actions.append(t.CodeAction(title=FIX_ALL_TITLE.format(analysis.target.label), kind=FIX_ALL, data={"uri": uri, "fix_all": True}))
        else:
            edit = fix_all_edit(ls, uri, entry)
            if edit is not None:
                actions.append(t.CodeAction(title=FIX_ALL_TITLE.format(analysis.target.label), kind=FIX_ALL, edit=edit))
    return actions


def fix_all_edit(ls: SwitcherooServer, uri: str, entry: Entry) -> t.WorkspaceEdit | None:
    """The whole file's fix, built once per version and settings: clients that cannot resolve
    edits lazily get it with every code action answer."""
    settings = ls.settings_for(uri)
    if settings not in entry.fix_all:
        analysis = entry.analysis
        edits = analysis.fix_all({f.key for f in visible(analysis.findings, settings) if f.fixable})
        entry.fix_all[settings] = ls.workspace_edit(uri, entry.version, analysis, edits) if edits else None
    return entry.fix_all[settings]


@server.feature(t.CODE_ACTION_RESOLVE)
def resolve_code_action(ls: SwitcherooServer, action: t.CodeAction) -> t.CodeAction:
    data = action.data if isinstance(action.data, dict) else {}
    uri = data.get("uri")
    if data.get("fix_all") and isinstance(uri, str) and ls.notebooks.owns(uri):
        return ls.notebooks.resolve(action, uri)
    if data.get("fix_all") and isinstance(uri, str) and action.edit is None:
        entry = ls.entry(uri)
        if entry is not None and not entry.analysis.syntax_error and not ls.excluded(uri):
            action.edit = fix_all_edit(ls, uri, entry)   # versioned: a stale one is not applied
    return action


@server.feature(t.TEXT_DOCUMENT_HOVER)
def on_hover(ls: SwitcherooServer, params: t.HoverParams) -> t.Hover | None:
    uri = params.text_document.uri
    if ls.notebooks.owns(uri):
        return ls.notebooks.hover(params)
    entry = ls.entry(uri)
    if entry is None or entry.analysis.syntax_error or ls.excluded(uri):
        return None
    analysis = entry.analysis
    pos = ls.from_position(analysis, params.position)
    settings = ls.settings_for(uri)
    result = explain(analysis, pos, lambda f: settings.enabled(f.code))
    if result is None:
        return None
    markdown, span = result
    verified = verify_lsp.hover_note(uri, analysis, span)
    if verified:
        markdown = f"{verified}\n\n{markdown}"
    return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=markdown),
                   range=ls.to_range(analysis, span))


@server.feature(t.TEXT_DOCUMENT_CODE_LENS, t.CodeLensOptions(resolve_provider=False))
def code_lens(ls: SwitcherooServer, params: t.CodeLensParams) -> list[t.CodeLens] | None:
    """"Verify this rewrite" above each construction a fix converts."""
    uri = params.text_document.uri
    entry = ls.entry(uri)
    if entry is None or entry.analysis.syntax_error or ls.excluded(uri):
        return None
    return verify_lsp.code_lenses(ls, uri, entry.analysis, visible(entry.analysis.findings, ls.settings_for(uri)))


@server.command(verify_lsp.COMMAND)
async def verify_command(ls: SwitcherooServer, *args) -> dict:
    """Runs `switcheroo-lsp verify` in a subprocess, never in this process (see verify_lsp)."""
    return await verify_lsp.run(ls, args[0] if args else None)


@server.feature(t.SHUTDOWN)
def on_shutdown(ls: SwitcherooServer, *args) -> None:
    ls.indexer.stop()
    if ls._saving is not None:
        ls._saving.cancel()
        ls.save_findings()


def serve() -> None:
    logging.basicConfig(level=logging.WARNING, format="switcheroo: %(levelname)s %(message)s")
    server.start_io()
