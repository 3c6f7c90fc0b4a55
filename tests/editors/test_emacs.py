"""End to end in real Emacs (28, batch) with eglot (1.9) on copies of the bundled examples.

tests/editors/emacs/e2e.el drives the editor: it visits the files in python-mode, lets
eglot-ensure connect the server, waits for the diagnostics in flymake, requests hovers, runs
`eglot-code-actions' as the interactive command does (the prompt answered with its default,
the preferred action), saves and reports everything as JSON. Each module fixture below is one
Emacs session; the tests assert on its report, on the file Emacs saved, and on what
`switcheroo-lsp check` / `fix` say about the same text. What this shares with test_neovim.py
(the copies, the command line's view, running the editor, the Session) is in e2e_support.py.

Needs `emacs` with eglot (scripts/install-editors: emacs-nox elpa-eglot). Missing, the tests
skip, except under CI=true where they fail. On failure the test prints eglot's events and
stderr buffers and *Messages*.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest

import e2e_support
from e2e_support import (ALL, CONVERTED, GAN_OPT_D, GAN_OPT_G, SERVER, UNICODE_LINE, Editor, Session, as_lsp,
                         changed_lines, cli_fixed, copy_examples, run_editor, unavailable, utf16_len)

pytestmark = pytest.mark.editor

SCRIPT = Path(__file__).resolve().parent / "emacs" / "e2e.el"
WAIT_S = 20                # each of the script's waits; the whole session is bounded by EDITOR_TIMEOUT_S
SEVERITY = {"eglot-error": 1, "eglot-warning": 2, "eglot-note": 3}
EMACS = Editor(name="Emacs", label="emacs", log_tail=400, log_about="tail: eglot events/stderr, *Messages*",
               no_log="(no log)")
position_of = partial(e2e_support.position_of, columns="characters")     # e2e.el takes character columns


def emacs_binary() -> str:
    found = os.environ.get("SWITCHEROO_EMACS") or shutil.which("emacs")
    if not found:
        unavailable("emacs is not installed")
    probe = ("(progn (require 'package) (package-activate-all)"
             " (princ (if (locate-library \"eglot\") \"eglot\" \"none\")))")
    try:
        proc = subprocess.run([found, "--batch", "--eval", probe], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        unavailable(f"{found} --batch failed: {e}")
    if proc.stdout.strip() != "eglot":
        unavailable(f"eglot is not installed for {found} (apt-get install elpa-eglot)")
    return found


@pytest.fixture(scope="module")
def fixed_by_cli(tmp_path_factory) -> dict[str, str]:
    """What `switcheroo-lsp fix` makes of each example."""
    return cli_fixed(tmp_path_factory.mktemp("cli-fix"))


def as_seen(diag: dict) -> tuple:
    return (diag["code"], diag["line"], diag["col"], diag["end_line"], diag["end_col"])


def run_emacs(tmp: Path, names: list[str], plan) -> Session:
    """Copies the examples into tmp, runs e2e.el over them, and returns the session."""
    emacs = emacs_binary()
    copies = copy_examples(tmp, names, plan)
    home = tmp / "home"
    home.mkdir()
    result_path, log_path, spec_path = tmp / "result.json", tmp / "emacs.log", tmp / "spec.json"
    spec_path.write_text(json.dumps({
        "cmd": SERVER, "result": str(result_path), "log": str(log_path), "timeout_s": WAIT_S, "files": copies.specs}))
    env = {**os.environ, "HOME": str(home), "SWITCHEROO_DEBOUNCE_MS": "0", "SWITCHEROO_E2E_SPEC": str(spec_path)}
    cmd = [emacs, "--batch", "-l", str(SCRIPT)]
    return run_editor(EMACS, cmd, env, copies, result_path, log_path)


# -- one quick fix, as M-x eglot-code-actions RET does it, in a copy of gan.py ---------------------
@pytest.fixture(scope="module")
def quickfix(tmp_path_factory) -> Session:
    def plan(name, text):
        if name == "gan_unicode.py":
            line, col = position_of(text, "torch.optim.SGD(")
        else:
            line, col = position_of(text, "optim.Adam(gen.parameters()")
        return {"hovers": [{"line": line, "col": col + 6}],   # inside the call
                "action": {"kind": "quickfix", "line": line, "col": col}}
    return run_emacs(tmp_path_factory.mktemp("emacs-quickfix"), ["gan.py", "gan_unicode.py"], plan)


def test_diagnostics_match_the_findings(quickfix):
    print(quickfix.report())
    seen = quickfix.by_name["gan.py"]["diagnostics"]
    expected = quickfix.findings("before")["gan.py"]
    assert sorted(as_seen(d) for d in seen) == sorted(as_lsp(f) for f in expected)
    codes = [d["code"] for d in seen]
    assert codes.count("OPX101") == 2 and codes.count("OPX102") == 2 and codes.count("OPX103") == 2
    assert {d["source"] for d in seen} == {"switcheroo"}
    by_key = {(f["code"], f["line"] - 1, f["column"] - 1): f for f in expected}
    text = quickfix.originals["gan.py"].splitlines()
    for d in seen:
        f = by_key[(d["code"], d["line"], d["col"])]
        assert SEVERITY[d["type"]] == {"error": 1, "warning": 2, "information": 3, "hint": 3}[f["severity"]]
        assert d["text"] == f"switcheroo [{d['code']}]: {f['message']}"
        covered = text[d["line"]][d["col"]:d["end_col"]]
        if d["code"] == "OPX101":
            assert covered.startswith("optim.Adam(") and covered.endswith(")"), covered
        elif d["code"] == "OPX102":
            assert covered in ("opt_g.step()", "opt_d.step()"), covered
        elif d["code"] == "OPX103":
            assert covered in ("opt_g.zero_grad()", "opt_d.zero_grad()"), covered
    opt_g_line = text.index(GAN_OPT_G)
    assert ("OPX101", opt_g_line, 8, opt_g_line, len(GAN_OPT_G)) in {as_seen(d) for d in seen}


def test_hover_explains_the_optax_pattern(quickfix):
    print(quickfix.report())
    [hover] = quickfix.by_name["gan.py"]["hovers"]
    assert hover["kind"] == "markdown", hover
    value = hover["value"]
    assert "optax.adam(learning_rate=2e-4, b1=0.5, b2=0.999)" in value
    for word in ("optax", ".init(", ".update(", "apply_updates"):
        assert word in value, f"{word!r} not in hover:\n{value}"
    line = quickfix.originals["gan.py"].splitlines().index(GAN_OPT_G)
    assert hover["range"]["start"] == {"line": line, "character": 8}


def test_quickfix_converts_the_construction(quickfix):
    print(quickfix.report())
    gan = quickfix.by_name["gan.py"]
    # eglot offers the actions with the preferred one as the default; RET takes it.
    assert gan["offered"][0] == "Convert to optax.adam", gan["offered"]
    assert "(default Convert to optax.adam)" in gan["prompt"]
    assert gan["chosen"] == "Convert to optax.adam"
    assert gan["saved"] is True

    before = quickfix.originals["gan.py"]
    saved = quickfix.files["gan.py"].read_text()
    assert saved == gan["text_after"] == gan["text_after_edit"]
    assert ("opt_g = optax.adam(learning_rate=2e-4, b1=0.5, b2=0.999)\n"
            "# TODO(switcheroo): define gen_params here (the parameter pytree to optimize)\n"
            "opt_g_state = opt_g.init(gen_params)\n") in saved
    assert saved.count("import optax\n") == 1
    removed, added = changed_lines(before, saved)
    assert removed == [GAN_OPT_G]
    assert sorted(added) == sorted(["import optax", "opt_g = optax.adam(learning_rate=2e-4, b1=0.5, b2=0.999)",
                                    "# TODO(switcheroo): define gen_params here (the parameter pytree to optimize)",
                                    "opt_g_state = opt_g.init(gen_params)"])
    assert GAN_OPT_D in saved
    ast.parse(saved)


def test_diagnostics_follow_the_edit(quickfix):
    print(quickfix.report())
    after = quickfix.by_name["gan.py"]["diagnostics_after"]
    expected = quickfix.findings()["gan.py"]
    assert sorted(as_seen(d) for d in after) == sorted(as_lsp(f) for f in expected)
    assert [d["code"] for d in after].count("OPX101") == 1


def test_non_ascii_and_crlf(quickfix):
    """Positions with é (1 UTF-16 unit, 2 bytes) and 🎲 (2 units, 4 bytes) before them; CRLF kept."""
    print(quickfix.report())
    got = quickfix.by_name["gan_unicode.py"]
    lines = quickfix.originals["gan_unicode.py"].splitlines()
    seen = sorted(as_seen(d) for d in got["diagnostics"])     # Emacs columns are characters
    assert seen == sorted(as_lsp(f) for f in quickfix.findings("before")["gan_unicode.py"])
    row = lines.index(UNICODE_LINE)
    start = UNICODE_LINE.index("torch.optim.SGD(")
    assert ("OPX101", row, start, row, len(UNICODE_LINE)) in seen
    [hover] = got["hovers"]
    assert "optax.sgd(learning_rate=0.1)" in hover["value"]
    assert hover["range"] == {"start": {"line": row, "character": utf16_len(UNICODE_LINE[:start])},
                              "end": {"line": row, "character": utf16_len(UNICODE_LINE)}}
    assert got["chosen"] == "Convert to optax.sgd"
    raw = quickfix.files["gan_unicode.py"].read_bytes()
    assert raw.count(b"\n") == raw.count(b"\r\n"), "line endings mixed after the edit"
    saved = raw.decode("utf-8").replace("\r\n", "\n")
    ast.parse(saved)
    removed, added = changed_lines(quickfix.originals["gan_unicode.py"], saved)
    assert removed == [UNICODE_LINE]
    converted, todo, init = [a for a in added if a != "import optax"]
    assert converted.startswith('x = "🎲"; opt_x = optax.sgd(learning_rate=0.1)')
    assert todo.startswith("# TODO(switcheroo): define gén_params") and init == "opt_x_state = opt_x.init(gén_params)"


# -- fix-all on every example, in one session ------------------------------------------------------
@pytest.fixture(scope="module")
def fix_all(tmp_path_factory) -> Session:
    def plan(name, text):
        hovers = []
        if name == "rl.py":
            line, col = position_of(text, "env.step(")
            hovers.append({"line": line, "col": col + 4})
        return {"hovers": hovers, "action": {"kind": "source.fixAll.switcheroo", "line": 1, "col": 0}}
    return run_emacs(tmp_path_factory.mktemp("emacs-fixall"), ALL, plan)


@pytest.mark.parametrize("name", ALL)
def test_fix_all_leaves_no_convertible_finding(fix_all, fixed_by_cli, name):
    print(fix_all.report())
    got = fix_all.by_name[name]
    assert got["prompt"] is None            # one action of that kind: applied without a prompt
    assert any(d["code"] in CONVERTED for d in got["diagnostics"])
    assert got["saved"] is True
    saved = fix_all.files[name].read_text()
    assert saved == got["text_after"]
    ast.parse(saved)
    assert saved.count("import optax\n") == 1
    left = {f["code"] for f in fix_all.findings().get(name, [])}
    assert not left & CONVERTED, left
    assert not {d["code"] for d in got["diagnostics_after"]} & CONVERTED
    # eglot applied the server's edit exactly: the same text as the command line's fix.
    assert saved == fixed_by_cli[name]


def test_precision_on_other_step_calls(fix_all):
    print(fix_all.report())
    rl = fix_all.by_name["rl.py"]
    line = fix_all.originals["rl.py"].splitlines().index(
        "        state, reward, terminated, truncated, _ = env.step(action.item())")
    assert [d for d in rl["diagnostics"] if d["line"] == line] == []      # the environment's step
    assert rl["hovers"][0]["value"] is None
    assert {d["code"] for d in rl["diagnostics"]} >= CONVERTED
    # A scheduler's step is not an optimizer step (whatever the server makes of schedulers).
    mnist = fix_all.by_name["mnist.py"]
    line = fix_all.originals["mnist.py"].splitlines().index("        scheduler.step()")
    assert not [d for d in mnist["diagnostics"] if d["line"] == line and d["code"] in CONVERTED]



# -- quick fixes one at a time, as a user goes through the findings, in one session ---------------
@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory) -> Session:
    return run_emacs(tmp_path_factory.mktemp("emacs-one-by-one"), ALL, lambda name, text: {"sweep": sorted(CONVERTED)})


@pytest.mark.parametrize("name", ALL)
def test_quick_fixes_one_by_one(one_by_one, fixed_by_cli, name):
    print(one_by_one.report())
    got = one_by_one.by_name[name]
    before = {d["code"] for d in got["diagnostics"]} & CONVERTED
    assert {step["code"] for step in got["sweep"]} == before
    # eglot's default (RET) is the preferred action: never "Ignore ..."
    assert not [step for step in got["sweep"] if step["title"].startswith("Ignore")], got["sweep"]
    assert got["saved"] is True
    saved = one_by_one.files[name].read_text()
    assert saved == got["text_after"]
    ast.parse(saved)
    assert saved.count("import optax\n") == 1
    assert not {d["code"] for d in got["diagnostics_after"]} & CONVERTED
    assert not {f["code"] for f in one_by_one.findings().get(name, [])} & CONVERTED
    if "lr_scheduler" not in one_by_one.originals[name] and "clip_grad" not in one_by_one.originals[name]:
        # Each fix uses the names fix-all would (spec: the same names in init, step and fix-all),
        # so fixing one at a time ends where fix-all does. (A scheduler is folded in by its own
        # fixes, and so is clipping, which this sweep leaves alone.)
        assert saved == fixed_by_cli[name]

def test_server_answers_shutdown(quickfix, fix_all, one_by_one):
    for session in (quickfix, fix_all, one_by_one):
        print(session.report())
        assert session.result["shutdown_answered"] is True
