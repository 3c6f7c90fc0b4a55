"""The two fixed problems every construction is verified on (numpy data, seeded).

- `mlp`: regression with a 4-8-8-1 tanh MLP (six tensors: three weights, three biases) on
  80 seeded samples in 10 mini-batches of 8, one batch per update (an epoch is 10 updates).
- `quadratic`: f_t(x) = 0.5 (x - c_t)'A(x - c_t) over three tensors (7,), (5, 6), (4,), with
  A's eigenvalues spread over 1e-3 .. 1 (condition number 1e3) and a target c_t = c + 0.3 n_t
  moved by seeded noise at every update; plain SGD stays stable up to lr 2.

Each gives its loss three ways: numpy (the curves), torch (the gradients both sides are fed,
taken at torch's parameters) and jax (LBFGS only: its line of evaluations is its own on each
side, on the deterministic full-batch loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BATCHES = 10


@dataclass
class Problem:
    name: str
    init: list[np.ndarray]
    _data: dict = field(default_factory=dict)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [p.shape for p in self.init]

    def perturbed(self, eps: float) -> "Problem":
        """The same problem started at x0 * (1 + eps): how far rounding alone carries a run."""
        return type(self)(self.name, [p * (1 + eps) for p in self.init], self._data)


class MLP(Problem):
    def __init__(self, name: str = "mlp", init=None, data=None):
        if data is None:
            rng = np.random.default_rng(1234)
            x = rng.standard_normal((BATCHES * 8, 4))
            w = rng.standard_normal(4)
            y = np.sin(x @ w)[:, None] + 0.1 * rng.standard_normal((BATCHES * 8, 1))
            sizes = [(4, 8), (8, 8), (8, 1)]
            init = []
            for fan_in, fan_out in sizes:
                init += [rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in), 0.1 * rng.standard_normal(fan_out)]
            data = {"x": x, "y": y}
        super().__init__(name, init, data)

    def _batch(self, t: int | None):
        x, y = self._data["x"], self._data["y"]
        if t is None:
            return x, y
        i = t % BATCHES
        return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    def loss_np(self, params, t):
        x, y = self._batch(t)
        h = x
        for i in range(0, 4, 2):
            h = np.tanh(h @ params[i] + params[i + 1])
        out = h @ params[4] + params[5]
        return float(np.mean((out - y) ** 2))

    def torch_loss(self, params, t):
        import torch
        x, y = (torch.as_tensor(a, dtype=params[0].dtype) for a in self._batch(t))
        h = x
        for i in range(0, 4, 2):
            h = torch.tanh(h @ params[i] + params[i + 1])
        return torch.mean((h @ params[4] + params[5] - y) ** 2)

    def jax_loss(self, params, t):
        import jax.numpy as jnp
        x, y = (jnp.asarray(a, params[0].dtype) for a in self._batch(t))
        h = x
        for i in range(0, 4, 2):
            h = jnp.tanh(h @ params[i] + params[i + 1])
        return jnp.mean((h @ params[4] + params[5] - y) ** 2)


class Quadratic(Problem):
    SHAPES = [(7,), (5, 6), (4,)]

    def __init__(self, name: str = "quadratic", init=None, data=None):
        if data is None:
            rng = np.random.default_rng(4321)
            n = sum(int(np.prod(s)) for s in self.SHAPES)
            q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            data = {"A": q @ np.diag(np.geomspace(1e-3, 1.0, n)) @ q.T, "c": rng.standard_normal(n),
                    "noise_seed": 99}
            init = [rng.standard_normal(s) for s in self.SHAPES]
        super().__init__(name, init, data)

    def target(self, t: int | None) -> np.ndarray:
        return self._data["c"] + self.noise(t)

    def noise(self, t: int | None) -> np.ndarray:
        n = self._data["c"].shape[0]
        if t is None:
            return np.zeros(n)
        cache = self._data.setdefault("noise", np.zeros((0, n)))
        if t >= cache.shape[0]:      # a prefix of one seeded stream: the same n_t for any length
            cache = 0.3 * np.random.default_rng(self._data["noise_seed"]).standard_normal((max(256, 2 * t), n))
            self._data["noise"] = cache
        return cache[t]

    def loss_np(self, params, t):
        d = np.concatenate([np.ravel(p) for p in params]) - self.target(t)
        return float(0.5 * d @ self._data["A"] @ d)

    def torch_loss(self, params, t):
        import torch
        x = torch.cat([p.reshape(-1) for p in params])
        A, c = (torch.as_tensor(a, dtype=x.dtype) for a in (self._data["A"], self.target(t)))
        return 0.5 * (x - c) @ A @ (x - c)

    def jax_loss(self, params, t):
        import jax.numpy as jnp
        x = jnp.concatenate([p.reshape(-1) for p in params])
        A, c = (jnp.asarray(a, x.dtype) for a in (self._data["A"], self.target(t)))
        return 0.5 * (x - c) @ A @ (x - c)


def problems() -> list[Problem]:
    return [MLP(), Quadratic()]


def split_groups(n_tensors: int, n_groups: int) -> list[list[int]]:
    """Tensor indices of each parameter group: round robin, so that with two groups the
    MLP's weights form one and its biases the other (the usual decay / no-decay split)."""
    return [[j for j in range(n_tensors) if j % n_groups == i] for i in range(n_groups)]
