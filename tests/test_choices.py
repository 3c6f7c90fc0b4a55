"""Classes and names chosen at run time (analysis/choices.py), through the engine: what the
candidates are and where they come from, what the hover shows, and the "Convert as ..." actions
offered when not every candidate has a rewrite."""

from __future__ import annotations

import ast

from switcheroo_lsp.engine import Pos, analyze, apply
from switcheroo_lsp.frontends.hover import hover

GETATTR = """import argparse

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

BRANCHES = """import torch
import bitsandbytes as bnb


def train(model, loader, args):
    optimizer_class = torch.optim.AdamW
    if args.use_8bit_adam:
        optimizer_class = bnb.optim.AdamW8bit
    elif args.lion:
        optimizer_class = {lion}
    optimizer = optimizer_class(model.parameters(), lr=1e-4)
    for x in loader:
        optimizer.zero_grad()
        model(x).backward()
        optimizer.step()
"""


def construction(analysis):
    return next(f for f in analysis.findings if f.kind in ("construct", "manual", "unmapped") and f.span.start.line > 5)


def test_a_choice_whose_candidates_all_convert_keeps_the_authors_conditions():
    text = BRANCHES.format(lion="bnb.optim.Lion")
    analysis = analyze(text)
    f = construction(analysis)
    assert f.fixable and "one of" in f.message
    fixed = apply(text, analysis.fix_all())
    ast.parse(fixed)
    # The default assignment, then the if/elif that overrides it: the same order in Optax.
    assert ("(optax.adamw(learning_rate=1e-4, weight_decay=0.01) if args.use_8bit_adam else "
            "(optax.lion(learning_rate=1e-4, weight_decay=0) if args.lion else "
            "optax.adamw(learning_rate=1e-4, weight_decay=0.01)))") in fixed
    assert "optimizer.step()" not in fixed and "optimizer.zero_grad()" not in fixed


def test_candidates_say_when_each_is_chosen_and_what_it_becomes():
    text = BRANCHES.format(lion="bnb.optim.Lion")
    analysis = analyze(text)
    rows = analysis.candidates(construction(analysis).key)
    assert [(r["key"], r["condition"]) for r in rows] == [
        ("bitsandbytes.optim.AdamW8bit", "args.use_8bit_adam"),
        ("bitsandbytes.optim.Lion", "not (args.use_8bit_adam) and args.lion"),
        ("AdamW", "not (args.use_8bit_adam) and not (args.lion)"),
    ]
    assert all(r["rewrite"] for r in rows)


def test_a_candidate_without_a_rewrite_keeps_the_flow_torch():
    text = BRANCHES.format(lion="bnb.optim.LAMB")     # bitsandbytes' LAMB has no row
    analysis = analyze(text)
    f = construction(analysis)
    assert f.code == "OPX202" and not f.fixable
    assert "bitsandbytes.optim.LAMB" in f.message and "no rewrite" in f.message
    fixed = apply(text, analysis.fix_all())
    assert fixed == text, "nothing of the flow converts"
    titles = [fix.title for fix in analysis.alternatives(f.key)]
    assert titles == ["Convert as bitsandbytes.optim.AdamW8bit (approximate)", "Convert as torch.optim.AdamW"]


def test_a_name_from_argparse_offers_its_default():
    analysis = analyze(GETATTR)
    f = construction(analysis)
    assert f.code == "OPX202" and "args.optimizer" in f.message
    [fix] = analysis.alternatives(f.key)
    assert fix.title == "Convert as torch.optim.AdamW, the default (argparse --optimizer)"
    fixed = apply(GETATTR, fix.edits)
    ast.parse(fixed)
    assert "optimizer = optax.adamw(learning_rate=0.01, weight_decay=0.01)" in fixed
    assert "optimizer.step()" not in fixed and "optimizer.zero_grad()" not in fixed   # the whole flow


def test_the_hover_lists_each_candidate():
    analysis = analyze(GETATTR)
    f = construction(analysis)
    markdown, _ = hover(analysis, Pos(f.span.start.line, f.span.start.col + 1))
    assert "Chosen at run time" in markdown
    assert "when `args.optimizer == 'AdamW'`: torch.optim.AdamW, the default (argparse --optimizer) → " \
           "`optax.adamw(learning_rate=0.01, weight_decay=0.01)`" in markdown


def test_argparse_choices_bound_the_candidates():
    text = GETATTR.replace('default="AdamW")', 'default="AdamW", choices=["AdamW", "SGD"])')
    analysis = analyze(text)
    f = construction(analysis)
    assert f.code == "OPX101" and f.fixable
    fixed = apply(text, analysis.fix_all())
    assert ("optimizer = (optax.adamw(learning_rate=0.01, weight_decay=0.01) if args.optimizer == 'AdamW' "
            "else optax.sgd(learning_rate=0.01))") in fixed


def test_a_condition_rebound_before_the_call_is_not_trusted():
    text = BRANCHES.format(lion="bnb.optim.Lion").replace(
        "    optimizer = optimizer_class(", "    args.lion = False\n    optimizer = optimizer_class(")
    f = construction(analyze(text))
    assert f.code == "OPX202" and "rebound" in f.message


def test_a_single_class_through_a_variable_is_a_plain_construction():
    text = ("import torch\n\n\ndef f(model):\n    cls = torch.optim.SGD\n    opt = cls(model.parameters(), lr=0.1)\n"
            "    return opt\n\n\nopt = f(model)\n")
    f = next(f for f in analyze(text).findings if f.kind == "construct")
    assert f.code == "OPX101" and f.message.startswith("torch.optim.SGD → optax.sgd(")


def test_noqa_on_one_candidate_keeps_the_whole_choice_torch():
    """`# noqa` on one branch's construction keeps it torch, and with it what it shares with the
    other branch's optimizer (its step, its param_groups) and so that optimizer too: one flow."""
    text = ("import torch\n\nif kind == 'adamw':\n    opt = torch.optim.AdamW(params, lr=0.1)  # noqa\n"
            "else:\n    opt = torch.optim.SGD(params, lr=0.1)\n"
            "for t in range(3):\n    opt.zero_grad()\n    loss(t).backward()\n    opt.step()\n"
            "    for g in opt.param_groups:\n        g['lr'] = 0.1 / (t + 1)\n")
    assert apply(text, analyze(text).fix_all()) == text
    converted = apply(text.replace("  # noqa", ""), analyze(text.replace("  # noqa", "")).fix_all())
    assert "torch.optim" not in converted and 'opt_state.hyperparams["learning_rate"]' in converted
