"""One PNG per construction: the loss of torch and of the rewrite over the updates, log |dtheta|
against the tolerance, and the learning rate each side used. Headless (Agg)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"mlp": "tab:blue", "quadratic": "tab:orange"}
FLOOR = 1e-18          # where an exact zero difference is drawn on the log axis


def filename(outcome) -> str:
    case = outcome.case
    stem = re.sub(r"[^\w.-]+", "_", Path(case.path).stem)
    return f"{stem}_L{case.line}_{case.rewrite.torch.rsplit('.', 1)[-1]}.png"


def plot(outcome, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fig, (ax_loss, ax_diff, ax_lr) = plt.subplots(3, 1, figsize=(7.0, 7.5), sharex=True)
    for r in outcome.results:
        color = COLORS.get(r.problem, None)
        x = np.arange(1, r.steps + 1)
        ax_loss.plot(x, r.torch_loss[:r.steps], color=color, lw=1.6, label=f"{r.problem}: torch")
        ax_loss.plot(x, r.optax_loss[:r.steps], color=color, lw=1.0, ls="--", label=f"{r.problem}: {outcome.target}")
        ax_diff.semilogy(x, np.maximum(r.abs_diff, FLOOR), color=color, lw=1.2, label=f"{r.problem}")
        ax_diff.semilogy(x, r.bound, color=color, lw=0.8, ls=":", alpha=0.8)
    # The learning rate does not depend on the problem: the longest run's.
    r = max(outcome.results, key=lambda r: r.steps)
    x = np.arange(1, r.steps + 1)
    ax_lr.plot(x, r.torch_lr[:r.steps], color="black", lw=1.6, label="torch")
    if r.optax_lr is not None:
        ax_lr.plot(x, r.optax_lr[:r.steps], color="tab:red", lw=1.0, ls="--", label=outcome.target)
    ax_loss.set_ylabel("loss")
    ax_loss.set_yscale("log" if all(np.all(r.torch_loss > 0) for r in outcome.results) else "linear")
    ax_loss.legend(fontsize=7, ncol=2)
    ax_diff.set_ylabel("max |Δθ|")
    ax_diff.set_title(f"tolerance {outcome.tolerance:.0e} (dotted): {outcome.tolerance_why}", fontsize=8)
    ax_diff.legend(fontsize=7)
    scheduled = outcome.resolved.schedule is not None
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("schedule: torch's scheduler vs the rewrite's" if scheduled
                    else "constant (no schedule folded in)", fontsize=8)
    ax_lr.set_xlabel("update")
    ax_lr.legend(fontsize=7, ncol=2)
    case = outcome.case
    fig.suptitle(f"{Path(case.path).name}:{case.line}  {case.rewrite.torch} → {outcome.status.upper()}\n"
                 f"max |Δθ| {outcome.max_abs:.1e} over {outcome.steps} updates ({outcome.dtype})", fontsize=9)
    fig.tight_layout()
    out = folder / filename(outcome)
    fig.savefig(out, dpi=72, metadata={"Title": f"switcheroo-lsp verify {case.where}",
                                       "Description": "axes: loss; max |dtheta|; learning rate"})
    plt.close(fig)
    return out
