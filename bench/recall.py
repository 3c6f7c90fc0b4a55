"""Recall on public training code you did not write: how many of its optimizer constructions,
`step()`s and `zero_grad()`s switcheroo finds, what it flags that is not an optimizer, and
whether fix-all ever leaves a file that does not parse. Run by hand; not part of CI.

    .venv/bin/python bench/recall.py                # every corpus below (fetched repositories)
    .venv/bin/python bench/recall.py --show-missed  # and list what was missed, per corpus

Each corpus is a public repository at a pinned commit, read from a local git directory
(`--mirror DIR`, default /work/.mirror, laid out as OWNER+NAME/repo: what the search tool's
`fetch` brings). Its files are checked out into a temporary folder and analysed as a project
(the workspace index follows optimizers across its files).

Silent half conversions (the count that must be 0): after fix-all of the whole project, a torch
optimizer call (`.step()`, `.zero_grad()`, `.state_dict()`, `.param_groups`, `scaler.step(...)`,
a scheduler's `.get_last_lr()`...) on a receiver named like an optimizer or scheduler that fix-all
converted (same name, in its file or a file traced with it) whose line carries no finding when
the fixed project is checked again.

Ground truth, by name: a construction is a call to `torch.optim.<Optimizer>(` / `optim.<Optimizer>(`
(the torch 2.13 classes), or to a library's optimizer (`bnb.optim.AdamW8bit(`, `Prodigy(`,
`create_optimizer_v2(`, `optimizer_class(`: LIBRARY below); a step or zero_grad is
`<receiver>.step(` / `.zero_grad(` whose receiver's last name mentions "optim" or "opt" (`optimizer`, `opt_d`, `self.policy.optimizer`),
plus `scaler.step(<such a receiver>)`. Found: a finding (OPX1xx/OPX2xx) on that line. A false
positive: a step or zero_grad finding on a receiver whose name says scheduler, env, model or loss.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

CORPORA = [
    # (owner/name, commit, folders to read ("" = all))
    ("pytorch/examples", "77f55b912142e11fcfdf5b530231fb9c52f181e8", [""]),
    ("karpathy/nanoGPT", "3adf61e154c3fe3fca428ad6bc3818b27a3b8291", [""]),
    ("facebookresearch/deit", "7e160fe43f0252d17191b71cbb5826254114ea5b", [""]),
    ("DLR-RM/stable-baselines3", "e05d2dbe6eda0acd0ef2e316e3e4065677add3eb", ["stable_baselines3"]),
    ("huggingface/accelerate", "16cb6eb80dd9aa8b4df1a63ef57863e455d53b83", ["examples"]),
    ("Lightning-AI/litgpt", "26857050fe3ff627cd714fe92f5838f51a3d5efa", ["litgpt"]),
    # Added for the closed-world check (not tuned to): Lightning modules and Fabric loops,
    # self-supervised, RL, GAN and diffusion trainers.
    ("Lightning-AI/pytorch-lightning", "7f0c3436cd3f6ad3753125672024fc415cbcb414", ["examples"]),
    ("facebookresearch/dino", "7c446df5b9f45747937fb0d72314eb9f7b66930a", [""]),
    ("vwxyzjn/cleanrl", "fe8d8a03c41a7ef5b523e2e354bd01c363e786bb", ["cleanrl"]),
    ("CompVis/taming-transformers", "3ba01b241669f5ade541ce990f7650a3b8f65318", [""]),
    ("eriklindernoren/PyTorch-GAN", "36d3c77e5ff20ebe0aeefd322326a134a279b93e", [""]),
    ("lucidrains/denoising-diffusion-pytorch", "faed4db28e724735323fa91c70aa9b28a6e1cbac", [""]),
    # The libraries around torch (issue 20): diffusers' example trainers (bitsandbytes, prodigyopt,
    # get_scheduler by name, classes chosen at run time) and timm's (create_optimizer_v2, its own optimizers).
    ("huggingface/diffusers", "58eb52c0803ea9af3abec60841c2a093bdf1f951", ["examples"]),
    ("huggingface/pytorch-image-models", "aa4b5850c1543fa488abf260f18390eda46cf85d", ["train.py", "timm"]),
    # Added with hand-set hyperparameters (issue 24), not tuned to: YOLOv5's warmup writes lr and momentum
    # to every group by hand, MAE's lr schedule and lr_scale per group, minGPT's decayed / undecayed groups.
    ("ultralytics/yolov5", "5081342f04fb287fc2e5f2b5a4e06752b7937b1c", [""]),
    ("facebookresearch/mae", "efb2a8062c206524e35e47d04501ed4f544c0ae8", [""]),
    ("karpathy/minGPT", "37baab71b9abea1b76ab957409a1cc2fbfba8a26", [""]),
]
OPTIMIZERS = ("ASGD|Adadelta|Adafactor|Adagrad|Adam|AdamW|Adamax|LBFGS|Muon|NAdam|RAdam|RMSprop|Rprop|SGD|"
              "SparseAdam")
# torch.optim's classes, and the libraries': bitsandbytes, prodigyopt, schedulefree, lion-pytorch, transformers'
# Adafactor, apex / DeepSpeed, ZeRO, timm's factory, and a class held in a variable named for one.
LIBRARY = (r"(?:bnb|bitsandbytes)\.optim\.\w+|prodigyopt\.Prodigy|Prodigy|schedulefree\.\w+ScheduleFree|"
           r"\w+ScheduleFree|lion_pytorch\.Lion|Adafactor|FusedAdam|FusedLAMB|DeepSpeedCPUAdam|"
           r"ZeroRedundancyOptimizer|create_optimizer_v2|optimizer_class|optimizer_cls")
CONSTRUCTION = re.compile(rf"(?:\b(?:torch\.optim|optim)\.(?:{OPTIMIZERS})|(?<![\w.])(?:{LIBRARY}))\(")
RECEIVER = r"[\w.\[\]'\"]*"
STEP = re.compile(rf"(?<![\w.])({RECEIVER})\.(step|zero_grad)\(")
SCALER_STEP = re.compile(rf"\b\w*scaler\w*\.step\(\s*({RECEIVER})")
OPTIMIZER_NAME = re.compile(r"opt", re.IGNORECASE)
NOT_AN_OPTIMIZER = re.compile(r"sched|env|model|loss|scaler", re.IGNORECASE)


def checkout(mirror: Path, repo: str, commit: str, folders: list[str], into: Path) -> list[Path]:
    git = mirror / repo.replace("/", "+") / "repo"
    if not git.exists():
        raise SystemExit(f"{git} is missing: fetch github:{repo} first")
    listed = subprocess.run(["git", "--git-dir", str(git), "ls-tree", "-r", "--name-only", commit],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    wanted = [p for p in listed if p.endswith(".py") and any(p.startswith(f) for f in folders)]
    # Only the Python files: a snapshot lacks its big data files.
    archive = subprocess.run(["git", "--git-dir", str(git), "archive", commit, "--", *wanted],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return sorted(p for p in into.rglob("*.py") if p.is_file())


def last_name(receiver: str) -> str:
    return re.split(r"[.\[]", receiver.rstrip("])'\""))[-1] if receiver else ""


def truth(text: str):
    """(construction lines, step/zero_grad lines) by name, 1-based."""
    constructions, steps = set(), set()
    for i, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        m = CONSTRUCTION.search(code)
        if m and not re.match(r"\s*(?:def|class)\s", code) and not code.lstrip().startswith((">>>", "...")):
            constructions.add(i)      # not the library's own `def create_optimizer_v2(`, nor a doctest
        for m in STEP.finditer(code):
            name = last_name(m.group(1))
            if OPTIMIZER_NAME.search(name) and not NOT_AN_OPTIMIZER.search(name):
                steps.add(i)
        for m in SCALER_STEP.finditer(code):
            if OPTIMIZER_NAME.search(last_name(m.group(1))):
                steps.add(i)
    return constructions, steps


TORCH_CALL = re.compile(r"(?<![\w.])([\w.\[\]'\"]*?)\.(step|zero_grad|state_dict|load_state_dict|add_param_group|"
                        r"param_groups|register_\w+|get_last_lr|get_lr)\b")


def converted(analysis) -> set[tuple[str, str]]:
    """("optimizer" | "scheduler", the name it lives under) for each flow fix-all converts."""
    out = set()
    if analysis.result is None:
        return out
    for site in analysis.result.sites.values():
        if not site.finding.fixable:
            continue
        if site.finding.kind == "construct" and site.identity is not None and site.identity.target is not None:
            out.add(("optimizer", site.identity.var))
        elif site.finding.kind == "schedule" and site.sched is not None and site.sched.target is not None:
            out.add(("scheduler", site.sched.var))
    return out


def silent_half_conversions(root: Path, texts: dict, project: dict, fixed_texts: dict, converted_names: dict,
                            target: str = "optax"):
    """Torch optimizer calls left, with no finding, on what fix-all converted (see the docstring)."""
    from switcheroo_lsp.engine import analyze_project
    if not any(converted_names.values()):
        return
    again = analyze_project({str(f): t for f, t in fixed_texts.items()}, target, roots=[str(root)])
    flagged = {}
    for f in fixed_texts:
        flagged[f] = {finding.span.start.line + 1 for finding in again[str(f)].findings}
    for f, names in converted_names.items():
        if not names:
            continue
        wanted = {name for _, name in names}
        files = [f] + [Path(p) for p in project[str(f)].related_paths() if Path(p) in fixed_texts]
        for g in files:
            for i, line in enumerate(fixed_texts[g].splitlines(), 1):
                code = line.split("#", 1)[0]
                hits = [m for m in TORCH_CALL.finditer(code) if last_name(m.group(1)) in wanted]
                hits += [m for m in SCALER_STEP.finditer(code) if last_name(m.group(1)) in wanted]
                if hits and i not in flagged[g]:
                    yield f"{g.relative_to(root)}:{i}: {line.strip()}"


def run_corpus(repo: str, commit: str, folders: list[str], mirror: Path, show: bool, target: str = "optax") -> dict:
    from switcheroo_lsp.engine import analyze_project, apply
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = checkout(mirror, repo, commit, folders, root)
        texts = {}
        for f in files:
            try:
                texts[f] = f.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
        # The checkout's root is the project's, as `check .` there: its imports resolve.
        project = analyze_project({str(f): t for f, t in texts.items()}, target, roots=[str(root)])
        stats = Counter()
        missed = []
        fixed_texts, converted_names = {}, {}
        for f, text in texts.items():
            analysis = project[str(f)]
            if analysis.syntax_error:
                stats["files that do not parse"] += 1
                continue
            constructions, steps = truth(text)
            flagged = {}
            for finding in analysis.findings:
                flagged.setdefault(finding.span.start.line + 1, set()).add(finding.code)
            stats["constructions"] += len(constructions)
            stats["constructions found"] += sum(1 for line in constructions if line in flagged)
            stats["steps"] += len(steps)
            stats["steps found"] += sum(1 for line in steps if line in flagged)
            for line in sorted((constructions | steps) - set(flagged)):
                missed.append(f"{f.relative_to(root)}:{line}: {text.splitlines()[line - 1].strip()}")
            lines = text.splitlines()
            for finding in analysis.findings:
                if finding.code in ("OPX102", "OPX103"):
                    line = lines[finding.span.start.line]
                    m = STEP.search(line[finding.span.start.col:])
                    scaler = SCALER_STEP.search(line[finding.span.start.col:])
                    if scaler and OPTIMIZER_NAME.search(last_name(scaler.group(1))):
                        continue          # `scaler.step(optimizer)` is the optimizer's step
                    if m and NOT_AN_OPTIMIZER.search(last_name(m.group(1))):
                        stats["false positives"] += 1
                        missed.append(f"FALSE POSITIVE {f.relative_to(root)}:{finding.span.start.line + 1}: "
                                      f"{line.strip()}")
            fixed = apply(text, analysis.fix_all())
            fixed_texts[f] = fixed
            converted_names[f] = converted(analysis)
            stats["constructions converted"] += sum(1 for kind, _ in converted_names[f] if kind == "optimizer")
            if fixed != text:
                stats["files fixed"] += 1
                try:
                    ast.parse(fixed)
                except SyntaxError:
                    stats["files broken by fix"] += 1
                    missed.append(f"BROKEN BY FIX {f.relative_to(root)}")
        stats["files"] = len(texts)
        for line in silent_half_conversions(root, texts, project, fixed_texts, converted_names, target):
            stats["silent half conversions"] += 1
            missed.append(f"SILENT HALF CONVERSION {line}")
    if show:
        for m in missed:
            print("   ", m)
    return dict(stats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", default="/work/.mirror")
    ap.add_argument("--only", default="", help="comma-separated repositories")
    ap.add_argument("--show-missed", action="store_true")
    ap.add_argument("--target", default="optax", choices=("optax", "flax-nnx"), help="what fix-all writes")
    ns = ap.parse_args()
    totals = Counter()
    for repo, commit, folders in CORPORA:
        if ns.only and repo not in ns.only.split(","):
            continue
        s = run_corpus(repo, commit, folders, Path(ns.mirror), ns.show_missed, ns.target)
        totals.update(s)
        pct = lambda a, b: f"{100 * s.get(a, 0) / s[b]:.0f}%" if s.get(b) else "-"   # noqa: E731
        print(f"{repo}@{commit[:7]}: {s.get('files', 0)} files; constructions {s.get('constructions found', 0)}/"
              f"{s.get('constructions', 0)} ({pct('constructions found', 'constructions')}), converted "
              f"{s.get('constructions converted', 0)}; steps+zero_grads "
              f"{s.get('steps found', 0)}/{s.get('steps', 0)} ({pct('steps found', 'steps')}); false positives "
              f"{s.get('false positives', 0)}; fixed {s.get('files fixed', 0)} files, broken "
              f"{s.get('files broken by fix', 0)}; silent half conversions {s.get('silent half conversions', 0)}",
              flush=True)
    print(f"all: constructions {totals['constructions found']}/{totals['constructions']} (converted "
          f"{totals['constructions converted']}), steps {totals['steps found']}/{totals['steps']}, false positives "
          f"{totals['false positives']}, broken {totals['files broken by fix']}, silent half conversions "
          f"{totals['silent half conversions']}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    main()
