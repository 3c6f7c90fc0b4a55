"""The whole training step (analysis/gradients.py, transforms/gradients.py) through the engine:
what a step's message says about its gradients, why a TODO stays (OPX203), what the Optax
target's TODO names, the loss function's name and parameters, and that the moved statements
keep every comment. The rewrites themselves are the fixtures' (tests/fixtures/gradients/) and
their proof by running is tests/numerics/test_nnx_gradients.py."""

import ast
import re

import pytest

from switcheroo_lsp.engine import analyze, apply

LOOP = """\
import torch
import torch.nn.functional as F


def train(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for data, target in loader:
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
"""


def findings(text, target="flax-nnx"):
    return {f.code: f for f in analyze(text, target).findings}


def fixed(text, target="flax-nnx"):
    out = apply(text, analyze(text, target).fix_all())
    ast.parse(out)
    return out


def test_the_optax_target_keeps_its_todo_naming_what_a_loss_function_would_hold():
    step = findings(LOOP, "optax")["OPX203"]
    assert step.message.endswith("(e.g. grads = jax.grad(loss_fn)(params)); loss_fn(params, ...) would hold "
                                 "`output = model(data); loss = F.nll_loss(output, target)`")
    out = fixed(LOOP, "optax")
    assert ("# TODO(switcheroo): define grads here (grads = jax.grad(loss_fn)(params)); loss_fn(params, ...) "
            "would hold `output = model(data); loss = F.nll_loss(output, target)`") in out
    assert "loss.backward()" in out and "value_and_grad" not in out      # the Optax target derives nothing


def test_flax_nnx_derives_them():
    assert "OPX203" not in findings(LOOP)
    assert fixed(LOOP).endswith(
        "    for data, target in loader:\n"
        "        def loss_fn(model):\n"
        "            output = model(data)\n"
        "            loss = F.nll_loss(output, target)\n"
        "            return loss\n"
        "        loss, grads = nnx.value_and_grad(loss_fn)(model)\n"
        "        optimizer.update(model, grads)\n")


REASONS = [
    ("loss.backward()", "loss.backward(retain_graph=True)", "backward(retain_graph=True) keeps the graph"),
    ("loss.backward()", "loss.backward(create_graph=True)",
     "backward(create_graph=True) builds a graph of the gradients"),
    ("loss.backward()", "loss.backward(torch.ones_like(loss))", "passes an explicit gradient"),
    ("        optimizer.step()", "        model.fc.weight.grad.zero_()\n        optimizer.step()",
     "reads or changes .grad"),
    ("        loss.backward()", "        if loss > 0:\n            loss.backward()", "backward() runs under a condition"),
    ("        output = model(data)", "        output = model(data)\n        torch.autograd.grad(output.sum(), data)",
     "torch.autograd.grad() changes gradients"),
    # zeroed before the backward either way: derived
    ("        optimizer.zero_grad()\n        output = model(data)",
     "        output = model(data)\n        optimizer.zero_grad()", None),
    ("        loss = F.nll_loss(output, target)", "        loss = F.nll_loss(output.detach(), target)",
     "does not run model in the statements since the previous update"),
]


@pytest.mark.parametrize("old,new,reason", REASONS, ids=[r[2] or "derived" for r in REASONS])
def test_what_stays_a_todo_says_why(old, new, reason):
    text = LOOP.replace(old, new)
    found = findings(text)
    if reason is None:
        assert "OPX203" not in found
        return
    message = found["OPX203"].message
    assert reason in message and "; not derived: " in message, message
    assert "; not derived: " + message.split("; not derived: ")[1] in fixed(text)   # the TODO says it too


def test_one_loss_for_two_optimizers_and_a_second_backward():
    text = LOOP.replace("    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n",
                        "    optimizer = torch.optim.SGD(model.body.parameters(), lr=0.1)\n"
                        "    head_opt = torch.optim.SGD(model.head.parameters(), lr=0.1)\n")
    text = text.replace("        optimizer.step()\n", "        optimizer.step()\n        head_opt.step()\n")
    messages = [f.message for f in analyze(text, "flax-nnx").findings if f.code == "OPX203"]
    assert any("also feeds head_opt.step(): one loss for two optimizers" in m for m in messages), messages
    assert any("no backward() between the previous update (optimizer.step()) and this one" in m for m in messages)


def test_the_loss_function_is_named_not_to_clash():
    text = LOOP.replace("loss = F.nll_loss(output, target)", "loss = loss_fn(output, target)").replace(
        "def train(model, loader):", "def train(model, loader, loss_fn):")
    out = fixed(text)
    assert "def model_loss_fn(model):" in out and "nnx.value_and_grad(model_loss_fn)(model)" in out


def test_values_read_later_are_aux_and_loop_carried_state_a_parameter():
    text = """\
import torch


def train(model, loader, criterion):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    hidden = model.init_hidden()
    for x, y in loader:
        opt.zero_grad()
        hidden = hidden.detach()
        out, hidden = model(x, hidden)
        loss = criterion(out, y)
        loss.backward()
        opt.step()
        print(out.mean().item())
    return hidden
"""
    out = fixed(text)
    assert "        def loss_fn(model, hidden):\n" in out
    assert "            return loss, (out, hidden)\n" in out
    assert "        (loss, (out, hidden)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, hidden)\n" in out
    assert out.index("hidden = hidden.detach()") < out.index("def loss_fn")      # not part of the loss


def test_every_comment_travels_with_its_statement():
    text = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def step(self, batch, criterion):
        self.opt.zero_grad()
        # the forward pass
        logits = self.model(
            batch["x"],  # inputs
            mask=batch["mask"],  # which tokens count
        )
        loss = criterion(logits, batch["y"])  # per token
        loss.backward()  # gradients
        self.opt.step()  # the update
        return loss.item()
"""
    out = fixed(text)
    comments = lambda t: sorted(re.findall(r"#[^\n]*", t))  # noqa: E731
    assert comments(out) == comments(text)
    assert ("        def loss_fn(model):\n"
            "            logits = model(\n"
            "                batch[\"x\"],  # inputs\n"
            "                mask=batch[\"mask\"],  # which tokens count\n"
            "            )\n"
            "            loss = criterion(logits, batch[\"y\"])  # per token\n"
            "            return loss\n") in out
    assert "self.opt.update(self.model, grads)  # the update" in out


def test_statements_the_loss_does_not_need_stay_where_they_were():
    text = LOOP.replace("        loss = F.nll_loss(output, target)\n",
                        "        acc = (output.argmax(1) == target).float().mean()\n"
                        "        seen = len(data)\n"
                        "        loss = F.nll_loss(output, target)\n")
    out = fixed(text)
    # `seen` reads nothing of the loss's: it stays before; `acc` reads `output`: after the call
    assert out.index("seen = len(data)") < out.index("def loss_fn") < out.index("nnx.value_and_grad")
    assert out.index("nnx.value_and_grad") < out.index("acc = (output.argmax(1)")


def test_the_quick_fix_of_the_step_alone_writes_the_loss_function():
    analysis = analyze(LOOP, "flax-nnx")
    step = next(f for f in analysis.findings if f.code == "OPX102")
    out = apply(LOOP, analysis.fix(step.key).edits)
    ast.parse(out)
    assert "def loss_fn(model):" in out and "optimizer.update(model, grads)" in out and "backward" not in out
