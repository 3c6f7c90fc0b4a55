"""Bugs the robustness suite found, kept as minimal regression tests (.notes/bugs-robustness.md).

A bug found here that is not fixed yet gets an `xfail(strict=True)` test in this file: once it is
fixed the test XPASSes and fails the run, and the marker goes.
"""

from __future__ import annotations

import ast

import pytest

from lsp_model import apply_change, apply_text_edits, expected_diagnostics, summarize
from rpc import Rpc
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

KEPT_BUT_SCHEDULED = '''\
import torch

opt = torch.optim.SGD(model.parameters(), lr=0.1)  # noqa
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
for x in loader:
    opt.zero_grad()
    opt.step()
    sched.step()
'''

KEPT_BUT_CLIPPED = '''\
import torch

opt = torch.optim.SGD(model.parameters(), lr=0.1)  # noqa: OPX101
for x in loader:
    opt.zero_grad()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
'''


# -- bug 1 (fixed 57e7ff6): a scheduler or clipping fold converted a `# noqa`-kept optimizer -------

@pytest.mark.parametrize("text", [KEPT_BUT_SCHEDULED, KEPT_BUT_CLIPPED], ids=["scheduler", "clipping"])
def test_fix_all_keeps_a_noqa_optimizer_torch_and_is_idempotent(text):
    analysis = analyze(text)
    fixed = apply(text, analysis.fix_all())
    ast.parse(fixed)
    # The construction `# noqa` keeps stays a torch optimizer...
    assert "torch.optim.SGD(" in fixed
    # ...so its zero_grad()/step() stay as they are, and a second fix-all changes nothing.
    again = analyze(fixed)
    assert apply(fixed, again.fix_all()) == fixed


# -- bug 2 (fixed d20f287): incremental changes past the end of a line ----------------------------

CLAMPED = "import torch\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\nfor x in y:\n    opt.step()"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_a_change_past_the_end_of_a_line_lands_at_its_end(newline):
    """A character one past the end of a line is the end of that line (before its break), not
    the start of the next (nor between \\r and \\n); on a last line without a break, not one
    character short."""
    text = CLAMPED.replace("\n", newline)
    rpc = Rpc(env={"SWITCHEROO_DEBOUNCE_MS": "0"})
    try:
        rpc.initialize({"textDocument": {"publishDiagnostics": {"versionSupport": True}}})
        uri = "file:///known_bugs/clamp.py"
        rpc.open(uri, text)
        rpc.published(uri, 1)
        changes = [
            {"range": {"start": {"line": 0, "character": 13}, "end": {"line": 0, "character": 13}}, "text": "  # a"},
            {"range": {"start": {"line": 3, "character": 15}, "end": {"line": 3, "character": 15}}, "text": "  # b"},
            {"range": {"start": {"line": 1, "character": 99}, "end": {"line": 1, "character": 99}}, "text": "  # c"},
        ]
        rpc.change(uri, 2, changes)
        for change in changes:
            text = apply_change(text, change, "utf-16")
        assert text.split(newline)[0] == "import torch  # a"
        assert text.endswith("opt.step()  # b")
        got = summarize(rpc.published(uri, 2).body["params"]["diagnostics"])
        assert got == expected_diagnostics(text, "utf-16")
        assert sorted(code for code, *_ in got) == ["OPX101", "OPX102", "OPX203", "OPX203"]
        # The server's copy of the text is the client's: its fix-all carries those lines.
        actions = rpc.call("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": ["source.fixAll.switcheroo"]}})
        assert actions, "no fix-all: the server's text does not parse"
        fixed = apply_text_edits(text, actions[0]["edit"]["changes"][uri], "utf-16")
        assert fixed == apply(text, analyze(text).fix_all())
    finally:
        rpc.shutdown()


# -- bug 4 (fixed): a scheduler on Rprop / ASGD / Adafactor: OPX201 first, folded after fix-all ------

UNSCHEDULABLE = """\
import torch

opt = torch.optim.{cls}(model.parameters(), lr=0.01)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
for x, y in loader:
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
    sched.step()
"""


@pytest.mark.parametrize("cls", ["Rprop", "ASGD", "Adafactor"])
def test_fix_all_with_an_unfoldable_scheduler_is_idempotent_and_leaves_only_warnings(cls):
    text = UNSCHEDULABLE.format(cls=cls)
    fixed = apply(text, analyze(text).fix_all())
    again = analyze(fixed)
    assert apply(fixed, again.fix_all()) == fixed
    assert all(f.code.startswith("OPX2") for f in again.findings), [f.code for f in again.findings]
