"""The `target` setting over the real protocol: `workspace/didChangeConfiguration` switching
between optax and flax-nnx changes the next diagnostics, quick fixes, fix-all and hovers;
initializationOptions and `[tool.switcheroo]` choose it from the start.
"""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path

from lsprotocol import types as t

from lsp_support import FIX_ALL, NVIM7, NVIM11, TRAIN, VSCODE, VSCODE_PULL, Client, codes, lsp_client

switching = lsp_client([VSCODE, NVIM11, VSCODE_PULL], name="switching")
nnx_at_start = lsp_client([NVIM7], name="nnx_at_start", init_options={"target": "flax-nnx"})
bad_target = lsp_client([NVIM7], name="bad_target", init_options={"target": "haiku"})

NNX_CONSTRUCTION = "nnx.Optimizer(model, optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=0.01)), wrt=nnx.Param)"
NNX_STEP = "opt.update(model, grads)"


async def _shown(client: Client, doc, since: int, refreshed: int, match) -> list[t.Diagnostic]:
    """The diagnostics the client shows once the server has acted on a configuration change."""
    if client.pulls:
        if client.refreshes:
            await client.wait_refresh(refreshed)
        else:
            await client.barrier()
        return await client.pull(doc)
    params = await client.wait_published(lambda p: p.uri == doc.uri and match(p.diagnostics), since)
    return list(params.diagnostics)


def _messages(diagnostics) -> dict[str, str]:
    return {d.code: d.message for d in diagnostics}


async def _fix_all(client: Client, doc, diagnostics) -> str:
    (action,) = await client.actions(doc, diagnostics[0].range, diagnostics, only=[FIX_ALL])
    return action.title, client.apply(doc, action.edit)


async def _configure(client: Client, settings: dict) -> tuple[int, int]:
    since, refreshed = len(client.published), client.diagnostic_refresh_count
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings={"switcheroo": settings}))
    return since, refreshed


async def test_did_change_configuration_switches_the_target(switching: Client):
    doc = switching.open(TRAIN)
    before = await switching.diagnostics_of(doc)
    assert codes(before) == ["OPX101", "OPX103", "OPX102"]
    assert "optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=0.01))" in before[0].message
    assert "nnx" not in " ".join(d.message for d in before)

    # To flax-nnx: the next diagnostics, fixes and hovers are NNX's.
    since, refreshed = await _configure(switching, {"target": "flax-nnx"})
    after = await _shown(switching, doc, since, refreshed, lambda ds: "nnx.Optimizer" in ds[0].message)
    messages = _messages(after)
    assert codes(after) == ["OPX101", "OPX103", "OPX102"]
    assert messages["OPX101"].startswith(f"torch.optim.Adam → {NNX_CONSTRUCTION}")
    assert messages["OPX102"].startswith(f"opt.step() → {NNX_STEP} (nnx.Optimizer keeps")
    assert "nnx.grad" in messages["OPX103"]
    step = next(d for d in after if d.code == "OPX102")
    (quick, *_) = await switching.actions(doc, step.range, [step], only=["quickfix"])
    assert quick.title == f"Convert opt.step() to {NNX_STEP}"
    assert f"        {NNX_STEP}\n" in switching.apply(doc, quick.edit)
    title, fixed = await _fix_all(switching, doc, after)
    assert title.endswith("to Flax NNX")
    ast.parse(fixed)
    assert "from flax import nnx\n" in fixed and "import optax\n" in fixed
    assert ("    opt = nnx.Optimizer(\n        model,\n        optax.chain(optax.add_decayed_weights(1e-4), "
            "optax.adam(learning_rate=0.01)),\n        wrt=nnx.Param,\n    )\n") in fixed    # too long for one line
    assert f"        {NNX_STEP}\n" in fixed
    assert "opt_state" not in fixed and "apply_updates" not in fixed and "zero_grad" not in fixed
    hover = await switching.hover(doc, step.range.start)
    assert "Flax NNX pattern" in hover.contents.value and NNX_STEP in hover.contents.value

    # Back to optax (the key removed): the functional rewrite again.
    since, refreshed = await _configure(switching, {})
    back = await _shown(switching, doc, since, refreshed, lambda ds: "nnx" not in ds[0].message)
    assert _messages(back)["OPX102"].startswith("opt.step() → updates, opt_state = opt.update(grads, opt_state, params)")
    title, fixed = await _fix_all(switching, doc, back)
    assert title.endswith("to Optax")
    assert "nnx" not in fixed and "opt_state = opt.init(params)" in fixed


async def test_initialization_options_choose_the_target(nnx_at_start: Client):
    doc = nnx_at_start.open(TRAIN)
    diagnostics = await nnx_at_start.diagnostics_of(doc)
    assert _messages(diagnostics)["OPX101"].startswith(f"torch.optim.Adam → {NNX_CONSTRUCTION}")


async def test_pyproject_chooses_the_target_and_the_editor_overrides_it(nnx_at_start: Client):
    folder = Path(tempfile.mkdtemp(prefix="switcheroo-target-"))
    (folder / "pyproject.toml").write_text('[tool.switcheroo]\ntarget = "optax"\n')
    doc = nnx_at_start.open(TRAIN, uri=nnx_at_start.new_uri("project", folder))
    # initializationOptions come after pyproject.toml: the editor's flax-nnx wins.
    assert "nnx.Optimizer" in _messages(await nnx_at_start.diagnostics_of(doc))["OPX101"]


async def test_pyproject_target_applies_where_the_editor_sets_none(switching: Client):
    folder = Path(tempfile.mkdtemp(prefix="switcheroo-target-"))
    (folder / "pyproject.toml").write_text('[tool.switcheroo]\ntarget = "flax-nnx"\n')
    doc = switching.open(TRAIN, uri=switching.new_uri("project", folder))
    assert _messages(await switching.diagnostics_of(doc))["OPX102"].startswith(f"opt.step() → {NNX_STEP}")


async def test_an_unknown_target_is_reported_and_optax_applies(bad_target: Client):
    doc = bad_target.open(TRAIN)
    diagnostics = await bad_target.diagnostics_of(doc)
    assert "nnx" not in _messages(diagnostics)["OPX101"]
    warnings = [m.message for m in bad_target.log_messages if m.type == t.MessageType.Warning]
    assert any("target must be one of optax, flax-nnx" in m for m in warnings), warnings
