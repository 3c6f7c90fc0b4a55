"""Command line: `serve`, `check`, `fix`, `verify`, `--version`. Calls the same core as the server.
`verify` lives in switcheroo_lsp.verify; only it imports torch and jax, and only when run."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
import tokenize
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from ..analysis import cache, index
from ..engine import CODES, Workspace, analyze, apply
from ..targets import TARGETS
from .check_cache import Results, rows_of
from .config import Settings, load_pyproject, visible
from .report_formats import render

PARALLEL_THRESHOLD = 16   # below this many files a process pool costs more than it saves


@dataclass
class FileResult:
    path: str
    findings: list[dict]
    error: str | None = None
    new_text: str | None = None
    old_text: str | None = None
    flows: set = field(default_factory=set)        # the optimizer flows its fixes convert
    related: list = field(default_factory=list)    # the project's files it was traced with
    diff: str | None = None           # a notebook's diff, per cell
    notes: list[str] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)   # each finding's key in its analysis


def read_source(path: Path) -> str:
    """Decode as Python does (PEP 263 cookie, BOM), keeping line breaks as they are."""
    with open(path, "rb") as f:
        encoding, _ = tokenize.detect_encoding(f.readline)
    with open(path, encoding=encoding, newline="") as f:
        return f.read()


_WORKSPACES: dict[tuple[str, ...], Workspace] = {}
_INDEX: dict[tuple[str, ...], index.Snapshot] = {}     # the project index, per project (and process)


def workspace(roots: tuple[str, ...]) -> Workspace:
    """One workspace per project and process: a file's neighbours are parsed once; who imports
    whom comes from the project index."""
    if roots not in _WORKSPACES:
        ws = _WORKSPACES[roots] = Workspace(roots)
        if roots in _INDEX:
            ws.apply_scan(_INDEX[roots])
    return _WORKSPACES[roots]


def _init_worker(roots: tuple[str, ...], snap: index.Snapshot) -> None:
    _INDEX[roots] = snap


def _process(args: tuple[str, Settings, bool, tuple[str, ...]]) -> FileResult:
    path, settings, fixing, roots = args
    if path.endswith(".ipynb"):
        return _process_notebook(path, settings, fixing)
    try:
        text = read_source(Path(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as e:
        return FileResult(path, [], error=f"{path}: cannot read: {e}")
    ws = workspace(roots)
    ws.set_open(path, text)            # the text as decoded here (a PEP 263 cookie, a BOM)
    analysis = analyze(text, settings.target, workspace=ws, path=path)
    if analysis.syntax_error:
        return FileResult(path, [], error=f"{path}: {analysis.syntax_error.message}")
    # Every finding (the settings filter them where they are shown: a cached run filters alike).
    result = FileResult(path, rows_of(path, analysis.findings), flows=analysis.flow_keys() if fixing else set(),
                        related=analysis.related_paths(), keys=[f.key for f in analysis.findings])
    if fixing:
        keys = {f.key for f in visible(analysis.findings, settings) if f.fixable}
        edits = analysis.fix_all(keys)
        result.old_text = text
        result.new_text = apply(text, edits) if edits else text
    return result


def _process_notebook(path: str, settings: Settings, fixing: bool) -> FileResult:
    from .notebook_files import process
    try:
        text = Path(path).read_bytes().decode("utf-8")     # JSON is UTF-8; line breaks kept
    except (OSError, UnicodeDecodeError) as e:
        return FileResult(path, [], error=f"{path}: cannot read: {e}")
    nb = process(path, text, settings, fixing)
    return FileResult(path, nb.rows, error="\n".join(nb.errors) or None, old_text=text,
                      new_text=nb.new_text if nb.new_text is not None else text, diff=nb.diff, notes=nb.notes)


def collect_files(paths: list[str], target: str | None = None) -> tuple[list[tuple[str, Settings]], list[str]]:
    """The files to read (folders walked for *.py), with their project's settings (`--target`
    overriding theirs)."""
    files, errors = [], []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            errors.append(f"{raw}: no such file or directory")
            continue
        settings, root = load_pyproject(p if p.is_dir() else p.parent)
        if target is not None:
            settings = replace(settings, target=target)
        for problem in settings.problems:
            print(f"warning: {problem}", file=sys.stderr)
        if p.is_file():
            files.append((raw, settings))
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            d = Path(dirpath)
            dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in ("__pycache__", "node_modules")
                                 and not settings.excluded(d / n, root or p))
            for name in sorted(filenames):
                if name.endswith((".py", ".ipynb")) and not settings.excluded(d / name, root or p):
                    files.append((str(d / name), settings))
    return files, errors


def _roots(paths: list[str]) -> tuple[str, ...]:
    """The project the paths belong to: folders as given, a file's package (where its imports
    resolve from)."""
    roots = []
    for raw in paths:
        p = Path(raw).resolve()
        if p.exists():
            roots.append(str(p if p.is_dir() else Workspace.package_root(p)))
    return tuple(dict.fromkeys(roots))


def _shown(rows: list[dict], settings: Settings) -> list[dict]:
    """The rows the settings let through, with their configured severity."""
    return [{**r, "severity": settings.severity_of(r["code"], CODES[r["code"]][0])}
            for r in rows if settings.enabled(r["code"])]


def run_files(files: list[tuple[str, Settings]], fixing: bool, roots: tuple[str, ...] = (),
         parallel: bool = True) -> list[FileResult]:
    """Each file's result, from the cache where nothing it depends on changed (analysis/cache.py,
    check_cache.py), else analysed (in a process pool when there are many and `parallel`)."""
    cached = cache.load_index(roots, facts=False) if roots else None
    snap = index.scan(roots, cached) if roots else None
    results: list[FileResult | None] = [None] * len(files)
    keys: dict[int, str] = {}
    store = None
    if snap is not None:
        _INDEX[roots] = snap
        _WORKSPACES.pop(roots, None)
        store = Results(roots, snap)
        if cached is None or cached.files != snap.files or cached.links != snap.links:
            cache.save_index(snap, facts=False)        # the server's facts file is left as it is
        for i, (path, settings) in enumerate(files):
            if path.endswith(".ipynb"):
                continue
            keys[i] = store.key(path, settings.target)
            hit = store.get(keys[i])
            if hit is not None and not (fixing and any(r["fixable"] for r in _shown(hit["rows"], settings))):
                rows = [{**r, "path": path} for r in hit["rows"]]     # the server may have written it
                results[i] = FileResult(path, rows, error=hit["error"], related=hit["related"])
    todo = [i for i, r in enumerate(results) if r is None]
    jobs = [(files[i][0], files[i][1], fixing, roots) for i in todo]
    progress = _Progress(len(files), len(files) - len(todo))
    workers = os.cpu_count() or 1
    if parallel and len(jobs) >= PARALLEL_THRESHOLD and workers > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(roots, snap) if snap is not None else ((), index.Snapshot([]))) as pool:
            done = pool.map(_process, jobs, chunksize=max(1, len(jobs) // (workers * 4)))
            for i, res in zip(todo, done):
                results[i] = res
                progress.step()
    else:
        for i, job in zip(todo, jobs):
            results[i] = _process(job)
            progress.step()
    progress.close()
    if store is not None:
        for i, key in keys.items():
            res = results[i]
            if i in todo and res is not None:
                store.put(key, res.findings, res.error, res.related, res.keys)
        store.save()
    for (_, settings), res in zip(files, results):
        res.findings = _shown(res.findings, settings)
    return results


class _Progress:
    """`checked 120/500 files` on stderr, rewritten in place, when stderr is a terminal."""

    def __init__(self, total: int, done: int):
        self.total, self.done = total, done
        self.on = total >= PARALLEL_THRESHOLD and sys.stderr.isatty()
        self.last = 0.0

    def step(self) -> None:
        self.done += 1
        if self.on and (time.monotonic() - self.last > 0.1 or self.done == self.total):
            self.last = time.monotonic()
            sys.stderr.write(f"\rswitcheroo-lsp: {self.done}/{self.total} files")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on and self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def cmd_check(ns) -> int:
    files, errors = collect_files(ns.paths, ns.target)
    results = run_files(files, fixing=False, roots=_roots(ns.paths))
    rows = [r for res in results for r in res.findings]
    for res in results:
        if res.error:
            errors.append(res.error)
    if ns.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif ns.format in ("github", "sarif"):
        sys.stdout.write(render(ns.format, rows, errors))
    else:
        for r in rows:
            where = f"{r['path']}:cell {r['cell']}" if "cell" in r else r["path"]
            print(f"{where}:{r['line']}:{r['column']}: {r['code']} {r['message']}")
    for note in (n for res in results for n in res.notes):
        print(note, file=sys.stderr)
    for e in errors:
        print(e, file=sys.stderr)
    if any("no such file" in e for e in errors) and not files:
        return 2
    return 1 if rows or errors else 0


def _flow_partners(results: list[FileResult], files: list[tuple[str, Settings]], roots) -> list[FileResult]:
    """The project's other files holding parts of the optimizer flows the given files' fixes
    convert (a construction here, its steps there): fixed with them, so that no flow ends up
    half torch, half Optax."""
    given = {str(Path(p).resolve()) for p, _ in files}
    keys = set().union(*(r.flows for r in results)) if results else set()
    candidates = sorted({p for r in results for p in r.related} - given)
    settings = files[0][1] if files else Settings()
    partners = []
    for path in candidates:
        res = _process((path, settings, True, roots))
        if res.error is None and res.flows & keys and res.new_text != res.old_text:
            partners.append(res)
    return partners


def cmd_fix(ns) -> int:
    files, errors = collect_files(ns.paths, ns.target)
    roots = _roots(ns.paths)
    results = run_files(files, fixing=True, roots=roots)
    for partner in _flow_partners(results, files, roots):
        print(f"{partner.path}: fixed too (it holds part of an optimizer flow of the files given)", file=sys.stderr)
        results.append(partner)
    changed = 0
    skipped = []
    for res in results:
        for note in res.notes:
            print(note, file=sys.stderr)
        if res.error:
            errors.append(res.error)
            skipped.append(res.path)
            continue
        if res.new_text is None or res.new_text == res.old_text:
            continue
        changed += 1
        if ns.diff and res.diff is not None:
            sys.stdout.write(res.diff)
        elif ns.diff:
            for line in difflib.unified_diff(
                    res.old_text.splitlines(keepends=True), res.new_text.splitlines(keepends=True),
                    fromfile=f"a/{res.path}", tofile=f"b/{res.path}"):
                # A file's last line without a line break: say so, as diff does (and start the next file on its own line).
                sys.stdout.write(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n")
        else:
            try:
                with open(res.path, "w", encoding="utf-8", newline="") as f:
                    f.write(res.new_text)
            except OSError as e:
                errors.append(f"{res.path}: cannot write: {e}")
    for e in errors:
        print(e, file=sys.stderr)
    if not ns.diff:
        print(f"fixed {changed} file{'s' if changed != 1 else ''}", file=sys.stderr)
    if skipped:
        print(f"skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} (not read, or not parsed): "
              f"{', '.join(skipped)}", file=sys.stderr)
    if errors:
        return 2        # a hook or CI job must not pass on files it never fixed
    return 1 if ns.diff and changed else 0


def cmd_serve(ns) -> int:
    from .lsp import serve
    serve()
    return 0


def cmd_verify(ns) -> int:
    from ..verify.command import main as verify
    return verify(ns, lambda paths: collect_files(paths, ns.target), read_source)


def _verify_parser(sub) -> None:
    from ..verify.command import DEFAULT_STEPS
    verify = sub.add_parser("verify", help="run each construction's torch original and its rewrite side by side")
    verify.add_argument("paths", nargs="+")
    verify.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="a value for an argument (lr=3e-4) or a name (cfg.lr=3e-4) that does not resolve statically")
    verify.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"updates per run (default {DEFAULT_STEPS})")
    verify.add_argument("--plot", metavar="DIR", help="write one PNG per construction into DIR")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.add_argument("--target", choices=tuple(TARGETS), default=None,
                        help="the rewrite to run: optax or flax-nnx (default: [tool.switcheroo] target, else optax)")
    verify.add_argument("--line", type=int, help="only the construction on this line (1-based)")
    verify.add_argument("--progress", action="store_true", help="progress lines on stderr (for editors)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switcheroo-lsp",
                                     description="Port torch.optim training code to Optax, numerically faithfully.")
    parser.add_argument("--version", action="version", version=f"switcheroo-lsp {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the language server over stdio")
    serve.add_argument("--stdio", action="store_true", help="accepted for vscode-languageclient; stdio is the default")
    check = sub.add_parser("check", help="report findings as path:line:col: CODE message")
    check.add_argument("paths", nargs="+")
    # `--format` is the older spelling, kept.
    check.add_argument("--output-format", "--format", dest="format", default="text",
                       choices=("text", "json", "github", "sarif"),
                       help="github: GitHub Actions annotations; sarif: SARIF 2.1.0 for code scanning")
    fix = sub.add_parser("fix", help="apply every available fix in place")
    fix.add_argument("paths", nargs="+")
    fix.add_argument("--diff", action="store_true", help="print a unified diff instead of writing")
    for command in (check, fix):
        command.add_argument("--target", choices=tuple(TARGETS), default=None,
                             help="what the rewrites write: optax (functional, the default) or flax-nnx "
                                  "(nnx.Optimizer); overrides [tool.switcheroo] target")
    _verify_parser(sub)
    try:
        ns = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if ns.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return {"serve": cmd_serve, "check": cmd_check, "fix": cmd_fix, "verify": cmd_verify}[ns.command](ns)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
