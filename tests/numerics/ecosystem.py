"""The libraries around torch (the `ecosystem` extra), as the numerics tests load them.

`require(package)` skips a test when a package is missing, except under CI (`CI=true`), where
scripts/setup installed them all and a missing one is a failure.

timm is installed without torchvision (its PyPI build needs CUDA torch): `import timm` would fail
in timm/layers, so `load_timm_optim()` loads timm's real `timm/optim` modules file by file under
their own names, without running `timm/__init__.py`. The one import of `timm.optim` that reaches
outside it (`from timm.models import group_parameters`, used only for layer-wise decay) gets a
`timm.models` holding a `group_parameters` that raises: layer_decay= is not exercised.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI") == "true"


def require(package: str):
    """Import a package the tests need, or skip (fail under CI)."""
    if package == "timm":
        return load_timm_optim()
    try:
        return importlib.import_module(package)
    except ImportError as e:
        if ON_CI:
            raise AssertionError(f"{package} is not installed: scripts/setup installs the ecosystem extra") from e
        pytest.skip(f"{package} is not installed (pip install -e '.[ecosystem]' -c scripts/constraints.txt)")


def load_timm_optim():
    """timm's `timm.optim` package (its real files), without timm/__init__ (see above)."""
    if "timm.optim" in sys.modules and hasattr(sys.modules["timm.optim"], "create_optimizer_v2"):
        return sys.modules["timm.optim"]
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        require("timm_is_not_installed")
    root = Path(list(spec.submodule_search_locations)[0])
    timm = types.ModuleType("timm")
    timm.__path__ = [str(root)]
    timm.__spec__ = spec                 # other packages ask importlib.util.find_spec("timm")
    models = types.ModuleType("timm.models")
    models.__path__ = []
    models.__spec__ = importlib.machinery.ModuleSpec("timm.models", None, is_package=True)

    def group_parameters(*args, **kwargs):
        raise NotImplementedError("timm.models needs torchvision: layer-wise decay is not exercised here")

    models.group_parameters = group_parameters
    optim = types.ModuleType("timm.optim")
    optim.__path__ = [str(root / "optim")]
    optim.__package__ = "timm.optim"
    optim.__spec__ = importlib.machinery.ModuleSpec("timm.optim", None, is_package=True)
    optim.__spec__.submodule_search_locations = [str(root / "optim")]
    sys.modules.update({"timm": timm, "timm.models": models, "timm.optim": optim})
    timm.models, timm.optim = models, optim
    factory = importlib.import_module("timm.optim._optim_factory")
    groups = importlib.import_module("timm.optim._param_groups")
    for name in ("create_optimizer_v2", "create_optimizer", "optimizer_kwargs", "get_optimizer_class",
                 "list_optimizers"):
        setattr(optim, name, getattr(factory, name))
    optim.param_groups_weight_decay = groups.param_groups_weight_decay
    for module, cls in (("lamb", "Lamb"), ("lion", "Lion"), ("adamp", "AdamP"), ("lars", "Lars"),
                        ("adafactor", "Adafactor"), ("nadamw", "NAdamW"), ("rmsprop_tf", "RMSpropTF")):
        setattr(optim, cls, getattr(importlib.import_module(f"timm.optim.{module}"), cls))
    return optim


def module_of(call: str) -> str | None:
    """The module a call's class lives in ('bitsandbytes.optim.AdamW8bit(...)' -> 'bitsandbytes.optim'),
    None for torch's own."""
    head = call.split("(", 1)[0]
    if head.startswith("torch."):
        return "torch.distributed.optim" if head.startswith("torch.distributed.") else None
    return head.rpartition(".")[0]


def imports_for(call: str, load: bool = True) -> str:
    """The import line a program calling `call` needs; `load`: make sure the package is there (the
    documented rows' packages are not: only their rewrites run)."""
    module = module_of(call)
    if module is None:
        return ""
    if load and module.split(".")[0] == "timm":
        load_timm_optim()
    elif load and module.split(".")[0] != "torch":
        require(module.split(".")[0])
    return f"import {module}\n"
