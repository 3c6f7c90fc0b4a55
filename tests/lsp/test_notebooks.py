"""Notebooks over LSP 3.17 notebook sync: a client that declares notebook support opens a
notebook, edits cells, adds, moves and deletes them, and gets diagnostics per cell (pushed, or
pulled with a refresh when cells it did not touch changed), code actions whose edits address
the cell documents, and hovers.

Cell URIs are spelt the way VS Code spells them (`vscode-notebook-cell:` with an escaped
fragment). The expected results come from the command line on the same cells.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig

from lsp_support import (DOC_DIR, NVIM11, SERVER, SERVER_ENV, VERSIONED_EDITS, VSCODE, VSCODE_PULL, Client,
                         apply_text_edits, capabilities, find, make_client, profile_id)
from switcheroo_lsp.frontends.config import Settings
from switcheroo_lsp.notebooks import ipynb
from switcheroo_lsp.frontends.notebook_files import process

PROFILES = [VSCODE, VSCODE_PULL, NVIM11]
_ids = itertools.count()


def notebook_capabilities(profile: str) -> t.ClientCapabilities:
    caps = capabilities(profile)
    caps.notebook_document = t.NotebookDocumentClientCapabilities(
        synchronization=t.NotebookDocumentSyncClientCapabilities(execution_summary_support=True))
    return caps


@pytest_lsp.fixture(scope="module", params=PROFILES, ids=[profile_id(p) for p in PROFILES],
                    config=ClientServerConfig(server_command=SERVER, server_env=SERVER_ENV,
                                              client_factory=lambda: make_client(None)))
async def client(request, lsp_client: Client):
    lsp_client.profile = request.param
    lsp_client.init_result = await lsp_client.initialize_session(t.InitializeParams(
        capabilities=notebook_capabilities(request.param), root_uri=DOC_DIR.as_uri(),
        workspace_folders=[t.WorkspaceFolder(uri=DOC_DIR.as_uri(), name="tests")]))
    yield
    await lsp_client.shutdown_session()


# -- a notebook as a client holds it ------------------------------------------------------------------

@dataclass
class NbCell:
    uri: str
    text: str
    kind: t.NotebookCellKind = t.NotebookCellKind.Code
    version: int = 1

    def item(self) -> t.TextDocumentItem:
        language = "python" if self.kind == t.NotebookCellKind.Code else "markdown"
        return t.TextDocumentItem(uri=self.uri, language_id=language, version=self.version, text=self.text)


@dataclass
class Notebook:
    client: Client
    uri: str
    cells: list[NbCell] = field(default_factory=list)
    version: int = 0

    @classmethod
    def open(cls, client: Client, *texts: str, markdown: tuple[int, ...] = ()) -> "Notebook":
        n = next(_ids)
        nb = cls(client, (DOC_DIR / f"nb_{n}.ipynb").as_uri())
        nb.cells = [nb.new_cell(text, t.NotebookCellKind.Markup if i in markdown else t.NotebookCellKind.Code)
                    for i, text in enumerate(texts)]
        client.notebook_document_did_open(t.DidOpenNotebookDocumentParams(
            notebook_document=t.NotebookDocument(uri=nb.uri, notebook_type="jupyter-notebook", version=0,
                                                 cells=[nb.lsp(c) for c in nb.cells]),
            cell_text_documents=[c.item() for c in nb.cells]))
        return nb

    def new_cell(self, text: str, kind=t.NotebookCellKind.Code) -> NbCell:
        # As VS Code spells them: the notebook's path, a fragment that needs escaping.
        return NbCell(f"vscode-notebook-cell:{self.uri[len('file://'):]}#W{next(_ids)}sZmlsZQ%3D%3D", text, kind)

    @staticmethod
    def lsp(cell: NbCell) -> t.NotebookCell:
        return t.NotebookCell(kind=cell.kind, document=cell.uri)

    def _change(self, cells: t.NotebookDocumentCellChanges) -> None:
        self.version += 1
        self.client.notebook_document_did_change(t.DidChangeNotebookDocumentParams(
            notebook_document=t.VersionedNotebookDocumentIdentifier(version=self.version, uri=self.uri),
            change=t.NotebookDocumentChangeEvent(cells=cells)))

    def edit(self, index: int, old: str, new: str) -> None:
        """Replace the first `old` in cell `index` with `new` (an incremental change)."""
        cell = self.cells[index]
        range_ = find(cell.text, old, self.client.encoding)
        cell.text = apply_text_edits(cell.text, [t.TextEdit(range=range_, new_text=new)], self.client.encoding)
        cell.version += 1
        self._change(t.NotebookDocumentCellChanges(text_content=[t.NotebookDocumentCellContentChanges(
            document=t.VersionedTextDocumentIdentifier(uri=cell.uri, version=cell.version),
            changes=[t.TextDocumentContentChangePartial(range=range_, text=new)])]))

    def insert(self, index: int, text: str) -> NbCell:
        cell = self.new_cell(text)
        self.cells.insert(index, cell)
        self._change(t.NotebookDocumentCellChanges(structure=t.NotebookDocumentCellChangeStructure(
            array=t.NotebookCellArrayChange(start=index, delete_count=0, cells=[self.lsp(cell)]),
            did_open=[cell.item()])))
        return cell

    def delete(self, index: int) -> NbCell:
        cell = self.cells.pop(index)
        self._change(t.NotebookDocumentCellChanges(structure=t.NotebookDocumentCellChangeStructure(
            array=t.NotebookCellArrayChange(start=index, delete_count=1),
            did_close=[t.TextDocumentIdentifier(uri=cell.uri)])))
        return cell

    def move(self, index: int, to: int) -> None:
        """As vscode-languageclient sends a move: one splice over the cells in between, no
        documents opened or closed."""
        cell = self.cells.pop(index)
        self.cells.insert(to, cell)
        lo, hi = min(index, to), max(index, to)
        self._change(t.NotebookDocumentCellChanges(structure=t.NotebookDocumentCellChangeStructure(
            array=t.NotebookCellArrayChange(start=lo, delete_count=hi - lo + 1,
                                            cells=[self.lsp(c) for c in self.cells[lo:hi + 1]]))))

    def save(self) -> None:
        self.client.notebook_document_did_save(t.DidSaveNotebookDocumentParams(
            notebook_document=t.NotebookDocumentIdentifier(uri=self.uri)))

    def close(self) -> None:
        self.client.notebook_document_did_close(t.DidCloseNotebookDocumentParams(
            notebook_document=t.NotebookDocumentIdentifier(uri=self.uri),
            cell_text_documents=[t.TextDocumentIdentifier(uri=c.uri) for c in self.cells]))

    @property
    def code(self) -> list[NbCell]:
        return [c for c in self.cells if c.kind == t.NotebookCellKind.Code]

    def as_ipynb(self) -> str:
        return json.dumps({"cells": [{"cell_type": "code" if c.kind == t.NotebookCellKind.Code else "markdown",
                                      "metadata": {}, "source": c.text} for c in self.cells],
                           "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


async def diagnostics(nb: Notebook) -> list[list[t.Diagnostic]]:
    """Each code cell's current diagnostics, the way this client gets them."""
    client = nb.client
    if client.pulls:
        out = []
        for cell in nb.code:
            report = await client.text_document_diagnostic_async(t.DocumentDiagnosticParams(
                text_document=t.TextDocumentIdentifier(uri=cell.uri)))
            out.append(list(report.items))
        return out
    await client.barrier()
    out = []
    for cell in nb.code:
        mine = [p for p in client.published if p.uri == cell.uri]
        assert mine, f"nothing published for {cell.text[:30]!r}"
        assert mine[-1].version == cell.version, "diagnostics of another version of the cell"
        out.append(list(mine[-1].diagnostics))
    return out


def codes_of(per_cell) -> list[list[str]]:
    return [sorted(d.code for d in cell) for cell in per_cell]


def apply_to_cells(nb: Notebook, edit: t.WorkspaceEdit) -> dict[str, str]:
    """The cells' texts after `edit`, checking its shape against the client's capabilities."""
    by_uri = {c.uri: c for c in nb.cells}
    if VERSIONED_EDITS[nb.client.profile]:
        assert edit.changes is None and edit.document_changes
        changes = []
        for change in edit.document_changes:
            cell = by_uri[change.text_document.uri]
            assert change.text_document.version == cell.version
            changes.append((cell, change.edits))
    else:
        assert edit.document_changes is None and edit.changes
        changes = [(by_uri[uri], edits) for uri, edits in edit.changes.items()]
    assert len({c.uri for c, _ in changes}) == len(changes), "one entry per cell"
    return {cell.uri: apply_text_edits(cell.text, edits, nb.client.encoding) for cell, edits in changes}


def cli_fixed(nb: Notebook) -> list[str]:
    """What `switcheroo-lsp fix` makes of the same cells."""
    text = nb.as_ipynb()
    result = process("nb.ipynb", text, Settings(), fixing=True)
    return [c.source for c in ipynb.parse(result.new_text or text).cells]


IMPORTS = "import torch\nimport torch.nn as nn"
MODEL = "model = nn.Linear(3, 1)\nparams, grads = {}, {}"
OPTIMIZER = 'note = "ñ€😀"; opt = torch.optim.Adam(model.parameters(), lr=0.01)'
LOOP = ("%%time\nfor x, y in data:\n    opt.zero_grad()\n    %time loss = model(x).sum()\n"
        "    loss.backward()\n    opt.step()")


# -- the tests ---------------------------------------------------------------------------------------

async def test_notebook_sync_is_declared_for_python_cells_of_jupyter_notebooks(client: Client):
    sync = client.init_result.capabilities.notebook_document_sync
    assert sync.save is True
    [selector] = sync.notebook_selector
    assert selector.notebook == "jupyter-notebook"
    assert [c.language for c in selector.cells] == ["python"]
    assert "notebook.source.fixAll.switcheroo" in client.init_result.capabilities.code_action_provider.code_action_kinds


async def test_open_reports_each_finding_in_its_cell(client: Client):
    nb = Notebook.open(client, "# Adam\nSome *markdown*: opt.step()", IMPORTS, MODEL, OPTIMIZER, LOOP,
                       markdown=(0,))
    per_cell = await diagnostics(nb)
    assert codes_of(per_cell) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    [construct] = per_cell[2]
    assert construct.range == find(OPTIMIZER, "torch.optim.Adam(model.parameters(), lr=0.01)", client.encoding)
    loop = {d.code: d.range for d in per_cell[3]}
    assert loop["OPX103"] == find(LOOP, "opt.zero_grad()", client.encoding)
    assert loop["OPX102"] == find(LOOP, "opt.step()", client.encoding)


async def test_editing_a_cell_refreshes_the_cells_it_affects(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL, OPTIMIZER, LOOP)
    assert codes_of(await diagnostics(nb)) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    nb.edit(2, "lr=0.01", "lr=0.5")
    per_cell = await diagnostics(nb)
    assert "learning_rate=0.5" in per_cell[2][0].message
    # The optimizer cell no longer builds a torch optimizer: the loop's findings go, though the
    # loop cell itself was not edited.
    refreshes = client.diagnostic_refresh_count
    nb.edit(2, "torch.optim.Adam", "make_optimizer")
    if client.pulls and client.refreshes:
        await client.wait_refresh(refreshes)
    assert codes_of(await diagnostics(nb)) == [[], [], [], []]


async def test_deleting_the_cell_that_built_the_optimizer_clears_the_others(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL, OPTIMIZER, LOOP)
    assert codes_of(await diagnostics(nb)) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    since = len(client.published)
    refreshes = client.diagnostic_refresh_count
    gone = nb.delete(2)
    if client.pulls and client.refreshes:
        await client.wait_refresh(refreshes)
    assert codes_of(await diagnostics(nb)) == [[], [], []]
    if not client.pulls:
        cleared = [p for p in client.published[since:] if p.uri == gone.uri]
        assert cleared and list(cleared[-1].diagnostics) == []
    else:
        await client.barrier()
        assert client.published[since:] == [], "a pulling client is never pushed to"


async def test_added_cells_are_analysed_with_the_others(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL)
    assert codes_of(await diagnostics(nb)) == [[], []]
    nb.insert(2, LOOP)
    nb.insert(2, "opt = torch.optim.SGD(model.parameters(), lr=0.1)")
    per_cell = await diagnostics(nb)
    assert codes_of(per_cell) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    assert "optax.sgd(learning_rate=0.1)" in per_cell[2][0].message


async def test_moved_cells_are_analysed_in_their_new_order(client: Client):
    nb = Notebook.open(client, "import numpy as np", IMPORTS, MODEL, OPTIMIZER)
    assert codes_of(await diagnostics(nb)) == [[], [], [], ["OPX101"]]
    nb.move(1, 0)             # the torch imports first now
    nb.move(3, 2)             # the optimizer before the model
    per_cell = await diagnostics(nb)
    assert codes_of(per_cell) == [[], [], ["OPX101"], []]
    assert per_cell[2][0].range == find(OPTIMIZER, "torch.optim.Adam(model.parameters(), lr=0.01)", client.encoding)
    # `import optax` goes into the first cell with imports: the moved one.
    [fix_all] = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[2].uri), range=per_cell[2][0].range,
        context=t.CodeActionContext(diagnostics=[], only=["source.fixAll.switcheroo"])))
    fix_all = await client.code_action_resolve_async(fix_all) if fix_all.edit is None else fix_all
    fixed = apply_to_cells(nb, fix_all.edit)
    assert fixed[nb.cells[0].uri] == IMPORTS + "\nimport optax"
    assert set(fixed) == {nb.cells[0].uri, nb.cells[2].uri}


async def test_quick_fix_edits_the_cells_it_changes(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL, OPTIMIZER, LOOP)
    per_cell = await diagnostics(nb)
    construct = per_cell[2][0]
    actions = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[2].uri), range=construct.range,
        context=t.CodeActionContext(diagnostics=[construct])))
    titles = [a.title for a in actions]
    assert titles[0] == "Convert to optax.adam" and "Ignore OPX101 on this line" in titles
    quick = actions[0]
    assert quick.is_preferred and [d.code for d in quick.diagnostics] == ["OPX101"]
    fixed = apply_to_cells(nb, quick.edit)
    assert set(fixed) == {nb.cells[0].uri, nb.cells[2].uri}
    assert fixed[nb.cells[0].uri] == IMPORTS + "\nimport optax"
    rewritten = fixed[nb.cells[2].uri]
    assert rewritten.startswith('note = "ñ€😀"; opt = optax.adam(learning_rate=0.01)'), rewritten
    assert rewritten.endswith("opt_state = opt.init(params)") and "torch" not in rewritten, rewritten
    ignore = next(a for a in actions if a.title.startswith("Ignore"))
    assert apply_to_cells(nb, ignore.edit) == {nb.cells[2].uri: OPTIMIZER + "  # noqa: OPX101"}


async def test_fix_all_over_a_notebook_equals_the_command_line(client: Client):
    nb = Notebook.open(client, "%matplotlib inline\n" + IMPORTS, MODEL, "# notes", OPTIMIZER, LOOP,
                       markdown=(2,))
    per_cell = await diagnostics(nb)
    for kind in ("source.fixAll.switcheroo", "notebook.source.fixAll.switcheroo"):
        [action] = await client.text_document_code_action_async(t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=nb.code[3].uri), range=per_cell[3][0].range,
            context=t.CodeActionContext(diagnostics=[], only=[kind])))
        assert action.kind == kind
        if action.edit is None:
            action = await client.code_action_resolve_async(action)
        fixed = apply_to_cells(nb, action.edit)
        expected = cli_fixed(nb)
        after = [fixed.get(c.uri, c.text) for c in nb.cells]
        assert after == expected
        assert set(fixed) == {nb.cells[0].uri, nb.cells[3].uri, nb.cells[4].uri}
        assert after[4].startswith("%%time\n") and "    %time loss = model(x).sum()\n" in after[4]
    # Unasked, the notebook's kind is not offered twice beside the file's.
    offered = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=t.TextDocumentIdentifier(uri=nb.code[3].uri), range=per_cell[3][0].range,
        context=t.CodeActionContext(diagnostics=[])))
    assert [a.kind for a in offered if "fixAll" in a.kind] == ["source.fixAll.switcheroo"]


async def test_hover_on_a_cell(client: Client):
    nb = Notebook.open(client, "%matplotlib inline\n" + IMPORTS, MODEL, OPTIMIZER, LOOP)
    await diagnostics(nb)
    at = find(LOOP, "opt.step()", client.encoding).start
    hover = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[3].uri), position=at))
    construct = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[2].uri),
        position=find(OPTIMIZER, "torch.optim", client.encoding).start))
    assert "optax.adam(learning_rate=0.01)" in construct.contents.value
    assert "switcheroo_ipython" not in construct.contents.value, "a masked line shows through"
    assert hover is not None and "### OPX102" in hover.contents.value
    assert "switcheroo_ipython" not in hover.contents.value, "a masked line shows through"
    assert hover.range == find(LOOP, "opt.step()", client.encoding)
    nowhere = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[0].uri), position=t.Position(0, 3)))
    assert nowhere is None


async def test_a_cell_that_does_not_parse(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL, OPTIMIZER, LOOP)
    assert codes_of(await diagnostics(nb)) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    nb.edit(2, "lr=0.01)", "lr=0.01")          # an unclosed call, as while typing
    # The cell's last text that parsed stands in: no finding flickers away meanwhile...
    assert codes_of(await diagnostics(nb)) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    # ...but no edit is offered, in any cell, while the notebook's text is not what was analysed.
    for cell in (nb.cells[2], nb.cells[3]):
        actions = await client.text_document_code_action_async(t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=cell.uri), range=t.Range(t.Position(0, 0), t.Position(9, 0)),
            context=t.CodeActionContext(diagnostics=[])))
        assert not actions
    nb.edit(2, "lr=0.01", "lr=0.02)")
    per_cell = await diagnostics(nb)
    assert "learning_rate=0.02" in per_cell[2][0].message


async def test_save_and_close(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL, OPTIMIZER)
    assert codes_of(await diagnostics(nb)) == [[], [], ["OPX101"]]
    nb.save()
    assert codes_of(await diagnostics(nb)) == [[], [], ["OPX101"]]
    since = len(client.published)
    nb.close()
    await client.barrier()
    if client.pulls:
        assert client.published[since:] == []
    else:
        cleared = {p.uri: list(p.diagnostics) for p in client.published[since:]}
        assert cleared == {c.uri: [] for c in nb.cells}
    # A closed notebook's cells are nobody's: nothing is answered for them.
    hover = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[2].uri), position=t.Position(0, 30)))
    assert hover is None


async def test_crlf_cells_keep_their_line_breaks(client: Client):
    crlf = [text.replace("\n", "\r\n") + "\r\n" for text in (IMPORTS, MODEL, OPTIMIZER, LOOP)]
    nb = Notebook.open(client, *crlf)
    per_cell = await diagnostics(nb)
    assert codes_of(per_cell) == [[], [], ["OPX101"], ["OPX102", "OPX103"]]
    [action] = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=t.TextDocumentIdentifier(uri=nb.cells[3].uri), range=per_cell[3][0].range,
        context=t.CodeActionContext(diagnostics=[], only=["source.fixAll.switcheroo"])))
    if action.edit is None:
        action = await client.code_action_resolve_async(action)
    fixed = apply_to_cells(nb, action.edit)
    after = [fixed.get(c.uri, c.text) for c in nb.cells]
    assert after == cli_fixed(nb)
    for text in after:
        assert "\n" not in text.replace("\r\n", ""), f"a lone line feed in {text!r}"


async def test_a_cell_uri_escaped_differently_is_the_same_cell(client: Client):
    nb = Notebook.open(client, IMPORTS, MODEL, OPTIMIZER, LOOP)
    per_cell = await diagnostics(nb)
    other_spelling = nb.cells[3].uri.replace("%3D", "=")
    assert other_spelling != nb.cells[3].uri
    hover = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=other_spelling), position=per_cell[3][0].range.start))
    assert hover is not None and hover.range == per_cell[3][0].range
    actions = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=t.TextDocumentIdentifier(uri=other_spelling), range=per_cell[3][0].range,
        context=t.CodeActionContext(diagnostics=[], only=["quickfix"])))
    assert actions and actions[0].is_preferred
    if client.pulls:
        report = await client.text_document_diagnostic_async(t.DocumentDiagnosticParams(
            text_document=t.TextDocumentIdentifier(uri=other_spelling)))
        assert codes_of([report.items]) == [["OPX102", "OPX103"]]
