""""Verify this rewrite" through the protocol: the code lens, the `switcheroo.verify` command
(a subprocess, with a cancellable work-done progress), its message, and the next hover.

Each run starts python, torch and jax in a subprocess (seconds), so one client profile only,
and few steps.
"""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types as t

from lsp_support import VSCODE, Client, find, lsp_client

pytest.importorskip("torch")
pytest.importorskip("jax")
pytestmark = pytest.mark.numerics

client = lsp_client([VSCODE])
HERE = Path(__file__).resolve().parent
UNFAITHFUL = HERE.parent / "verify" / "unfaithful_rewrite.py"

TRAIN = """\
import torch

LR = 3e-4
model = torch.nn.Linear(3, 1)
opt = torch.optim.AdamW(model.parameters(), lr=LR)
for x, y in loader:
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
"""

NEEDS_VALUES = """\
import torch


def build(model, cfg):
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)


opt = build(net, config)
"""


async def lens_of(client: Client, doc) -> t.CodeLens:
    await client.diagnostics_of(doc)
    lenses = await client.text_document_code_lens_async(t.CodeLensParams(
        text_document=t.TextDocumentIdentifier(uri=doc.uri)))
    assert [lens.command.title for lens in lenses] == ["Verify this rewrite"]
    return lenses[0]


async def execute(client: Client, argument: dict) -> dict:
    return await asyncio.wait_for(client.workspace_execute_command_async(t.ExecuteCommandParams(
        command="switcheroo.verify", arguments=[argument])), 180)


def messages_since(client: Client, n: int) -> list[str]:
    return [m.message for m in client.messages[n:]]


async def test_server_offers_the_command(client: Client):
    caps = client.init_result.capabilities
    assert "switcheroo.verify" in caps.execute_command_provider.commands
    assert caps.code_lens_provider is not None


async def test_code_lens_runs_verify_and_the_next_hover_shows_the_result(client: Client):
    doc = client.open(TRAIN)
    lens = await lens_of(client, doc)
    construction = find(TRAIN, "torch.optim.AdamW(", client.encoding)
    assert lens.range.start == construction.start
    assert lens.command.command == "switcheroo.verify"
    argument = dict(lens.command.arguments[0], steps=20)
    tokens_before = set(client.progress_reports)
    seen = len(client.messages)

    result = await execute(client, argument)
    assert result["status"] == "pass", result
    row = result["row"]
    assert row["rewrite"] == "optax.adamw(learning_rate=LR, weight_decay=0.01)"
    assert row["steps"] == 20 and row["max_abs_diff"] < 1e-12 and row["values"]["LR"]["source"] == "module constant LR"
    [message] = messages_since(client, seen)
    assert message.startswith("Verified on your hyperparameters: torch.optim.AdamW → optax.adamw(")
    assert "over 20 steps, within the tolerance 1e-12" in message

    # A cancellable progress, from begin to end, with reports from the subprocess in between.
    [token] = set(client.progress_reports) - tokens_before
    reports = client.progress_reports[token]
    assert isinstance(reports[0], t.WorkDoneProgressBegin) and reports[0].cancellable
    assert reports[0].title.startswith("Verify this rewrite: torch.optim.AdamW")
    assert any(isinstance(r, t.WorkDoneProgressReport) and "importing torch" in (r.message or "") for r in reports)
    assert isinstance(reports[-1], t.WorkDoneProgressEnd) and reports[-1].message == "done"

    hover = await client.hover(doc, construction.start)
    assert hover.contents.value.startswith("**Verified on your hyperparameters:** max |Δθ| ")
    assert "over 20 steps (PASS, tolerance 1e-12" in hover.contents.value
    # Any edit makes the result stale: the hover stops showing it.
    client.replace(doc, TRAIN.replace("LR = 3e-4", "LR = 1e-3"))
    await client.diagnostics_of(doc)
    hover = await client.hover(doc, construction.start)
    assert "Verified on your hyperparameters" not in hover.contents.value


def _fake_python(folder: Path, body: str) -> str:
    script = folder / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


async def test_an_unfaithful_rewrite_is_reported_as_failed(client: Client, tmp_path):
    # An interpreter that runs verify with optax's default weight decay in place of the rewrite.
    python = _fake_python(tmp_path, textwrap.dedent(f"""\
        if [ "$1" = "-m" ]; then shift 2; exec {sys.executable} {UNFAITHFUL} 'optax.adamw(learning_rate=LR)' "$@"; fi
        exec {sys.executable} "$@\""""))
    doc = client.open(TRAIN)
    lens = await lens_of(client, doc)
    seen = len(client.messages)
    result = await execute(client, dict(lens.command.arguments[0], steps=20, python=python))
    assert result["status"] == "fail", result
    [message] = messages_since(client, seen)
    assert message.startswith("Verification FAILED: optax.adamw(learning_rate=LR) differs from torch.optim.AdamW by "
                              "max |Δθ| ")
    assert "(tolerance 1e-12), first at update 1." in message
    assert client.messages[-1].type == t.MessageType.Error
    hover = await client.hover(doc, lens.range.start)
    assert hover.contents.value.startswith("**Verification FAILED on your hyperparameters:**")


async def test_unresolved_arguments_are_named_then_given(client: Client):
    doc = client.open(NEEDS_VALUES)
    lens = await lens_of(client, doc)
    seen = len(client.messages)
    result = await execute(client, dict(lens.command.arguments[0], steps=10))
    assert result["status"] == "unresolved", result
    [message] = messages_since(client, seen)
    assert "torch.optim.SGD: 1 argument does not resolve statically" in message
    assert "lr (cfg.lr): no argparse option or dataclass field named lr in this file" in message
    path = doc.uri.rsplit("/", 1)[-1]
    assert path in message and "switcheroo-verify-" not in message     # the document's name, not the temporary copy's
    result = await execute(client, dict(lens.command.arguments[0], steps=10, set={"cfg.lr": "0.05"}))
    assert result["status"] == "pass", result
    assert result["row"]["values"]["cfg.lr"] == {"value": "0.05", "source": "--set"}


async def test_missing_torch_and_jax_in_the_interpreter_says_which_and_how(client: Client, tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, timeout=120)
    python = str(tmp_path / "bare" / "bin" / "python")
    doc = client.open(TRAIN)
    lens = await lens_of(client, doc)
    seen = len(client.messages)
    result = await execute(client, dict(lens.command.arguments[0], python=python))
    assert result["status"] == "missing"
    assert result["missing"] == ["switcheroo_lsp", "torch", "jax", "optax"]
    [message] = messages_since(client, seen)
    assert message == (f"Verify needs switcheroo_lsp, torch, jax and optax, not installed for {python}: install them "
                       f"with `{python} -m pip install 'switcheroo-lsp[verify]'`")


async def test_cancel_from_the_progress_kills_the_run(client: Client):
    doc = client.open(TRAIN)
    lens = await lens_of(client, doc)
    tokens_before = set(client.progress_reports)
    # Far more steps than the test's time allows: only a cancel ends it in time.
    task = asyncio.ensure_future(execute(client, dict(lens.command.arguments[0], steps=10_000_000)))
    token = None
    for _ in range(1200):       # until the subprocess reports that it runs
        new = set(client.progress_reports) - tokens_before
        token = next(iter(new), None)
        if token and any(isinstance(r, t.WorkDoneProgressReport) for r in client.progress_reports[token]):
            break
        await asyncio.sleep(0.05)
    assert token is not None and not task.done()
    client.window_work_done_progress_cancel(t.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 60)
    assert result["status"] == "cancelled"
    assert client.progress_reports[token][-1].message == "cancelled"
    hover = await client.hover(doc, lens.range.start)
    assert "Verif" not in hover.contents.value.split("###", 1)[0]


nnx_client = lsp_client([VSCODE], name="nnx_client", init_options={"target": "flax-nnx"})


async def test_with_the_flax_nnx_target_verify_runs_the_nnx_rewrite(nnx_client: Client):
    doc = nnx_client.open(TRAIN)
    lens = await lens_of(nnx_client, doc)
    seen = len(nnx_client.messages)
    result = await execute(nnx_client, dict(lens.command.arguments[0], steps=10))
    assert result["status"] == "pass", result
    assert result["row"]["target"] == "flax-nnx"
    assert result["row"]["rewrite"] == "nnx.Optimizer(model, optax.adamw(learning_rate=LR, weight_decay=0.01), wrt=nnx.Param)"
    [message] = messages_since(nnx_client, seen)
    assert message.startswith("Verified on your hyperparameters: torch.optim.AdamW → nnx.Optimizer(model, optax.adamw(")


async def test_a_document_that_does_not_parse_says_what_python_says(client: Client):
    doc = client.open("import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1\nopt.step()\n")
    await client.diagnostics_of(doc)
    seen = len(client.messages)
    result = await execute(client, {"uri": doc.uri, "position": {"line": 1, "character": 6}})
    assert result["status"] == "error"
    assert messages_since(client, seen) == [f"{doc.uri} does not parse: syntax error: '(' was never closed (line 2)"]
