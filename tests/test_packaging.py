"""What the package says about itself: license, version, entry points, and what installing it pulls."""

import email
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import switcheroo_lsp
from switcheroo_lsp import __version__

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "vscode-client"
HEAVY = {"torch", "jax", "jaxlib", "optax", "pytest", "hypothesis"}   # what the main job never needs


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[zipfile.ZipFile, str]:
    """The wheel `pip install .` would install, built from this checkout, and the build's output."""
    # From a copy: setuptools builds in the source tree, and a build/ left there could leak stale files in.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "server", src / "server", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (built,) = out.glob("switcheroo_lsp-*.whl")
    with zipfile.ZipFile(built) as zf:
        yield zf, r.stdout + r.stderr


def wheel_metadata(zf: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(zf.read(name))


def test_license_is_an_spdx_expression_and_the_build_has_no_deprecation(wheel):
    zf, build_output = wheel
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    meta = wheel_metadata(zf)
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    # setuptools stops building the TOML-table form of `license` in February 2027; it warns until then.
    assert "deprecated" not in build_output.lower(), build_output


def test_wheel_version_is_the_package_version(wheel):
    zf, _ = wheel
    assert wheel_metadata(zf)["Version"] == __version__


def test_installing_the_server_pulls_no_torch(wheel):
    zf, _ = wheel
    required = [r for r in wheel_metadata(zf).get_all("Requires-Dist") if "extra ==" not in r]
    names = {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower() for r in required}
    assert names == {"pygls", "lsprotocol", "libcst"}
    assert not names & HEAVY


def test_version_flag_is_the_installed_metadata():
    r = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "--version"], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == f"switcheroo-lsp {metadata.version('switcheroo-lsp')}" == f"switcheroo-lsp {__version__}"


def test_python_m_is_the_console_script(tmp_path):
    (ep,) = metadata.entry_points(group="console_scripts", name="switcheroo-lsp")
    from switcheroo_lsp.frontends import cli
    assert ep.load() is cli.main
    script = Path(sys.executable).with_name("switcheroo-lsp")
    assert script.exists(), "the console script is installed beside this interpreter"
    f = tmp_path / "train.py"
    f.write_text("import torch\nopt = torch.optim.SGD([], lr=0.1)\nopt.step()\n")
    for args in (["--version"], ["--help"], ["check", "--help"], ["check", str(f)],
                 ["check", "--output-format", "json", str(f)], ["fix", "--diff", str(f)],
                 ["check", str(tmp_path / "missing.py")], []):
        by_script = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)
        by_module = subprocess.run([sys.executable, "-m", "switcheroo_lsp", *args], capture_output=True, text=True,
                                   timeout=60)
        assert (by_module.returncode, by_module.stdout, by_module.stderr) == (
            by_script.returncode, by_script.stdout, by_script.stderr), args


def test_extension_version_and_license_are_the_servers():
    package = json.loads((CLIENT / "package.json").read_text())
    lock = json.loads((CLIENT / "package-lock.json").read_text())
    assert package["version"] == lock["version"] == lock["packages"][""]["version"] == switcheroo_lsp.__version__
    assert package["license"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert (CLIENT / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
