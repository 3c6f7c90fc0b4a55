"""Code actions applied to the document: each quick fix, fix-all, the ignore action; the
WorkspaceEdit shape each client asked for; context.only; minimal edits; non-ASCII and CRLF.

One real server per client profile for the whole module.
"""

from __future__ import annotations

import ast


from lsprotocol import types as t

from switcheroo_lsp.frontends.lsp import FIX_ALL_TITLE
from lsp_support import (FIX_ALL, PROFILES, SCRIPT, TRAIN, UNICODE, VERSIONED_EDITS, Client, Doc, codes,
                         edits_of, find, lines_of, lsp_client, rng, summary, touched_lines)

client = lsp_client(PROFILES)


async def open_with_diagnostics(client: Client, text: str) -> tuple[Doc, list[t.Diagnostic]]:
    doc = client.open(text)
    return doc, await client.diagnostics_of(doc)


def diagnostic(diagnostics, code: str) -> t.Diagnostic:
    return next(d for d in diagnostics if d.code == code)


async def quickfix_for(client: Client, doc: Doc, diag: t.Diagnostic) -> t.CodeAction:
    """The preferred quick fix offered for one diagnostic (what the lightbulb applies)."""
    actions = await client.actions(doc, diag.range, [diag])
    fixes = [a for a in actions if a.kind == t.CodeActionKind.QuickFix and a.is_preferred]
    assert len(fixes) == 1, [a.title for a in actions]
    return fixes[0]


def single_fix_edits(client: Client, doc: Doc, action: t.CodeAction) -> list[t.TextEdit]:
    return edits_of(action.edit, doc.uri, versioned=VERSIONED_EDITS[client.profile], version=doc.version)


def unchanged_outside(before: str, after: str, lines: set[int]) -> None:
    """Every line of `before` outside `lines` is still in `after`, in order."""
    kept = [line for i, line in enumerate(lines_of(before)) if i not in lines]
    remaining = iter(lines_of(after))
    for line in kept:
        assert any(line == other for other in remaining), f"lost or reordered: {line!r}"


# -- the quick fixes ----------------------------------------------------------------------------------

async def test_construction_quickfix(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    action = await quickfix_for(client, doc, diagnostic(diagnostics, "OPX101"))
    assert action.title == "Convert to optax.chain(add_decayed_weights, adam)"
    assert codes(action.diagnostics) == ["OPX101"]
    result = client.apply(doc, action.edit)
    assert result == TRAIN.replace("import torch\n", "import torch\nimport optax\n").replace(
        "    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)\n",
        "    opt = optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=0.01))\n"
        "    opt_state = opt.init(params)\n")
    ast.parse(result)
    # Minimal: the import line and the construction line, nothing else.
    assert touched_lines(doc.text, single_fix_edits(client, doc, action)) <= {0, 4}


async def test_step_quickfix(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    action = await quickfix_for(client, doc, diagnostic(diagnostics, "OPX102"))
    assert action.title == "Convert opt.step() to opt.update + optax.apply_updates"
    result = client.apply(doc, action.edit)
    assert "        updates, opt_state = opt.update(grads, opt_state, params)\n" \
           "        params = optax.apply_updates(params, updates)\n    return params\n" in result
    assert "opt.step()" not in result and "import optax\n" in result
    ast.parse(result)
    edits = single_fix_edits(client, doc, action)
    assert touched_lines(doc.text, edits) <= {0, 9}
    unchanged_outside(doc.text, result, {0, 9})


async def test_zero_grad_quickfix(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    action = await quickfix_for(client, doc, diagnostic(diagnostics, "OPX103"))
    assert action.title == "Remove zero_grad(): JAX gradients are not accumulated"
    result = client.apply(doc, action.edit)
    assert result == TRAIN.replace("        opt.zero_grad()\n", "")
    assert touched_lines(doc.text, single_fix_edits(client, doc, action)) == {6}


async def test_zero_grad_alone_in_a_block_leaves_pass(client: Client):
    text = TRAIN.replace("    for batch in loader:\n", "    for batch in loader:\n        opt.zero_grad()\n"
                         "    if loader:\n")
    doc, diagnostics = await open_with_diagnostics(client, text)
    first = sorted((d for d in diagnostics if d.code == "OPX103"), key=lambda d: d.range.start.line)[0]
    result = client.apply(doc, (await quickfix_for(client, doc, first)).edit)
    ast.parse(result)
    assert "    for batch in loader:\n        pass\n    if loader:\n" in result


async def test_step_quickfix_with_undefined_names_says_what_to_define(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, SCRIPT)
    step = diagnostic(diagnostics, "OPX102")
    action = await quickfix_for(client, doc, step)
    assert set(codes(action.diagnostics)) == {"OPX102", "OPX203"}
    result = client.apply(doc, action.edit)
    assert "    # TODO(switcheroo): define grads, params here" in result
    ast.parse(result)


# -- fix-all ----------------------------------------------------------------------------------------------

async def test_fix_all_converts_the_file_and_leaves_only_warnings(client: Client):
    for text in (TRAIN, SCRIPT):
        doc, diagnostics = await open_with_diagnostics(client, text)
        actions = await client.actions(doc, rng(0, 0, 0, 0), [], only=[FIX_ALL])
        assert [a.kind for a in actions] == [FIX_ALL]
        fix_all = actions[0]
        result = client.apply(doc, fix_all.edit)
        ast.parse(result)
        assert "torch.optim" not in result and "import optax" in result
        edits = edits_of(fix_all.edit, doc.uri, versioned=VERSIONED_EDITS[client.profile], version=doc.version)
        touched = touched_lines(doc.text, edits)
        # Minimal: never the whole file; the lines no fix is about are not replaced.
        untouchable = ("loss", "print(", "def train", "for ", "model = ")
        assert not [lines_of(doc.text)[i] for i in touched if any(k in lines_of(doc.text)[i] for k in untouchable)]
        # Sending the result back leaves only the OPX2xx codes.
        client.replace(doc, result)
        after = await client.diagnostics_of(doc)
        assert all(c.startswith("OPX2") for c in codes(after)), summary(after)


async def test_fix_all_on_the_train_function_gives_the_expected_file(client: Client):
    doc, _ = await open_with_diagnostics(client, TRAIN)
    (fix_all,) = await client.actions(doc, rng(0, 0, 0, 0), [], only=[FIX_ALL])
    assert client.apply(doc, fix_all.edit) == '''\
import torch
import optax


def train(model, loader, params, grads):
    opt = optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=0.01))
    opt_state = opt.init(params)
    for batch in loader:
        loss = model(batch).sum()
        loss.backward()
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    return params


print("done")
'''


# -- context.only -------------------------------------------------------------------------------------------

async def test_only_is_respected(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    whole = rng(0, 0, len(lines_of(TRAIN)) - 1, 0)
    assert [a.kind for a in await client.actions(doc, whole, diagnostics, only=[FIX_ALL])] == [FIX_ALL]
    quick = await client.actions(doc, whole, diagnostics, only=["quickfix"])
    assert quick and all(a.kind == t.CodeActionKind.QuickFix for a in quick)
    assert [a.kind for a in await client.actions(doc, whole, diagnostics, only=["source"])] == [FIX_ALL]
    # VS Code's `"editor.codeActionsOnSave": {"source.fixAll": true}` asks for the parent kind.
    assert [a.kind for a in await client.actions(doc, whole, [], only=["source.fixAll"])] == [FIX_ALL]
    assert await client.actions(doc, whole, diagnostics, only=["refactor"]) == []
    everything = await client.actions(doc, whole, diagnostics)
    assert {a.kind for a in everything} == {t.CodeActionKind.QuickFix, FIX_ALL}


async def test_actions_are_offered_only_where_asked(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    zero = diagnostic(diagnostics, "OPX103")
    actions = await client.actions(doc, zero.range, [zero], only=["quickfix"])
    assert sorted(a.title for a in actions) == [
        "Ignore OPX103 on this line", "Remove zero_grad(): JAX gradients are not accumulated"]
    # A line with nothing flagged gets no quick fix.
    assert await client.actions(doc, rng(7, 8, 7, 12), [], only=["quickfix"]) == []


# -- ignore -----------------------------------------------------------------------------------------------

async def test_ignore_action_adds_noqa_and_the_diagnostic_goes(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    construct = diagnostic(diagnostics, "OPX101")
    actions = await client.actions(doc, construct.range, [construct])
    ignore = next(a for a in actions if a.title == "Ignore OPX101 on this line")
    assert ignore.kind == t.CodeActionKind.QuickFix and not ignore.is_preferred
    result = client.apply(doc, ignore.edit)
    assert lines_of(result)[4] == ("    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)"
                                   "  # noqa: OPX101")
    assert touched_lines(doc.text, single_fix_edits(client, doc, ignore)) == {4}
    client.replace(doc, result)
    assert codes(await client.diagnostics_of(doc)) == ["OPX103", "OPX102"]


async def test_ignore_on_a_multi_line_statement_goes_on_its_first_line(client: Client):
    text = TRAIN.replace("    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)\n",
                         "    opt = torch.optim.Adam(\n        model.parameters(),\n        lr=0.01,\n    )\n")
    doc, diagnostics = await open_with_diagnostics(client, text)
    construct = diagnostic(diagnostics, "OPX101")
    assert construct.range == rng(4, 10, 7, 5)
    actions = await client.actions(doc, construct.range, [construct])
    ignore = next(a for a in actions if a.title == "Ignore OPX101 on this line")
    result = client.apply(doc, ignore.edit)
    assert lines_of(result)[4] == "    opt = torch.optim.Adam(  # noqa: OPX101"
    ast.parse(result)
    client.replace(doc, result)
    assert "OPX101" not in codes(await client.diagnostics_of(doc))


# -- encodings and line endings --------------------------------------------------------------------------

async def test_fixes_on_a_non_ascii_line(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, UNICODE)
    step = diagnostic(diagnostics, "OPX102")
    assert step.range == find(UNICODE, "opt.step()", client.encoding)
    result = client.apply(doc, (await quickfix_for(client, doc, step)).edit)
    assert '    x = "ñ€😀"; updates, opt_state = opt.update(grads, opt_state, params); ' \
           'params = optax.apply_updates(params, updates)\n' in result
    ast.parse(result)

    zero = diagnostic(diagnostics, "OPX103")
    result = client.apply(doc, (await quickfix_for(client, doc, zero)).edit)
    assert lines_of(result)[6] == '    y = "ñ€😀"'
    ast.parse(result)

    ignore = next(a for a in await client.actions(doc, zero.range, [zero])
                  if a.title == "Ignore OPX103 on this line")
    result = client.apply(doc, ignore.edit)
    assert lines_of(result)[6] == '    y = "ñ€😀"; opt.zero_grad()  # noqa: OPX103'
    client.replace(doc, result)
    assert codes(await client.diagnostics_of(doc)) == ["OPX101", "OPX102"]


async def test_crlf_fixes_keep_crlf(client: Client):
    crlf = TRAIN.replace("\n", "\r\n")
    doc, diagnostics = await open_with_diagnostics(client, crlf)
    results = []
    for code in ("OPX101", "OPX102", "OPX103"):
        action = await quickfix_for(client, doc, diagnostic(diagnostics, code))
        results.append(client.apply(doc, action.edit))
    ignore = next(a for a in await client.actions(doc, diagnostics[0].range, [diagnostics[0]])
                  if a.title.startswith("Ignore"))
    results.append(client.apply(doc, ignore.edit))
    (fix_all,) = await client.actions(doc, rng(0, 0, 0, 0), [], only=[FIX_ALL])
    results.append(client.apply(doc, fix_all.edit))
    for result in results:
        assert result.count("\r\n") == result.count("\n") == result.count("\r"), repr(result)
        ast.parse(result)
    # The same conversion as the LF file, line for line.
    lf_doc, _ = await open_with_diagnostics(client, TRAIN)
    (lf_fix_all,) = await client.actions(lf_doc, rng(0, 0, 0, 0), [], only=[FIX_ALL])
    assert results[-1] == client.apply(lf_doc, lf_fix_all.edit).replace("\n", "\r\n")


async def test_tab_indented_file(client: Client):
    tabs = TRAIN.replace("        ", "\t\t").replace("    ", "\t")
    doc, diagnostics = await open_with_diagnostics(client, tabs)
    assert summary(diagnostics) == [("OPX101", rng(4, 7, 4, 71)), ("OPX103", rng(6, 2, 6, 17)),
                                    ("OPX102", rng(9, 2, 9, 12))]
    (fix_all,) = await client.actions(doc, rng(0, 0, 0, 0), [], only=[FIX_ALL])
    result = client.apply(doc, fix_all.edit)
    assert "\topt_state = opt.init(params)\n" in result
    assert "\t\tupdates, opt_state = opt.update(grads, opt_state, params)\n" in result
    assert "    " not in result
    ast.parse(result)


# -- edit shape ---------------------------------------------------------------------------------------------

async def test_edits_are_versioned_where_the_client_supports_it(client: Client):
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    client.replace(doc, TRAIN.replace("lr=0.01", "lr=0.03"))
    diagnostics = await client.diagnostics_of(doc)
    assert doc.version == 2
    actions = await client.actions(doc, rng(0, 0, 14, 0), diagnostics)
    assert actions
    for action in actions:
        edit = action.edit
        if VERSIONED_EDITS[client.profile]:
            assert edit.changes is None
            assert [c.text_document.version for c in edit.document_changes] == [2]
        else:
            assert edit.document_changes is None and list(edit.changes) == [doc.uri]
        client.apply(doc, edit)     # checks shape and applies cleanly to version 2


# -- backslash continuations: the ignore comment and the step rewrite stay valid Python ----------------------

async def test_ignore_on_a_backslash_continued_line_still_parses(client: Client):
    text = TRAIN.replace("        opt.step()\n", "        opt.step(); \\\n            print(loss)\n")
    doc, diagnostics = await open_with_diagnostics(client, text)
    step = diagnostic(diagnostics, "OPX102")
    ignore = next(a for a in await client.actions(doc, step.range, [step]) if a.title.startswith("Ignore"))
    result = client.apply(doc, ignore.edit)
    ast.parse(result)
    client.replace(doc, result)
    assert "OPX102" not in codes(await client.diagnostics_of(doc))


async def test_step_after_a_backslash_continuation_still_parses(client: Client):
    text = TRAIN.replace("        opt.step()\n", "        print(loss); \\\n            opt.step()\n")
    doc, diagnostics = await open_with_diagnostics(client, text)
    ast.parse(client.apply(doc, (await quickfix_for(client, doc, diagnostic(diagnostics, "OPX102"))).edit))


async def test_fix_all_edit_is_built_on_resolve_where_the_client_can(client: Client):
    """Editors ask for code actions on every cursor move: a client that resolves edits lazily
    gets the whole-file fix-all without its edit, and the edit when it resolves the action."""
    doc, diagnostics = await open_with_diagnostics(client, TRAIN)
    actions = await client.actions(doc, diagnostics[0].range, diagnostics, only=[FIX_ALL])
    caps = client.capabilities.text_document.code_action
    lazy = bool(caps and caps.resolve_support and "edit" in caps.resolve_support.properties)
    assert (FIX_ALL_TITLE.format("Optax") in client.unresolved) is lazy
    assert actions[0].title == FIX_ALL_TITLE.format("Optax")
    ast.parse(client.apply(doc, actions[0].edit))


CHOSEN = """import argparse

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--optimizer", default="AdamW")
args = parser.parse_args()

model = torch.nn.Linear(8, 2)
optimizer = getattr(torch.optim, args.optimizer)(model.parameters(), lr=0.01)
for x, y in loader:
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
"""


async def test_a_class_chosen_at_run_time_offers_a_conversion_per_candidate(client: Client):
    """OPX202 on `getattr(torch.optim, args.optimizer)(...)`: no preferred fix (the flow stays torch),
    and "Convert as torch.optim.AdamW, the default" converting the whole flow as that class."""
    doc, diagnostics = await open_with_diagnostics(client, CHOSEN)
    diag = diagnostic(diagnostics, "OPX202")
    actions = await client.actions(doc, diag.range, [diag])
    assert not any(a.is_preferred for a in actions if a.kind == t.CodeActionKind.QuickFix)
    convert = [a for a in actions if a.title.startswith("Convert as ")]
    assert [a.title for a in convert] == ["Convert as torch.optim.AdamW, the default (argparse --optimizer)"]
    result = client.apply(doc, convert[0].edit)
    ast.parse(result)
    assert "optimizer = optax.adamw(learning_rate=0.01, weight_decay=0.01)" in result
    assert "optimizer.zero_grad()" not in result and "optimizer.step()" not in result
