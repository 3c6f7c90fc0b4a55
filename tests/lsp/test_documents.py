"""Diagnostics and hovers over a document's life: open, change (full and incremental), save,
syntax errors, close; push to clients that cannot pull, pull for those that can, never both.

One real server per client profile for the whole module.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from lsprotocol import types as t

from lsp_support import (ENCODING, PROFILES, TIMEOUT, PULLS, SCRIPT, TRAIN, TRAIN_FINDINGS, UNFLAGGED, UNICODE,
                         Client, codes, find, lines_of, lsp_client, rng, summary)

client = lsp_client(PROFILES)


async def test_server_capabilities_match_the_client(client: Client):
    caps = client.init_result.capabilities
    assert client.encoding == ENCODING[client.profile]
    assert client.pulls == PULLS[client.profile]
    assert caps.hover_provider
    sync = caps.text_document_sync
    assert sync.open_close and sync.save and sync.change == t.TextDocumentSyncKind.Incremental
    kinds = caps.code_action_provider.code_action_kinds
    assert "quickfix" in kinds and "source.fixAll.switcheroo" in kinds
    assert caps.diagnostic_provider is not None and caps.diagnostic_provider.identifier == "switcheroo"


async def test_open_reports_codes_and_exact_ranges(client: Client):
    doc = client.open(TRAIN)
    diagnostics = await client.diagnostics_of(doc)
    assert summary(diagnostics) == TRAIN_FINDINGS
    for d in diagnostics:
        assert d.source == "switcheroo"
        assert d.severity == t.DiagnosticSeverity.Information
        assert d.code_description and d.code.lower() in d.code_description.href
    construct = next(d for d in diagnostics if d.code == "OPX101")
    assert "optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=0.01))" in construct.message


async def test_undefined_names_warn_beside_the_step(client: Client):
    doc = client.open(SCRIPT)
    diagnostics = await client.diagnostics_of(doc)
    assert summary(diagnostics) == [
        ("OPX101", rng(3, 6, 3, 51)), ("OPX203", rng(3, 6, 3, 51)), ("OPX103", rng(6, 4, 6, 19)),
        ("OPX102", rng(9, 4, 9, 14)), ("OPX203", rng(9, 4, 9, 14))]
    init, step = [d for d in diagnostics if d.code == "OPX203"]
    assert init.severity == step.severity == t.DiagnosticSeverity.Warning
    assert "init line needs params" in init.message
    assert "grads" in step.message and "params" in step.message


async def test_look_alikes_are_not_flagged(client: Client):
    doc = client.open(UNFLAGGED)
    assert await client.diagnostics_of(doc) == []


async def test_push_or_pull_never_both(client: Client):
    """Pull clients are never pushed to (VS Code would show everything twice); push clients
    get one publish per version, carrying that version."""
    since = len(client.published)
    doc = client.open(TRAIN)
    if client.pulls:
        assert codes(await client.pull(doc)) == ["OPX101", "OPX103", "OPX102"]
        client.replace(doc, TRAIN.replace("lr=0.01", "lr=0.02"))
        assert "learning_rate=0.02" in (await client.pull(doc))[0].message
        await client.barrier()
        assert client.published[since:] == []
    else:
        first = await client.pushed(doc, since)
        client.replace(doc, TRAIN.replace("lr=0.01", "lr=0.02"))
        second = await client.pushed(doc, since)
        assert "learning_rate=0.01" in first[0].message and "learning_rate=0.02" in second[0].message
        await client.barrier()
        mine = [p.version for p in client.published[since:] if p.uri == doc.uri]
        assert mine == [1, 2]


async def test_full_change_gives_fresh_diagnostics(client: Client):
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    client.replace(doc, TRAIN.replace("        opt.zero_grad()\n", ""))
    assert doc.version == 2
    assert summary(await client.diagnostics_of(doc)) == [
        ("OPX101", rng(4, 10, 4, 74)), ("OPX102", rng(8, 8, 8, 18))]


async def test_incremental_changes_give_fresh_diagnostics(client: Client):
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    # Delete the zero_grad() line, then rename the optimizer's receiver at its step only.
    client.edit(doc, rng(6, 0, 7, 0), "")
    assert summary(await client.diagnostics_of(doc)) == [
        ("OPX101", rng(4, 10, 4, 74)), ("OPX102", rng(8, 8, 8, 18))]
    client.edit(doc, rng(8, 8, 8, 11), "other")
    assert codes(await client.diagnostics_of(doc)) == ["OPX101"]
    client.edit(doc, rng(8, 8, 8, 13), "opt")
    assert summary(await client.diagnostics_of(doc)) == [
        ("OPX101", rng(4, 10, 4, 74)), ("OPX102", rng(8, 8, 8, 18))]


async def test_incremental_change_on_a_non_ascii_line(client: Client):
    """Positions in the change are in the negotiated encoding: inserting after the emoji must
    land after it, and the step's new columns must be counted in that encoding."""
    doc = client.open(UNICODE)
    await client.diagnostics_of(doc)
    after_emoji = find(doc.text, '😀"', client.encoding).end
    client.edit(doc, t.Range(after_emoji, after_emoji), " + 'ü'")
    assert 'x = "ñ€😀" + \'ü\'; opt.step()' in doc.text
    diagnostics = await client.diagnostics_of(doc)
    step = next(d for d in diagnostics if d.code == "OPX102")
    assert step.range == find(doc.text, "opt.step()", client.encoding)


async def test_incremental_changes_after_unusual_line_separators(client: Client):
    """Only CR, LF and CRLF end lines in the LSP; a form feed (a page break, common in old
    Python files) or a U+2028 inside a string must not shift later lines."""
    text = TRAIN.replace("import torch\n\n\n", 'import torch\n\x0c\ns = "a\u2028b\x85c"\n')
    assert lines_of(text)[4:7] == lines_of(TRAIN)[4:7]
    doc = client.open(text)
    assert summary(await client.diagnostics_of(doc)) == TRAIN_FINDINGS
    client.edit(doc, rng(6, 0, 7, 0), "")          # delete the zero_grad() line
    assert summary(await client.diagnostics_of(doc)) == [
        ("OPX101", rng(4, 10, 4, 74)), ("OPX102", rng(8, 8, 8, 18))]
    (fix,) = [a for a in await client.actions(doc, rng(8, 8, 8, 18)) if a.is_preferred]
    result = client.apply(doc, fix.edit)
    assert "\x0c" in result and "\u2028" in result
    assert lines_of(result)[9:11] == ["        updates, opt_state = opt.update(grads, opt_state, params)",
                                       "        params = optax.apply_updates(params, updates)"]


async def test_non_ascii_columns(client: Client):
    doc = client.open(UNICODE)
    diagnostics = await client.diagnostics_of(doc)
    step = next(d for d in diagnostics if d.code == "OPX102")
    zero = next(d for d in diagnostics if d.code == "OPX103")
    # `    x = "ñ€😀"; ` is 15 code points, 16 UTF-16 units (the emoji is a pair), 21 UTF-8 bytes.
    start = {"utf-16": 16, "utf-8": 21, "utf-32": 15}[client.encoding]
    assert step.range == rng(5, start, 5, start + len("opt.step()"))
    assert zero.range == rng(6, start, 6, start + len("opt.zero_grad()"))


async def test_crlf_document_has_the_same_ranges(client: Client):
    doc = client.open(TRAIN.replace("\n", "\r\n"))
    assert summary(await client.diagnostics_of(doc)) == TRAIN_FINDINGS


async def test_save_reanalyses(client: Client):
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    since = len(client.published)
    client.text_document_did_save(t.DidSaveTextDocumentParams(
        text_document=t.TextDocumentIdentifier(uri=doc.uri)))
    if client.pulls:
        await client.barrier()
        assert client.published[since:] == []
        assert summary(await client.pull(doc)) == TRAIN_FINDINGS
    else:
        assert summary(await client.pushed(doc, since)) == TRAIN_FINDINGS


async def test_close_clears_diagnostics(client: Client):
    doc = client.open(TRAIN)
    assert await client.diagnostics_of(doc)
    since = len(client.published)
    client.close(doc)
    if client.pulls:
        await client.barrier()
        assert client.published[since:] == []
        assert await client.pull(doc) == []      # a closed document has nothing to report
    else:
        cleared = await client.wait_published(lambda p: p.uri == doc.uri, since)
        assert list(cleared.diagnostics) == []


async def test_syntax_error_keeps_the_last_good_diagnostics(client: Client):
    doc = client.open(TRAIN)
    good = summary(await client.diagnostics_of(doc))
    # Typing an unfinished line: the file does not parse for a while.
    client.replace(doc, TRAIN.replace("        loss.backward()\n", "        loss.backward(\n"))
    assert summary(await client.diagnostics_of(doc)) == good
    # No edits computed for a text that does not parse, and no hover from a stale analysis.
    assert await client.actions(doc, rng(4, 10, 4, 74)) == []
    assert await client.hover(doc, t.Position(9, 10)) is None
    # The server keeps serving: the next valid text is analysed afresh.
    client.replace(doc, TRAIN.replace("        opt.step()\n", ""))
    assert summary(await client.diagnostics_of(doc)) == [
        ("OPX101", rng(4, 10, 4, 74)), ("OPX103", rng(6, 8, 6, 23))]


async def test_a_document_that_never_parsed_has_no_diagnostics(client: Client):
    doc = client.open(TRAIN.replace("def train(model, loader, params, grads):", "def train(model, loader"))
    assert await client.diagnostics_of(doc) == []
    assert await client.actions(doc, rng(4, 10, 4, 74)) == []


# -- hover ------------------------------------------------------------------------------------------

async def test_hover_on_a_step_shows_the_pattern_and_its_rewrite(client: Client):
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    hover = await client.hover(doc, t.Position(9, 12))
    assert hover is not None
    assert hover.contents.kind == t.MarkupKind.Markdown
    text = hover.contents.value
    for word in (".init(", ".update(", "optax.apply_updates"):
        assert word in text
    assert ("updates, opt_state = opt.update(grads, opt_state, params)\n"
            "params = optax.apply_updates(params, updates)") in text
    assert hover.range == rng(9, 8, 9, 18)


async def test_hover_on_a_construction_shows_rewrite_and_differences(client: Client):
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    hover = await client.hover(doc, t.Position(4, 20))
    assert hover is not None and hover.contents.kind == t.MarkupKind.Markdown
    text = hover.contents.value
    assert ("opt = optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=0.01))\n"
            "opt_state = opt.init(params)") in text
    assert "weight_decay is L2 on the gradient" in text
    assert "apply_updates" in text and "update(" in text
    assert hover.range == rng(4, 10, 4, 74)


PREPARED = """\
import torch
from accelerate import Accelerator

accelerator = Accelerator()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model, optimizer = accelerator.prepare(model, optimizer)
optimizer.step()
"""


async def test_hover_names_the_wrapper_an_optimizer_went_through(client: Client):
    doc = client.open(PREPARED)
    diagnostics = await client.diagnostics_of(doc)
    assert ("OPX102", rng(6, 0, 6, 16)) in summary(diagnostics)
    hover = await client.hover(doc, t.Position(6, 3))
    assert hover is not None
    assert "**Handed through**" in hover.contents.value and "`accelerator.prepare`" in hover.contents.value
    assert "optax.MultiSteps" in hover.contents.value


async def test_hover_columns_follow_the_encoding(client: Client):
    doc = client.open(UNICODE)
    await client.diagnostics_of(doc)
    step = find(doc.text, "opt.step()", client.encoding)
    inside = t.Position(step.start.line, step.start.character + 1)
    hover = await client.hover(doc, inside)
    assert hover is not None and hover.range == step
    # Just before the call (on the string with the emoji) there is nothing to explain.
    assert await client.hover(doc, find(doc.text, "€", client.encoding).start) is None


async def test_no_hover_on_unflagged_calls(client: Client):
    doc = client.open(UNFLAGGED)
    await client.diagnostics_of(doc)
    for needle in ("env.step(a)", "model.step()", "mine.step()"):
        at = find(doc.text, needle, client.encoding).start
        assert await client.hover(doc, t.Position(at.line, at.character + 2)) is None, needle
    doc2 = client.open(TRAIN)
    await client.diagnostics_of(doc2)
    assert await client.hover(doc2, t.Position(7, 12)) is None     # loss = model(batch).sum()


# -- robustness ---------------------------------------------------------------------------------------

async def test_malformed_request_gets_an_error_and_the_server_keeps_answering(client: Client):
    from pygls.exceptions import JsonRpcException
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    with pytest.raises(JsonRpcException) as bad:
        await client.raw_request("textDocument/hover", {"textDocument": {"uri": doc.uri}})
    assert bad.value.code == -32602           # InvalidParams
    with pytest.raises(JsonRpcException) as unknown:
        await client.raw_request("switcheroo/noSuchMethod", {})
    assert unknown.value.code == -32601       # MethodNotFound
    # A well-formed raw request is answered normally, and so is everything after.
    ok = await client.raw_request("textDocument/hover", {
        "textDocument": {"uri": doc.uri}, "position": {"line": 9, "character": 12}})
    assert "apply_updates" in ok.contents.value       # pygls hands back a namedtuple-like Object
    assert (await client.hover(doc, t.Position(9, 12))) is not None
    client.replace(doc, TRAIN.replace("        opt.zero_grad()\n", ""))
    assert codes(await client.diagnostics_of(doc)) == ["OPX101", "OPX102"]


async def test_bad_messages_never_stop_the_server(client: Client):
    from pygls.exceptions import JsonRpcException
    doc = client.open(TRAIN)
    await client.diagnostics_of(doc)
    # Params that are not an object at all.
    with pytest.raises(JsonRpcException) as bad:
        await client.raw_request("textDocument/codeAction", "oops")
    assert bad.value.code == -32602
    # A notification that does not deserialize has nobody to answer; it is dropped.
    client.protocol._send_data({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": 1}})
    # A body that is not JSON gets a Parse error answer with `"id": null`.
    from concurrent.futures import Future
    parse_error: Future = Future()
    client.protocol._request_futures[None] = parse_error
    body = b"{not json"
    client.protocol.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(JsonRpcException) as unreadable:
        await asyncio.wait_for(asyncio.wrap_future(parse_error), TIMEOUT)
    assert unreadable.value.code == -32700
    # Still serving, with fresh analyses.
    assert (await client.hover(doc, t.Position(9, 12))) is not None
    client.replace(doc, TRAIN.replace("        opt.step()\n", ""))
    assert codes(await client.diagnostics_of(doc)) == ["OPX101", "OPX103"]


async def test_untitled_documents_are_analysed(client: Client):
    doc = client.open(TRAIN, uri="untitled:Untitled-1")
    assert summary(await client.diagnostics_of(doc)) == TRAIN_FINDINGS
    (fix,) = [a for a in await client.actions(doc, rng(6, 8, 6, 23)) if a.is_preferred]
    assert client.apply(doc, fix.edit) == TRAIN.replace("        opt.zero_grad()\n", "")


async def test_percent_encoded_uris(client: Client):
    """Editors quote spaces and non-ASCII in file URIs; answers use the URI as the client sent it."""
    uri = client.new_uri("my project ñ")
    assert "%20" in uri and "%C3%B1" in uri
    doc = client.open(TRAIN, uri=uri)
    assert summary(await client.diagnostics_of(doc)) == TRAIN_FINDINGS
    (fix,) = [a for a in await client.actions(doc, rng(6, 8, 6, 23)) if a.is_preferred]
    assert client.apply(doc, fix.edit) == TRAIN.replace("        opt.zero_grad()\n", "")
    assert await client.hover(doc, t.Position(9, 12)) is not None
    client.edit(doc, rng(6, 0, 7, 0), "")
    assert codes(await client.diagnostics_of(doc)) == ["OPX101", "OPX102"]


async def test_unknown_notification_is_ignored(client: Client):
    client.protocol.notify("switcheroo/noSuchNotification", {"x": 1})
    doc = client.open(TRAIN)
    assert summary(await client.diagnostics_of(doc)) == TRAIN_FINDINGS


# -- suppression and project settings ----------------------------------------------------------------------

NOQA = TRAIN.replace(
    "weight_decay=1e-4)\n", "weight_decay=1e-4)  # noqa\n").replace(
    "        opt.zero_grad()\n", "        opt.zero_grad()  # noqa: OPX102\n").replace(
    "        opt.step()\n", "        opt.step()  # NOQA: OPX103, OPX102\n")


async def test_noqa_suppresses_the_codes_it_names(client: Client):
    doc = client.open(NOQA)
    # Bare noqa: all; `noqa: OPX102` on the zero_grad() line does not hide OPX103.
    assert summary(await client.diagnostics_of(doc)) == [("OPX103", rng(6, 8, 6, 23))]
    assert await client.hover(doc, t.Position(9, 10)) is None
    # A `# noqa` inside a string is not a comment.
    doc2 = client.open(TRAIN.replace("        opt.step()\n", "        opt.step(); s = '# noqa'\n"))
    assert codes(await client.diagnostics_of(doc2)) == ["OPX101", "OPX103", "OPX102"]


async def test_pyproject_settings_are_honoured(client: Client, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switcheroo]\nignore = ["OPX103"]\nexclude = ["generated/"]\n', encoding="utf-8")
    (tmp_path / "generated").mkdir()
    (tmp_path / "pkg").mkdir()
    project = client.open(TRAIN, uri=(tmp_path / "pkg" / "train.py").as_uri())
    assert codes(await client.diagnostics_of(project)) == ["OPX101", "OPX102"]
    excluded = client.open(TRAIN, uri=(tmp_path / "generated" / "train.py").as_uri())
    assert await client.diagnostics_of(excluded) == []
    assert await client.actions(excluded, rng(4, 10, 4, 74)) == []
    assert await client.hover(excluded, t.Position(9, 10)) is None
    # A file outside that project keeps the defaults.
    elsewhere = client.open(TRAIN, uri=(tmp_path.parent / f"{tmp_path.name}-other.py").as_uri())
    assert codes(await client.diagnostics_of(elsewhere)) == ["OPX101", "OPX103", "OPX102"]


async def test_an_edited_pyproject_applies_to_the_next_analysis(client: Client, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.switcheroo]\nignore = ["OPX103"]\n', encoding="utf-8")
    doc = client.open(TRAIN, uri=(tmp_path / "train.py").as_uri())
    assert codes(await client.diagnostics_of(doc)) == ["OPX101", "OPX102"]
    pyproject.write_text('[tool.switcheroo]\nignore = ["OPX101"]\nseverity = {OPX102 = "loud"}\n', encoding="utf-8")
    stat = pyproject.stat()
    os.utime(pyproject, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))   # coarse clocks
    client.replace(doc, TRAIN + "\n")
    assert codes(await client.diagnostics_of(doc)) == ["OPX103", "OPX102"]
    # The invalid entry is reported to the user, not silently dropped.
    assert any("OPX102" in m.message and "pyproject.toml" in m.message for m in client.log_messages)


def test_the_cyclic_gc_is_paused_while_the_server_builds_and_always_given_back():
    """The server pauses the cyclic GC while it analyses or reads the index (its collections would
    walk every syntax tree and index fact it keeps), across the event loop and the index's thread,
    and always turns it back on when the last is done: left off, cycles would pile up."""
    import gc
    import threading

    from switcheroo_lsp.frontends import gc_pause

    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
        inside, leave = threading.Event(), threading.Event()

        def scan():                     # the index's thread, overlapping the analysis
            with gc_pause.paused():
                inside.set()
                leave.wait(5)
        thread = threading.Thread(target=scan)
        thread.start()
        inside.wait(5)
    assert not gc.isenabled(), "the thread still builds"
    leave.set()
    thread.join(5)
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_pause.paused():
            raise RuntimeError("an analysis that fails")
    assert gc.isenabled()
    gc.disable()        # a host that runs without it keeps it off
    try:
        with gc_pause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
