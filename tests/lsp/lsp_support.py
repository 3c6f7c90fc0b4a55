"""What the protocol tests share: a recording test client, a fixture factory that starts the
real server once per client profile, and an independent WorkspaceEdit applier.

The edit applier and the position conversions here are written against the LSP spec, not
borrowed from the server, so that a conversion bug in the server cannot cancel itself out.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sys
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest_lsp
from lsprotocol import types as t
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

SERVER = [sys.executable, "-m", "switcheroo_lsp", "serve"]
DOC_DIR = Path(tempfile.gettempdir()) / f"switcheroo-lsp-tests-{os.getpid()}"
# The servers' index cache goes beside the test documents, never into the user's cache.
SERVER_ENV = {**os.environ, "SWITCHEROO_DEBOUNCE_MS": "0", "SWITCHEROO_CACHE_DIR": str(DOC_DIR / ".cache")}
FIX_ALL = "source.fixAll.switcheroo"
TIMEOUT = 10.0        # upper bound for anything the server should do "at once"

# The captured client profiles. Neovim 0.7 and Emacs push; Neovim 0.11 declares
# textDocument.diagnostic, so it must pull and never be pushed to. "vscode+pull" is the captured
# VS Code 1.65.2 with the two capabilities VS Code gained in 1.73 (pull diagnostics and
# workspace/diagnostic/refresh): the client that would show every finding twice.
VSCODE, NVIM7, EMACS, NVIM11 = "visual-studio-code", "neovim@v0.7.0", "emacs", "neovim@v0.11.0"
VSCODE_PULL = "visual-studio-code+pull"
PROFILES = [VSCODE, NVIM7, EMACS, NVIM11, VSCODE_PULL]
# What each profile must get, written down rather than derived from the capabilities, so a
# server that misreads them fails.
PULLS = {VSCODE: False, NVIM7: False, EMACS: False, NVIM11: True, VSCODE_PULL: True}
VERSIONED_EDITS = {VSCODE: True, NVIM7: False, EMACS: True, NVIM11: False, VSCODE_PULL: True}
ENCODING = {VSCODE: "utf-16", NVIM7: "utf-16", EMACS: "utf-32", NVIM11: "utf-8", VSCODE_PULL: "utf-16"}


def capabilities(profile: str) -> t.ClientCapabilities:
    if profile == VSCODE_PULL:
        caps = client_capabilities(VSCODE)
        caps.text_document.diagnostic = t.DiagnosticClientCapabilities(
            dynamic_registration=True, related_document_support=False)
        caps.workspace.diagnostics = t.DiagnosticWorkspaceClientCapabilities(refresh_support=True)
        return caps
    return client_capabilities(profile)


def profile_id(profile: str) -> str:
    return profile.replace("visual-studio-code", "vscode").replace("@v", "")


_BREAK = re.compile(r"\r\n|\r|\n")
_counter = itertools.count()


@dataclass
class Doc:
    uri: str
    text: str
    version: int


class Client(LanguageClient):
    """pytest-lsp's client plus: every publishDiagnostics kept in order, and helpers that
    drive one document the way an editor does."""

    profile: str = ""
    init_result: t.InitializeResult | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.published: list[t.PublishDiagnosticsParams] = []
        self.registrations: list[t.Registration] = []
        self._published_event = asyncio.Event()

    # -- negotiated --------------------------------------------------------------------------
    @property
    def encoding(self) -> str:
        enc = self.init_result.capabilities.position_encoding if self.init_result else None
        return str(getattr(enc, "value", enc) or "utf-16")

    @property
    def pulls(self) -> bool:
        return bool(self.capabilities and self.capabilities.text_document
                    and self.capabilities.text_document.diagnostic)

    # -- documents ---------------------------------------------------------------------------
    def new_uri(self, name: str = "doc", folder: Path | None = None) -> str:
        folder = folder or DOC_DIR
        return (folder / f"{name}_{next(_counter)}.py").as_uri()

    def open(self, text: str, uri: str | None = None, name: str = "doc") -> Doc:
        doc = Doc(uri or self.new_uri(name), text, 1)
        self.text_document_did_open(t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=doc.uri, language_id="python", version=1, text=text)))
        return doc

    def replace(self, doc: Doc, text: str) -> Doc:
        """A full-text didChange (what an editor sends after applying a workspace edit)."""
        doc.version += 1
        doc.text = text
        self.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
            content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)]))
        return doc

    def edit(self, doc: Doc, range_: t.Range, text: str) -> Doc:
        """An incremental didChange, positions in the negotiated encoding."""
        doc.version += 1
        doc.text = apply_text_edits(doc.text, [t.TextEdit(range=range_, new_text=text)], self.encoding)
        self.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
            content_changes=[t.TextDocumentContentChangePartial(range=range_, text=text)]))
        return doc

    def close(self, doc: Doc) -> None:
        self.text_document_did_close(t.DidCloseTextDocumentParams(
            text_document=t.TextDocumentIdentifier(uri=doc.uri)))

    # -- diagnostics -------------------------------------------------------------------------
    def _on_publish(self, params: t.PublishDiagnosticsParams) -> None:
        self.published.append(params)
        self.diagnostics[params.uri] = params.diagnostics
        self._published_event.set()

    async def wait_published(self, match: Callable[[t.PublishDiagnosticsParams], bool],
                             since: int = 0, timeout: float = TIMEOUT) -> t.PublishDiagnosticsParams:
        """The latest publishDiagnostics (from index `since`) that `match`es; waits for one."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [p for p in self.published[since:] if match(p)]
            if found:
                return found[-1]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [(p.uri.rsplit("/", 1)[-1], p.version, [d.code for d in p.diagnostics])
                        for p in self.published[since:]]
                raise AssertionError(f"no matching publishDiagnostics within {timeout}s; got {seen}")
            self._published_event.clear()
            try:
                await asyncio.wait_for(self._published_event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def pushed(self, doc: Doc, since: int = 0) -> list[t.Diagnostic]:
        params = await self.wait_published(lambda p: p.uri == doc.uri and p.version == doc.version, since)
        return list(params.diagnostics)

    async def pull(self, doc: Doc) -> list[t.Diagnostic]:
        report = await self.text_document_diagnostic_async(t.DocumentDiagnosticParams(
            text_document=t.TextDocumentIdentifier(uri=doc.uri)))
        assert report.kind == "full"
        return list(report.items)

    async def diagnostics_of(self, doc: Doc) -> list[t.Diagnostic]:
        """The diagnostics of the document's current version, the way this client gets them."""
        if self.pulls:
            return await self.pull(doc)
        return await self.pushed(doc)

    @property
    def refreshes(self) -> bool:
        ws = self.capabilities.workspace if self.capabilities else None
        return bool(ws and ws.diagnostics and ws.diagnostics.refresh_support)

    async def wait_refresh(self, seen: int, timeout: float = TIMEOUT) -> None:
        """Poll (bounded) until workspace/diagnostic/refresh has been asked more than `seen` times."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.diagnostic_refresh_count <= seen:
            assert asyncio.get_running_loop().time() < deadline, "no workspace/diagnostic/refresh"
            await asyncio.sleep(0.01)

    def index_builds(self) -> list[list]:
        """The server's workspace index builds, each as the work-done progress values it sent."""
        return [values for token, values in self.progress_reports.items()
                if str(token).startswith("switcheroo-index-")]

    async def indexed(self, builds: int = 1, timeout: float = 60.0) -> None:
        """Wait until the server's workspace index has been built `builds` times (its work-done
        progress ended): from then on a document's first publish knows who imports it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while sum(1 for values in self.index_builds() if values and values[-1].kind == "end") < builds:
            assert asyncio.get_running_loop().time() < deadline, f"the index did not finish: {self.index_builds()}"
            await asyncio.sleep(0.02)

    async def barrier(self) -> None:
        """Two round trips: whatever the server scheduled for earlier notifications has been
        sent by the time the second answer arrives (the stream is ordered)."""
        for _ in range(2):
            await self.text_document_hover_async(t.HoverParams(
                text_document=t.TextDocumentIdentifier(uri="untitled:barrier"),
                position=t.Position(0, 0)))

    # -- code actions and hovers ---------------------------------------------------------------
    async def actions(self, doc: Doc, range_: t.Range, diagnostics: list[t.Diagnostic] = (),
                      only: list[str] | None = None) -> list[t.CodeAction]:
        result = await self.text_document_code_action_async(t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=doc.uri), range=range_,
            context=t.CodeActionContext(diagnostics=list(diagnostics), only=only)))
        result = result or []
        assert all(isinstance(a, t.CodeAction) for a in result), result
        self.unresolved = [a.title for a in result if a.edit is None]
        # What an editor does when the user picks an action that came without its edit.
        return [await self.code_action_resolve_async(a) if a.edit is None and a.data else a for a in result]

    def apply(self, doc: Doc, edit: t.WorkspaceEdit) -> str:
        """The document text after `edit`, checking the edit's shape against the profile."""
        return apply_workspace_edit(doc.text, edit, doc.uri, self.encoding,
                                    versioned=VERSIONED_EDITS[self.profile], version=doc.version)

    async def hover(self, doc: Doc, position: t.Position) -> t.Hover | None:
        return await self.text_document_hover_async(t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=doc.uri), position=position))

    # -- raw JSON-RPC ----------------------------------------------------------------------------
    async def raw_request(self, method: str, params: Any) -> Any:
        """Send a request exactly as given (no type checking on our side) and await the answer;
        an error answer raises pygls's JsonRpcException."""
        msg_id = f"raw-{next(_counter)}"
        future: Future = Future()
        self.protocol._request_futures[msg_id] = future
        self.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return await asyncio.wait_for(asyncio.wrap_future(future), TIMEOUT)


def make_client(configuration: dict | None = None) -> Client:
    client = Client(converter_factory=default_converter,
                    configuration={"": configuration} if configuration is not None else None)
    features = dict(DEFAULT_CLIENT_FEATURES)

    def publish(client: Client, params: t.PublishDiagnosticsParams):
        client._on_publish(params)

    features[t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish

    def register(client: Client, params: t.RegistrationParams):
        client.registrations.extend(params.registrations)   # what an editor does: watch files, ...

    features[t.CLIENT_REGISTER_CAPABILITY] = register
    register_lsp_features(client, features)
    return client


def lsp_client(profiles: list[str], *, name: str = "client", scope: str = "module",
               init_options: dict | None = None, configuration: dict | None = None):
    """A pytest-lsp fixture: the real server, initialized as each of `profiles`.

    `configuration` is what the client answers to workspace/configuration (its top level,
    e.g. {"switcheroo": {...}}); `init_options` goes into initializationOptions.
    """

    @pytest_lsp.fixture(
        name=name, scope=scope, params=profiles, ids=[profile_id(p) for p in profiles],
        config=ClientServerConfig(server_command=SERVER, server_env=SERVER_ENV,
                                  client_factory=lambda: make_client(configuration)))
    async def fixture(request, lsp_client: Client):
        lsp_client.profile = request.param
        lsp_client.init_result = await lsp_client.initialize_session(t.InitializeParams(
            capabilities=capabilities(request.param),
            initialization_options=init_options,
            root_uri=DOC_DIR.as_uri(),
            workspace_folders=[t.WorkspaceFolder(uri=DOC_DIR.as_uri(), name="tests")]))
        # Until the index has read the workspace, any file may import a document: its first
        # publish withholds what importers could change (tests/lsp/test_index.py). The tests of
        # one document's features start once it has.
        await lsp_client.indexed()
        yield
        await lsp_client.shutdown_session()

    return fixture


# -- positions and edits, independently of the server --------------------------------------------

def lines_of(text: str) -> list[str]:
    """Lines without their breaks, broken where the LSP breaks them."""
    return _BREAK.split(text)


def line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _BREAK.finditer(text)]


def units(s: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    if encoding == "utf-32":
        return len(s)
    return len(s.encode("utf-16-le")) // 2


def offset_at(text: str, pos: t.Position, encoding: str) -> int:
    """A position in `encoding` units -> an index into `text` (strict: no clamping, no
    landing inside a character)."""
    starts = line_starts(text)
    assert 0 <= pos.line < len(starts), f"line {pos.line} is past the end ({len(starts)} lines)"
    line = lines_of(text)[pos.line]
    counted = 0
    for i, ch in enumerate(line):
        if counted == pos.character:
            return starts[pos.line] + i
        if counted > pos.character:
            raise AssertionError(f"{pos} falls inside {line[i - 1]!r} ({encoding})")
        counted += units(ch, encoding)
    assert counted >= pos.character, f"{pos} is past the end of line {line!r} ({encoding}: {counted} units)"
    assert counted == pos.character, f"{pos} falls inside the last character of {line!r} ({encoding})"
    return starts[pos.line] + len(line)


def position_of(text: str, index: int, encoding: str) -> t.Position:
    starts = line_starts(text)
    line = max(i for i, s in enumerate(starts) if s <= index)
    return t.Position(line, units(text[starts[line]:index], encoding))


def find(text: str, needle: str, encoding: str, nth: int = 0) -> t.Range:
    """The range of the nth occurrence of `needle`."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    return t.Range(position_of(text, index, encoding), position_of(text, index + len(needle), encoding))


def apply_text_edits(text: str, edits: list[t.TextEdit], encoding: str) -> str:
    spans = sorted(((offset_at(text, e.range.start, encoding), offset_at(text, e.range.end, encoding), e.new_text)
                    for e in edits), key=lambda s: (s[0], s[1]))
    for (s1, e1, _), (s2, _e2, _) in zip(spans, spans[1:]):
        assert e1 <= s2, f"overlapping edits: {spans}"
    for start, end, new in reversed(spans):
        assert start <= end, f"reversed range {start}>{end}"
        text = text[:start] + new + text[end:]
    return text


def edits_of(edit: t.WorkspaceEdit, uri: str, *, versioned: bool, version: int | None) -> list[t.TextEdit]:
    """The text edits of `uri` in a WorkspaceEdit, checking it has the shape the client asked for."""
    if versioned:
        assert edit.changes is None and edit.document_changes, f"expected versioned documentChanges: {edit}"
        assert all(isinstance(c, t.TextDocumentEdit) for c in edit.document_changes)
        assert [c.text_document.uri for c in edit.document_changes] == [uri], "edits another document"
        change = edit.document_changes[0]
        assert change.text_document.version == version, (change.text_document.version, version)
        return list(change.edits)
    assert edit.document_changes is None and edit.changes, f"expected plain changes: {edit}"
    assert list(edit.changes) == [uri], "edits another document"
    return list(edit.changes[uri])


def apply_workspace_edit(text: str, edit: t.WorkspaceEdit, uri: str, encoding: str, *,
                         versioned: bool, version: int | None) -> str:
    return apply_text_edits(text, edits_of(edit, uri, versioned=versioned, version=version), encoding)


def touched_lines(text: str, edits: list[t.TextEdit]) -> set[int]:
    """Lines of the original text that the edits replace (an edit ending at column 0 of a
    line does not touch that line; a pure insertion touches none)."""
    out: set[int] = set()
    for e in edits:
        start, end = e.range.start, e.range.end
        last = end.line - 1 if end.character == 0 and end.line > start.line else end.line
        if start == end:
            continue
        out.update(range(start.line, last + 1))
    return out


def codes(diagnostics) -> list[str]:
    return [d.code for d in diagnostics]


def rng(l1: int, c1: int, l2: int, c2: int) -> t.Range:
    return t.Range(t.Position(l1, c1), t.Position(l2, c2))


# -- documents the tests open -----------------------------------------------------------------------

# A training function: one optimizer, every name its rewrites need is defined.
TRAIN = '''\
import torch


def train(model, loader, params, grads):
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    for batch in loader:
        opt.zero_grad()
        loss = model(batch).sum()
        loss.backward()
        opt.step()
    return params


print("done")
'''
# (code, range) of each finding in TRAIN, in document order: ASCII, so the same in every encoding.
TRAIN_FINDINGS = [
    ("OPX101", rng(4, 10, 4, 74)),
    ("OPX103", rng(6, 8, 6, 23)),
    ("OPX102", rng(9, 8, 9, 18)),
]

# A module-level script: the step's grads/params are not defined (OPX203 beside OPX102).
SCRIPT = '''\
import torch

model = torch.nn.Linear(3, 1)
opt = torch.optim.Adam(model.parameters(), lr=0.01)

for x, y in [(torch.ones(3), torch.ones(1))]:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).sum()
    loss.backward()
    opt.step()
'''

# Non-ASCII text before flagged calls on the same line.
UNICODE = '''\
import torch


def train(model, params, grads):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = "ñ€😀"; opt.step()
    y = "ñ€😀"; opt.zero_grad()
    return x, y
'''

# Look-alikes that must never be flagged.
UNFLAGGED = '''\
import torch
import tensorflow as tf


class Adam:
    def __init__(self, params):
        self.params = params

    def step(self):
        pass


def run(env, model, a):
    env.step(a)
    model.step()
    mine = Adam(model.parameters())
    mine.step()
    keras_opt = tf.keras.optimizers.Adam(0.01)
    keras_opt.step()
    return torch.zeros(1)
'''


def sorted_diagnostics(diagnostics) -> list[t.Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.range.start.line, d.range.start.character, d.code))


def summary(diagnostics) -> list[tuple[str, t.Range]]:
    return [(d.code, d.range) for d in sorted_diagnostics(diagnostics)]
