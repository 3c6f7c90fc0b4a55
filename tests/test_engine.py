"""The engine's API for front ends that need more than findings and edits (verify)."""

from switcheroo_lsp.engine import analyze

SOURCE = """\
import torch

model = torch.nn.Linear(3, 1)
opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
keep = torch.optim.SGD(model.parameters(), lr=0.1)  # noqa
for x in range(10):
    opt.zero_grad()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
"""


def test_construction_rewrites_fold_what_fix_all_folds():
    rewrites = analyze(SOURCE).construction_rewrites()
    assert [r.torch for r in rewrites] == ["torch.optim.AdamW"]     # the noqa-kept SGD stays torch
    r = rewrites[0]
    assert r.call == "torch.optim.AdamW(model.parameters(), lr=3e-4)"
    assert (r.span.start.line, r.span.start.col) == (3, 6)
    assert r.clip == ("optax.clip_by_global_norm(1.0)",)
    assert r.schedule is not None and "jnp.cos" in r.schedule
    assert r.optax.startswith("optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(learning_rate=lambda count:")
    assert r.exact
