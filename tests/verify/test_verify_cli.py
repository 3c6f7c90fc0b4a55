"""`switcheroo-lsp verify`, run as a user runs it: a subprocess on real files.

Steps are bounded (the default is 200) to keep the suite's time in check; the runs that must
show a difference use enough updates for it to be unmistakable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")
pytest.importorskip("optax")

from switcheroo_lsp.engine import analyze
from switcheroo_lsp.verify.cases import verifiable  # noqa: E402

pytestmark = pytest.mark.numerics

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
EXPRESSIONS = FIXTURES / "optimizers" / "expressions.py"
HERE = Path(__file__).resolve().parent
WORKSPACE = FIXTURES / "workspace"      # projects of several files: run on their own below
# What the fixtures leave to the caller (function parameters, a clip limit set at a call site),
# by name: `--set lr=…` would replace every `lr=` that is not a literal, argparse's too.
FIXTURE_SETTINGS = ["epochs=3", "cfg.lr=1e-3", "cfg.betas=(0.9, 0.99)", "wd=0.1", "cfg.amsgrad=True", "args.lr=0.01",
                    "cfg.weight_decay=0.01", "cfg.wd=0.05", "cfg.momentum=0.9", "extra_args={}",
                    "args.learning_rate=1e-3", "args.max_grad_norm=1.0"]


def verify(*args, script: list[str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *(script or ["-m", "switcheroo_lsp"]), "verify", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def settings(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


def rows_of(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.stdout.strip().startswith("["), result.stdout + result.stderr
    return json.loads(result.stdout)


def rewrites_in(files: list[Path]) -> set[tuple[str, int]]:
    expected = set()
    for f in files:
        analysis = analyze(f.read_text())
        if analysis.syntax_error is None:
            expected |= {(str(f.relative_to(ROOT)), r.span.start.line + 1) for r in analysis.construction_rewrites()
                         if verifiable(analysis, r)}
    return expected


def test_every_fixture_construction_with_a_rewrite_passes():
    files = sorted(p for p in [*FIXTURES.rglob("*.py"), *(ROOT / "examples").glob("*.py")]
                   if not p.name.endswith(".expected.py") and WORKSPACE not in p.parents)
    expected = rewrites_in(files)
    r = verify(*[f.relative_to(ROOT) for f in files], "--steps", 40, "--format", "json", *settings(*FIXTURE_SETTINGS))
    rows = rows_of(r)
    assert r.returncode == 0, r.stderr
    assert {(row["path"], row["line"]) for row in rows} == expected
    assert len(expected) > 60
    failed = [row for row in rows if row["status"] != "pass"]
    assert not failed, failed
    for row in rows:
        assert row["steps"] == 40 or any(p["stopped"] for p in row["problems"]), row
        assert row["max_abs_diff"] < 1e-4, row      # far below any formula error (1e-3 of each step)
        assert row["dtype"] == "float64"
    by_line = {(row["path"], row["line"]): row for row in rows}
    mnist = by_line[("examples/mnist.py", 64)]
    assert mnist["values"]["args.momentum"] == {"value": "0.9", "source": "argparse --momentum"}
    assert mnist["values"]["args.lr"] == {"value": "0.01", "source": "--set"}   # --set args.lr is for every file
    assert mnist["tolerance"] == 5e-6           # a schedule: float32-rounded values
    # Parameters without a default take what the file's calls pass (nanoGPT's configure_optimizers).
    factory = by_line[("tests/fixtures/holders/factory_method.py", 11)]
    assert factory["values"]["learning_rate"] == {"value": "0.0006", "source": "passed to configure_optimizers() on line 16"}
    assert factory["values"]["betas"]["value"] == "(0.9, 0.95)"
    clip = by_line[("tests/fixtures/loop/clip_limit_from_constructor.py", 16)]     # self.clip <- Trainer(clip=1.0)
    assert clip["values"]["self.clip"]["value"] == "1.0"
    exact = by_line[("tests/fixtures/optimizers/adam_variants.py", 8)]      # amsgrad: a switcheroo_optax transform
    assert exact["tolerance"] == 1e-12 and exact["max_abs_diff"] < 1e-13


def test_workspace_fixtures_pass_given_what_other_files_pass():
    """verify reads one file at a time: a parameter that only another file's call gives (nanoGPT's
    train.py calling model.configure_optimizers) is named, then --set gives it."""
    files = sorted(p for p in WORKSPACE.rglob("*.py") if not p.name.endswith(".expected.py"))
    expected = rewrites_in(files)
    model = WORKSPACE / "nanogpt_like" / "model.py"
    r = verify(model, "--steps", 5)
    assert r.returncode == 2
    assert "lr (learning_rate): a parameter of configure_optimizers() without a default, not called in this file" in r.stderr
    r = verify(*[f.relative_to(ROOT) for f in files], "--steps", 40, "--format", "json",
               *settings("learning_rate=6e-4", "betas=(0.9, 0.95)", "weight_decay=0.1", "args.lr=5e-4"))
    rows = rows_of(r)
    assert r.returncode == 0, r.stderr
    assert {(row["path"], row["line"]) for row in rows} == expected and len(expected) >= 3
    assert all(row["status"] == "pass" for row in rows), rows


def test_text_output_shows_the_rewrite_differences_and_verdict():
    r = verify(ROOT / "examples" / "trainer.py", "--steps", 30)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "examples/trainer.py:37:17: AdamW(model.parameters(), lr=3e-4)" in out
    assert "rewrite   optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(learning_rate=3e-4, weight_decay=0.01))" in out
    assert "self.grad_clip = 1.0 (self.grad_clip in Trainer)" in out   # the clip limit, from the constructor default
    assert "  mlp       max |Δθ| " in out and "  quadratic max |Δθ| " in out
    assert "PASS      30 updates, float64" in out
    assert out.rstrip().endswith("1 construction verified: 1 passed, 0 failed")


def test_an_unfaithful_rewrite_fails_with_the_expected_difference(tmp_path):
    """optax.adamw with optax's default weight decay (1e-4) for torch's AdamW (0.01): both see
    the same gradients, so after T updates the parameters differ by
    sum_t lr * (0.01 - 1e-4) * theta_t ~ T * lr * 0.0099 * max|theta_0| (theta moves by at most
    ~T * lr: well under 1% here)."""
    from switcheroo_lsp.verify.problems import problems

    f = tmp_path / "train.py"
    f.write_text("import torch\nLR = 1e-4\nopt = torch.optim.AdamW(model.parameters(), lr=LR)\n")
    steps = 50
    script = [str(HERE / "unfaithful_rewrite.py"), "optax.adamw(learning_rate=LR)"]
    r = verify(f, "--steps", steps, "--format", "json", script=script)
    assert r.returncode == 1, r.stderr
    [row] = rows_of(r)
    assert row["status"] == "fail" and row["rewrite"] == "optax.adamw(learning_rate=LR)"
    assert row["first_step_over"] == 1 and row["tolerance"] == 1e-12
    theta0 = max(float(np.max(np.abs(np.concatenate([p.ravel() for p in prob.init])))) for prob in problems())
    expected = steps * 1e-4 * (0.01 - 1e-4) * theta0
    assert row["max_abs_diff"] == pytest.approx(expected, rel=0.02)
    # The faithful rewrite of the same file passes.
    good = rows_of(verify(f, "--steps", steps, "--format", "json"))
    assert good[0]["status"] == "pass" and good[0]["rewrite"] == "optax.adamw(learning_rate=LR, weight_decay=0.01)"
    # And the text says FAIL, where, and by how much.
    text = verify(f, "--steps", steps, script=script)
    assert text.returncode == 1
    assert "FAIL      50 updates, float64: max |Δθ| " in text.stdout and "first at update 1" in text.stdout


def test_the_flax_nnx_rewrite_runs_in_nnx_optimizer_and_an_unfaithful_one_fails(tmp_path):
    """--target flax-nnx runs what that fix writes: nnx.Optimizer(model, <transform>, wrt=nnx.Param)
    over an nnx module, updated with optimizer.update(model, grads)."""
    f = tmp_path / "train.py"
    f.write_text("import torch\nLR = 1e-4\nopt = torch.optim.AdamW(net.parameters(), lr=LR)\n"
                 "bare = torch.optim.SGD([w], lr=0.1)\n")
    r = verify(f, "--steps", 50, "--format", "json", "--target", "flax-nnx")
    assert r.returncode == 0, r.stderr
    [row] = rows_of(r)      # the bare tensor list has no NNX form: nothing to verify there
    assert row["rewrite"] == "nnx.Optimizer(net, optax.adamw(learning_rate=LR, weight_decay=0.01), wrt=nnx.Param)"
    assert (row["target"], row["status"], row["line"]) == ("flax-nnx", "pass", 3)
    assert row["max_abs_diff"] < 1e-13

    script = [str(HERE / "unfaithful_rewrite.py"), "optax.adamw(learning_rate=LR)"]
    bad = verify(f, "--steps", 50, "--format", "json", "--target", "flax-nnx", script=script)
    assert bad.returncode == 1, bad.stderr
    [row] = rows_of(bad)
    assert row["status"] == "fail" and row["rewrite"] == "nnx.Optimizer(net, optax.adamw(learning_rate=LR), wrt=nnx.Param)"
    assert row["first_step_over"] == 1

    # LBFGS: the update evaluates the loss itself, through value_fn over the parameters' nnx.State.
    g = tmp_path / "lbfgs.py"
    g.write_text("import torch\nopt = torch.optim.LBFGS(net.parameters(), lr=0.5, max_iter=5, history_size=4)\n")
    [row] = rows_of(verify(g, "--steps", 20, "--format", "json", "--target", "flax-nnx"))
    assert row["status"] == "pass" and row["rewrite"].startswith("nnx.Optimizer(net, switcheroo_optax.torch_lbfgs(")

    # The project's [tool.switcheroo] target is verify's default too.
    (tmp_path / "pyproject.toml").write_text('[tool.switcheroo]\ntarget = "flax-nnx"\n')
    text = verify(f, "--steps", 5)
    assert text.returncode == 0, text.stderr
    assert "rewrite   nnx.Optimizer(net, optax.adamw(" in text.stdout
    assert "rewrite   optax" in verify(f, "--steps", 5, "--target", "optax").stdout


def test_unresolved_arguments_are_named_and_exit_2():
    r = verify(EXPRESSIONS, "--steps", 5)
    assert r.returncode == 2 and r.stdout.strip() == ""
    message = r.stderr.strip()
    assert message.startswith(f"{EXPRESSIONS}:6:11: torch.optim.Adam: 4 arguments do not resolve "
                              "statically; give each with --set NAME=VALUE"), message
    for named in ("lr (cfg.lr)", "betas (cfg.betas)", "weight_decay (wd): cfg.weight_decay", "amsgrad (cfg.amsgrad)"):
        assert named in message, message

    partly = verify(EXPRESSIONS, "--steps", 5, *settings("lr=2e-3", "cfg.betas=(0.8, 0.99)"))
    assert partly.returncode == 2
    assert "2 arguments do not resolve" in partly.stderr
    assert "weight_decay (wd)" in partly.stderr and "amsgrad" in partly.stderr and "betas" not in partly.stderr

    given = verify(EXPRESSIONS, "--steps", 20, "--format", "json",
                   *settings("lr=2e-3", "cfg.betas=(0.8, 0.99)", "weight_decay=0.05", "cfg.amsgrad=True"))
    assert given.returncode == 0, given.stderr
    [row] = rows_of(given)
    assert row["status"] == "pass"
    assert row["values"]["cfg.lr*2"] == {"value": "0.002", "source": "--set lr"}
    assert row["values"]["cfg.amsgrad"] == {"value": "True", "source": "--set"}


def test_bad_settings_and_targets_exit_2(tmp_path):
    r = verify(EXPRESSIONS, "--set", "lr")
    assert r.returncode == 2 and "--set lr: expected NAME=VALUE" in r.stderr
    r = verify(EXPRESSIONS, "--set", "lr=fast")
    assert r.returncode == 2 and "not a Python literal" in r.stderr
    r = verify(EXPRESSIONS, "--target", "jax")
    assert r.returncode == 2 and "invalid choice: 'jax'" in r.stderr
    r = verify(tmp_path / "missing.py")
    assert r.returncode == 2 and "no such file" in r.stderr


STATIC = '''\
import argparse
from dataclasses import dataclass, field

import torch

BASE_LR = 1e-3
WD = BASE_LR * 10


@dataclass
class OptimConfig:
    betas: tuple = (0.9, 0.95)
    eps: float = field(default=1e-7)


@dataclass
class Config:
    optim: OptimConfig = field(default_factory=OptimConfig)


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--momentum", type=float, default="0.8")
    p.add_argument("--nesterov", action="store_true")
    return p.parse_args()


def build(model, cfg: Config, args, scale=2.0):
    adam = torch.optim.AdamW(model.parameters(), lr=BASE_LR * scale, betas=cfg.optim.betas, eps=cfg.optim.eps,
                             weight_decay=WD)
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=args.momentum, nesterov=args.nesterov)
    return adam, sgd
'''


def test_hyperparameters_resolve_from_constants_defaults_argparse_and_dataclasses(tmp_path):
    f = tmp_path / "train.py"
    f.write_text(STATIC)
    r = verify(f, "--steps", 20, "--format", "json")
    assert r.returncode == 0, r.stderr
    adam, sgd = rows_of(r)
    assert {k: (v["value"], v["source"]) for k, v in adam["values"].items()} == {
        "BASE_LR": ("0.001", "module constant BASE_LR"),
        "scale": ("2.0", "default of build(scale=…)"),
        "cfg.optim.betas": ("(0.9, 0.95)", "dataclass OptimConfig.betas"),
        "cfg.optim.eps": ("1e-07", "dataclass OptimConfig.eps"),
        "WD": ("0.01", "module constant WD"),
    }
    assert {k: (v["value"], v["source"]) for k, v in sgd["values"].items()} == {
        "args.momentum": ("0.8", "argparse --momentum"),           # type=float applied to the string default
        "args.nesterov": ("False", "argparse --nesterov"),
    }
    assert adam["status"] == sgd["status"] == "pass"
    # A --set overrides a value that resolved statically (the run used --lr 0.1, say).
    r = verify(f, "--steps", 5, "--format", "json", "--line", 31, *settings("args.momentum=0.5"))
    [row] = rows_of(r)
    assert row["line"] == 31 and row["values"]["args.momentum"] == {"value": "0.5", "source": "--set"}


def test_plot_has_three_axes(tmp_path):
    from PIL import Image

    out = tmp_path / "plots"
    r = verify(FIXTURES / "loop" / "clip_and_schedule.py", "--steps", 30, "--plot", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    [row] = rows_of(r)
    png = Path(row["plot"])
    assert png.parent == out and png.name == "clip_and_schedule_L4_AdamW.png" and png.exists()
    image = Image.open(png)
    assert image.format == "PNG" and image.info["Description"] == "axes: loss; max |dtheta|; learning rate"
    # Count the panels in the pixels: stacked axes share their left spine's column, where each
    # draws one long dark vertical run.
    gray = np.asarray(image.convert("L")) < 80
    longest = 0
    for column in gray.T:
        runs = np.diff(np.concatenate([[0], column.astype(int), [0]]))
        lengths = np.nonzero(runs == -1)[0] - np.nonzero(runs == 1)[0]
        longest = max(longest, int(np.sum(lengths >= 60)))
    assert longest == 3


def test_server_check_and_fix_never_import_torch_or_jax(tmp_path):
    f = tmp_path / "train.py"
    f.write_text("import torch\nopt = torch.optim.Adam([], lr=0.01)\n")
    code = textwrap.dedent(f"""
        import sys
        import switcheroo_lsp.frontends.lsp
        from switcheroo_lsp.frontends.cli import main
        main(["check", {str(f)!r}])
        main(["fix", "--diff", {str(f)!r}])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "jax", "optax", "matplotlib"))
        print("HEAVY", heavy)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr


def test_missing_extra_names_the_modules_and_the_install_command():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['jax'] = None\n"
            "from switcheroo_lsp.frontends.cli import main\n"
            f"sys.exit(main(['verify', {str(EXPRESSIONS)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"verify needs torch, jax, not installed for {sys.executable}: pip install 'switcheroo-lsp[verify]'" in r.stderr
