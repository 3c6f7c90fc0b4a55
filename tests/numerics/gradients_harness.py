"""Run a fixture of tests/fixtures/gradients/ as torch wrote it, and its flax-nnx fix as the
pipeline writes it, with only the model and the loss function swapped for their JAX twins.

The fixture's text runs under torch with torch modules and torch losses. The fixed text
(`analyze(..., "flax-nnx")` -> `fix_all` -> `apply`: the loss functions, `nnx.value_and_grad`,
`nnx.Optimizer`, `optax.MultiSteps` are the fix's own) runs with nnx twins of the same modules,
starting from torch's initial weights, and JAX twins of the losses: the lines a user ports by
hand. Every batch the loop draws records the parameters first, so the two trajectories compare
update by update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F
from flax import nnx

from switcheroo_lsp.engine import analyze, apply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gradients"


@dataclass
class Fixed:
    name: str
    text: str            # the torch program
    fixed: str           # the flax-nnx fix of it (the pipeline's)
    analysis: object

    def namespace(self, which: str) -> dict:
        ns: dict = {"__name__": f"gradients_{self.name}_{which}"}
        exec(compile(self.text if which == "torch" else self.fixed, f"<{self.name}:{which}>", "exec"), ns)
        return ns


def fixed(name: str) -> Fixed:
    path = FIXTURES / f"{name}.py"
    text = path.read_text()
    analysis = analyze(text, "flax-nnx")
    out = apply(text, analysis.fix_all())
    assert out == path.with_name(f"{name}.nnx.expected.py").read_text(), "the fix differs from the fixture's"
    return Fixed(name, text, out, analysis)


# -- the models: an MLP, and its nnx twin on the same weights ----------------------------------------

class TorchMLP(torch.nn.Module):
    def __init__(self, sizes: tuple[int, ...], seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        dtype = torch.get_default_dtype()
        self.layers = torch.nn.ModuleList()
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            layer = torch.nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(rng.normal(0, 1 / np.sqrt(fan_in), (fan_out, fan_in)), dtype=dtype))
                layer.bias.copy_(torch.tensor(rng.normal(0, 0.1, fan_out), dtype=dtype))
            self.layers.append(layer)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x

    def flat(self) -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel().copy() for layer in self.layers
                               for p in (layer.weight, layer.bias)])


class NnxMLP(nnx.Module):
    """The torch MLP's twin: the same layers, its initial weights (kernel = weight.T)."""

    def __init__(self, twin: TorchMLP, dtype):
        self.layers = nnx.List([self._linear(layer, dtype) for layer in twin.layers])

    @staticmethod
    def _linear(layer, dtype) -> nnx.Linear:
        out = nnx.Linear(layer.in_features, layer.out_features, dtype=dtype, param_dtype=dtype, rngs=nnx.Rngs(0))
        # Copies: jnp.asarray may share a numpy buffer, which torch's in-place updates would change.
        out.kernel[...] = jnp.asarray(layer.weight.detach().numpy().T.copy(), dtype)
        out.bias[...] = jnp.asarray(layer.bias.detach().numpy().copy(), dtype)
        return out

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jnp.tanh(x)
        return x

    def flat(self) -> np.ndarray:
        return np.concatenate([np.asarray(p).ravel() for layer in self.layers
                               for p in (layer.kernel[...].T, layer.bias[...])])


# -- the losses: torch's and their JAX twins -------------------------------------------------------

def torch_cross_entropy(logits, target):
    return F.cross_entropy(logits, target)


def jax_cross_entropy(logits, target):
    return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()


def torch_mse(pred, y):
    return F.mse_loss(pred, y)


def jax_mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def torch_bce(logits, label: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def jax_bce(logits, label: float):
    return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)).mean()


def torch_td(q, action, reward, next_q, done, gamma):
    q_a = q.gather(1, action[:, None]).squeeze(1)
    target = reward + gamma * (1 - done) * next_q.max(1).values
    return F.smooth_l1_loss(q_a, target)


def jax_td(q, action, reward, next_q, done, gamma):
    q_a = jnp.take_along_axis(q, action[:, None], 1)[:, 0]
    target = reward + gamma * (1 - done) * next_q.max(1)
    return optax.huber_loss(q_a, target, delta=1.0).mean()


LOSSES = {"cross_entropy": (torch_cross_entropy, jax_cross_entropy), "mse": (torch_mse, jax_mse),
          "bce": (torch_bce, jax_bce), "td": (torch_td, jax_td)}


# -- data and the trajectory ------------------------------------------------------------------------

def as_torch(a):
    return torch.tensor(a) if a.dtype.kind in "iu" else torch.tensor(a, dtype=torch.get_default_dtype())


def as_jax(a, dtype):
    return jnp.asarray(a) if a.dtype.kind in "iu" else jnp.asarray(a, dtype)


class Recorded:
    """The batches a loop draws (converted by `convert`); before each, the models' parameters."""

    def __init__(self, batches: list, convert, models: list):
        self.batches, self.convert, self.models = batches, convert, models
        self.seen: list[np.ndarray] = []

    def snapshot(self) -> None:
        self.seen.append(np.concatenate([m.flat() for m in self.models]))

    def __iter__(self):
        for batch in self.batches:
            self.snapshot()
            yield self.convert(batch)

    def trajectory(self) -> np.ndarray:
        self.snapshot()
        return np.array(self.seen)


def convert_torch(batch):
    return tuple(as_torch(a) for a in batch)


def convert_jax(dtype):
    def convert(batch):
        return tuple(as_jax(a, dtype) for a in batch)
    return convert


@dataclass
class Comparison:
    torch: np.ndarray
    nnx: np.ndarray
    torch_out: object = None
    nnx_out: object = None

    @property
    def diff(self) -> float:
        return float(np.max(np.abs(self.torch - self.nnx)))

    @property
    def moved(self) -> float:
        return float(np.max(np.abs(self.torch[-1] - self.torch[0])))
