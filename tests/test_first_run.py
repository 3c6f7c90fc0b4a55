"""The README's first command, `./scripts/demo`, on a fresh environment: the server alone, then the job."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "jax", "jaxlib", "optax", "pytest", "hypothesis", "pytest-lsp", "pre-commit"}


def test_demo_sets_up_only_the_server_and_shows_the_job(tmp_path):
    venv = tmp_path / "venv"
    env = {**os.environ, "SWITCHEROO_VENV": str(venv)}
    started = time.monotonic()
    r = subprocess.run([str(ROOT / "scripts" / "demo")], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = r.stdout
    assert "== switcheroo-lsp check examples/" in out and "examples/gan.py:31:9: OPX101 torch.optim.Adam" in out
    assert "== switcheroo-lsp fix --diff examples/" in out and "+import optax" in out
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"switcheroo-lsp", "pygls", "lsprotocol", "libcst"} <= installed
    assert not installed & HEAVY, f"the demo installed {installed & HEAVY}"
    print(f"fresh ./scripts/demo: {took:.1f} s", file=sys.stderr)

