"""End to end in real VS Code (1.100.3 via code-server, in headless Chromium).

One session starts one code-server with the packed extension and a test-only driver
extension (tests/editors/vscode/driver-extension/) installed. The driver runs inside the real
extension host once the switcheroo extension has activated by itself, exercises diagnostics,
hover, quick fix, save and restart through the public VS Code API, and writes a JSON result
that the tests below check.

Needs: node/npm (to build the .vsix), code-server 4.100.3 and chromium, both installed by
scripts/install-editors. Missing tools skip the tests, except under CI=true where they fail.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.editor

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "vscode-client"
HERE = Path(__file__).resolve().parent / "vscode"
DRIVER_DIR = HERE / "driver-extension"
FAKE_PYTHON_DIR = HERE / "fake-python-extension"
FIXTURE = HERE / "fixtures" / "train_adam.py"
NOTEBOOK = HERE / "fixtures" / "train.ipynb"     # opened as a Jupyter notebook
# The project's example scripts, each opened in the editor too (if there are any yet).
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# What `vsce package` names it by default.
VSIX = CLIENT_DIR / f"switcheroo-lsp-{json.loads((CLIENT_DIR / 'package.json').read_text())['version']}.vsix"
CODE_SERVER = Path(
    os.environ.get("SWITCHEROO_CODE_SERVER", ROOT / ".e2e" / "code-server" / "node_modules" / ".bin" / "code-server")
)
RESULT_TIMEOUT_S = float(os.environ.get("SWITCHEROO_E2E_TIMEOUT", "120"))

# The seeded example: the file the driver opens and the finding it fixes.
WORKSPACE_FILE = "train.py"
FIX_CODE = "OPX101"
# The server as the workspace settings start it; $SWITCHEROO_E2E_SERVER (a JSON list) swaps in,
# say, a wrapper that records the traffic.
SERVER_COMMAND = json.loads(os.environ.get("SWITCHEROO_E2E_SERVER", "null")) or [
    sys.executable, "-m", "switcheroo_lsp", "serve"
]
# Set in the workspace settings so that the test can see settings reach the server.
SEVERITY_OVERRIDE = {"OPX103": "warning"}
# The driver adds this to switcheroo.ignore while the server runs.
IGNORE_ON_CHANGE = "OPX103"


def _unavailable(reason: str):
    """Skips where the editor toolchain is absent; under CI it must be there, so fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: run scripts/install-editors)", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for p in paths:
        files = p.rglob("*") if p.is_dir() else [p]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


VSCE = CLIENT_DIR / "node_modules" / "@vscode" / "vsce" / "vsce"


def _client_deps() -> str:
    """`npm ci` in vscode-client unless its node_modules are there; returns npm's path."""
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        _unavailable("node/npm not found: needed to build the VS Code extension")
    if not VSCE.exists():
        _run([npm, "ci", "--no-audit", "--no-fund"], CLIENT_DIR, 600)
    return npm


def _in_terminal(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str]) -> tuple[int, str]:
    """Runs `cmd` on a pseudo-terminal, as in a developer's shell, and returns its exit code and output.

    vsce answers its own questions "y" when its output is not a terminal; on one it waits for an
    answer, so here a question is a timeout.
    """
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                _stop(proc)
                pytest.fail(f"{' '.join(cmd)} waited for input (or hung) for {timeout:.0f} s:\n"
                            f"{out.decode(errors='replace')[-3000:]}", pytrace=False)
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:      # EIO: every process holding the terminal has ended
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        os.close(leader)
    return proc.wait(10), out.decode(errors="replace").replace("\r\n", "\n")


def _vsce_package() -> str:
    """`npx @vscode/vsce package` in vscode-client/, as a publisher runs it; its output."""
    _client_deps()
    npx = shutil.which("npx")
    if not npx:
        _unavailable("npx not found: needed to build the VS Code extension")
    # Offline, as npm sees it: npx must find vsce in node_modules, and vsce's update check (it asks
    # the registry for its latest version when on a terminal) finds nothing to say.
    env = {**os.environ, "npm_config_offline": "true"}
    code, out = _in_terminal([npx, "@vscode/vsce", "package"], CLIENT_DIR, 300, env)
    assert code == 0 and VSIX.exists(), out[-4000:]
    return out


def _build_vsix() -> Path:
    """Packs the extension unless an up-to-date .vsix is there (or one is given)."""
    given = os.environ.get("SWITCHEROO_VSIX")
    if given:
        return Path(given)
    sources = [CLIENT_DIR / n for n in ("src", "package.json", "package-lock.json", "README.md", "LICENSE",
                                        ".vscodeignore")]
    if VSIX.exists() and VSIX.stat().st_mtime >= _newest_mtime(sources):
        return VSIX
    _vsce_package()
    return VSIX


def _pack(extension_dir: Path, out: Path) -> Path:
    """Packs a test-only extension (plain JS, no dependencies) with the client's vsce."""
    # --skip-license / --allow-missing-repository keep vsce from prompting.
    _run(
        ["node", str(VSCE), "package", "--no-dependencies", "--skip-license", "--allow-missing-repository",
         "--out", str(out)],
        extension_dir,
        120,
    )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"code-server exited ({proc.returncode}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"code-server not healthy after {timeout} s:\n{_tail(log)}")


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"({path} unreadable)"


def _logs(user_dir: Path) -> str:
    """The extension host's log and the Switcheroo output channel, for failure messages."""
    parts = []
    for pattern in ("**/exthost.log", "**/*Switcheroo*.log", "**/remoteexthost.log"):
        for f in sorted(user_dir.glob(pattern)):
            parts.append(f"--- {f.relative_to(user_dir)}\n{_tail(f)}")
    return "\n".join(parts) or "(no extension host logs)"


def _stop(proc: subprocess.Popen | None) -> None:
    """Ends a process we started and everything in its session (extension host, server)."""
    if proc is None:
        return
    # The leader first, so that it can shut its children down and reap them itself...
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    # ...then whatever is left in its process group (it was started in a session of its own).
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + 3
        try:
            os.killpg(proc.pid, sig)
            while time.monotonic() < deadline:
                time.sleep(0.1)
                os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
    if proc.poll() is None:
        proc.wait(5)


@pytest.fixture(scope="session")
def vscode_run(tmp_path_factory):
    """Runs the whole VS Code session once; yields the driver's result and the log dirs."""
    if not CODE_SERVER.exists():
        _unavailable(f"code-server not found at {CODE_SERVER} (scripts/install-editors installs it)")
    chromium = _chromium()
    if not chromium:
        _unavailable("chromium not found (scripts/install-editors installs it)")

    base = tmp_path_factory.mktemp("vscode")
    vsix = _build_vsix()
    driver = _pack(DRIVER_DIR, base / "driver.vsix")
    fake_python = _pack(FAKE_PYTHON_DIR, base / "fake-python.vsix")

    ext_dir, user_dir, workspace = base / "ext", base / "user", base / "workspace"
    for d in (ext_dir, user_dir / "User", workspace / ".vscode"):
        d.mkdir(parents=True)
    # Keep the workbench quiet and deterministic: no welcome page, no auto save, no trust prompt.
    (user_dir / "User" / "settings.json").write_text(
        json.dumps(
            {
                "workbench.startupEditor": "none",
                "files.autoSave": "off",
                "security.workspace.trust.enabled": False,
                "telemetry.telemetryLevel": "off",
                "extensions.autoUpdate": False,
                "extensions.autoCheckUpdates": False,
                "extensions.ignoreRecommendations": True,
            },
            indent=2,
        )
    )
    (workspace / ".vscode" / "settings.json").write_text(
        json.dumps(
            {
                "switcheroo.path": SERVER_COMMAND,
                "switcheroo.severity": SEVERITY_OVERRIDE,
                # Saving the notebook runs the notebook-wide fix-all (VS Code asks the first cell for it:
                # the fixture's first cell is code).
                "notebook.codeActionsOnSave": {"notebook.source.fixAll.switcheroo": "explicit"},
            },
            indent=2,
        )
    )
    shutil.copy(FIXTURE, workspace / WORKSPACE_FILE)
    shutil.copy(NOTEBOOK, workspace / NOTEBOOK.name)
    (workspace / "examples").mkdir()
    for example in EXAMPLES:
        shutil.copy(example, workspace / "examples" / example.name)

    result_file = base / "result.json"
    request_file = base / "request.json"
    request_file.write_text(
        json.dumps(
            {
                "file": WORKSPACE_FILE,
                "result": str(result_file),
                "fixCode": FIX_CODE,
                "timeoutMs": int(RESULT_TIMEOUT_S * 1000 * 0.6),
                "ignoreOnChange": IGNORE_ON_CHANGE,
                "restart": True,
                "alsoOpen": [f"examples/{e.name}" for e in EXAMPLES],
                "pythonFallback": True,
                "notebook": {"file": NOTEBOOK.name, "fixCode": FIX_CODE},
                "verify": True,
            }
        )
    )
    config = base / "code-server.yaml"
    # An explicit config keeps code-server from writing one (with a password) into ~/.config.
    config.write_text("auth: none\ncert: false\n")
    common = [
        str(CODE_SERVER),
        "--config", str(config),
        "--extensions-dir", str(ext_dir),
        "--user-data-dir", str(user_dir),
    ]
    installs = [arg for v in (vsix, driver, fake_python) for arg in ("--install-extension", str(v))]
    _run(common + installs, base, 120)

    env = dict(os.environ)
    env["SWITCHEROO_E2E_REQUEST"] = str(request_file)  # inherited by the extension host
    env["SWITCHEROO_E2E_PYTHON"] = sys.executable  # the fake Python extension's interpreter
    env.pop("VSCODE_IPC_HOOK_CLI", None)  # never attach to an editor this may run inside
    cs_log = base / "code-server.log"
    chrome_log = base / "chromium.log"
    code_server = chrome = None
    t0 = time.monotonic()
    try:
        # A free port can be taken between our probe and code-server's bind: try a few.
        for attempt in range(3):
            port = _free_port()
            with open(cs_log, "wb") as out:
                code_server = subprocess.Popen(
                    common
                    + [
                        "--auth", "none",
                        "--bind-addr", f"127.0.0.1:{port}",
                        "--disable-telemetry",
                        "--disable-update-check",
                        "--disable-workspace-trust",
                        "--ignore-last-opened",
                        str(workspace),
                    ],
                    cwd=base,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                _wait_healthy(port, code_server, cs_log)
                break
            except RuntimeError:
                _stop(code_server)
                if attempt == 2 or "EADDRINUSE" not in _tail(cs_log):
                    raise
        with open(chrome_log, "wb") as out:
            chrome = subprocess.Popen(
                [
                    chromium,
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    # The machine's network is closed: without these Chromium keeps dialling out.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    f"--user-data-dir={base / 'chromium'}",
                    "--window-size=1280,800",
                    f"http://127.0.0.1:{port}/?folder={workspace}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while not result_file.exists():
            for name, proc, log in (("code-server", code_server, cs_log), ("chromium", chrome, chrome_log)):
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited ({proc.returncode}):\n{_tail(log)}\n{_logs(user_dir)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no driver result after {RESULT_TIMEOUT_S:.0f} s\n--- code-server\n{_tail(cs_log)}\n"
                    f"{_logs(user_dir)}",
                    pytrace=False,
                )
            time.sleep(0.25)
        result = json.loads(result_file.read_text())
        result["wallSeconds"] = round(time.monotonic() - t0, 1)
        yield {
            "result": result,
            "logs": lambda: _logs(user_dir) + "\n--- code-server\n" + _tail(cs_log),
            "user_dir": user_dir,
        }
    finally:
        _stop(chrome)
        _stop(code_server)


@pytest.fixture
def result(vscode_run):
    res = vscode_run["result"]
    if res.get("error"):
        # The full story once; the other tests just point at it.
        if vscode_run.get("reported"):
            pytest.fail(f"driver failed (details in the first failing test): {res['error'].splitlines()[0]}")
        vscode_run["reported"] = True
        pytest.fail(f"driver failed: {res['error']}\nresult: {json.dumps(res, indent=1)[:4000]}\n{vscode_run['logs']()}")
    return res


def test_client_unit_tests():
    """The extension's own node tests (server selection, settings), so CI runs them too."""
    npm = _client_deps()
    proc = subprocess.run([npm, "test"], cwd=CLIENT_DIR, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout, proc.stdout[-4000:]


def test_vsce_package_asks_nothing_and_packs_only_the_bundle():
    """`npx @vscode/vsce package` builds the bundle itself (vscode:prepublish) and asks nothing."""
    VSIX.unlink(missing_ok=True)
    (CLIENT_DIR / "out" / "extension.js").unlink(missing_ok=True)
    out = _vsce_package()
    assert "Executing prepublish script 'npm run vscode:prepublish'" in out
    # Every question vsce asks comes after a warning; its update notice (from npm's cache) is the only one allowed.
    warnings = [l for l in out.splitlines() if "WARNING" in l and "The latest version of @vscode/vsce" not in l]
    assert not warnings and "continue?" not in out, out
    with zipfile.ZipFile(VSIX) as zf:
        names = set(zf.namelist())
        manifest = zf.read("extension.vsixmanifest").decode()
        packed = json.loads(zf.read("extension/package.json"))
    assert names == {"[Content_Types].xml", "extension.vsixmanifest", "extension/package.json",
                     "extension/readme.md", "extension/LICENSE.txt", "extension/out/extension.js"}
    assert packed["version"] == json.loads((CLIENT_DIR / "package.json").read_text())["version"]
    assert 'Id="Microsoft.VisualStudio.Services.Links.Source" Value="https://github.com/switcheroo-lsp/' in manifest


def _codes(diagnostics):
    return {d["code"] for d in diagnostics}


def test_extension_activates_by_itself_and_runs_the_configured_server(result):
    assert result["extension"] == {"installed": True, "activeBeforeOpen": True}
    assert result["serverCommand"]["source"] == "switcheroo.path"
    assert result["serverCommand"]["command"] == SERVER_COMMAND[0]
    assert result["vscodeVersion"] == "1.100.3"


def test_diagnostics(result):
    diags = result["diagnostics"]
    assert {"OPX101", "OPX102", "OPX103"} <= _codes(diags), diags
    by_code = {d["code"]: d for d in diags}
    # Line/character positions as VS Code has them (0-based).
    assert by_code["OPX101"]["range"]["start"] == [3, 6]
    assert by_code["OPX103"]["range"]["start"][0] == 6
    assert by_code["OPX102"]["range"]["start"][0] == 9
    # Each finding once: a server that pushed and was pulled too would show duplicates.
    assert len(diags) == len({(d["code"], tuple(d["range"]["start"])) for d in diags}), diags


def test_severity_setting_reaches_the_server(result):
    by_code = {d["code"]: d for d in result["diagnostics"]}
    assert by_code["OPX103"]["severity"] == "warning"  # overridden in .vscode/settings.json
    assert by_code["OPX101"]["severity"] == "information"  # the default


def test_hover(result):
    hover = result["hover"]
    assert "optax" in hover, hover
    assert "init" in hover, hover


def test_code_actions(result):
    titles = [a["title"] for a in result["actions"]]
    preferred = [a for a in result["actions"] if a["isPreferred"] and a["kind"] == "quickfix"]
    assert preferred, titles
    assert any("optax.adam" in a["title"] for a in preferred), titles
    assert any("noqa" in t.lower() or "ignore" in t.lower() for t in titles), titles
    assert [a["kind"] for a in result["fixAllActions"]] == ["source.fixAll.switcheroo"], result["fixAllActions"]


def test_quickfix_applied_and_saved(result):
    assert result["applied"]["applyEdit"] is True
    assert result["applied"]["saved"] is True
    text = result["savedText"]
    lines = text.splitlines()
    assert "torch.optim.Adam" not in text
    construct = next(i for i, line in enumerate(lines) if line.startswith("opt = "))
    assert lines[construct].startswith("opt = optax.adam(learning_rate=0.01"), text
    # Nothing in the file defines params: the init line comes with a TODO naming it.
    assert lines[construct + 1].startswith("# TODO(switcheroo): define params here"), text
    assert lines[construct + 2] == "opt_state = opt.init(params)", text
    assert "import optax" in lines, text
    # Only the fixed finding goes; the step and zero_grad remain flagged.
    after = _codes(result["diagnosticsAfterFix"])
    assert FIX_CODE not in after, result["diagnosticsAfterFix"]
    assert {"OPX102", "OPX103"} <= after, result["diagnosticsAfterFix"]


def test_verify_this_rewrite(result):
    """The code lens and the palette command "Switcheroo: Verify this rewrite": the server runs
    verify in a subprocess (200 steps), the command answers the verdict, the next hover shows it."""
    lenses = [lens for lens in result["codeLenses"] if lens["title"] == "Verify this rewrite"]
    assert [(lens["command"], lens["range"]["start"]) for lens in lenses] == [("switcheroo.verify", [3, 6])]
    verify = result["verify"]
    assert verify["status"] == "pass", verify
    row = verify["row"]
    assert (row["optimizer"], row["rewrite"], row["steps"]) == ("torch.optim.Adam", "optax.adam(learning_rate=0.01)", 200)
    assert row["max_abs_diff"] <= row["tolerance"] == 1e-12
    assert row["path"].endswith(WORKSPACE_FILE)
    assert verify["message"].startswith("Verified on your hyperparameters: torch.optim.Adam → optax.adam(")
    assert result["hoverAfterVerify"].startswith("**Verified on your hyperparameters:** max |Δθ| ")
    assert "over 200 steps (PASS" in result["hoverAfterVerify"]


def test_setting_change_reaches_the_running_server(result):
    after = _codes(result["afterIgnore"])
    assert IGNORE_ON_CHANGE not in after, result.get("afterIgnoreError") or result["afterIgnore"]
    assert "OPX102" in after, result["afterIgnore"]


def test_restart_command(result):
    restart = result["restart"]
    assert restart["running"] is True
    codes = _codes(restart["diagnostics"])
    assert "OPX102" in codes, restart
    # The restarted server gets the changed setting at startup.
    assert IGNORE_ON_CHANGE not in codes, restart


def test_python_extension_interpreter_is_used_without_settings(result):
    py = result["pythonExtension"]
    assert py["installed"] is True
    assert py["serverCommand"] == {
        "command": sys.executable,
        "args": ["-m", "switcheroo_lsp", "serve"],
        "source": "python-extension",
    }
    assert py["diagnostics"], py
    # A change of interpreter restarted the server with the same choice.
    assert py["afterChange"]["source"] == "python-extension"


def test_output_channel_logs_the_server_without_errors(result, vscode_run):
    logs = sorted(vscode_run["user_dir"].glob("logs/**/switcheroo.switcheroo-lsp/Switcheroo.log"))
    assert logs, "no Switcheroo output channel log"
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert "Server started" in text, text
    # Server stderr keeps its level (a Python WARNING is no error); nothing failed.
    assert "[error]" not in text, text


@pytest.mark.parametrize("example", [e.name for e in EXAMPLES] or [None])
def test_examples_are_diagnosed(result, example):
    if example is None:
        pytest.skip("no examples/*.py yet")
    found = result["others"][f"examples/{example}"]
    assert isinstance(found, list) and found, found
    assert all(d["code"].startswith("OPX") for d in found), found


# -- a Jupyter notebook --------------------------------------------------------------------------------

@pytest.fixture
def notebook(result):
    nb = result.get("notebook")
    assert nb and not nb.get("error"), (nb or {}).get("error") or result
    return nb


def _utf16(text: str, col: int) -> int:
    return len(text[:col].encode("utf-16-le")) // 2


def test_notebook_cells_show_the_findings(notebook):
    """Each code cell shows what `check` reports for it, at the same place (VS Code counts
    UTF-16 units; the cells hold non-ASCII text before a flagged call)."""
    assert notebook["notebookType"] == "jupyter-notebook"
    cells = notebook["cells"]
    proc = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "check", "--format", "json", str(NOTEBOOK)],
                          capture_output=True, text=True, timeout=60)
    expected: dict[int, set] = {}
    for row in json.loads(proc.stdout):
        if row["code"] == IGNORE_ON_CHANGE:
            continue        # the driver has set switcheroo.ignore by now
        line = cells[row["cell"] - 1]["text"].split("\n")[row["line"] - 1]
        expected.setdefault(row["cell"] - 1, set()).add((row["code"], row["line"] - 1, _utf16(line, row["column"] - 1)))
    seen = {i: {(d["code"], *d["range"]["start"]) for d in c["diagnostics"]} for i, c in enumerate(cells) if c["diagnostics"]}
    assert seen == expected, cells
    assert {"OPX101", "OPX102"} <= {code for found in seen.values() for code, *_ in found}
    # Each finding once: pulled, never pushed as well.
    assert all(len(c["diagnostics"]) == len({(d["code"], tuple(d["range"]["start"])) for d in c["diagnostics"]})
               for c in cells), cells


def test_notebook_hover_and_quick_fix_change_the_cells(notebook):
    assert "optax" in notebook["hover"] and "init" in notebook["hover"], notebook["hover"]
    assert notebook["applied"]["applyEdit"] is True, notebook["applied"]
    before = [c["text"] for c in notebook["cells"]]
    after = [c["text"] for c in notebook["after"]]
    fixed = notebook["fixedCell"]
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    imports = next(i for i, text in enumerate(before) if "import torch" in text)
    assert changed == sorted({imports, fixed}), (before, after)
    assert after[fixed].startswith('note = "ñ€😀"; opt = optax.adam(learning_rate=0.01)'), after[fixed]
    assert after[fixed].endswith("opt_state = opt.init(params)"), after[fixed]
    assert after[imports] == before[imports] + "\nimport optax", after[imports]
    # The fixed finding goes; the loop's step stays.
    codes = [_codes(c["diagnostics"]) for c in notebook["after"]]
    assert FIX_CODE not in codes[fixed], notebook["after"]
    assert "OPX102" in set().union(*codes), notebook["after"]


def test_notebook_save_runs_the_notebook_fix_all_and_keeps_the_outputs(notebook):
    """`notebook.codeActionsOnSave` with notebook.source.fixAll.switcheroo: saving converts
    every cell (switcheroo.ignore has OPX103 by now, so zero_grad() stays)."""
    assert notebook["saved"] is True
    saved = json.loads(notebook["savedText"])
    original = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    sources = ["".join(c["source"]) for c in saved["cells"]]
    assert sources == [c["text"] for c in notebook["afterSave"]], "the file holds what the editor shows"
    code = "\n".join(s for s, c in zip(sources, saved["cells"]) if c["cell_type"] == "code")
    assert "torch.optim" not in code, code
    assert "updates, opt_state = opt.update(grads, opt_state, params)" in code, code
    assert code.count("import optax") == 1, code
    kinds = [c["cell_type"] for c in saved["cells"]]
    assert kinds == [c["cell_type"] for c in original["cells"]] and "markdown" in kinds
    markdown = kinds.index("markdown")
    assert sources[markdown] == "".join(original["cells"][markdown]["source"]), "the markdown cell is untouched"
    assert sources[0].startswith("%matplotlib inline\n") and sources[-1].startswith("%%time\n"), sources
    assert [c.get("outputs") for c in saved["cells"]] == [c.get("outputs") for c in original["cells"]]
