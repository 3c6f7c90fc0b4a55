"""Realistic, dense torch training files for the benchmarks.

`training_file(n_lines)` writes a module of about `n_lines` lines made of ~50-line blocks, each
with its own optimizer, its `zero_grad()` and `step()`, and around them what training code
has: functions with docstrings, classes with methods, nested loops, logging, dict and list
literals, comprehensions; some blocks add a scheduler and gradient clipping. Deterministic:
the same `n_lines` and `seed` give the same text.
"""

from __future__ import annotations

import random
from pathlib import Path

HEADER = '''\
"""Generated training module: many models, each with its optimizer."""
import math
import os
import random

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR, CosineAnnealingLR

CONFIG = {"epochs": 3, "log_every": 100, "seed": 0, "out": os.path.join("runs", "bench")}

'''

OPTIMIZERS = [
    "torch.optim.SGD({p}, lr={lr}, momentum=0.9)",
    "optim.SGD({p}, lr={lr}, momentum=0.9, nesterov=True, weight_decay=5e-4)",
    "torch.optim.Adam({p}, lr={lr})",
    "optim.Adam({p}, lr={lr}, betas=(0.9, 0.99), weight_decay=1e-4)",
    "torch.optim.AdamW({p}, lr={lr}, weight_decay=0.01)",
    "optim.RMSprop({p}, lr={lr}, alpha=0.9)",
]

FUNCTION_BLOCK = '''\
def make_model_{i}(width={w}):
    """A small MLP for block {i}."""
    layers = [nn.Linear(width, width) for _ in range(3)]
    return nn.Sequential(*layers, nn.ReLU(), nn.Linear(width, 1))


def evaluate_{i}(model, loader):
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            total += F.mse_loss(model(x), y, reduction="sum").item()
            count += len(x)
    return total / max(count, 1)


def train_{i}(model, loader, params, grads, epochs=CONFIG["epochs"]):
    """Train block {i}; returns the per-epoch losses."""
    opt = {optimizer}
{sched_make}    history = []
    for epoch in range(epochs):
        running = 0.0
        for step, (x, y) in enumerate(loader):
            opt.zero_grad()
            out = model(x)
            loss = F.mse_loss(out, y) + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())
            loss.backward()
{clip}            opt.step()
            running += loss.item()
            if step % CONFIG["log_every"] == 0:
                print(f"block {i} epoch {{epoch}} step {{step}} loss {{running / (step + 1):.4f}}")
{sched_step}        history.append(running)
        if math.isnan(running):
            raise RuntimeError("diverged in block {i}")
    return history

'''

CLASS_BLOCK = '''\
class Trainer{i}:
    """Owns a model and its optimizer (block {i})."""

    def __init__(self, model, loader, width={w}):
        self.model = model
        self.loader = loader
        self.width = width
        self.optimizer = {optimizer}
        self.stats = {{"steps": 0, "best": float("inf")}}

    def batches(self):
        for x, y in self.loader:
            if x.shape[-1] != self.width:
                continue
            yield x, y

    def fit(self, params, grads, epochs=2):
        for epoch in range(epochs):
            for x, y in self.batches():
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(x), y)
                loss.backward()
{clip}                self.optimizer.step()
                self.stats["steps"] += 1
                self.stats["best"] = min(self.stats["best"], loss.item())
        return params

    def report(self):
        keys = sorted(self.stats)
        return ", ".join(f"{{k}}={{self.stats[k]}}" for k in keys)


def run_trainer_{i}(loader, params, grads):
    model = nn.Sequential(nn.Linear({w}, {w}), nn.Tanh(), nn.Linear({w}, 10))
    trainer = Trainer{i}(model, loader)
    trainer.fit(params, grads)
    return trainer.report()

'''


def _block(i: int, rnd: random.Random) -> str:
    lr = rnd.choice(["0.1", "0.01", "1e-3", "3e-4", "CONFIG.get('lr', 0.01)"])
    w = rnd.choice([16, 32, 64, 128])
    if i % 3 == 2:
        optimizer = rnd.choice(OPTIMIZERS).format(p="model.parameters()", lr=lr)
        clip = "                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)\n" if i % 2 else ""
        return CLASS_BLOCK.format(i=i, w=w, optimizer=optimizer, clip=clip)
    optimizer = rnd.choice(OPTIMIZERS).format(p="model.parameters()", lr=lr)
    sched = i % 4 == 0
    sched_make = ("    sched = StepLR(opt, step_size=10, gamma=0.5)\n" if i % 8 == 0
                  else "    sched = CosineAnnealingLR(opt, T_max=epochs)\n") if sched else ""
    sched_step = "        sched.step()\n" if sched else ""
    clip = "            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n" if i % 5 == 1 else ""
    return FUNCTION_BLOCK.format(i=i, w=w, optimizer=optimizer, sched_make=sched_make,
                                 sched_step=sched_step, clip=clip)


def training_file(n_lines: int, seed: int = 0) -> str:
    rnd = random.Random(seed)
    parts, count, i = [HEADER], HEADER.count("\n"), 0
    while count < n_lines:
        block = _block(i, rnd)
        parts.append(block)
        count += block.count("\n")
        i += 1
    return "".join(parts)


def without_torch(text: str) -> str:
    """The same shape of code with no `torch` anywhere (nothing the server could match)."""
    return text.replace("torch", "flame")


def tree(root: Path, n_files: int, lines: int = 300) -> list[Path]:
    """A project of `n_files` training modules in nested packages."""
    paths = []
    for k in range(n_files):
        folder = root / f"pkg{k % 10}" / f"sub{k % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"train_{k}.py"
        path.write_text(training_file(lines, seed=k), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    import sys
    sys.stdout.write(training_file(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
