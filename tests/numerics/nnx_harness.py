"""Run a torch training function and the Flax NNX code switcheroo's flax-nnx fix writes for it.

The program is a small training function over a module, written the torch way:

    def train(model, grads_of, steps, cfg=None):
        optimizer = torch.optim.X(model.parameters(), ...)
        for t in range(steps):
            optimizer.zero_grad()
            grads = grads_of(model, t)
            update(model, optimizer, grads)
        return optimizer

    def update(model, optimizer, grads):
        optimizer.step()

torch runs that text as it is. The NNX side is the same text after the real pipeline
(`analyze(..., "flax-nnx")` -> `fix_all` -> `apply`), executed: `nnx.Optimizer(model, <tx>,
wrt=nnx.Param)` and `optimizer.update(model, grads)` are the fix's own statements, nothing is
written by hand. Both train a module holding numerics_harness's parameters (`w` (7,), `M` (5, 6))
on its reference problem, the same gradients at the same points; `grads_of` records the
parameters before every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import numerics_harness as ref
from switcheroo_lsp.engine import analyze, apply

STEPS = ref.STEPS
PROGRAM = '''\
import torch


def train(model, grads_of, steps, cfg=None):
    optimizer = {call}
    for t in range(steps):
        optimizer.zero_grad()
        grads = grads_of(model, t)
        update(model, optimizer, grads)
    return optimizer


def update(model, optimizer, grads):
    optimizer.step()


if __name__ == "__main__":      # a caller the analysis sees (the harness calls train itself)
    train(model, grads_of, 1)
'''


def on_module(call: str) -> str:
    """`torch.optim.X(params, ...)` (numerics_cases' spelling) over a module's parameters."""
    assert call.split("(", 1)[1].startswith("params"), call
    return call.replace("(params", "(model.parameters()", 1)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        dtype = torch.get_default_dtype()
        self.w = torch.nn.Parameter(torch.tensor(ref.W0, dtype=dtype))
        self.M = torch.nn.Parameter(torch.tensor(ref.M0, dtype=dtype))


class NnxNet(nnx.Module):
    def __init__(self, dtype):
        self.w = nnx.Param(jnp.asarray(ref.W0, dtype))
        self.M = nnx.Param(jnp.asarray(ref.M0, dtype))


@dataclass
class Converted:
    program: str
    fixed: str
    analysis: object     # of the torch program, flax-nnx target

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.analysis.findings]


def converted(call: str) -> Converted:
    program = PROGRAM.format(call=on_module(call))
    analysis = analyze(program, "flax-nnx")
    return Converted(program, apply(program, analysis.fix_all()), analysis)


def _run(text: str, model, grads_of, cfg, jit=None):
    namespace: dict = {"__name__": "switcheroo_nnx_numerics"}
    exec(compile(text, "<program>", "exec"), namespace)
    if jit is not None:
        namespace["update"] = jit(namespace["update"])   # `train` calls it by its global name
    namespace["train"](model, grads_of, STEPS, cfg)


def _trajectory(before: list[np.ndarray], final: np.ndarray) -> np.ndarray:
    """The parameters after each step (recorded before the next one, and at the end)."""
    return np.array(before[1:] + [final])


def run_torch(conv: Converted, cfg, sign: float, sparse: bool) -> np.ndarray:
    model = TorchNet()
    dtype = model.w.dtype
    A, B = torch.tensor(ref.A, dtype=dtype), torch.tensor(ref.B, dtype=dtype)
    noise = torch.tensor(ref.NOISE, dtype=dtype)
    seen = []

    def grads_of(m, t):
        with torch.no_grad():
            x = torch.cat([m.w, m.M.reshape(-1)])
            seen.append(x.numpy().copy())
            g = sign * (A @ x - B + noise[t])
            gw, gM = g[:ref.N_W].clone(), g[ref.N_W:].reshape(ref.M_SHAPE).clone()
        m.w.grad = gw.to_sparse() if sparse else gw        # SparseAdam takes sparse gradients only
        m.M.grad = gM.to_sparse(1) if sparse else gM
        return None

    _run(conv.program, model, grads_of, cfg)
    return _trajectory(seen, torch.cat([model.w, model.M.reshape(-1)]).detach().numpy())


def run_nnx(conv: Converted, cfg, sign: float, dtype) -> np.ndarray:
    model = NnxNet(dtype)
    A, B = jnp.asarray(ref.A, dtype), jnp.asarray(ref.B, dtype)
    noise = jnp.asarray(ref.NOISE, dtype)
    seen = []

    def grads_of(m, t):
        x = jnp.concatenate([m.w[...], m.M[...].ravel()])
        seen.append(np.asarray(x))
        g = sign * (A @ x - B + noise[t])
        gw, gM = g[:ref.N_W], g[ref.N_W:].reshape(ref.M_SHAPE)
        return _linear_grad(m, gw, gM)

    # The update step jitted, as NNX training code runs it (@nnx.jit on the train step).
    _run(conv.fixed, model, grads_of, cfg, jit=nnx.jit)
    return _trajectory(seen, np.asarray(jnp.concatenate([model.w[...], model.M[...].ravel()])))


@nnx.jit
def _linear_grad(net, gw, gM):
    """The gradient of a function linear in the parameters is exactly (gw, gM): nnx.grad gives
    it as the nnx.State that the fix's `optimizer.update(model, grads)` takes (jitted: traced
    once per dtype, not once per step)."""
    return nnx.grad(lambda n: jnp.sum(n.w[...] * gw) + jnp.sum(n.M[...] * gM))(net)


@dataclass
class Comparison:
    conv: Converted
    torch: np.ndarray
    nnx: np.ndarray

    @property
    def diff(self) -> float:
        return float(np.max(np.abs(self.torch - self.nnx)))

    @property
    def scale(self) -> float:
        return float(max(1.0, np.max(np.abs(self.torch))))

    @property
    def moved(self) -> float:
        return float(np.max(np.abs(self.torch - ref.X0)))


def compare(call: str, dtype: str = "float64", cfg=None) -> Comparison:
    """torch running `call` in the training function vs the flax-nnx fix of the same text."""
    with ref.precision(dtype) as np_dtype:
        conv = converted(call)
        sign = -1.0 if ref.literal_flag(call, "maximize", cfg) else 1.0
        t = run_torch(conv, cfg, sign, sparse=call.startswith("torch.optim.SparseAdam("))
        j = run_nnx(conv, cfg, sign, np_dtype)
    return Comparison(conv, t, j)


# -- LBFGS: `step(closure)` needs a person (OPX202); its construction is the fix's -------------------
LBFGS_PROGRAM = '''\
import torch


def make(model, cfg=None):
    optimizer = {call}
    return optimizer


if __name__ == "__main__":
    optimizer = make(model)
'''


def compare_lbfgs(call: str, dtype: str = "float64") -> Comparison:
    """The emitted `nnx.Optimizer(model, switcheroo_optax.torch_lbfgs(...), wrt=nnx.Param)`
    stepped as the OPX202 message on `step(closure)` says: `optimizer.update(model, grads,
    value_fn=loss_fn)`, loss_fn taking the parameters' nnx.State. Noise-free, as LBFGS is meant."""
    program = LBFGS_PROGRAM.format(call=on_module(call))
    analysis = analyze(program, "flax-nnx")
    conv = Converted(program, apply(program, analysis.fix_all()), analysis)
    with ref.precision(dtype) as np_dtype:
        model = TorchNet()
        A, B = torch.tensor(ref.A, dtype=model.w.dtype), torch.tensor(ref.B, dtype=model.w.dtype)
        ns: dict = {}
        exec(compile(program, "<torch>", "exec"), ns)
        opt = ns["make"](model)
        out = []
        for _ in range(STEPS):
            def closure():
                opt.zero_grad()
                x = torch.cat([model.w, model.M.reshape(-1)])
                loss = 0.5 * x @ A @ x - B @ x
                loss.backward()
                return loss
            opt.step(closure)
            out.append(torch.cat([model.w, model.M.reshape(-1)]).detach().numpy().copy())

        net = NnxNet(np_dtype)
        Aj, Bj = jnp.asarray(ref.A, np_dtype), jnp.asarray(ref.B, np_dtype)

        def loss_of(w, M):
            x = jnp.concatenate([w, M.ravel()])
            return 0.5 * x @ Aj @ x - Bj @ x

        ns = {}
        exec(compile(conv.fixed, "<nnx>", "exec"), ns)
        optimizer = ns["make"](net)

        @nnx.jit
        def step(optimizer, net):
            grads = nnx.grad(lambda m: loss_of(m.w[...], m.M[...]))(net)
            optimizer.update(net, grads, value_fn=lambda state: loss_of(state["w"], state["M"]))

        got = []
        for _ in range(STEPS):
            step(optimizer, net)
            got.append(np.asarray(jnp.concatenate([net.w[...], net.M[...].ravel()])))
    return Comparison(conv, np.array(out), np.array(got))


