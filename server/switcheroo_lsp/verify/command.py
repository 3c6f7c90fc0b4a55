"""`switcheroo-lsp verify PATH...`: each construction's torch original and its rewrite, side by
side on the verify problems, with the file's own hyperparameters.

Exit codes: 0 every construction passed; 1 one failed (a difference beyond the catalog's
tolerance); 2 usage, I/O, a missing `verify` extra, an argument that does not resolve (until
`--set` gives it) or a construction that could not run at all.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from ..engine import analyze
from . import cases as C
from .outcome import Outcome

DEFAULT_STEPS = 200
INSTALL = "pip install 'switcheroo-lsp[verify]'"


def missing_modules(plot: bool, target: str = "optax") -> list[str]:
    wanted = ["torch", "jax", "optax"] + (["flax"] if target == "flax-nnx" else []) + (["matplotlib"] if plot else [])
    return [m for m in wanted if importlib.util.find_spec(m) is None]


def parse_settings(pairs: list[str]) -> tuple[dict[str, str], list[str]]:
    from .literals import NotLiteral, value_of
    settings, errors = {}, []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            errors.append(f"--set {pair}: expected NAME=VALUE")
            continue
        try:
            value_of(value)
        except NotLiteral:
            errors.append(f"--set {pair}: {value!r} is not a Python literal (a number, True/False, a tuple, a string…)")
            continue
        settings[name.strip()] = value
    return settings, errors


class _Progress:
    """`progress: <done>/<total> <what>` lines on stderr, for the editor's progress report."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.done = enabled, total, 0

    def __call__(self, what: str, advance: int = 0) -> None:
        self.done += advance
        if self.enabled:
            print(f"progress: {self.done}/{self.total} {what}", file=sys.stderr, flush=True)


def main(ns, collect, read_source) -> int:
    """`collect(paths)` -> ([(path, settings)], problems) and `read_source(path)` -> text come
    from the command line, which walks folders and decodes files the same way for every command."""
    if ns.steps < 1:
        print("switcheroo-lsp verify: --steps must be at least 1", file=sys.stderr)
        return 2
    settings, errors = parse_settings(ns.set or [])
    files, problems = collect(ns.paths)
    targets = {(s.target or "optax") for _, s in files} or {"optax"}
    missing = list(dict.fromkeys(m for target in sorted(targets) for m in missing_modules(bool(ns.plot), target)))
    if missing:
        errors.append(f"verify needs {', '.join(missing)}, not installed for {sys.executable}: {INSTALL}")
    if errors:
        for e in errors:
            print(f"switcheroo-lsp verify: {e}", file=sys.stderr)
        return 2

    found: list[tuple[C.Resolved, str]] = []     # with the target it is verified for
    unresolved: list[str] = []
    used: set[str] = set()
    from .hyperparams import Document
    from .torch_runner import signature
    for path, file_settings in files:
        target = file_settings.target or "optax"
        if not path.endswith(".py"):
            problems.append(f"{path}: verify reads Python files only")
            continue
        try:
            text = read_source(Path(path))
        except (OSError, UnicodeDecodeError, SyntaxError) as e:
            problems.append(f"{path}: cannot read: {e}")
            continue
        analysis = analyze(text, target)
        if analysis.syntax_error:
            problems.append(f"{path}: {analysis.syntax_error.message}")
            continue
        doc = Document(text)
        for case in C.find_cases(path, analysis, doc):
            span = case.rewrite.span
            if ns.line is not None and not (span.start.line + 1 <= ns.line <= span.end.line + 1):
                continue
            res = C.resolve(case, doc, settings, signature, used)
            if isinstance(res, C.Unresolvable):
                unresolved.append(C.unresolved_message(res))
            else:
                found.append((res, target))
    for name in settings:
        if C.L.key(name) not in used and name not in used:
            print(f"warning: --set {name} matched no argument or name that needed a value", file=sys.stderr)

    progress = _Progress(ns.progress, len(found))
    outcomes: list[Outcome] = []
    failures: list[str] = []
    if found:
        progress("importing torch and jax")
        from .run import verify_case
        done: dict[tuple, Outcome] = {}      # the same calls and rewrite run once (a folder repeats them)
        for res, target in found:
            progress(f"{res.case.where}: {res.case.rewrite.torch}")
            try:
                same = done.get((target, _identity(res)))
                outcome = same.again(res) if same else verify_case(res, target, ns.steps)
                done[(target, _identity(res))] = outcome
            except Exception as e:      # the user's values may not run at all (lr=-1, …)
                failures.append(f"{res.case.where}: {res.case.rewrite.torch}: could not run: {type(e).__name__}: {e}")
                progress(f"{res.case.where}: could not run", 1)
                continue
            if ns.plot:
                from .plot import plot
                outcome.plot = str(plot(outcome, Path(ns.plot)))
            outcomes.append(outcome)
            progress(f"{res.case.where}: {outcome.status}", 1)

    if ns.format == "json":
        print(json.dumps([o.row() for o in outcomes], ensure_ascii=False, indent=2))
    else:
        for o in outcomes:
            print(render(o))
        if outcomes:
            passed = sum(o.status == "pass" for o in outcomes)
            print(f"{len(outcomes)} construction{'s' if len(outcomes) != 1 else ''} verified: {passed} passed, "
                  f"{len(outcomes) - passed} failed")
    for message in problems + unresolved + failures:
        print(message, file=sys.stderr)
    if not found and not unresolved and not problems:
        print("no torch.optim construction with a rewrite to verify", file=sys.stderr)
    if unresolved or failures or any("no such file" in p or "cannot read" in p for p in problems):
        return 2
    return 1 if any(o.status == "fail" for o in outcomes) else 0


def _identity(res: C.Resolved) -> tuple:
    key = C.L.key
    return (key(res.torch_optimizer), key(res.torch_scheduler or ""), tuple(map(key, res.torch_clips)),
            key(res.optax), key(res.schedule or ""), res.per_epoch, res.epoch, res.maximize,
            repr(res.groups), repr(res.labels))


def render(o: Outcome) -> str:
    case = o.case
    call = C.L.one_line(case.rewrite.call)
    lines = [f"{case.where}: {call}", f"  rewrite   {case.rewrite.written or case.rewrite.optax}"]
    if o.resolved.values:
        lines.append("  values    " + ", ".join(f"{k} = {v.value!r} ({v.source})" for k, v in o.resolved.values.items()))
    for r in o.results:
        own = f"  tolerance {r.tolerance:.0e}" if len({x.tolerance for x in o.results}) > 1 else ""
        lines.append(f"  {r.problem:<9} max |Δθ| {r.max_abs:.1e}  max relative Δθ {r.max_rel:.1e}{own}"
                     + (f"  over the tolerance from update {r.first_over}" if r.first_over else "")
                     + (f"  ({r.stopped})" if r.stopped else ""))
    for note in o.resolved.notes:
        lines.append(f"  note      {note}")
    head = f"{o.steps} updates, {o.dtype}"
    if o.status == "pass":
        lines.append(f"  PASS      {head}: max |Δθ| {o.max_abs:.1e} within tolerance {o.tolerance:.0e} ({o.tolerance_why})")
    else:
        step, problem = o.first_over
        lines.append(f"  FAIL      {head}: max |Δθ| {o.max_abs:.1e} beyond tolerance {o.tolerance:.0e} "
                     f"({o.tolerance_why}), first at update {step} ({problem})")
    if o.plot:
        lines.append(f"  plot      {o.plot}")
    return "\n".join(lines)
