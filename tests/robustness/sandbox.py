"""Run a (fixed) training program for real, with every Optax object it builds guarded.

What the program imports is served from here: `torch` is a small fake (its optimizers and
schedulers record nothing and do nothing: they stand for code fix-all left as torch), `optax`
and `switcheroo_optax` are the real modules whose transforms come back wrapped, `flax.nnx` is a
fake whose `nnx.Optimizer` is wrapped the same way, and `accelerate` / `somelib` are stand-ins for
libraries (a wrapper that hands back what it is given; functions and a Trainer that *use* the
objects handed to them, as libraries do). A wrapped Optax object records every torch optimizer
or scheduler API used on it (`step`, `zero_grad`, `state_dict`, `param_groups`, `get_last_lr`...)
with the program's line: that is a half conversion, unless the line carries a finding.

Every simple statement runs inside `try/except Exception`, so a name the port has yet to define
(`grads`, a state threaded by hand) does not stop the run: the question is only where the
objects go, and everything reachable is reached.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types

import optax

import switcheroo_optax

PROGRAM = "<program>"
TORCH_API = {"step", "zero_grad", "state_dict", "load_state_dict", "add_param_group", "param_groups", "state",
             "defaults", "get_last_lr", "get_lr", "register_step_post_hook", "register_step_pre_hook", "__call__"}


def program_line() -> int:
    """The line of the program whose execution is under way (past library stand-ins)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename != PROGRAM:
        frame = frame.f_back
    return frame.f_lineno if frame is not None else 0


class Recorder:
    def __init__(self):
        self.touched: list[tuple[int, str]] = []     # (program line, API used on an Optax object)

    def touch(self, what: str) -> None:
        self.touched.append((program_line(), what))


class Guarded:
    """An Optax transform (or an nnx.Optimizer) as the program sees it."""

    def __init__(self, inner, recorder: Recorder, kind: str):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_recorder", recorder)
        object.__setattr__(self, "_kind", kind)

    def __getattr__(self, name):
        if name in TORCH_API:
            self._recorder.touch(f"{self._kind}.{name}")
            return [{"lr": 0.0}] if name == "param_groups" else {} if name == "state" else _noop
        return getattr(self._inner, name)

    def __setattr__(self, name, value):
        self._recorder.touch(f"{self._kind}.{name} = ...")

    def __call__(self, *args, **kwargs):        # a schedule function
        return self._inner(*args, **kwargs)


def _noop(*args, **kwargs):
    return None


def _is_transform(value) -> bool:
    return hasattr(value, "init") and hasattr(value, "update") and not isinstance(value, types.ModuleType)


class GuardedModule(types.ModuleType):
    """A real module whose functions' transforms (and schedules) come back guarded."""

    def __init__(self, real, recorder: Recorder):
        super().__init__(real.__name__)
        self._real, self._recorder = real, recorder

    def __getattr__(self, name):
        value = getattr(self._real, name)
        if isinstance(value, types.ModuleType):
            return GuardedModule(value, self._recorder)
        if not callable(value) or isinstance(value, type):
            return value
        recorder = self._recorder

        def wrapped(*args, **kwargs):
            out = value(*args, **kwargs)
            if _is_transform(out):
                return Guarded(out, recorder, "optax")
            if callable(out) and name.endswith(("schedule", "decay", "schedules")):
                return Guarded(out, recorder, "schedule")
            return out
        return wrapped


# -- the fake torch ------------------------------------------------------------------------------
class FakeTensor:
    def __getattr__(self, name):
        return lambda *a, **k: FakeTensor()

    def __add__(self, other):
        return self

    __radd__ = __sub__ = __mul__ = __truediv__ = __add__

    def item(self):
        return 0.0


class FakeModule:
    def __init__(self, *args, **kwargs):
        pass

    def parameters(self):
        return [FakeTensor()]

    def __call__(self, *args, **kwargs):
        return FakeTensor()


class FakeOptimizer:
    """A torch optimizer left as torch: any use is fine."""

    def __init__(self, params=None, *args, **kwargs):
        self.param_groups = [{"lr": kwargs.get("lr", 0.1), "params": params}]
        self.state = {}
        self.defaults = dict(kwargs)

    def __getattr__(self, name):
        return _noop


class FakeScheduler:
    def __init__(self, optimizer, *args, **kwargs):
        self.optimizer = optimizer

    def get_last_lr(self):
        return [0.1]

    def __getattr__(self, name):
        return _noop


def _torch() -> types.ModuleType:
    torch = types.ModuleType("torch")
    optim = types.ModuleType("torch.optim")
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Optimizer"):
        setattr(optim, name, type(name, (FakeOptimizer,), {}))
    sched = types.ModuleType("torch.optim.lr_scheduler")
    for name in ("StepLR", "ExponentialLR", "CosineAnnealingLR"):
        setattr(sched, name, type(name, (FakeScheduler,), {}))
    optim.lr_scheduler = sched
    nn = types.ModuleType("torch.nn")
    nn.Linear = nn.Module = FakeModule
    utils = types.ModuleType("torch.nn.utils")
    utils.clip_grad_norm_ = _noop
    nn.utils = utils
    torch.optim, torch.nn = optim, nn
    torch.save = torch.load = _noop
    torch.compile = lambda f, *a, **k: f
    torch.randn = torch.zeros = lambda *a, **k: FakeTensor()
    return torch


# -- libraries the program hands objects to ----------------------------------------------------------
def _uses(value) -> None:
    """What a library does with an optimizer it is handed: it calls torch's API on it."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (Guarded, FakeOptimizer, FakeScheduler)):
            item.state_dict()
            item.step()


def _libraries() -> dict[str, types.ModuleType]:
    accelerate = types.ModuleType("accelerate")

    class Accelerator:
        def prepare(self, *things):
            return things[0] if len(things) == 1 else things

        def backward(self, loss):
            return None

    accelerate.Accelerator = Accelerator
    somelib = types.ModuleType("somelib")
    somelib.save = lambda obj, *a, **k: _uses(obj)

    class Trainer:
        def __init__(self, model=None, optimizers=(), **kwargs):
            self.optimizers = optimizers

        def train(self):
            _uses(self.optimizers)

    class LightningModule(FakeModule):
        pass

    def fit(module):
        _uses(module.configure_optimizers())

    somelib.Trainer, somelib.LightningModule, somelib.fit = Trainer, LightningModule, fit
    return {"accelerate": accelerate, "somelib": somelib}


def _nnx(recorder: Recorder) -> types.ModuleType:
    nnx = types.ModuleType("flax.nnx")
    nnx.Param = object
    nnx.Optimizer = lambda model, tx, wrt=None: Guarded(types.SimpleNamespace(update=_noop, model=model, tx=tx),
                                                       recorder, "nnx.Optimizer")
    nnx.value_and_grad = lambda f, **k: (lambda *a: (FakeTensor(), {}))
    flax = types.ModuleType("flax")
    flax.nnx = nnx
    return flax


# -- running -------------------------------------------------------------------------------------
class _Tolerant(ast.NodeTransformer):
    """Every simple statement in its own `try: ... except Exception: pass`."""

    SIMPLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete, ast.Raise, ast.Assert, ast.Import,
              ast.ImportFrom, ast.Return)

    def generic_visit(self, node):
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                setattr(node, field, [self._guard(s) for s in stmts])
        return node

    def _guard(self, stmt):
        if not isinstance(stmt, self.SIMPLE):
            return stmt
        handler = ast.ExceptHandler(type=ast.Name("Exception", ast.Load()), name=None, body=[ast.Pass()])
        return ast.copy_location(ast.Try(body=[stmt], handlers=[handler], orelse=[], finalbody=[]), stmt)


def run(text: str, preset: dict | None = None) -> Recorder:
    """Execute `text`; what torch API reached an Optax object, and where."""
    recorder = Recorder()
    torch = _torch()
    modules = {"torch": torch, "torch.optim": torch.optim, "torch.nn": torch.nn,
               "torch.optim.lr_scheduler": torch.optim.lr_scheduler,
               "optax": GuardedModule(optax, recorder),
               "switcheroo_optax": GuardedModule(switcheroo_optax, recorder), **_libraries()}
    flax = _nnx(recorder)
    modules["flax"], modules["flax.nnx"] = flax, flax.nnx
    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name in modules:
            module = modules[name]
            if fromlist or "." not in name:
                return module
            return modules[name.split(".")[0]]
        return real_import(name, globals, locals, fromlist, level)

    tree = _Tolerant().visit(ast.parse(text))
    ast.fix_missing_locations(tree)
    code = compile(tree, PROGRAM, "exec")
    namespace = {"__builtins__": {**vars(builtins), "__import__": fake_import}, "__name__": "__main__"}
    namespace.update(preset or {})
    exec(code, namespace)
    return recorder
