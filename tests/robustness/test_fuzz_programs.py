"""Property-based: generated torch training programs (programs.py) through the core's fixes.

For every drawn program: each single fix and each "ignore" fix yields code that parses; fix-all
yields code that parses, keeps the file's line breaks, is idempotent, and checking its result
leaves only OPX2xx (unless a construction carries `# noqa`, which keeps that optimizer torch).
Both targets: optax and flax-nnx.
"""

from __future__ import annotations

import ast
import re

from hypothesis import given, note

from fuzz_settings import fuzz
from programs import Program, programs
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply


def parse_or_fail(text: str, what: str, program: Program) -> None:
    try:
        ast.parse(text)
    except SyntaxError as e:
        raise AssertionError(f"{what} does not parse: {e}\n--- result ---\n{text}") from None


def line_breaks(text: str) -> set[str]:
    return set(re.findall(r"\r\n|\r|\n", text))


@fuzz(300)
@given(programs())
def test_every_single_fix_and_ignore_parses(program: Program):
    single_fixes_and_ignores_parse(program, "optax")


@fuzz(100)
@given(programs())
def test_every_single_fix_and_ignore_parses_flax_nnx(program: Program):
    single_fixes_and_ignores_parse(program, "flax-nnx")


@fuzz(300)
@given(programs())
def test_fix_all_parses_is_idempotent_and_leaves_only_warnings(program: Program):
    fix_all_parses_is_idempotent_and_leaves_only_warnings(program, "optax")


@fuzz(100)
@given(programs())
def test_fix_all_parses_is_idempotent_and_leaves_only_warnings_flax_nnx(program: Program):
    fix_all_parses_is_idempotent_and_leaves_only_warnings(program, "flax-nnx")


def single_fixes_and_ignores_parse(program: Program, target: str) -> None:
    text = program.text
    analysis = analyze(text, target)
    assert analysis.syntax_error is None
    # the generator always writes an optimizer and its step (`# noqa` on the construction may
    # keep everything about it quiet)
    assert analysis.findings or program.noqa
    for f in analysis.findings:
        fix = analysis.fix(f.key)
        if fix is not None:
            fixed = apply(text, fix.edits)
            note(f"fix {f.code} at {f.span.start}: {fix.title}")
            parse_or_fail(fixed, f"the fix of {f.code} at {f.span.start} ({fix.title!r})", program)
            assert line_breaks(fixed) <= line_breaks(text), "a fix introduced another kind of line break"
        ignore = analysis.ignore_fix(f.key)
        if ignore is not None:
            ignored = apply(text, ignore.edits)
            parse_or_fail(ignored, f"ignoring {f.code} at {f.span.start}", program)
            after = analyze(ignored, target)
            assert not any(g.code == f.code and g.span == f.span for g in after.findings), \
                f"'{ignore.title}' did not silence {f.code} at {f.span.start}"


def fix_all_parses_is_idempotent_and_leaves_only_warnings(program: Program, target: str) -> None:
    text = program.text
    analysis = analyze(text, target)
    edits = analysis.fix_all()
    fixed = apply(text, edits)
    parse_or_fail(fixed, "fix-all", program)
    assert line_breaks(fixed) <= line_breaks(text), "fix-all introduced another kind of line break"
    again = analyze(fixed, target)
    assert again.syntax_error is None
    assert apply(fixed, again.fix_all()) == fixed, "fix-all is not idempotent"
    left = sorted({f.code for f in again.findings})
    note(f"left after fix-all: {left}")
    if not program.noqa:
        assert all(code.startswith("OPX2") for code in left), \
            f"fix-all left {left}\n--- result ---\n{fixed}"
