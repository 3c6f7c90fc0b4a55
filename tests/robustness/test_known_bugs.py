"""Core bugs the robustness suite found, pinned as minimal reproducers (.notes/bugs-robustness.md).

`xfail(strict=True)`: once the core is fixed the test XPASSes and fails the run; then drop the
marker and the matching exclusion in programs.py (KNOWN_BUGS).
"""

from __future__ import annotations

import ast

import pytest

from switcheroo_lsp.analysis import analyze
from switcheroo_lsp.rewrite import apply

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
