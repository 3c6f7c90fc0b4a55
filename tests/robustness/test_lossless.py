"""Property-based: fix-all keeps every comment.

Generated programs (programs.py) with comments in every construction (one argument per line,
comment lines between, commented tuple elements) and every loop body. After fix-all the
comments are the same multiset as before, except the trailing comments of removed
`zero_grad()` statements (which the generator marks) and the TODO comments fixes add; and the
result parses. For each target: the flax-nnx rewrites (`nnx.Optimizer(model, ...)` spread
around the transform) keep every comment too.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import Counter

from hypothesis import given, note

from fuzz_settings import fuzz
from programs import ZERO_GRAD_NOTE, Program, programs
from switcheroo_lsp.engine import analyze, apply


def comments(text: str) -> list[str]:
    return [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.COMMENT]


@fuzz(200)
@given(programs(comments=True))
def test_fix_all_keeps_every_comment(program: Program):
    fix_all_keeps_every_comment(program, "optax")


@fuzz(100)
@given(programs(comments=True))
def test_fix_all_keeps_every_comment_flax_nnx(program: Program):
    fix_all_keeps_every_comment(program, "flax-nnx")


@fuzz(100)
@given(programs(comments=True))
def test_every_single_fix_keeps_every_comment(program: Program):
    every_single_fix_keeps_every_comment(program, "optax")


@fuzz(50)
@given(programs(comments=True))
def test_every_single_fix_keeps_every_comment_flax_nnx(program: Program):
    every_single_fix_keeps_every_comment(program, "flax-nnx")


def fix_all_keeps_every_comment(program: Program, target: str) -> None:
    text = program.text
    fixed = apply(text, analyze(text, target).fix_all())
    note(f"--- fixed ---\n{fixed}")
    ast.parse(fixed)
    before, after = Counter(comments(text)), Counter(comments(fixed))
    lost = before - after
    added = after - before
    assert all(ZERO_GRAD_NOTE in c for c in lost), f"comments lost: {sorted(lost)}"
    assert all(c.startswith("# TODO(switcheroo)") for c in added), f"comments made up: {sorted(added)}"
    assert sum(1 for c in before if "#" in c) > 0


def every_single_fix_keeps_every_comment(program: Program, target: str) -> None:
    text = program.text
    analysis = analyze(text, target)
    before = Counter(comments(text))
    for f in analysis.findings:
        fix = analysis.fix(f.key)
        if fix is None:
            continue
        fixed = apply(text, fix.edits)
        lost = before - Counter(comments(fixed))
        assert all(ZERO_GRAD_NOTE in c for c in lost), f"{fix.title}: comments lost: {sorted(lost)}"
