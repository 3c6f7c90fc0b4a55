"""Settings change what is reported: initializationOptions, workspace/configuration,
workspace/didChangeConfiguration. One server per (settings, client profile) for the module.

VS Code stands for the push clients and Neovim 0.11 for the pull clients; Emacs answers
workspace/configuration too; Neovim 0.7 cannot, so it sees initializationOptions only.
"""

from __future__ import annotations

from lsprotocol import types as t

from lsp_support import (EMACS, FIX_ALL, NVIM7, NVIM11, SCRIPT, TRAIN, VSCODE, VSCODE_PULL, Client, codes,
                         lsp_client, rng)

selecting = lsp_client([VSCODE], name="selecting", init_options={"select": ["OPX102"]})
ignoring = lsp_client([NVIM7, NVIM11], name="ignoring",
                      init_options={"ignore": ["OPX103", "OPX2"], "severity": {"OPX10": "hint", "OPX101": "error"}})
# The VS Code extension sends the same settings as initializationOptions and as configuration,
# omitting the keys the user has not set.
configured = lsp_client([VSCODE, EMACS, NVIM11, VSCODE_PULL], name="configured",
                        init_options={"ignore": ["OPX103"]}, configuration={"switcheroo": {"ignore": ["OPX103"]}})
# Eglot answers workspace/configuration with null when the workspace configures nothing.
eglot_like = lsp_client([EMACS], name="eglot_like", init_options={"ignore": ["OPX103"]})
misconfigured = lsp_client([NVIM7], name="misconfigured",
                           init_options={"severity": {"OPX101": "loud"}, "select": ["OPX1", "NOPE"]})


async def test_select_reports_only_the_selected_codes(selecting: Client):
    doc = selecting.open(SCRIPT)
    assert codes(await selecting.diagnostics_of(doc)) == ["OPX102"]
    # What is not reported is not offered either; fix-all converts only what is selected.
    assert await selecting.actions(doc, rng(3, 6, 3, 51), [], only=["quickfix"]) == []
    (fix_all,) = await selecting.actions(doc, rng(0, 0, 0, 0), [], only=[FIX_ALL])
    result = selecting.apply(doc, fix_all.edit)
    assert "torch.optim.Adam(" in result and "opt.zero_grad()" in result and "opt.step()" not in result
    assert await selecting.hover(doc, t.Position(3, 20)) is None
    hover = await selecting.hover(doc, t.Position(9, 6))
    assert "OPX102" in hover.contents.value and "OPX203" not in hover.contents.value


async def test_ignore_hides_codes_and_prefixes(ignoring: Client):
    doc = ignoring.open(SCRIPT)
    assert codes(await ignoring.diagnostics_of(doc)) == ["OPX101", "OPX102"]


async def test_severity_overrides(ignoring: Client):
    doc = ignoring.open(SCRIPT)
    severity = {d.code: d.severity for d in await ignoring.diagnostics_of(doc)}
    # The longest matching prefix wins.
    assert severity == {"OPX101": t.DiagnosticSeverity.Error, "OPX102": t.DiagnosticSeverity.Hint}


async def test_invalid_settings_are_reported_and_the_rest_applies(misconfigured: Client):
    doc = misconfigured.open(SCRIPT)
    diagnostics = await misconfigured.diagnostics_of(doc)
    assert codes(diagnostics) == ["OPX101", "OPX103", "OPX102"]     # select OPX1 kept, bad severity dropped
    assert diagnostics[0].severity == t.DiagnosticSeverity.Information
    warnings = [m.message for m in misconfigured.log_messages if m.type == t.MessageType.Warning]
    assert any("severity of OPX101" in m for m in warnings), warnings
    assert any("NOPE" in m for m in warnings), warnings


async def test_workspace_configuration_applies_from_the_start(configured: Client):
    doc = configured.open(TRAIN)
    if configured.pulls:
        await configured.barrier()          # the configuration answer has reached the server
        assert codes(await configured.pull(doc)) == ["OPX101", "OPX102"]
    else:
        # The document may be analysed before the configuration arrives; what the editor ends
        # up showing for this version must follow the configuration.
        await configured.wait_published(lambda p: p.uri == doc.uri and p.version == 1
                                        and codes(p.diagnostics) == ["OPX101", "OPX102"])
        await configured.barrier()
        assert codes(configured.diagnostics[doc.uri]) == ["OPX101", "OPX102"]


async def test_did_change_configuration_republishes(configured: Client):
    doc = configured.open(TRAIN, uri=configured.new_uri("a quoted ü uri"))
    await configured.barrier()

    async def shown(expected: list[str]) -> None:
        if configured.pulls:
            # A client that can be told to pull again is told; the others pull on their own.
            if configured.refreshes:
                await configured.wait_refresh(refreshed)
            else:
                await configured.barrier()
                assert configured.diagnostic_refresh_count == 0
            assert codes(await configured.pull(doc)) == expected
            assert configured.published == []
        else:
            await configured.wait_published(lambda p: p.uri == doc.uri and codes(p.diagnostics) == expected, since)
            await configured.barrier()
            assert codes(configured.diagnostics[doc.uri]) == expected

    # 1. Settings pushed in the notification (VS Code's synchronize.configurationSection).
    since, refreshed = len(configured.published), configured.diagnostic_refresh_count
    configured.workspace_did_change_configuration(t.DidChangeConfigurationParams(
        settings={"switcheroo": {"ignore": ["OPX101"], "severity": {"OPX102": "warning"}}}))
    await shown(["OPX103", "OPX102"])
    if not configured.pulls:
        step = configured.diagnostics[doc.uri][-1]
        assert step.severity == t.DiagnosticSeverity.Warning

    # 2. The user removed every setting; VS Code then sends none of the keys. Nothing is
    # ignored any more, although initializationOptions said otherwise at start.
    since, refreshed = len(configured.published), configured.diagnostic_refresh_count
    configured.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings={"switcheroo": {}}))
    await shown(["OPX101", "OPX103", "OPX102"])

    # 3. A bare notification: the server asks for the configuration again.
    configured.set_configuration({"select": ["OPX103"]}, section="switcheroo")
    since, refreshed = len(configured.published), configured.diagnostic_refresh_count
    configured.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings=None))
    await shown(["OPX103"])

    # Back to the module's configuration for whatever runs next.
    configured.set_configuration({"ignore": ["OPX103"]}, section="switcheroo")
    since, refreshed = len(configured.published), configured.diagnostic_refresh_count
    configured.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings=None))
    await shown(["OPX101", "OPX102"])


async def test_initialization_options_stand_when_the_configuration_is_empty(eglot_like: Client):
    doc = eglot_like.open(TRAIN)
    await eglot_like.barrier()
    assert codes(await eglot_like.diagnostics_of(doc)) == ["OPX101", "OPX102"]
    await eglot_like.barrier()
    assert codes(eglot_like.diagnostics[doc.uri]) == ["OPX101", "OPX102"]


debounced = lsp_client([VSCODE], name="debounced", init_options={"debounce_ms": 100})


async def test_a_typing_burst_ends_with_the_diagnostics_of_its_last_version(debounced: Client):
    doc = debounced.open(TRAIN)
    await debounced.pushed(doc)
    since = len(debounced.published)
    # Rename the stepped receiver keystroke by keystroke: `opt.step()` -> `optim.step()`.
    debounced.edit(doc, rng(9, 11, 9, 11), "i")
    debounced.edit(doc, rng(9, 12, 9, 12), "m")
    assert "        optim.step()\n" in doc.text
    final = await debounced.pushed(doc, since)
    assert codes(final) == ["OPX101", "OPX103"]
    await debounced.barrier()
    versions = [p.version for p in debounced.published[since:] if p.uri == doc.uri]
    assert versions == sorted(versions) and versions[-1] == doc.version
