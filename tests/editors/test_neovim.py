"""End to end in real Neovim (0.7.2, headless) on copies of the bundled examples.

tests/editors/nvim/e2e.lua drives the editor: it starts the server with vim.lsp.start_client,
waits for the pushed diagnostics, requests hovers, runs a code action through the real UI path
(vim.lsp.buf.code_action + vim.ui.select), writes the buffer and reports everything as JSON.
Each module fixture below is one Neovim session; the tests assert on its report, on the file
Neovim saved, and on what `switcheroo-lsp check` / `fix` say about the same text. What this
shares with test_emacs.py (the copies, the command line's view, running the editor, the Session)
is in e2e_support.py.

Needs `nvim` (scripts/install-editors). Missing, the tests skip, except under CI=true where
they fail. On failure the test prints Neovim's lsp.log (debug level: all LSP traffic).
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

SCRIPT = Path(__file__).resolve().parent / "nvim" / "e2e.lua"
WAIT_MS = 20000            # each of the script's waits; the whole session is bounded by EDITOR_TIMEOUT_S
NVIM = Editor(name="Neovim", label="nvim", log_tail=150, log_about="tail", no_log="(no lsp.log)")
position_of = partial(e2e_support.position_of, columns="bytes")     # e2e.lua takes byte columns


def nvim_binary() -> str:
    found = os.environ.get("SWITCHEROO_NVIM") or shutil.which("nvim")
    if not found:
        unavailable("nvim is not installed")
    try:
        out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as e:
        unavailable(f"{found} --version failed: {e}")
    first = out.splitlines()[0] if out else ""
    if not first.startswith("NVIM v0.") or int(first.split(".")[1]) < 7:
        unavailable(f"need Neovim >= 0.7, found {first!r}")
    return found


@pytest.fixture(scope="module")
def fixed_by_cli(tmp_path_factory) -> dict[str, str]:
    """What `switcheroo-lsp fix` makes of each example."""
    return cli_fixed(tmp_path_factory.mktemp("cli-fix"))


def as_seen(diag: dict) -> tuple:
    return (diag["code"], diag["lnum"], diag["col"], diag["end_lnum"], diag["end_col"])


def run_nvim(tmp: Path, names: list[str], plan) -> Session:
    """Copies the examples into tmp, runs e2e.lua over them, and returns the session."""
    nvim = nvim_binary()
    copies = copy_examples(tmp, names, plan)
    home, cache = tmp / "home", tmp / "cache"
    home.mkdir()
    result_path = tmp / "result.json"
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps({
        "cmd": SERVER, "cmd_env": {"SWITCHEROO_DEBOUNCE_MS": "0"}, "root": str(copies.work),
        "result": str(result_path), "timeout_ms": WAIT_MS, "files": copies.specs}))
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(cache), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"), "XDG_STATE_HOME": str(home / ".local/state"),
           "SWITCHEROO_E2E_SPEC": str(spec_path)}
    cmd = [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}", copies.specs[0]["path"]]
    return run_editor(NVIM, cmd, env, copies, result_path, cache / "nvim" / "lsp.log")


# -- one quick fix, through the UI, in a copy of gan.py --------------------------------------------
@pytest.fixture(scope="module")
def quickfix(tmp_path_factory) -> Session:
    def plan(name, text):
        if name == "gan_unicode.py":
            line, col = position_of(text, "torch.optim.SGD(")
        else:
            line, col = position_of(text, "optim.Adam(gen.parameters()")
        return {"hovers": [{"line": line, "col": col + 6}],   # inside the call
                "action": {"kind": "quickfix", "line": line, "col": col}}
    return run_nvim(tmp_path_factory.mktemp("nvim-quickfix"), ["gan.py", "gan_unicode.py"], plan)


def test_diagnostics_match_the_findings(quickfix):
    print(quickfix.report())
    seen = quickfix.by_name["gan.py"]["diagnostics"]
    expected = quickfix.findings("before")["gan.py"]
    assert sorted(as_seen(d) for d in seen) == sorted(as_lsp(f) for f in expected)
    codes = [d["code"] for d in seen]
    assert codes.count("OPX101") == 2 and codes.count("OPX102") == 2 and codes.count("OPX103") == 2
    assert {d["source"] for d in seen} == {"switcheroo"}
    text = quickfix.originals["gan.py"].splitlines()
    for d in seen:       # every range covers the construct it names
        covered = text[d["lnum"]][d["col"]:d["end_col"]]
        if d["code"] == "OPX101":
            assert covered.startswith("optim.Adam(") and covered.endswith(")"), covered
            assert d["severity"] == 3          # Information
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


def test_quickfix_through_the_ui_converts_the_construction(quickfix):
    print(quickfix.report())
    gan = quickfix.by_name["gan.py"]
    assert gan["offered"][0]["isPreferred"] is True, gan["offered"]
    assert gan["chosen"] == gan["offered"][0]
    assert gan["chosen"]["title"] == "Convert to optax.adam"
    assert all(o["kind"] == "quickfix" for o in gan["offered"])
    assert gan["saved"] is True

    before = quickfix.originals["gan.py"]
    saved = quickfix.files["gan.py"].read_text()
    assert saved == gan["text_after"]
    assert ("opt_g = optax.adam(learning_rate=2e-4, b1=0.5, b2=0.999)\n"
            "# TODO(switcheroo): define gen_params here (the parameter pytree to optimize)\n"
            "opt_g_state = opt_g.init(gen_params)\n") in saved
    assert saved.count("import optax\n") == 1
    removed, added = changed_lines(before, saved)
    assert removed == [GAN_OPT_G]
    assert sorted(added) == sorted(["import optax", "opt_g = optax.adam(learning_rate=2e-4, b1=0.5, b2=0.999)",
                                    "# TODO(switcheroo): define gen_params here (the parameter pytree to optimize)",
                                    "opt_g_state = opt_g.init(gen_params)"])
    assert GAN_OPT_D in saved                   # the other optimizer is another fix
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
    def chars(line: int, byte_col: int) -> int:     # Neovim columns are bytes
        return len(lines[line].encode()[:byte_col].decode())
    seen = sorted((d["code"], d["lnum"], chars(d["lnum"], d["col"]), d["end_lnum"], chars(d["end_lnum"], d["end_col"]))
                  for d in got["diagnostics"])
    assert seen == sorted(as_lsp(f) for f in quickfix.findings("before")["gan_unicode.py"])
    row = lines.index(UNICODE_LINE)
    start = UNICODE_LINE.index("torch.optim.SGD(")
    assert ("OPX101", row, start, row, len(UNICODE_LINE)) in seen
    [hover] = got["hovers"]
    assert "optax.sgd(learning_rate=0.1)" in hover["value"]
    assert hover["range"] == {"start": {"line": row, "character": utf16_len(UNICODE_LINE[:start])},
                              "end": {"line": row, "character": utf16_len(UNICODE_LINE)}}
    assert got["chosen"]["title"] == "Convert to optax.sgd"
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
    return run_nvim(tmp_path_factory.mktemp("nvim-fixall"), ALL, plan)


@pytest.mark.parametrize("name", ALL)
def test_fix_all_leaves_no_convertible_finding(fix_all, fixed_by_cli, name):
    print(fix_all.report())
    got = fix_all.by_name[name]
    assert got["chosen"]["kind"] == "source.fixAll.switcheroo"
    assert any(d["code"] in CONVERTED for d in got["diagnostics"])
    assert got["saved"] is True
    saved = fix_all.files[name].read_text()
    assert saved == got["text_after"]
    ast.parse(saved)
    assert saved.count("import optax\n") == 1
    left = {f["code"] for f in fix_all.findings().get(name, [])}
    assert not left & CONVERTED, left
    assert not {d["code"] for d in got["diagnostics_after"]} & CONVERTED
    # The editor applied the server's edit exactly: the same text as the command line's fix.
    assert saved == fixed_by_cli[name]


def test_precision_on_other_step_calls(fix_all):
    print(fix_all.report())
    rl = fix_all.by_name["rl.py"]
    line = fix_all.originals["rl.py"].splitlines().index(
        "        state, reward, terminated, truncated, _ = env.step(action.item())")
    assert [d for d in rl["diagnostics"] if d["lnum"] == line] == []      # the environment's step
    assert rl["hovers"][0]["value"] is None
    assert {d["code"] for d in rl["diagnostics"]} >= CONVERTED
    # A scheduler's step is not an optimizer step (whatever the server makes of schedulers).
    mnist = fix_all.by_name["mnist.py"]
    line = fix_all.originals["mnist.py"].splitlines().index("        scheduler.step()")
    assert not [d for d in mnist["diagnostics"] if d["lnum"] == line and d["code"] in CONVERTED]



# -- quick fixes one at a time, as a user goes through the findings, in one session ---------------
@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory) -> Session:
    return run_nvim(tmp_path_factory.mktemp("nvim-one-by-one"), ALL, lambda name, text: {"sweep": sorted(CONVERTED)})


@pytest.mark.parametrize("name", ALL)
def test_quick_fixes_one_by_one(one_by_one, fixed_by_cli, name):
    print(one_by_one.report())
    got = one_by_one.by_name[name]
    before = {d["code"] for d in got["diagnostics"]} & CONVERTED
    assert {step["code"] for step in got["sweep"]} == before
    assert all(step["isPreferred"] for step in got["sweep"]), got["sweep"]
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

def test_server_shuts_down_cleanly(quickfix, fix_all, one_by_one):
    for session in (quickfix, fix_all, one_by_one):
        print(session.report())
        assert session.result["server_exit"] == {"code": 0, "signal": 0}
        assert session.result["offset_encoding"] == "utf-16"
        assert not [n for n in session.result["notifications"] if (n.get("level") or 0) >= 3], \
            session.result["notifications"]


# -- a two-file project: the optimizer built in one file, stepped in the other -----------------------
PROJECT_MAIN = """\
import torch
from engine import train_one_epoch


def main(model, loader, params):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(3):
        train_one_epoch(model, loader, optimizer, epoch)
"""
PROJECT_ENGINE = """\
def train_one_epoch(model, loader, optimizer, epoch):
    for batch in loader:
        optimizer.zero_grad()  # fresh gradients
        model(batch).sum().backward()
        optimizer.step()  # one update
"""


def test_a_two_file_project(tmp_path):
    """Only engine.py is open; its steps are traced to main.py's construction (read from disk
    by the server's workspace index), and its fix-all edits engine.py alone."""
    nvim = nvim_binary()
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.py").write_text(PROJECT_MAIN)
    engine = work / "engine.py"
    engine.write_text(PROJECT_ENGINE)
    spec = {"path": str(engine), "action": {"kind": "source.fixAll.switcheroo", "line": 1, "col": 0}}
    copies = e2e_support.Copies(work, {"engine.py": engine}, {"engine.py": PROJECT_ENGINE}, {}, [spec])
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    result_path, spec_path = tmp_path / "result.json", tmp_path / "spec.json"
    spec_path.write_text(json.dumps({
        "cmd": SERVER, "cmd_env": {"SWITCHEROO_DEBOUNCE_MS": "0"}, "root": str(work),
        "result": str(result_path), "timeout_ms": WAIT_MS, "files": [spec]}))
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(cache), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"), "XDG_STATE_HOME": str(home / ".local/state"),
           "SWITCHEROO_E2E_SPEC": str(spec_path)}
    cmd = [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}", str(engine)]
    session = run_editor(NVIM, cmd, env, copies, result_path, cache / "nvim" / "lsp.log")
    print(session.report())
    got = session.by_name["engine.py"]
    assert {(d["code"], d["lnum"]) for d in got["diagnostics"]} >= {("OPX103", 2), ("OPX102", 4)}
    saved = engine.read_text()
    assert "optimizer.zero_grad()" not in saved
    assert "updates, opt_state = optimizer.update(grads, opt_state, params)  # one update" in saved
    assert "import optax" in saved
    ast.parse(saved)
    assert (work / "main.py").read_text() == PROJECT_MAIN       # a fix edits only its document
