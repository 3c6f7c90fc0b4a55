"""How many `param_groups` uses fix-all leaves for a person, over bench/recall.py's corpora.

Every line of a corpus that mentions `.param_groups` is one use, counted once per target as:
converted (an OPX107 on it: kept in the state by optax.inject_hyperparams), left for a person
(an OPX202 on it; its reason, the message's last parenthesis, tallied with --reasons), or not
flagged (not traced to a torch optimizer: an optimizer class's own `self.param_groups`, a
helper given an object of unknown type). Run by hand, like recall.py:

    .venv/bin/python bench/param_groups_left.py [--target optax|flax-nnx] [--reasons] [--only REPO]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recall import CORPORA, checkout  # noqa: E402


def _reason(message: str) -> str:
    m = re.search(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)$", message)
    return m.group(1)[:110] if m else message.split(": ", 1)[-1][:110]


def count(repo: str, commit: str, folders: list[str], mirror: Path, target: str, reasons: Counter) -> Counter:
    from switcheroo_lsp.engine import analyze_project
    with tempfile.TemporaryDirectory() as tmp:
        files = checkout(mirror, repo, commit, folders, Path(tmp))
        root = str(Path(tmp))
        texts = {}
        for f in files:
            try:
                texts[str(f)] = f.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
        project = analyze_project(texts, target, roots=[root])
        out = Counter()
        for path, text in texts.items():
            lines = [i for i, line in enumerate(text.splitlines()) if ".param_groups" in line]
            if not lines:
                continue
            analysis = project[path]
            on = {}
            for f in analysis.findings:
                on.setdefault(f.span.start.line, []).append(f)
            for i in lines:
                found = on.get(i, [])
                if any(f.code == "OPX107" for f in found):
                    out["converted"] += 1
                elif any(f.code == "OPX202" for f in found):
                    out["left for a person"] += 1
                    f = next(f for f in found if f.code == "OPX202")
                    reasons[_reason(f.message)] += 1
                else:
                    out["not flagged"] += 1
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default="/work/.mirror")
    parser.add_argument("--target", default="optax", choices=("optax", "flax-nnx"))
    parser.add_argument("--only", default=None)
    parser.add_argument("--reasons", action="store_true")
    args = parser.parse_args()
    total, reasons = Counter(), Counter()
    for repo, commit, folders in CORPORA:
        if args.only and args.only not in repo:
            continue
        c = count(repo, commit, folders, Path(args.mirror), args.target, reasons)
        total.update(c)
        print(f"{repo:45} converted {c['converted']:3}  left for a person {c['left for a person']:3}  "
              f"not flagged {c['not flagged']:3}")
    print(f"{'total':45} converted {total['converted']:3}  left for a person {total['left for a person']:3}  "
          f"not flagged {total['not flagged']:3}")
    if args.reasons:
        for reason, n in reasons.most_common():
            print(f"  {n:3}  {reason}")


if __name__ == "__main__":
    main()
