"""A generated project, for the workspace benchmarks: what a real training package looks like to
the server.

`project(root, n)` writes a package `proj/` of `n` modules that import each other (each imports
three others, by `from proj import m`, `from proj.m import f` and `from .m import C`), with the
models, data and utilities training code has, and beside it a training script `train.py` (about
700 lines) that imports 20 of them. The optimizer is built in one module (`proj/optim_setup.py`,
a factory with its scheduler) and stepped in another (`proj/engine.py`'s `train_one_epoch`); the
script wires them together and also has optimizers of its own (a probe fitted in a function, a
fine-tuning class); `finetune.py` is a second script like it. Deterministic: the same `n` gives
the same files.

    .venv/bin/python bench/project.py 300 /tmp/proj300    # writes the project there
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

MODULE_HEADER = '''\
"""Module {k} of the generated project: {kind}."""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

{imports}

SCALE_{k} = {scale}
'''

MODEL = '''\

class Block{k}_{j}(nn.Module):
    """A residual block ({k}.{j})."""

    def __init__(self, width={w}, dropout=0.1):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        h = self.fc2(F.gelu(self.fc1(self.norm(x))))
        return x + self.drop(h) * SCALE_{k}


def build_{k}_{j}(depth=4, width={w}):
    layers = [Block{k}_{j}(width) for _ in range(depth)]
    return nn.Sequential(*layers, nn.Linear(width, 10))

'''

DATA = '''\

class Dataset{k}_{j}(torch.utils.data.Dataset):
    """Synthetic regression data ({k}.{j})."""

    def __init__(self, n=1024, width={w}, seed={k}):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, width, generator=g)
        self.y = self.x.sum(dim=1, keepdim=True) * SCALE_{k}

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def loader_{k}_{j}(batch_size=32, shuffle=True):
    data = Dataset{k}_{j}()
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle)

'''

UTIL = '''\

def moving_average_{k}_{j}(values, window=10):
    """The mean of the last `window` values, for logging ({k}.{j})."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def describe_{k}_{j}(model):
    counts = {{name: p.numel() for name, p in model.named_parameters()}}
    total = sum(counts.values())
    return f"{{type(model).__name__}}: {{total}} parameters in {{len(counts)}} tensors"


def checkpoint_path_{k}_{j}(root, epoch):
    return os.path.join(root, f"ckpt_{k}_{j}_{{epoch:04d}}.pt")

'''

KINDS = [("models", MODEL), ("data", DATA), ("utilities", UTIL)]

OPTIM_SETUP = '''\
"""Where the project builds its optimizer and scheduler."""
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR


def build_optimizer(model, lr=3e-4, weight_decay=0.05):
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)


def build_scheduler(optimizer, epochs):
    return CosineAnnealingLR(optimizer, T_max=epochs)
'''

ENGINE = '''\
"""The training loop the script calls."""
import torch
import torch.nn.functional as F


def train_one_epoch(model, loader, optimizer, clip=1.0):
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += loss.item()
    return total / max(len(loader), 1)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    return sum(F.mse_loss(model(x), y).item() for x, y in loader) / max(len(loader), 1)
'''

SCRIPT_HEADER = '''\
"""Train the generated project's model: the script a user opens."""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from proj.engine import evaluate, train_one_epoch
from proj.optim_setup import build_optimizer, build_scheduler
{imports}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="train the generated project")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", default="runs")
    return p.parse_args(argv)

'''

SCRIPT_BLOCK = '''\

def stage_{i}(model, loader, history):
    """Stage {i}: logging and bookkeeping around the model ({mod})."""
    losses = []
    for step, (x, y) in enumerate(loader):
        with torch.no_grad():
            out = model(x)
            losses.append(F.mse_loss(out, y).item())
        if step % 50 == 0:
            print(f"stage {i} step {{step}}: {{sum(losses) / len(losses):.4f}}")
    history.setdefault("stage_{i}", []).extend(losses)
    stats = {{"mean": sum(losses) / max(len(losses), 1), "n": len(losses)}}
    stats["scaled"] = stats["mean"] * {mod}.SCALE_{k}
    return stats


def probe_{i}(features, labels, width={w}):
    """A linear probe fitted on frozen features ({i})."""
    head = nn.Linear(width, 10)
    probe = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(5):
        probe.zero_grad()
        loss = F.cross_entropy(head(features), labels)
        loss.backward()
        probe.step()
    return head

'''

SCRIPT_MAIN = '''\

class FineTuner:
    """Fine-tunes a head with its own optimizer."""

    def __init__(self, head, lr=1e-3):
        self.head = head
        self.optimizer = torch.optim.Adam(head.parameters(), lr=lr)

    def fit(self, loader, epochs=2):
        for epoch in range(epochs):
            for x, y in loader:
                self.optimizer.zero_grad()
                F.mse_loss(self.head(x), y).backward()
                self.optimizer.step()


def main(argv=None):
    args = parse_args(argv)
    model = {model}
    loader = {loader}
    optimizer = build_optimizer(model, lr=args.lr)
    scheduler = build_scheduler(optimizer, args.epochs)
    history = {{}}
    for x, y in loader:                 # one warm-up pass at a tenth of the rate
        optimizer.zero_grad()
        (F.mse_loss(model(x), y) * 0.1).backward()
        optimizer.step()
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, loader, optimizer)
        scheduler.step()
        history.setdefault("train", []).append(loss)
        history.setdefault("eval", []).append(evaluate(model, loader))
{stages}    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(history, f)


if __name__ == "__main__":
    main()
'''


def module_text(k: int, n: int, rnd: random.Random) -> str:
    kind, block = KINDS[k % 3]
    others = sorted({rnd.randrange(n) for _ in range(3)} - {k})
    imports = []
    for j, o in enumerate(others):
        style = (k + j) % 3
        if style == 0:
            imports.append(f"from proj import m{o:04d}")
        elif style == 1:
            imports.append(f"from proj.m{o:04d} import SCALE_{o}")
        else:
            imports.append(f"from .m{o:04d} import SCALE_{o} as scale_{o}")
    parts = [MODULE_HEADER.format(k=k, kind=kind, imports="\n".join(imports), scale=round(rnd.uniform(0.5, 2), 3))]
    for j in range(rnd.randrange(3, 7)):
        parts.append(block.format(k=k, j=j, w=rnd.choice([32, 64, 128])))
    return "".join(parts)


def script_text(n: int, rnd: random.Random) -> str:
    imported = sorted(rnd.sample(range(n), min(20, n)))
    imports = "\n".join(f"from proj import m{k:04d}" for k in imported)
    blocks = []
    for i in range(18):
        k = imported[i % len(imported)]
        blocks.append(SCRIPT_BLOCK.format(i=i, k=k, mod=f"m{k:04d}", w=rnd.choice([32, 64, 128])))
    model_k = next((k for k in imported if k % 3 == 0), None)
    data_k = next((k for k in imported if k % 3 == 1), None)
    model = f"m{model_k:04d}.build_{model_k}_0()" if model_k is not None else "nn.Linear(32, 10)"
    loader = f"m{data_k:04d}.loader_{data_k}_0()" if data_k is not None else "[]"
    stages = "".join(f"        stage_{i}(model, loader, history)\n" for i in range(0, 18, 3))
    return (SCRIPT_HEADER.format(imports=imports) + "".join(blocks)
            + SCRIPT_MAIN.format(model=model, loader=loader, stages=stages))


def project(root: Path, n: int, seed: int = 0) -> Path:
    """Writes the project under `root`; returns the training script's path."""
    rnd = random.Random(seed)
    pkg = root / "proj"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('"""The generated project."""\n', encoding="utf-8")
    (pkg / "optim_setup.py").write_text(OPTIM_SETUP, encoding="utf-8")
    (pkg / "engine.py").write_text(ENGINE, encoding="utf-8")
    for k in range(n):
        (pkg / f"m{k:04d}.py").write_text(module_text(k, n, rnd), encoding="utf-8")
    script = root / "train.py"
    script.write_text(script_text(n, rnd), encoding="utf-8")
    # A second script like it (other modules, the same optimizer): what a user opens next.
    (root / "finetune.py").write_text(script_text(n, random.Random(seed + 1)), encoding="utf-8")
    return script


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(f"proj{n}")
    print(project(out, n))
