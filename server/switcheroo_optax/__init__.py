"""Small Optax transforms that reproduce torch.optim exactly where plain Optax cannot.

switcheroo-lsp rewrites torch.optim code as Optax. Most optimizers map onto Optax built-ins;
for the few that do not (torch's formulas differ in where eps goes, how the AMSGrad maximum
is taken, how NAdam schedules its momentum, ...), a rewritten program imports this module:

    import switcheroo_optax
    opt = optax.chain(switcheroo_optax.scale_by_torch_amsgrad(b1=0.9, b2=0.999, eps=1e-08),
                      optax.scale_by_learning_rate(0.001))

Everything here is plain jax + optax (no torch, nothing else of switcheroo's), follows
Optax's conventions (`GradientTransformation`s; `scale_by_*` return a direction that
`optax.scale_by_learning_rate` turns into an update; `torch_*` return the update itself),
and is tested against torch 2.13.0 step by step (float64 trajectories agree to 1e-12).

| transform | reproduces |
|---|---|
| `scale_by_torch_amsgrad` | `Adam(amsgrad=True)` / `AdamW(amsgrad=True)` direction |
| `scale_by_torch_adagrad` | `Adagrad` direction (accumulator start, eps outside the sqrt) |
| `scale_by_torch_nadam` | `NAdam` direction (momentum_decay schedule) |
| `scale_by_torch_sparse_adam` | `SparseAdam` direction (rows without gradient untouched) |
| `torch_rprop` | `Rprop` update |
| `torch_sgd` | `SGD` update whose momentum changes while training (torch's lazy momentum buffer) |
| `torch_adafactor` | `Adafactor` update (any number of dimensions) |
| `torch_lbfgs` | `LBFGS(line_search_fn=None)`: one update = one `step(closure)` |
| `torch_clip_grad_norm` | `torch.nn.utils.clip_grad_norm_` |
| `hf_adafactor` | transformers' `Adafactor` update (relative step, parameter scale, clipping) |
| `torch_schedule_free_adamw` | schedulefree's `AdamWScheduleFree` with a warmup |
| `torch_schedule_free_sgd` | schedulefree's `SGDScheduleFree` with a warmup |

The last three reproduce libraries built on torch (transformers, schedulefree), tested against
the packages themselves, as are the learning-rate schedules of transformers and diffusers
(`linear_schedule_with_warmup`, `cosine_schedule_with_warmup`, ..., and `transformers_schedule` /
`diffusers_schedule`, their `get_scheduler(name, ...)`): Optax schedules, functions of the update
count, to pass as `learning_rate`; and `timm_weight_decay_mask`, timm's weight-decay exclusion of
biases and norm parameters as an Optax `mask`.
"""

from ._adafactor import TorchAdafactorState, torch_adafactor
from ._adagrad import ScaleByTorchAdagradState, scale_by_torch_adagrad
from ._adam import (
    ScaleByTorchAmsgradState,
    ScaleByTorchNadamState,
    ScaleByTorchSparseAdamState,
    scale_by_torch_amsgrad,
    scale_by_torch_nadam,
    scale_by_torch_sparse_adam,
)
from ._clip import torch_clip_grad_norm
from ._hf_adafactor import HfAdafactorState, hf_adafactor
from ._lbfgs import TorchLbfgsState, torch_lbfgs
from ._masks import timm_weight_decay_mask
from ._rprop import TorchRpropState, torch_rprop
from ._schedule_free import torch_schedule_free_adamw, torch_schedule_free_sgd
from ._schedules import (
    constant_schedule_with_warmup,
    cosine_schedule_with_warmup,
    cosine_with_hard_restarts_schedule_with_warmup,
    cosine_with_min_lr_schedule_with_warmup_lr_rate,
    diffusers_schedule,
    inverse_sqrt_schedule,
    linear_schedule_with_warmup,
    piecewise_constant_schedule,
    polynomial_decay_schedule_with_warmup,
    transformers_schedule,
    wsd_schedule,
)
from ._sgd import TorchSgdState, torch_sgd

__all__ = [
    "HfAdafactorState",
    "ScaleByTorchAdagradState",
    "ScaleByTorchAmsgradState",
    "ScaleByTorchNadamState",
    "ScaleByTorchSparseAdamState",
    "TorchAdafactorState",
    "TorchLbfgsState",
    "TorchRpropState",
    "TorchSgdState",
    "hf_adafactor",
    "scale_by_torch_adagrad",
    "scale_by_torch_amsgrad",
    "scale_by_torch_nadam",
    "scale_by_torch_sparse_adam",
    "torch_adafactor",
    "torch_clip_grad_norm",
    "torch_lbfgs",
    "torch_rprop",
    "torch_schedule_free_adamw",
    "torch_schedule_free_sgd",
    "torch_sgd",
    "timm_weight_decay_mask",
    "constant_schedule_with_warmup",
    "cosine_schedule_with_warmup",
    "cosine_with_hard_restarts_schedule_with_warmup",
    "cosine_with_min_lr_schedule_with_warmup_lr_rate",
    "diffusers_schedule",
    "inverse_sqrt_schedule",
    "linear_schedule_with_warmup",
    "piecewise_constant_schedule",
    "polynomial_decay_schedule_with_warmup",
    "transformers_schedule",
    "wsd_schedule",
]
