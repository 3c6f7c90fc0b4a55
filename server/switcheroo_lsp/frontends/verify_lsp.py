""""Verify this rewrite" in the editor: a code lens on each OPX101 construction and the command
`switcheroo.verify`, which runs `switcheroo-lsp verify` on the document's current text in a
subprocess (torch and jax never enter the server), reports its progress as a cancellable
work-done progress, shows the verdict as a message and keeps it for the next hover.

Command argument (one object): {"uri", "position": {"line", "character"}} of the construction,
optionally "python" (the interpreter to run it with; default the server's own), "steps" and
"set" ({"lr": "3e-4"}, as `--set`). It answers {"status": "pass" | "fail" | "unresolved" |
"missing" | "cancelled" | "error", "message", "row" (verify's JSON row, if it ran)}.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as t
from pygls.uris import to_fs_path

from ..engine import Analysis, Finding, Span
from .progress import WorkDone

COMMAND = "switcheroo.verify"
TITLE = "Verify this rewrite"
INSTALL = "-m pip install 'switcheroo-lsp[verify]'"
REQUIRED = ("switcheroo_lsp", "torch", "jax", "optax")


def required(target: str) -> list[str]:
    """What the interpreter running verify needs for this target."""
    return list(REQUIRED) + (["flax"] if target == "flax-nnx" else [])


def probe(modules: list[str]) -> str:
    return f"import importlib.util, json; print(json.dumps([m for m in {modules!r} if importlib.util.find_spec(m) is None]))"
log = logging.getLogger("switcheroo")
_tokens = itertools.count(1)


@dataclass(frozen=True)
class _Key:
    uri: str
    text: str        # a digest of the text verified: any edit makes the result stale
    line: int        # the construction's first line (0-based)


_results: dict[_Key, dict] = {}


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def code_lenses(ls, uri: str, analysis: Analysis, findings: list[Finding]) -> list[t.CodeLens]:
    lenses = []
    for f in findings:
        if f.code == "OPX101" and f.fixable:
            rng = ls.to_range(analysis, f.span)
            lenses.append(t.CodeLens(range=rng, command=t.Command(
                title=TITLE, command=COMMAND,
                arguments=[{"uri": uri, "position": {"line": rng.start.line, "character": rng.start.character}}])))
    return lenses


def hover_note(uri: str, analysis: Analysis, span: Span) -> str | None:
    """What the last verification of the construction at `span` found, for its hover."""
    row = _results.get(_Key(uri, _digest(analysis.source.text), span.start.line))
    if row is None:
        return None
    head = "Verified on your hyperparameters" if row["status"] == "pass" else "Verification FAILED on your hyperparameters"
    detail = f"tolerance {row['tolerance']:.0e}"
    if row.get("first_step_over"):
        detail += f"; first over it at update {row['first_step_over']}"
    return (f"**{head}:** max |Δθ| {row['max_abs_diff']:.1e} over {row['steps']} steps "
            f"({row['status'].upper()}, {detail}; `switcheroo-lsp verify`)")


def _message(ls, kind: t.MessageType, text: str) -> None:
    ls.window_show_message(t.ShowMessageParams(type=kind, message=text))


async def run(ls, arg) -> dict:
    """The `switcheroo.verify` command."""
    if not isinstance(arg, dict) or not isinstance(arg.get("uri"), str) or not isinstance(arg.get("position"), dict):
        return _done(ls, "error", "switcheroo.verify needs {uri, position}", t.MessageType.Error)
    uri = arg["uri"]
    entry = ls.entry(uri)
    if entry is None:
        return _done(ls, "error", f"{uri} is not open", t.MessageType.Error)
    if entry.analysis.syntax_error:
        return _done(ls, "error", f"{uri} does not parse: {entry.analysis.syntax_error.message}", t.MessageType.Error)
    analysis = entry.analysis
    pos = ls.from_position(analysis, t.Position(int(arg["position"].get("line", 0)), int(arg["position"].get("character", 0))))
    construction = next((f for f in analysis.finding_at(pos) if f.code == "OPX101" and f.fixable), None)
    if construction is None:
        construction = next((f for f in analysis.findings if f.code == "OPX101" and f.fixable
                             and f.span.start.line <= pos.line <= f.span.end.line), None)
    if construction is None:
        return _done(ls, "error", "No torch.optim construction with a rewrite here to verify.", t.MessageType.Info)
    python = arg.get("python") or sys.executable
    steps = int(arg.get("steps") or 200)
    settings = arg.get("set") or {}

    token = f"switcheroo-verify-{next(_tokens)}"
    progress = _Progress(ls, token)
    await progress.begin(f"{TITLE}: {construction.message.split(' →', 1)[0]}")
    try:
        missing = await _missing(python, analysis.target.name)
        if missing:
            listed = " and ".join(missing) if len(missing) <= 2 else ", ".join(missing[:-1]) + " and " + missing[-1]
            return _done(ls, "missing", f"Verify needs {listed}, not installed for {python}: install "
                         f"{'them' if len(missing) > 1 else 'it'} with `{python} {INSTALL}`", t.MessageType.Error,
                         missing=missing)
        return await _verify(ls, uri, analysis, construction, python, steps, settings, progress)
    except asyncio.CancelledError:
        return _done(ls, "cancelled", "Verification cancelled.", t.MessageType.Info)
    finally:
        progress.end()


async def _missing(python: str, target: str) -> list[str]:
    modules = required(target)
    try:
        proc = await asyncio.create_subprocess_exec(python, "-c", probe(modules), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return json.loads(out.decode() or "[]") if proc.returncode == 0 else modules
    except (OSError, ValueError, asyncio.TimeoutError):
        return modules


async def _verify(ls, uri, analysis, construction, python, steps, settings, progress) -> dict:
    real = to_fs_path(uri) or "document.py"
    with tempfile.TemporaryDirectory(prefix="switcheroo-verify-") as tmp:
        # The current text, unsaved edits included, under the document's own file name.
        path = Path(tmp) / (Path(real).name if real.endswith(".py") else "document.py")
        path.write_text(analysis.source.text, encoding="utf-8", newline="")
        cmd = [python, "-m", "switcheroo_lsp", "verify", str(path), "--line", str(construction.span.start.line + 1),
               "--format", "json", "--progress", "--steps", str(steps), "--target", analysis.target.name]
        for name, value in settings.items():
            cmd += ["--set", f"{name}={value}"]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, cwd=tmp)
        progress.on_cancel(proc)
        errors: list[str] = []

        async def read_stderr():
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                if line.startswith("progress: "):
                    progress.report(line[len("progress: "):])
                elif line:
                    errors.append(line.replace(str(path), real))

        try:
            out, _, code = await asyncio.gather(proc.stdout.read(), read_stderr(), proc.wait())
        except asyncio.CancelledError:
            proc.kill()
            raise
    if progress.cancelled:
        return _done(ls, "cancelled", "Verification cancelled.", t.MessageType.Info)
    rows = []
    try:
        rows = json.loads(out.decode() or "[]")
    except ValueError:
        pass
    if code == 2 or not rows:
        detail = "\n".join(e for e in errors if not e.startswith("warning:")) or f"exit code {code}"
        status = "unresolved" if "do not resolve statically" in detail or "does not resolve statically" in detail else "error"
        hint = " Set them in the code (a constant, an argparse or dataclass default) or run `switcheroo-lsp verify " \
               "--set NAME=VALUE`." if status == "unresolved" else ""
        return _done(ls, status, f"Could not verify: {detail}{hint}", t.MessageType.Warning)
    column = construction.span.start.col + 1       # two constructions on one line: this one
    row = next((r for r in rows if r["column"] == column), rows[0])
    row["path"] = real
    _results[_Key(uri, _digest(analysis.source.text), construction.span.start.line)] = row
    if row["status"] == "pass":
        text = (f"Verified on your hyperparameters: {row['optimizer']} → {row['rewrite']}: max |Δθ| "
                f"{row['max_abs_diff']:.1e} over {row['steps']} steps, within the tolerance {row['tolerance']:.0e}.")
        return _done(ls, "pass", text, t.MessageType.Info, row=row)
    text = (f"Verification FAILED: {row['rewrite']} differs from {row['optimizer']} by max |Δθ| "
            f"{row['max_abs_diff']:.1e} (tolerance {row['tolerance']:.0e}), first at update {row['first_step_over']}.")
    return _done(ls, "fail", text, t.MessageType.Error, row=row)


def _done(ls, status: str, message: str, kind: t.MessageType, **extra) -> dict:
    _message(ls, kind, message)
    return {"status": status, "message": message, **extra}


class _Progress(WorkDone):
    """Server-initiated work-done progress, where the client supports it; its cancel kills the run."""

    def __init__(self, ls, token: str):
        super().__init__(ls, token)
        self.cancelled = False
        self.proc = None

    async def begin(self, title: str) -> None:
        if not await self.open(t.WorkDoneProgressBegin(
                title=title, cancellable=True, message="starting python", percentage=0)):
            return
        future = self.ls.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(self._cancelled)

    def _cancelled(self, future) -> None:
        if future.cancelled():
            self.cancelled = True
            if self.proc is not None and self.proc.returncode is None:
                self.proc.kill()

    def on_cancel(self, proc) -> None:
        self.proc = proc
        if self.cancelled and proc.returncode is None:
            proc.kill()

    def report(self, line: str) -> None:
        if not self.enabled:
            return
        count, _, what = line.partition(" ")
        done, _, total = count.partition("/")
        percentage = None
        if done.isdigit() and total.isdigit() and int(total):
            percentage = int(100 * int(done) / int(total))
        self.ls.work_done_progress.report(self.token, t.WorkDoneProgressReport(message=what, percentage=percentage))

    def end(self) -> None:
        if self.enabled:
            self.ls.work_done_progress.end(self.token, t.WorkDoneProgressEnd(
                message="cancelled" if self.cancelled else "done"))
            self.ls.work_done_progress.tokens.pop(self.token, None)
