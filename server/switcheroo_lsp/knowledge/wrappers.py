"""Libraries that take an optimizer and hand it back, as data: the trace goes through them.

`model, optimizer, loader = accelerator.prepare(model, optimizer, loader)` gives back what it
was given, wrapped, in the same order; `deepspeed.initialize(model=..., optimizer=...)` gives
back `(engine, optimizer, loader, scheduler)`. Each changes how a step must be ported, which the
hover says. Adding a wrapper is adding a row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wrapper:
    name: str                  # how the hover names it
    results: str               # "same": element i of the result is positional argument i (a single
                               # argument: the result itself); "keyword:<arg>@<i>": element i is <arg>;
                               # "released": what it hands back is released (None), not the optimizer
    note: str                  # what porting its steps to JAX involves
    owns: bool = False         # what else it hands back keeps the optimizer and steps it itself
                               # (DeepSpeed's engine): a flow through it cannot convert


_ACCELERATE = ("Hugging Face Accelerate wraps the optimizer for gradient accumulation, mixed precision and "
               "devices: in JAX, accumulate with optax.MultiSteps, keep parameters in float32 (or bfloat16) "
               "and place them with jax.sharding; `accelerator.backward(loss)` becomes jax.grad")
_FABRIC = ("Lightning Fabric wraps the optimizer for devices and precision: in JAX the update is a pure "
           "function you jit, and parameters are placed with jax.sharding; `fabric.backward(loss)` becomes jax.grad")
_AMP = ("apex.amp scales the loss and keeps float32 master weights: in JAX keep parameters in float32 and "
        "compute in bfloat16, or guard float16 updates with optax.apply_if_finite")
_DEEPSPEED = ("DeepSpeed's engine owns the optimizer (engine.backward, engine.step): in JAX the update is "
              "`optimizer.update` in your own jitted step, and ZeRO-style sharding is jax.sharding of the "
              "parameters and optimizer state")

_ACCELERATOR = {"prepare": Wrapper("accelerator.prepare", "same", _ACCELERATE),
                "prepare_optimizer": Wrapper("accelerator.prepare_optimizer", "same", _ACCELERATE),
                "free_memory": Wrapper("accelerator.free_memory", "released", _ACCELERATE)}

# The class whose method wraps (or the function that wraps) -> {method name: Wrapper}.
METHODS: dict[str, dict[str, Wrapper]] = {
    "accelerate.Accelerator": _ACCELERATOR,
    "accelerate.accelerator.Accelerator": _ACCELERATOR,
    "lightning.Fabric": {"setup": Wrapper("fabric.setup", "same", _FABRIC),
                         "setup_optimizers": Wrapper("fabric.setup_optimizers", "same", _FABRIC)},
    "lightning.fabric.Fabric": {"setup": Wrapper("fabric.setup", "same", _FABRIC),
                                "setup_optimizers": Wrapper("fabric.setup_optimizers", "same", _FABRIC)},
    "lightning_fabric.Fabric": {"setup": Wrapper("fabric.setup", "same", _FABRIC),
                                "setup_optimizers": Wrapper("fabric.setup_optimizers", "same", _FABRIC)},
}
_ORT = ("onnxruntime's FP16_Optimizer keeps float32 master weights for a float16 model: in JAX keep the "
        "parameters in float32 and compute in float16/bfloat16 (or guard float16 updates with optax.apply_if_finite)")
_IPEX = ("Intel Extension for PyTorch fuses the optimizer's kernels for the CPU and casts to bfloat16: in JAX the "
         "update is jitted (XLA fuses it) and the dtype is the parameters'")
FUNCTIONS: dict[str, Wrapper] = {
    "apex.amp.initialize": Wrapper("amp.initialize", "same", _AMP),
    "deepspeed.initialize": Wrapper("deepspeed.initialize", "keyword:optimizer@1", _DEEPSPEED, owns=True),
    "onnxruntime.training.optim.fp16_optimizer.FP16_Optimizer": Wrapper("FP16_Optimizer", "same", _ORT),
    "onnxruntime.training.optim.FP16_Optimizer": Wrapper("FP16_Optimizer", "same", _ORT),
    "intel_extension_for_pytorch.optimize": Wrapper("ipex.optimize", "keyword:optimizer@1", _IPEX),
}


def result_argument(wrapper: Wrapper, positional: list, keywords: dict, index: int | None):
    """The argument expression that element `index` of the wrapper's result is (`index` None:
    the result itself, for a wrapper given one thing), or None."""
    kind, _, rest = wrapper.results.partition(":")
    if kind == "same":
        if index is None:
            return positional[0] if len(positional) == 1 and not keywords else None
        return positional[index] if index < len(positional) else None
    name, _, at = rest.partition("@")
    return keywords.get(name) if index is not None and index == int(at) else None


# Objects whose `backward(loss)` is the loss's backward (their class -> the library): the step's
# gradients come from `loss` (analysis/gradients.py); accelerate's divides it by the accumulation steps.
BACKWARDS: dict[str, str] = {
    "accelerate.Accelerator": "accelerate", "accelerate.accelerator.Accelerator": "accelerate",
    "lightning.Fabric": "fabric", "lightning.fabric.Fabric": "fabric", "lightning_fabric.Fabric": "fabric",
    "lightning.fabric.fabric.Fabric": "fabric",
}

# torch's loss scaler: `scaler.step(optimizer)` is the optimizer's step; the rest of its calls
# need a person (what replaces loss scaling in JAX is a choice of precision).
SCALERS = {"torch.cuda.amp.GradScaler", "torch.amp.GradScaler", "torch.cpu.amp.GradScaler",
           "torch.cuda.amp.grad_scaler.GradScaler", "torch.amp.grad_scaler.GradScaler", "torch.GradScaler"}
SCALER_NOTE = ("JAX has no loss scaler: train in bfloat16 (or float32) without one, or keep float16 and guard "
               "the update with optax.apply_if_finite (skips steps whose gradients are not finite) and a "
               "dynamic loss scale of your own (as the jmp library does)")


# Library base classes whose method hands back what a hook of the subclass returned:
# a LightningModule's `self.optimizers()` is what its `configure_optimizers()` returned
# (one optimizer, a list, `([optimizers], [schedulers])`, or dicts with an "optimizer" key).
_LIGHTNING = {"optimizers": "configure_optimizers"}
HOOKS: dict[str, dict[str, str]] = {
    base: _LIGHTNING for base in (
        "lightning.LightningModule", "lightning.pytorch.LightningModule", "lightning.pytorch.core.LightningModule",
        "lightning.pytorch.core.module.LightningModule", "pytorch_lightning.LightningModule",
        "pytorch_lightning.core.LightningModule", "pytorch_lightning.core.module.LightningModule")
}
HOOK_METHODS = {name for methods in HOOKS.values() for name in methods}
