"""Over the real protocol: a workspace folder where the optimizer is built in one file and
stepped in another. The open document's diagnostics follow the other file (on disk, or open
and edited); a fix edits only the document asked about."""

import asyncio
import itertools
from pathlib import Path

from lsprotocol import types as t

from lsp_support import DOC_DIR, PROFILES, Client, Doc, lsp_client

client = lsp_client(PROFILES)
_n = itertools.count()

MAIN = """\
import torch
from engine import train_one_epoch


def main(model, loader):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for epoch in range(3):
        train_one_epoch(model, loader, optimizer, epoch)
"""
ENGINE = """\
def train_one_epoch(model, loader, optimizer, epoch):
    for batch in loader:
        optimizer.zero_grad()
        model(batch).sum().backward()
        optimizer.step()
"""


def project() -> Path:
    folder = DOC_DIR / f"project_{next(_n)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(MAIN)
    (folder / "engine.py").write_text(ENGINE)
    return folder


def created(client: Client, *paths: Path) -> None:
    """What an editor's file watcher reports."""
    client.workspace_did_change_watched_files(t.DidChangeWatchedFilesParams(changes=[
        t.FileEvent(uri=p.as_uri(), type=t.FileChangeType.Created) for p in paths]))


async def codes_of(client: Client, doc: Doc, want, timeout: float = 20.0) -> list:
    """The document's diagnostics once `want(codes)` holds (the workspace index is built in the
    background, so a first answer may come before it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if client.pulls:
            diagnostics = await client.pull(doc)
        else:
            await client.barrier()
            diagnostics = client.diagnostics.get(doc.uri, [])
        codes = sorted(d.code for d in diagnostics)
        if want(codes) or asyncio.get_running_loop().time() > deadline:
            return diagnostics
        await asyncio.sleep(0.1)


async def test_steps_in_another_file_are_traced_to_the_construction(client: Client):
    folder = project()
    created(client, folder / "main.py", folder / "engine.py")
    engine = client.open(ENGINE, uri=(folder / "engine.py").as_uri())
    diagnostics = await codes_of(client, engine, lambda c: "OPX102" in c)
    assert {(d.code, d.range.start.line) for d in diagnostics} >= {("OPX103", 2), ("OPX102", 4)}
    step = next(d for d in diagnostics if d.code == "OPX102")
    actions = await client.actions(engine, step.range, [step])
    fix = next(a for a in actions if a.title.startswith("Convert optimizer.step()"))
    # The fix edits this document only (main.py is converted by its own fix).
    edit = fix.edit
    uris = {c.text_document.uri for c in edit.document_changes} if edit.document_changes else set(edit.changes)
    assert uris == {engine.uri}
    assert "optimizer.update(" in client.apply(engine, edit)


async def test_python_files_are_watched_where_the_client_lets_the_server_ask(client: Client):
    await client.barrier()
    watched = client.capabilities.workspace.did_change_watched_files if client.capabilities.workspace else None
    asked = [r for r in client.registrations if r.method == t.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    if watched and watched.dynamic_registration:
        assert [w["globPattern"] for r in asked for w in r.register_options["watchers"]] == ["**/*.py"]
    else:
        assert asked == []


async def test_the_other_file_open_and_edited_changes_the_diagnostics(client: Client):
    folder = project()
    created(client, folder / "main.py", folder / "engine.py")
    engine = client.open(ENGINE, uri=(folder / "engine.py").as_uri())
    await codes_of(client, engine, lambda c: "OPX102" in c)
    main = client.open(MAIN, uri=(folder / "main.py").as_uri())
    # Not a torch optimizer any more: engine.py's steps are no longer traced to torch.
    client.replace(main, MAIN.replace("torch.optim.AdamW(model.parameters(), lr=3e-4)", "make_optimizer()"))
    diagnostics = await codes_of(client, engine, lambda c: not c)
    assert list(diagnostics) == []
    client.replace(main, MAIN)
    diagnostics = await codes_of(client, engine, lambda c: "OPX102" in c)
    assert "OPX102" in {d.code for d in diagnostics}
