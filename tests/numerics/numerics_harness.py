"""Run a torch optimizer and the Optax code that switcheroo's fix writes for it, side by side.

The problem is spec/verify_torch_optax.py's: parameters `w` (7,) and `M` (5, 6), the loss
f_t(x) = 0.5 x'Ax - b'x + n_t'x over x = concat(w, M.ravel()) (A SPD, eigenvalues 0.1..10;
n_t a fixed noise sequence), same seed, so the numbers match the spec's tables. With
`maximize=True` the loss is negated (torch then climbs -f, i.e. still descends f).

The Optax side is never written by hand: `emitted()` puts the torch call in a small program,
runs the real pipeline (`analyze` -> `fix_all` -> `rewrite.apply`) and executes the rewritten
program's text, imports included, to get the optimizer.
"""

from __future__ import annotations

import ast
import contextlib
import types
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from switcheroo_lsp.knowledge import catalog
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply
from ecosystem import imports_for

STEPS = 50
_rng = np.random.default_rng(0)
N_W, M_SHAPE = 7, (5, 6)
N = N_W + M_SHAPE[0] * M_SHAPE[1]
_Q, _ = np.linalg.qr(_rng.standard_normal((N, N)))
A = _Q @ np.diag(np.geomspace(0.1, 10.0, N)) @ _Q.T
B = _rng.standard_normal(N)
NOISE = 0.5 * _rng.standard_normal((STEPS * 4, N))[:STEPS]
W0 = _rng.standard_normal(N_W)
M0 = _rng.standard_normal(M_SHAPE)
X0 = np.concatenate([W0, M0.ravel()])

# `make` as a script would use it, so that the analysis sees every place the optimizer goes (a
# function only an outside caller runs would keep its optimizer torch: whole flows or nothing).
PROGRAM = ("import torch\n{imports}\n\ndef make(params, cfg=None):\n    opt = {call}\n    return opt\n\n\n"
           "if __name__ == \"__main__\":\n    optimizer = make(params)\n")


def scheduler_namespace(scheduler: str) -> dict:
    """The libraries a scheduler expression names (`transformers.get_scheduler(...)`), imported."""
    import importlib

    from ecosystem import require
    out = {}
    for root in ("transformers", "diffusers"):
        if f"{root}." in scheduler:
            require(root)
            importlib.import_module(f"{root}.optimization")
            out[root] = importlib.import_module(root)
    return out


def program_of(call: str, load: bool = True) -> str:
    """The small program around a call (with the import its library needs: ecosystem.py)."""
    return PROGRAM.format(call=call, imports=imports_for(call, load))


@contextlib.contextmanager
def precision(dtype: str):
    """float64: jax x64 on, torch default float64; float32: both off. Restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == "float64" else torch.float32)
    try:
        with jax.enable_x64(dtype == "float64"):
            yield np.float64 if dtype == "float64" else np.float32
    finally:
        torch.set_default_dtype(old)


@dataclass
class Built:
    call: str
    program: str
    fixed: str
    finding: object          # the construction's Finding
    emission: object         # its Emission
    namespace: dict

    def make(self, params, cfg=None):
        return self.namespace["make"](params, cfg)

    @property
    def expression(self) -> str:
        tree = ast.parse(self.fixed)
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "make")
        assign = next(s for s in fn.body if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "opt")
        return ast.get_source_segment(self.fixed, assign.value)


def analyzed(call: str, load: bool = True):
    program = program_of(call, load)
    analysis = analyze(program)
    found = [f for f in analysis.findings if f.kind in ("construct", "unmapped")]
    assert len(found) == 1, [f.message for f in analysis.findings]
    return program, analysis, found[0]


def emitted(call: str, load: bool = True) -> Built:
    """The fix for `opt = <call>` through the real pipeline, executed (`load`: the call's package is
    installed; the documented rows' are not, only their rewrites run)."""
    program, analysis, finding = analyzed(call, load)
    assert finding.fixable, f"{finding.code}: {finding.message}"
    fixed = apply(program, analysis.fix_all())
    namespace: dict = {"__name__": "switcheroo_numerics"}
    exec(compile(fixed, "<fixed>", "exec"), namespace)
    return Built(call, program, fixed, finding, analysis.site(finding.key).emission, namespace)


def torch_optimizer(call: str, params, cfg=None):
    """The torch optimizer, from the same program text (never imported from the call string)."""
    namespace: dict = {"__name__": "switcheroo_numerics_torch"}
    exec(compile(program_of(call), "<torch>", "exec"), namespace)
    return namespace["make"](params, cfg)


def _is(call: str, name: str) -> bool:
    return call.startswith(f"torch.optim.{name}(")


def run_torch(call: str, dtype, cfg=None, sign: float = 1.0, noise: float = 1.0, steps: int = STEPS,
              sparse: bool = False, scheduler: str | None = None) -> np.ndarray:
    w = torch.tensor(W0, dtype=torch.get_default_dtype(), requires_grad=True)
    M = torch.tensor(M0, dtype=torch.get_default_dtype(), requires_grad=True)
    opt = torch_optimizer(call, [w, M], cfg)
    if type(opt).__module__.startswith("schedulefree"):
        opt.train()            # schedulefree steps only in train mode
    sched = eval(scheduler, {"torch": torch, "opt": opt, **scheduler_namespace(scheduler)}) if scheduler else None
    A_t, B_t = torch.tensor(A, dtype=w.dtype), torch.tensor(B, dtype=w.dtype)
    N_t = torch.tensor(noise * NOISE, dtype=w.dtype)
    lbfgs = isinstance(opt, torch.optim.LBFGS)
    out = []
    for t in range(steps):
        if lbfgs:
            def closure():
                opt.zero_grad()
                x = torch.cat([w, M.reshape(-1)])
                loss = sign * (0.5 * x @ A_t @ x - B_t @ x + N_t[t] @ x)
                loss.backward()
                return loss
            opt.step(closure)
        else:
            with torch.no_grad():
                x = torch.cat([w, M.reshape(-1)])
                g = sign * (A_t @ x - B_t + N_t[t])
                gw, gM = g[:N_W].clone(), g[N_W:].reshape(M_SHAPE).clone()
            w.grad = gw.to_sparse() if sparse else gw
            M.grad = gM.to_sparse(1) if sparse else gM
            opt.step()
        if sched is not None:
            sched.step()
        out.append(np.concatenate([w.detach().numpy().ravel(), M.detach().numpy().ravel()]))
    return np.array(out)


def run_optax(tx, dtype, sign: float = 1.0, noise: float = 1.0, steps: int = STEPS, value_fn: bool = False) -> np.ndarray:
    A_j, B_j = jnp.asarray(A, dtype), jnp.asarray(B, dtype)
    params = (jnp.asarray(W0, dtype), jnp.asarray(M0, dtype))
    state = tx.init(params)

    def loss(p, n):
        x = jnp.concatenate([p[0], p[1].ravel()])
        return sign * (0.5 * x @ A_j @ x - B_j @ x + n @ x)

    def grad(p, n):
        x = jnp.concatenate([p[0], p[1].ravel()])
        g = sign * (A_j @ x - B_j + n)
        return g[:N_W], g[N_W:].reshape(M_SHAPE)

    def step(carry, n):
        p, s = carry
        g = grad(p, n)
        if value_fn:   # LBFGS: what optax.lbfgs's line search needs, too
            u, s = tx.update(g, s, p, value=loss(p, n), grad=g, value_fn=lambda q: loss(q, n))
        else:
            u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        return (p, s), jnp.concatenate([p[0].ravel(), p[1].ravel()])

    run = jax.jit(lambda carry, ns: jax.lax.scan(step, carry, ns)[1])
    return np.asarray(run((params, state), jnp.asarray(noise * NOISE[:steps], dtype)))


@dataclass
class Comparison:
    built: Built
    torch: np.ndarray
    optax: np.ndarray

    @property
    def diff(self) -> float:
        return float(np.max(np.abs(self.torch - self.optax)))

    @property
    def scale(self) -> float:
        return float(max(1.0, np.max(np.abs(self.torch))))

    @property
    def moved(self) -> float:
        return float(np.max(np.abs(self.torch - X0)))


def literal_flag(call: str, name: str, cfg) -> bool:
    """The value a boolean argument has when the program runs (a literal, or cfg.<attr>)."""
    node = ast.parse(call, mode="eval").body
    for kw in node.keywords:
        if kw.arg == name:
            if isinstance(kw.value, ast.Constant):
                return bool(kw.value.value)
            return bool(eval(compile(ast.Expression(kw.value), "<flag>", "eval"), {"cfg": cfg}))
    return False


def compare(call: str, dtype: str = "float64", cfg=None) -> Comparison:
    """torch vs the emitted Optax code for `call` on the reference problem."""
    with precision(dtype) as np_dtype:
        built = emitted(call)
        sign = -1.0 if literal_flag(call, "maximize", cfg) else 1.0
        lbfgs = _is(call, "LBFGS")
        noise = 0.0 if lbfgs else 1.0        # LBFGS is for deterministic full-batch problems
        sparse = _is(call, "SparseAdam")
        t = run_torch(call, np_dtype, cfg, sign=sign, noise=noise, sparse=sparse)
        params = (jnp.asarray(W0, np_dtype), jnp.asarray(M0, np_dtype))
        tx = built.make(params, cfg)
        j = run_optax(tx, np_dtype, sign=sign, noise=noise, value_fn=lbfgs)
    return Comparison(built, t, j)


def torch_sensitivity(call: str, dtype: str = "float64", cfg=None) -> float:
    """How far torch's own trajectory moves when its starting point moves by one rounding unit
    (x0 * (1 +- 1e-15), float32: 5e-7): the size of a pure rounding difference after amplification by the
    optimizer. LBFGS amplifies rounding ~1e3-fold over 250 iterations; there a formula error
    shows as far more than this, rounding as about this."""
    global W0, M0
    w, m = W0.copy(), M0.copy()
    sign = -1.0 if literal_flag(call, "maximize", cfg) else 1.0
    noise = 0.0 if _is(call, "LBFGS") else 1.0
    worst = 0.0
    with precision(dtype) as np_dtype:
        base = run_torch(call, np_dtype, cfg, sign=sign, noise=noise)
        try:
            unit = 1e-15 if dtype == "float64" else 5e-7       # a few units in the last place
            for eps in (unit, -unit):
                W0, M0 = w * (1 + eps), m * (1 + eps)
                other = run_torch(call, np_dtype, cfg, sign=sign, noise=noise)
                worst = max(worst, float(np.max(np.abs(base - other))))
        finally:
            W0, M0 = w, m
    return worst


def config(**values):
    return types.SimpleNamespace(**values)


def row_of(call: str) -> catalog.OptimizerRow:
    head = call.split("(", 1)[0]
    if head.startswith("torch.distributed."):         # ZeroRedundancyOptimizer: its optimizer_class's row
        cls = call.split("optimizer_class=", 1)[1] if "optimizer_class=" in call else call.split(", ")[1]
        head = cls.split(",", 1)[0].split(")", 1)[0]
    if head.startswith("torch.optim."):
        return catalog.OPTIMIZERS[head.rsplit(".", 1)[-1]]
    return catalog.OPTIMIZERS[catalog.CLASSES[head]]
