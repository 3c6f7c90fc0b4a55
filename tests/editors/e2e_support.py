"""What the Neovim and Emacs end-to-end tests share: the examples and how a session copies them,
the command line's findings and fixes to compare against, running an editor under a timeout
(and killing whatever it started), and the Session the tests assert on.

What differs per editor stays in its test module: finding the binary, the driver's spec, its
environment and command line, where its log is, and how its diagnostics are shaped (as_seen).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SERVER = [sys.executable, "-m", "switcheroo_lsp", "serve"]
EDITOR_TIMEOUT_S = 60      # the whole session; the driver's own waits are bounded each (WAIT_MS, WAIT_S)
CONVERTED = {"OPX101", "OPX102", "OPX103"}
ALL = ["gan.py", "mnist.py", "rl.py", "trainer.py"]          # every example: fix-all, one by one
GAN_OPT_G = "opt_g = optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))"
GAN_OPT_D = "opt_d = optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))"


def unavailable(reason: str):
    """Skips where the editor is absent; under CI it must be there, so fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: run scripts/install-editors)", pytrace=False)
    pytest.skip(reason)


def cli_findings(*paths: Path) -> dict[str, list[dict]]:
    """`switcheroo-lsp check --format json` over the paths (one run), by file name."""
    proc = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "check", "--format", "json", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), f"check failed ({proc.returncode}): {proc.stderr}"
    found: dict[str, list[dict]] = {}
    for f in json.loads(proc.stdout):
        found.setdefault(Path(f["path"]).name, []).append(f)
    return found


def cli_fixed(work: Path, names: list[str] = ALL) -> dict[str, str]:
    """What `switcheroo-lsp fix` makes of each example (one run over copies in work)."""
    for name in names:
        shutil.copyfile(EXAMPLES / name, work / name)
    proc = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "fix", str(work)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), f"fix failed ({proc.returncode}): {proc.stderr}"
    return {name: (work / name).read_text() for name in names}


def non_ascii_crlf(text: str) -> str:
    """gan.py with non-ASCII identifiers, an astral character before a construction, CRLF endings."""
    text = re.sub(r"\bgen\b", "gén", re.sub(r"\bdisc\b", "dísc", text))
    text += 'x = "🎲"; opt_x = torch.optim.SGD(gén.parameters(), lr=0.1)\n'
    return text.replace("\n", "\r\n")


# Files made from an example for a session: name -> (example, transform).
VARIANTS = {"gan_unicode.py": ("gan.py", non_ascii_crlf)}
UNICODE_LINE = 'x = "🎲"; opt_x = torch.optim.SGD(gén.parameters(), lr=0.1)'


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def position_of(text: str, needle: str, *, columns: str) -> tuple[int, int]:
    """(1-based line, 0-based column) of the first occurrence, as a driver wants it: its column
    in "bytes" (e2e.lua) or in "characters" (e2e.el)."""
    assert columns in ("bytes", "characters"), columns
    for number, line in enumerate(text.splitlines(), 1):
        col = line.find(needle)
        if col >= 0:
            return number, (len(line[:col].encode()) if columns == "bytes" else col)
    raise AssertionError(f"{needle!r} not in the example")


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:])
        elif line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:])
    return removed, added


def as_lsp(finding: dict) -> tuple:
    """A CLI finding (1-based lines and columns, end exclusive) as an LSP range (0-based
    line/col) + code."""
    return (finding["code"], finding["line"] - 1, finding["column"] - 1,
            finding["end_line"] - 1, finding["end_column"] - 1)


@dataclass(frozen=True)
class Editor:
    """How sessions of one editor are named and reported."""
    name: str          # in a failed session's message: "Neovim"
    label: str         # in a report's first line: "nvim"
    log_tail: int      # the last lines of its log a report shows
    log_about: str     # after the log's path in a report: what the tail holds
    no_log: str        # what a report shows when the log is missing


@dataclass
class Copies:
    """The examples as copied for one session (see copy_examples)."""
    work: Path                      # the editor's files, which it edits and saves
    files: dict[str, Path]
    originals: dict[str, str]       # their text before the session
    pristine: dict[str, Path]       # copies the editor never sees, for the command line
    specs: list[dict]               # per file, for the driver: {"path": ..., **plan(name, text)}


def copy_examples(tmp: Path, names: list[str], plan) -> Copies:
    """Copies the examples (or VARIANTS of them) into tmp/work and tmp/pristine; plan(name, text)
    says what the driver does in each."""
    work = tmp / "work"
    work.mkdir()
    files, originals, pristine, specs = {}, {}, {}, []
    for name in names:
        path = work / name
        example, transform = VARIANTS.get(name, (name, lambda text: text))
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(transform((EXAMPLES / example).read_text(encoding="utf-8")))
        files[name] = path
        originals[name] = path.read_text(encoding="utf-8")
        pristine[name] = tmp / "pristine" / name          # the same text, for the command line
        pristine[name].parent.mkdir(exist_ok=True)
        shutil.copyfile(path, pristine[name])
        specs.append({"path": str(path), **plan(name, originals[name])})
    return Copies(work, files, originals, pristine, specs)


@dataclass(repr=False)
class Session:
    """One editor run: its report, its exit code, and the files it worked on."""
    editor: Editor
    dir: Path
    files: dict[str, Path]
    originals: dict[str, str]
    returncode: int
    result: dict
    output: str
    log_path: Path
    seconds: float
    pristine: dict[str, Path] = field(default_factory=dict)
    by_name: dict[str, dict] = field(default_factory=dict)
    _findings: dict[str, dict] = field(default_factory=dict)

    def findings(self, when: str = "after") -> dict[str, list[dict]]:
        """The command line's findings on the files as the editor saved them ("after") or as
        they were given to it ("before"), computed once per session."""
        if when not in self._findings:
            where = self.files if when == "after" else self.pristine
            self._findings[when] = cli_findings(*where.values())
        return self._findings[when]

    def __repr__(self) -> str:
        return f"Session({self.dir}, exit {self.returncode}, {self.seconds:.1f}s)"

    def report(self) -> str:
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else self.editor.no_log
        tail = log.splitlines()[-self.editor.log_tail:]
        lines = [line if len(line) < 2000 else line[:2000] + " …" for line in tail]
        extra = {k: v for k, v in self.result.items() if k != "files"}
        return (f"--- {self.editor.label} exit {self.returncode} after {self.seconds:.1f}s; output:\n"
                f"{self.output[-4000:]}\n"
                f"--- report (without files): {json.dumps(extra, indent=1)[:4000]}\n"
                f"--- {self.log_path} ({self.editor.log_about}):\n" + "\n".join(lines))


def run_editor(editor: Editor, cmd: list[str], env: dict[str, str], copies: Copies,
               result_path: Path, log_path: Path) -> Session:
    """Runs the editor's driver over the copies (in their work directory, in a session of its
    own, killed with all it started once it exits or after EDITOR_TIMEOUT_S), and returns the
    session; fails the test if the driver did not report on every file."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=copies.work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=EDITOR_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\n(killed after {EDITOR_TIMEOUT_S}s)"
    finally:
        try:             # the editor is gone; so must be anything it started (the server)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    seconds = time.monotonic() - started
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    session = Session(editor, copies.work, copies.files, copies.originals, proc.returncode, result, output,
                      log_path, seconds)
    session.pristine = copies.pristine
    session.by_name = {Path(f["path"]).name: f for f in result.get("files", [])}
    if proc.returncode != 0 or "error" in result or len(session.by_name) != len(copies.specs):
        pytest.fail(f"{editor.name} session failed: {result.get('error')}\n{session.report()}", pytrace=False)
    return session
