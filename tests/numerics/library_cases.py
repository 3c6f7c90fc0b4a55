"""The calls the library rows' proofs run (knowledge/libraries.py): every recipe and argument of
each row beyond torch.optim, against the package itself (the `ecosystem` extra), and the rows
that follow a documented math (apex, DeepSpeed: no CPU build) against the torch optimizer with
that math."""

from __future__ import annotations

from numerics_harness import config

CFG = config(yes=True, no=False, wd=0.05, bits=8, betas=(0.8, 0.99))

_BNB_ADAM = ["Adam", "Adam32bit", "Adam8bit", "PagedAdam", "PagedAdam32bit", "PagedAdam8bit"]
_BNB_ADAMW = ["AdamW", "AdamW32bit", "AdamW8bit", "PagedAdamW", "PagedAdamW32bit", "PagedAdamW8bit"]
_BNB_LION = ["Lion", "Lion32bit", "Lion8bit", "PagedLion", "PagedLion32bit", "PagedLion8bit"]

EXAMPLES: dict[str, list[tuple[str, object]]] = {
    "lion_pytorch.Lion": [
        ("lion_pytorch.Lion(params, lr=0.01)", None),
        ("lion_pytorch.Lion(params, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)", None),
        ("lion_pytorch.Lion(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, use_triton=False)", None),
    ],
    "prodigyopt.Prodigy": [
        ("prodigyopt.Prodigy(params, lr=1.0)", None),
        ("prodigyopt.Prodigy(params, lr=1.0, use_bias_correction=True)", None),
        ("prodigyopt.Prodigy(params, lr=0.5, weight_decay=0.1, d_coef=2.0, d0=1e-4)", None),
        ("prodigyopt.Prodigy(params, lr=0.5, weight_decay=0.1, decouple=False)", None),
        ("prodigyopt.Prodigy(params, lr=1.0, safeguard_warmup=True, beta3=0.9, betas=(0.8, 0.99), eps=1e-6, "
         "fsdp_in_use=False)", None),
        ("prodigyopt.Prodigy(params, lr=1.0, use_bias_correction=cfg.yes, decouple=cfg.no, weight_decay=0.05)", CFG),
    ],
    "schedulefree.AdamWScheduleFree": [
        ("schedulefree.AdamWScheduleFree(params, lr=0.01)", None),
        ("schedulefree.AdamWScheduleFree(params, lr=0.01, betas=(0.95, 0.99), eps=1e-6, weight_decay=0.1, "
         "weight_lr_power=1.0, foreach=False)", None),
        ("schedulefree.AdamWScheduleFree(params, lr=0.01, betas=(0.95, 0.99), eps=1e-6, weight_decay=0.1, "
         "warmup_steps=10, weight_lr_power=1.0)", None),
    ],
    "schedulefree.SGDScheduleFree": [
        ("schedulefree.SGDScheduleFree(params, lr=0.05)", None),
        ("schedulefree.SGDScheduleFree(params, lr=0.05, momentum=0.8, weight_decay=0.1, weight_lr_power=1.0)", None),
        ("schedulefree.SGDScheduleFree(params, lr=0.05, momentum=0.8, weight_decay=0.1, warmup_steps=5)", None),
    ],
    "transformers.optimization.Adafactor": [
        ("transformers.optimization.Adafactor(params)", None),
        ("transformers.optimization.Adafactor(params, lr=1e-2, relative_step=False, scale_parameter=False)", None),
        ("transformers.optimization.Adafactor(params, beta1=0.9, weight_decay=0.1, warmup_init=True)", None),
        ("transformers.optimization.Adafactor(params, lr=0.05, relative_step=False, clip_threshold=0.5, "
         "decay_rate=-0.5, eps=(1e-20, 1e-2))", None),
    ],
}
for _name in _BNB_ADAM + _BNB_ADAMW:
    EXAMPLES[f"bitsandbytes.optim.{_name}"] = [
        (f"bitsandbytes.optim.{_name}(params, lr=0.01)", None),
        (f"bitsandbytes.optim.{_name}(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, "
         "min_8bit_size=16384)", None),
    ]
for _name in _BNB_LION:
    EXAMPLES[f"bitsandbytes.optim.{_name}"] = [
        (f"bitsandbytes.optim.{_name}(params, lr=0.01)", None),
        (f"bitsandbytes.optim.{_name}(params, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)", None),
    ]
for _name in ("Adam", "AdamW", "PagedAdam", "PagedAdamW", "Lion", "PagedLion"):
    EXAMPLES[f"bitsandbytes.optim.{_name}"].append((f"bitsandbytes.optim.{_name}(params, lr=0.01, optim_bits=8)", None))
    EXAMPLES[f"bitsandbytes.optim.{_name}"].append((f"bitsandbytes.optim.{_name}(params, lr=0.01, optim_bits=32)", None))
for _name in ("Adam", "AdamW", "Adam8bit", "AdamW32bit", "Lion"):
    EXAMPLES[f"bitsandbytes.optim.{_name}"].append((f"bitsandbytes.optim.{_name}(params, lr=0.01, args=None, is_paged=False)", None))

# The 8-bit recipes, measured on numerics_large's problem (float32): what the OPX201's difference says.
EIGHT_BIT = ["bitsandbytes.optim.AdamW8bit(params, lr=0.01)", "bitsandbytes.optim.Adam8bit(params, lr=0.01)",
             "bitsandbytes.optim.PagedAdamW8bit(params, lr=0.01)", "bitsandbytes.optim.AdamW(params, lr=0.01, optim_bits=8)",
             "bitsandbytes.optim.Lion8bit(params, lr=0.001)"]

# Calls whose rewrite is OPX201 without a fix.
NO_FIX = [
    "prodigyopt.Prodigy(params, lr=1.0, growth_rate=1.02)",
    "prodigyopt.Prodigy(params, lr=1.0, slice_p=11)",
    "prodigyopt.Prodigy(params, lr=1.0, betas=(0.0, 0.99))",
    "schedulefree.AdamWScheduleFree(params, lr=0.01, r=1.0)",
    "schedulefree.SGDScheduleFree(params, lr=0.01, r=0.5)",
    "bitsandbytes.optim.Adam(params, lr=0.01, amsgrad=True)",
    "bitsandbytes.optim.AdamW(params, lr=0.01, optim_bits=cfg.bits)",
    "bitsandbytes.optim.AdamW8bit(params, lr=0.01, args=cfg.bnb_args)",
    "bitsandbytes.optim.LAMB(params, lr=0.01)",
    "apex.optimizers.FusedLAMB(params, lr=0.01)",
    "apex.optimizers.FusedAdam(params, lr=0.01, amsgrad=True)",
    "deepspeed.ops.adam.FusedAdam(params, lr=0.01, bias_correction=False)",
]

# Documented math (apex, DeepSpeed): (call, the torch optimizer its documentation describes).
DOCUMENTED = [
    ("apex.optimizers.FusedAdam(params, lr=0.01)", "torch.optim.AdamW(params, lr=0.01, weight_decay=0.0)"),
    ("apex.optimizers.FusedAdam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, set_grad_none=True, "
     "capturable=False, master_weights=False)",
     "torch.optim.AdamW(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)"),
    ("apex.optimizers.FusedAdam(params, lr=0.01, adam_w_mode=False, weight_decay=0.1, bias_correction=True)",
     "torch.optim.Adam(params, lr=0.01, weight_decay=0.1)"),
    ("deepspeed.ops.adam.FusedAdam(params, lr=0.01, weight_decay=0.1)", "torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)"),
    ("deepspeed.ops.adam.FusedAdam(params, lr=0.01, adam_w_mode=False, weight_decay=0.1, amsgrad=False)",
     "torch.optim.Adam(params, lr=0.01, weight_decay=0.1)"),
    ("deepspeed.ops.adam.DeepSpeedCPUAdam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, fp32_optimizer_states=True)",
     "torch.optim.AdamW(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0)"),
    ("deepspeed.ops.adam.DeepSpeedCPUAdam(params, lr=0.01, weight_decay=0.1, adamw_mode=False, bias_correction=True, "
     "amsgrad=False)", "torch.optim.Adam(params, lr=0.01, weight_decay=0.1)"),
]
