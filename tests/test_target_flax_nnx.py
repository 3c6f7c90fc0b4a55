"""The flax-nnx target through the engine: what its messages, fix titles and hovers say, and
where it sends a person instead (OPX202). The rewrites themselves are the fixtures'
(NAME.nnx.expected.py) and the numerics' (tests/numerics/test_nnx_optimizers.py)."""

import ast

from switcheroo_lsp.engine import Pos, analyze, apply
from switcheroo_lsp.frontends.hover import hover

STEPPED = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step(self, batch):
        self.optimizer.zero_grad()
        loss = self.model(batch).sum()
        loss.backward()
        self.optimizer.step()
"""


def by_code(analysis):
    return {f.code: f for f in analysis.findings}


def test_the_step_gets_its_gradients_from_a_loss_function_of_self_model():
    analysis = analyze(STEPPED, "flax-nnx")
    found = by_code(analysis)
    assert "OPX203" not in found       # nothing left to define: grads come from the loss function
    assert found["OPX102"].message.startswith("self.optimizer.step() → self.optimizer.update(self.model, grads)")
    assert found["OPX102"].message.endswith(
        "; loss.backward() → loss, grads = nnx.value_and_grad(loss_fn)(self.model), loss_fn holding "
        "`loss = self.model(batch).sum()`")
    fix = analysis.fix(found["OPX102"].key)
    assert fix.title == "Convert self.optimizer.step() to self.optimizer.update(self.model, grads)"
    markdown, _ = hover(analysis, Pos(12, 12))
    assert "nnx.value_and_grad(loss_fn)(self.model)" in markdown and "def loss_fn(model):" in markdown
    assert "**The Flax NNX pattern.**" in markdown and "The Optax pattern" not in markdown
    assert "self.optimizer.update(self.model, grads)" in markdown      # the rewrite block
    construct = analysis.fix(found["OPX101"].key)
    assert construct.title == "Convert to nnx.Optimizer(optax.adam)"
    fixed = apply(STEPPED, analysis.fix_all())
    ast.parse(fixed)
    assert ("        self.optimizer = nnx.Optimizer(\n            model,\n            optax.adam(learning_rate=1e-3),\n"
            "            wrt=nnx.Param,\n        )\n") in fixed      # one line would pass 88 characters
    assert ("        def loss_fn(model):\n            loss = model(batch).sum()\n            return loss\n"
            "        loss, grads = nnx.value_and_grad(loss_fn)(self.model)\n"
            "        self.optimizer.update(self.model, grads)\n") in fixed
    assert "opt_state" not in fixed and "init(" not in fixed and "backward" not in fixed


def test_step_without_a_backward_names_nnx_value_and_grad_and_why():
    text = STEPPED.replace("        loss.backward()\n", "")
    analysis = analyze(text, "flax-nnx")
    found = by_code(analysis)
    assert found["OPX203"].message == (
        "self.optimizer.step() → the rewrite needs grads, not defined in train_step(): define them before the "
        "update (e.g. loss, grads = nnx.value_and_grad(loss_fn)(self.model)); not derived: no backward() precedes "
        "it in train_step()")
    markdown, _ = hover(analysis, Pos(11, 12))
    assert "nnx.value_and_grad(loss_fn)(self.model)" in markdown


def test_the_optax_target_is_unchanged_by_default():
    default, optax = analyze(STEPPED), analyze(STEPPED, "optax")
    assert [f.message for f in default.findings] == [f.message for f in optax.findings]
    assert by_code(default)["OPX102"].message.startswith(
        "self.optimizer.step() → updates, self.opt_state = self.optimizer.update(grads, self.opt_state, self.params)")


def test_what_has_no_nnx_form_is_opx202_saying_why():
    text = """\
import torch
w = torch.zeros(3, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, 10)
for x in data:
    opt.zero_grad()
    torch.nn.utils.clip_grad_norm_([w], 1.0)
    opt.step()
    sched.step()
"""
    analysis = analyze(text, "flax-nnx")
    first, *flow = analysis.findings
    assert (first.code, first.message) == (
        "OPX202", "torch.optim.SGD: no Flax NNX form: nnx.Optimizer updates the nnx.Param variables of one module, "
        "and its parameters are a bare list of tensors; hold these parameters in an nnx.Module, or use the optax target")
    # Its whole flow stays torch (schedule, clipping, zero_grad, step): reported, without a fix.
    assert [f.message.split(" stays torch")[0] for f in flow] == [
        "torch.optim.lr_scheduler.StepLR", "opt.zero_grad()", "torch.nn.utils.clip_grad_norm_", "opt.step()",
        "sched.step()"]
    assert {f.code for f in flow} == {"OPX202"}
    # Each says first what blocks it, and shows no rewrite that will not happen.
    assert all(not f.fixable and " → " not in f.message and f.message.endswith(
        " stays torch: its construction (line 3) has no Flax NNX form: its parameters are a bare list of tensors")
        for f in flow)
    assert apply(text, analysis.fix_all()) == text
    # No OPX203 in a flow left as torch: the names a rewrite would need do not matter there.
    assert "OPX203" not in {f.code for f in flow}


def test_groups_that_cannot_be_read_say_so():
    text = """\
import torch
opt = torch.optim.Adam([{**base}, {"params": head.parameters()}], lr=1e-3)
opt.step()
"""
    [construction, step] = analyze(text, "flax-nnx").findings
    assert construction.code == "OPX202" and "a group's keys are not plain strings" in construction.message
    assert step.message.endswith("has no Flax NNX form: its parameter groups cannot be read: a group's keys "
                                 "are not plain strings (** or computed keys)")


def test_manual_uses_speak_of_nnx_optimizer():
    text = """\
import torch
opt = torch.optim.LBFGS(model.parameters())
opt.step(closure)
state = opt.state_dict()
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
sched.step(val_loss)
"""
    messages = {f.message.split(":")[0]: f.message for f in analyze(text, "flax-nnx").findings if f.code == "OPX202"}
    closure = next(m for k, m in messages.items() if k.startswith("opt.step(closure)"))
    assert "opt.update(model, grads, value_fn=loss_fn)" in closure and "nnx.State" in closure
    assert "nnx.state(opt)" in messages["opt.state_dict()"]
    plateau = messages["torch.optim.lr_scheduler.ReduceLROnPlateau"]
    assert "nnx.Optimizer applies its updates itself" in plateau


def test_an_optimizer_already_in_optax_is_stepped_the_functional_way():
    text = """\
import optax
import torch
opt = optax.sgd(0.1)
opt_state = opt.init(params)
opt.step()
"""
    (step,) = [f for f in analyze(text, "flax-nnx").findings if f.code == "OPX102"]
    assert step.message.startswith("opt.step() → updates, opt_state = opt.update(grads, opt_state, params)")


TRAIN_BEFORE_BUILD = """\
import torch


def train(model, loader, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()


def main(model, loader):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train(model, loader, optimizer)
"""

TWO_MODULES = """\
import torch


def fit(gen, disc, loader):
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4)
    for x in loader:
        opt_d.zero_grad()
        loss_d = disc(x).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = -disc(gen(x)).mean()
        loss_g.backward()
        opt_g.step()
"""


EVERY_OTHER = """\
import torch


def main(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for i, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        if i % 2 == 0:
            optimizer.step()
"""


def one_at_a_time(text: str, target: str) -> str:
    """A person taking the quick fix of the first finding left, again and again."""
    for _ in range(20):
        analysis = analyze(text, target)
        left = sorted((f for f in analysis.findings if f.code in ("OPX101", "OPX102", "OPX103")),
                      key=lambda f: f.span.start)
        if not left:
            return text
        text = apply(text, analysis.fix(left[0].key).edits)
    raise AssertionError("the quick fixes never end")


def test_fixing_one_finding_at_a_time_ends_where_fix_all_does():
    # The zero_grad() before its step (train() above the construction): removed alone, torch would
    # add up the step's gradients, and the step's own fix would then read the loop as never zeroed
    # (optax.trace). Its quick fix converts the step with it. And a step of an optimizer already
    # fixed to nnx.Optimizer(gen, ...) still derives its gradients over gen.
    # (With the optax target, a one-module optimizer fixed before its step loses which module the
    # TODO's loss function would take: EVERY_OTHER's TODO then names the loss's statements in
    # other words. Only comment text; left for now.)
    for text, targets in ((TRAIN_BEFORE_BUILD, ("flax-nnx", "optax")), (TWO_MODULES, ("flax-nnx", "optax")),
                          (EVERY_OTHER, ("flax-nnx",))):
        for target in targets:
            fixed = apply(text, analyze(text, target).fix_all())
            assert one_at_a_time(text, target) == fixed, (target, text)
    fixed = one_at_a_time(TRAIN_BEFORE_BUILD, "flax-nnx")
    assert "optax.trace" not in fixed and "nnx.value_and_grad(loss_fn)(model)" in fixed
    zero_grad = by_code(analyze(TRAIN_BEFORE_BUILD, "flax-nnx"))["OPX103"]
    assert analyze(TRAIN_BEFORE_BUILD, "flax-nnx").fix(zero_grad.key).title == (
        "Remove zero_grad(): JAX gradients are not accumulated; Convert optimizer.step() to "
        "optimizer.update(model, grads)")
    assert "opt_d.update(disc, disc_grads)" in one_at_a_time(TWO_MODULES, "flax-nnx")
    # Zeroed every iteration, stepped every other: the odd iterations' gradients are dropped, not
    # accumulated (no MultiSteps), whichever finding was fixed first.
    assert "MultiSteps" not in one_at_a_time(EVERY_OTHER, "flax-nnx")
