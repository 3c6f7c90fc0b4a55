"""How many converted steps need no TODO with the Flax NNX target: the step's `backward()`
became a loss function and `nnx.value_and_grad` (analysis/gradients.py), so the fixed loop is
complete but for the torch calls inside the loss function (the model's and the loss's, ported by
hand like the model). Every step left with a TODO is listed with the reason its OPX203 gives.
Run by hand; not part of CI.

    .venv/bin/python bench/gradients.py               # the corpora of bench/recall.py
    .venv/bin/python bench/gradients.py --list        # every step, derived or not, with its reason

A converted step is an OPX102 with a fix (its optimizer's flow converts). Each file's fix-all
result must still parse; a file that does not is counted (and listed).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recall import CORPORA, checkout  # noqa: E402

# The reasons OPX203 gives, grouped (the first pattern that matches).
KINDS = [
    ("module not known", r"the module .* not known here|the module it trains, is not defined|is not a plain name"),
    ("no backward() before the step", r"no backward\(\) (precedes|between)"),
    ("one loss, two optimizers", r"also feeds"),
    ("several backward() per update", r"backward\(\) calls .* feed this update"),
    ("backward() under a condition", r"backward\(\) runs under a condition|one under a condition"),
    ("retain_graph / create_graph / explicit gradient", r"retain_graph|create_graph|explicit gradient|inputs="),
    ("hooks, torch.autograd", r"changes gradients"),
    (".grad read or edited", r"\.grad\b"),
    ("gradients handled between backward() and step", r"handles the parameters between"),
    ("loss from values computed before the previous update", r"the loss reads .* computed from"),
    ("loss does not run the module (REINFORCE-style saved values)", r"does not run"),
    ("statements interleaved with the loss's", r"between the loss's statements|holds other statements"),
    ("loss statements change outer state", r"lives outside the loss|leaves the loss|holds optimizer calls"),
    ("accumulation not derivable", r"MultiSteps by hand|accumulation|micro-step"),
    ("zeroing not known", r"zero_grad|never zeroed"),
]


def kind_of(reason: str) -> str:
    return next((k for k, pattern in KINDS if re.search(pattern, reason)), "other")


def run_corpus(repo: str, commit: str, folders: list[str], mirror: Path, listing: bool) -> Counter:
    from switcheroo_lsp.engine import analyze_project, apply
    stats = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = checkout(mirror, repo, commit, folders, root)
        texts = {}
        for f in files:
            try:
                texts[str(f)] = f.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
        project = analyze_project(texts, "flax-nnx", roots=[str(root)])
        for path, analysis in sorted(project.items()):
            steps = [f for f in analysis.findings if f.code == "OPX102" and f.fixable]
            if not steps:
                continue
            rel = Path(path).relative_to(root)
            for finding in steps:
                gradients = analysis.site(finding.key).gradients
                stats["steps"] += 1
                where = f"{repo}/{rel}:{finding.span.start.line + 1}"
                if gradients is not None and gradients.region is not None:
                    stats["derived"] += 1
                    acc = gradients.region.accumulate
                    if acc is not None:
                        stats["running sum" if acc.keeps_sum else "MultiSteps"] += 1
                    if listing:
                        print(f"  derived  {where}")
                else:
                    reason = gradients.reason if gradients is not None else "(no analysis)"
                    stats[f"todo: {kind_of(reason)}"] += 1
                    print(f"  TODO     {where}: {reason}")
            fixed = apply(texts[path], analysis.fix_all())
            try:
                ast.parse(fixed)
            except SyntaxError:
                stats["files broken by fix"] += 1
                print(f"  BROKEN BY FIX {repo}/{rel}")
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", default="/work/.mirror")
    ap.add_argument("--only", default="", help="comma-separated repositories")
    ap.add_argument("--list", action="store_true", help="list the derived steps too")
    ns = ap.parse_args()
    totals = Counter()
    for repo, commit, folders in CORPORA:
        if ns.only and repo not in ns.only.split(","):
            continue
        s = run_corpus(repo, commit, folders, Path(ns.mirror), ns.list)
        totals.update(s)
        print(f"{repo}@{commit[:7]}: {_line(s)}", flush=True)
    print(f"all: {_line(totals)}")
    for key, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        if key.startswith("todo: "):
            print(f"    {n:3d}  {key[6:]}")


def _line(s: Counter) -> str:
    steps, derived = s.get("steps", 0), s.get("derived", 0)
    pct = f"{100 * derived / steps:.0f} %" if steps else "-"
    extra = ", ".join(f"{k} {s[k]}" for k in ("MultiSteps", "running sum") if s.get(k))
    return (f"converted steps {steps}, no TODO {derived} ({pct})" + (f" [{extra}]" if extra else "")
            + f", fix-all results that do not parse {s.get('files broken by fix', 0)}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    main()
