"""Catalog rows beyond torch.optim: the optimizers training code takes from the libraries around
torch (bitsandbytes, prodigyopt, schedulefree, lion-pytorch, transformers, apex, DeepSpeed), in
catalog.py's table shape and with the same proof: tests/numerics/test_libraries.py runs each
package (pinned in the `ecosystem` extra) against the Optax text the fix writes. apex and
DeepSpeed do not install on a CPU machine: their rows follow the documented math (`proof=
"documented"`) and are run against the torch optimizer with that math instead. Classes the
catalog knows but cannot rewrite are in UNMAPPED, with the reason the finding gives.

Adding a library is adding rows here (and its package to the extra).
"""

from __future__ import annotations

from .catalog import (ANY, CHANGED, HELPERS, NONZERO, OPTIMIZERS, ZERO, Claim, Kw, Note, OptimizerRow, Tx,
                      Variant, register)

BETAS = {"b1": "{betas}[0]", "b2": "{betas}[1]"}
_LR = Kw("learning_rate", "{lr}")


def _hk(name: str, template: str, default, **kw) -> Kw:
    return Kw(name, template, default, always=True, **kw)


def _explained(signature, flags, entries) -> tuple[tuple[str, str], ...]:
    """The `arguments` entries of the arguments a class takes that are not implementation flags."""
    names = {n for n, _ in signature} - set(flags) - {"foreach", "fused", "capturable", "differentiable"}
    return tuple((n, text) for n, text in entries if n in names)


# -- bitsandbytes 0.50.2 ------------------------------------------------------------------------------
# Its 32-bit optimizers are plain Adam / AdamW / Lion math computed in float32 (whatever the
# parameters' dtype); the 8-bit ones keep blockwise-quantized states for tensors of at least
# min_8bit_size elements (smaller ones keep 32-bit states). Paged variants only page the state.
BNB = "bitsandbytes 0.50.2"
_BNB_FLAGS = ("min_8bit_size", "is_paged")
_BNB_TAIL = (("optim_bits", 32), ("args", None), ("min_8bit_size", 4096))
_BNB_ARGS = (("args", NONZERO),)
_ARGS_PROBLEM = ("bitsandbytes' `args` object overrides the optimizer's arguments at run time: they cannot be "
                 "read statically; pass them as keywords")
_AMSGRAD_PROBLEM = ("bitsandbytes has no AMSGrad (its 8-bit Adam raises on amsgrad=True, the others ignore it): "
                    "say which you meant by hand")
# Measured on a 64x96 and a 4096-element quadratic (float32, 50 steps), tests/numerics/test_claims.py.
_EIGHT_BIT_ADAM = ("8-bit blockwise-quantized optimizer states (tensors of min_8bit_size=4096 elements or more; "
                   "smaller ones keep 32-bit states and are exact): Optax keeps full-precision states, 0.071 apart "
                   "(1.7e-02 of the parameters' size) after 50 steps of AdamW8bit on a 10,240-parameter quadratic")
_EIGHT_BIT_LION = ("8-bit blockwise-quantized momentum (tensors of min_8bit_size=4096 elements or more): Optax keeps "
                   "it in full precision, 0.02 apart after 50 steps of Lion8bit on a 10,240-parameter quadratic")
_EIGHT_BIT_ADAM_CLAIM = Claim("bitsandbytes.optim.AdamW8bit(params, lr=0.01)", "optax.adamw(0.01, weight_decay=0.01)",
                              0.0708, "large")
_EIGHT_BIT_LION_CLAIM = Claim("bitsandbytes.optim.Lion8bit(params, lr=0.001)", "optax.lion(0.001, weight_decay=0.0)",
                              0.0200, "large")
_FLOAT32_NOTE = ("bitsandbytes computes the update in float32 whatever the parameters' dtype; Optax computes in "
                 "theirs (float32 parameters agree to 1e-6 relative)")
_ADAM_KWS = (_LR, Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.999), Kw("eps", "{eps}", 1e-8))
_BNB_ADAM_L2 = Claim("bitsandbytes.optim.Adam(params, lr=0.01, weight_decay=0.1)",
                     "optax.chain(optax.add_decayed_weights(0.1), optax.adam(0.01))", 0.0755)


def _bnb_adam(name: str, decoupled_default: bool, bits: int | None, paged: bool) -> None:
    """Adam / AdamW and their 8bit, 32bit and Paged classes (bits None: chosen by optim_bits)."""
    wd_default = 0.01 if decoupled_default else 0
    sig = (("lr", 1e-3), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", wd_default),
           ("amsgrad", False)) + _BNB_TAIL + (() if name.startswith("PagedAdamW") else (("is_paged", False),))
    if decoupled_default:
        chain = (Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),)),)
    else:
        # bitsandbytes' Adam decays decoupled (p *= 1 - lr * weight_decay), not as torch's L2.
        chain = (Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),),
                    when=(("weight_decay", NONZERO),)),
                 Tx("optax.adam", _ADAM_KWS, when=(("weight_decay", ZERO),)))
    approximate = Variant(chain=chain, l2_weight_decay=False, exact=False, difference=_EIGHT_BIT_ADAM,
                          claims=(_EIGHT_BIT_ADAM_CLAIM,))
    variants = [Variant(when=_BNB_ARGS, problem=_ARGS_PROBLEM),
                Variant(when=(("amsgrad", True),), problem=_AMSGRAD_PROBLEM)]
    if bits == 8:
        variants.append(approximate)
    elif bits is None:
        variants.append(Variant(when=(("optim_bits", 8),), chain=chain, l2_weight_decay=False, exact=False,
                                difference=_EIGHT_BIT_ADAM, claims=(_EIGHT_BIT_ADAM_CLAIM,)))
        variants.append(Variant(when=(("optim_bits", CHANGED), ("optim_bits", NONZERO)), problem=(
            "optim_bits is not a literal 32 or 8: whether the states are 8-bit is decided at run time")))
    if bits != 8:
        variants.append(Variant(chain=chain, l2_weight_decay=False))
    notes = [Note(_FLOAT32_NOTE)]
    if not decoupled_default:
        notes.insert(0, Note("bitsandbytes' Adam decays the weights decoupled (p *= 1 - lr * weight_decay, as AdamW), "
                             "not as torch's L2 on the gradient: optax.adamw (0.076 apart with the L2 chain)",
                             when=(("weight_decay", NONZERO),), claims=(_BNB_ADAM_L2,)))
    else:
        notes.insert(0, Note("bitsandbytes' AdamW defaults to weight_decay=0.01 as torch's, optax's adamw to 1e-4: "
                             "made explicit (0.0077 apart if omitted)",
                             claims=(Claim("bitsandbytes.optim.AdamW(params, lr=0.01)", "optax.adamw(0.01)",
                                           0.00774),)))
    flags = _BNB_FLAGS + ("optim_bits",) * (bits is not None)
    register(OptimizerRow(
        torch=name, module="bitsandbytes.optim",
        aliases=(f"bitsandbytes.optim.{'adamw' if decoupled_default else 'adam'}.{name}",),
        package=BNB, signature=sig, keyword_only=(), derived=BETAS, variants=tuple(variants), notes=tuple(notes),
        flags=flags, precision="float32",
        arguments=_explained(sig, flags, (("lr", "learning_rate"), ("betas", "b1, b2"), ("eps", "eps"),
                   ("weight_decay", "optax.adamw's weight_decay (bitsandbytes decays decoupled)"),
                   ("amsgrad", "ignored by bitsandbytes: OPX201 when True"),
                   ("optim_bits", "8: 8-bit states, the rewrite is approximate (OPX201 with the measured difference)"),
                   ("args", "a run-time override: OPX201")))))


for _name, _decoupled, _bits, _paged in (
        ("Adam", False, None, False), ("Adam32bit", False, 32, False), ("Adam8bit", False, 8, False),
        ("PagedAdam", False, None, True), ("PagedAdam32bit", False, 32, True), ("PagedAdam8bit", False, 8, True),
        ("AdamW", True, None, False), ("AdamW32bit", True, 32, False), ("AdamW8bit", True, 8, False),
        ("PagedAdamW", True, None, True), ("PagedAdamW32bit", True, 32, True), ("PagedAdamW8bit", True, 8, True)):
    _bnb_adam(_name, _decoupled, _bits, _paged)

_LION_KWS = (_LR, Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.99), Kw("weight_decay", "{weight_decay}", 1e-3))
_LION_DEFAULT_NOTE = Note("optax.lion's default weight_decay is 1e-3, this Lion's 0: made explicit "
                          "(0.0008 apart if omitted)",
                          claims=(Claim("lion_pytorch.Lion(params, lr=0.01)", "optax.lion(0.01)", 7.96e-4),))
for _name, _bits in (("Lion", None), ("Lion32bit", 32), ("Lion8bit", 8), ("PagedLion", None),
                     ("PagedLion32bit", 32), ("PagedLion8bit", 8)):
    _chain = (Tx("optax.lion", _LION_KWS),)
    _variants = [Variant(when=_BNB_ARGS, problem=_ARGS_PROBLEM)]
    if _bits == 8:
        _variants.append(Variant(chain=_chain, l2_weight_decay=False, exact=False, difference=_EIGHT_BIT_LION,
                                 claims=(_EIGHT_BIT_LION_CLAIM,)))
    elif _bits is None:
        _variants.append(Variant(when=(("optim_bits", 8),), chain=_chain, l2_weight_decay=False, exact=False,
                                 difference=_EIGHT_BIT_LION, claims=(_EIGHT_BIT_LION_CLAIM,)))
        _variants.append(Variant(when=(("optim_bits", CHANGED), ("optim_bits", NONZERO)), problem=(
            "optim_bits is not a literal 32 or 8: whether the states are 8-bit is decided at run time")))
    if _bits != 8:
        _variants.append(Variant(chain=_chain, l2_weight_decay=False))
    _sig = (("lr", 1e-4), ("betas", (0.9, 0.99)), ("weight_decay", 0))
    _sig += ((("optim_bits", 32),) if _bits is None else ()) + (("args", None), ("min_8bit_size", 4096))
    _sig += (("is_paged", False),) if not _name.startswith("Paged") else ()
    register(OptimizerRow(
        torch=_name, module="bitsandbytes.optim", aliases=(f"bitsandbytes.optim.lion.{_name}",), package=BNB,
        signature=_sig, keyword_only=(), derived=BETAS, variants=tuple(_variants), precision="float32",
        flags=_BNB_FLAGS, notes=(Note("bitsandbytes' Lion decays the weights decoupled (p *= 1 - lr * weight_decay), "
                                      "as optax.lion does; optax.lion's default weight_decay is 1e-3, this Lion's 0: "
                                      "made explicit (0.0008 apart if omitted)",
                                      claims=(Claim("bitsandbytes.optim.Lion(params, lr=0.01)", "optax.lion(0.01)",
                                                    7.96e-4),)), Note(_FLOAT32_NOTE)),
        arguments=_explained(_sig, _BNB_FLAGS, (
            ("lr", "learning_rate"), ("betas", "b1, b2"), ("weight_decay", "weight_decay, always written"),
            ("optim_bits", "8: 8-bit momentum, approximate"), ("args", "a run-time override: OPX201")))))

# -- lion-pytorch 0.2.5 ---------------------------------------------------------------------------------
register(OptimizerRow(
    torch="Lion", module="lion_pytorch", aliases=("lion_pytorch.lion_pytorch.Lion",), package="lion-pytorch 0.2.5",
    signature=(("lr", 1e-4), ("betas", (0.9, 0.99)), ("weight_decay", 0.0), ("use_triton", False),
               ("decoupled_weight_decay", False)),
    keyword_only=(), derived=BETAS, flags=("use_triton",),
    variants=(
        # decoupled_weight_decay=True divides weight_decay by the initial lr: p *= 1 - lr_t * wd / lr.
        Variant(when=(("decoupled_weight_decay", True),), l2_weight_decay=False, chain=(Tx("optax.lion", (
            _LR, Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.99),
            Kw("weight_decay", "{weight_decay} / {lr}", schedulable=False))),)),
        Variant(l2_weight_decay=False, chain=(Tx("optax.lion", _LION_KWS),)),
    ),
    notes=(_LION_DEFAULT_NOTE,
           Note("decoupled_weight_decay=True: lion_pytorch divides weight_decay by the initial learning rate, so "
                "optax.lion takes weight_decay / lr", when=(("decoupled_weight_decay", True),))),
    arguments=(("lr", "learning_rate"), ("betas", "b1, b2"),
               ("weight_decay", "weight_decay, always written (optax 1e-3, lion_pytorch 0)"),
               ("decoupled_weight_decay", "weight_decay / lr")),
))

# -- prodigyopt 1.1.2 -----------------------------------------------------------------------------------
# optax.contrib.prodigy always applies Adam's bias correction (folded into its step size);
# prodigyopt only with use_bias_correction=True: otherwise the learning rate undoes it.
_PRODIGY_KWS = (Kw("betas", "{betas}", (0.9, 0.999)), Kw("beta3", "{beta3}", None), Kw("eps", "{eps}", 1e-8),
                Kw("estim_lr0", "{d0}", 1e-6), Kw("estim_lr_coef", "{d_coef}", 1.0),
                Kw("safeguard_warmup", "{safeguard_warmup}", False))
_PRODIGY_LR = (
    Tx("optax.contrib.prodigy", (Kw("learning_rate", "{lr}"),) + _PRODIGY_KWS, when=(("use_bias_correction", True),)),
    Tx("optax.contrib.prodigy", (Kw(
        "learning_rate", "lambda count: {lr} * (1 - {b1} ** (count + 1)) / jnp.sqrt(1 - {b2} ** (count + 1))"),
    ) + _PRODIGY_KWS, when=(("use_bias_correction", False),)),
)
_PRODIGY_WD = Kw("weight_decay", "{weight_decay}", 0.0)
register(OptimizerRow(
    torch="Prodigy", module="prodigyopt", aliases=("prodigyopt.prodigy.Prodigy",), package="prodigyopt 1.1.2",
    signature=(("lr", 1.0), ("betas", (0.9, 0.999)), ("beta3", None), ("eps", 1e-8), ("weight_decay", 0),
               ("decouple", True), ("use_bias_correction", False), ("safeguard_warmup", False), ("d0", 1e-6),
               ("d_coef", 1.0), ("growth_rate", float("inf")), ("fsdp_in_use", False), ("slice_p", 1)),
    keyword_only=(), derived=BETAS, flags=("fsdp_in_use",),
    variants=(
        Variant(when=(("growth_rate", ANY),), problem=(
            "growth_rate caps how fast Prodigy's estimate d grows: optax.contrib.prodigy has no such cap")),
        Variant(when=(("slice_p", CHANGED),), problem=(
            "slice_p estimates d from every slice_p-th entry (an approximation): optax.contrib.prodigy uses them all")),
        Variant(when=(("__schedule__", True),), problem=(
            "a learning-rate schedule: prodigyopt skips every step whose learning rate is 0 (a warmup's first) while "
            "optax.contrib.prodigy divides by zero there; fold the schedule in by hand")),
        Variant(when=(("b1", 0.0),), problem=(
            "betas[0] = 0: prodigyopt scales that update by the new estimate of d, optax.contrib.prodigy by the "
            "previous one (4.4 apart after 50 steps)"),
            claims=(Claim("prodigyopt.Prodigy(params, lr=1.0, betas=(0.0, 0.99))",
                          "optax.contrib.prodigy(lambda count: 1.0 / jnp.sqrt(1 - 0.99 ** (count + 1)), "
                          "betas=(0.0, 0.99))", 4.45),)),
        # decouple=False: weight_decay is L2 on the gradient (the catalog prepends add_decayed_weights).
        Variant(when=(("decouple", False),), chain=(
            Tx("optax.contrib.prodigy", _PRODIGY_LR[0].kws, when=_PRODIGY_LR[0].when),
            Tx("optax.contrib.prodigy", _PRODIGY_LR[1].kws, when=_PRODIGY_LR[1].when))),
        Variant(l2_weight_decay=False, chain=(
            Tx("optax.contrib.prodigy", _PRODIGY_LR[0].kws + (_PRODIGY_WD,), when=_PRODIGY_LR[0].when),
            Tx("optax.contrib.prodigy", _PRODIGY_LR[1].kws + (_PRODIGY_WD,), when=_PRODIGY_LR[1].when))),
    ),
    notes=(
        Note("prodigyopt leaves Adam's bias correction off by default; optax.contrib.prodigy always applies it, so "
             "the learning rate carries (1 - b1^t) / sqrt(1 - b2^t) to undo it (7.3 apart otherwise)",
             when=(("use_bias_correction", False),),
             claims=(Claim("prodigyopt.Prodigy(params, lr=1.0)", "optax.contrib.prodigy(1.0)", 7.32),)),
        Note("decouple=False: prodigyopt's weight_decay is L2 on the gradient, so optax.add_decayed_weights comes "
             "first", when=(("decouple", False), ("weight_decay", NONZERO))),
    ),
    arguments=(("lr", "learning_rate (with use_bias_correction=False: times (1 - b1^t) / sqrt(1 - b2^t))"),
               ("betas", "betas"), ("beta3", "beta3"), ("eps", "eps"),
               ("weight_decay", "weight_decay (decouple=False: optax.add_decayed_weights first)"),
               ("decouple", "where the weight decay goes"), ("use_bias_correction", "the learning rate's factor"),
               ("safeguard_warmup", "safeguard_warmup"), ("d0", "estim_lr0"), ("d_coef", "estim_lr_coef"),
               ("growth_rate", "no equivalent: OPX201"), ("slice_p", "1 only: OPX201 otherwise")),
))

# -- schedulefree 1.4.1 ---------------------------------------------------------------------------------
_SF_PROBLEM = Variant(when=(("r", CHANGED),), problem=(
    "r weights the average by t^r: optax.contrib.schedule_free has no such weight"))
_SF_NOTE = Note("the rewrite's parameters are schedulefree's train-mode ones (the y sequence); where torch calls "
                "optimizer.eval(), evaluate at optax.contrib.schedule_free_eval_params(opt_state, params)")
_SF_WARMUP = Note("optax.contrib.schedule_free_adamw(warmup_steps=...) warms its inner AdamW up one step late "
                  "(0.011 apart after 50 steps), so switcheroo_optax.torch_schedule_free_adamw is used",
                  when=(("warmup_steps", NONZERO),),
                  claims=(Claim("schedulefree.AdamWScheduleFree(params, lr=0.01, betas=(0.95, 0.99), eps=1e-6, "
                                "weight_decay=0.1, warmup_steps=10, weight_lr_power=1.0)",
                                "optax.contrib.schedule_free_adamw(0.01, warmup_steps=10, b1=0.95, b2=0.99, eps=1e-6, "
                                "weight_decay=0.1, weight_lr_power=1.0)", 0.01096),))
register(OptimizerRow(
    torch="AdamWScheduleFree", module="schedulefree", aliases=("schedulefree.adamw_schedulefree.AdamWScheduleFree",),
    package="schedulefree 1.4.1",
    signature=(("lr", 0.0025), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0), ("warmup_steps", 0),
               ("r", 0.0), ("weight_lr_power", 2.0), ("foreach", True)),
    keyword_only=(), derived=BETAS,
    variants=(
        _SF_PROBLEM,
        Variant(when=(("warmup_steps", ZERO),), l2_weight_decay=False, chain=(Tx("optax.contrib.schedule_free_adamw", (
            Kw("learning_rate", "{lr}", schedulable=False), Kw("b1", "{b1}", 0.9), Kw("b2", "{b2}", 0.999),
            Kw("eps", "{eps}", 1e-8), Kw("weight_decay", "{weight_decay}", 0.0),
            Kw("weight_lr_power", "{weight_lr_power}", 2.0))),)),
        Variant(l2_weight_decay=False, chain=(Tx(f"{HELPERS}.torch_schedule_free_adamw", (
            _hk("learning_rate", "{lr}", 0.0025, schedulable=False), _hk("warmup_steps", "{warmup_steps}", 0),
            _hk("b1", "{b1}", 0.9), _hk("b2", "{b2}", 0.999), _hk("eps", "{eps}", 1e-8),
            _hk("weight_decay", "{weight_decay}", 0.0), _hk("weight_lr_power", "{weight_lr_power}", 2.0))),)),
    ),
    notes=(_SF_WARMUP, _SF_NOTE),
    arguments=(("lr", "learning_rate (no schedule: the method replaces one)"), ("betas", "b1 (the averaging), b2"),
               ("eps", "eps"), ("weight_decay", "weight_decay (on the y sequence, as schedulefree)"),
               ("warmup_steps", "0: optax.contrib.schedule_free_adamw; else switcheroo_optax.torch_schedule_free_adamw"),
               ("r", "0 only: OPX201 otherwise"), ("weight_lr_power", "weight_lr_power")),
))
register(OptimizerRow(
    torch="SGDScheduleFree", module="schedulefree", aliases=("schedulefree.sgd_schedulefree.SGDScheduleFree",),
    package="schedulefree 1.4.1",
    signature=(("lr", 1.0), ("momentum", 0.9), ("weight_decay", 0), ("warmup_steps", 0), ("r", 0.0),
               ("weight_lr_power", 2), ("foreach", True)),
    keyword_only=(),
    variants=(
        _SF_PROBLEM,
        Variant(when=(("warmup_steps", ZERO),), l2_weight_decay=False, chain=(Tx("optax.contrib.schedule_free_sgd", (
            Kw("learning_rate", "{lr}", schedulable=False), Kw("b1", "{momentum}", 0.9),
            Kw("weight_decay", "{weight_decay}", None), Kw("weight_lr_power", "{weight_lr_power}", 2.0))),)),
        Variant(l2_weight_decay=False, chain=(Tx(f"{HELPERS}.torch_schedule_free_sgd", (
            _hk("learning_rate", "{lr}", 1.0, schedulable=False), _hk("warmup_steps", "{warmup_steps}", 0),
            _hk("momentum", "{momentum}", 0.9), _hk("weight_decay", "{weight_decay}", 0.0),
            _hk("weight_lr_power", "{weight_lr_power}", 2.0))),)),
    ),
    notes=(Note("optax.contrib.schedule_free_sgd(warmup_steps=...) warms its inner SGD up one step late (0.17 apart "
                "after 50 steps), so switcheroo_optax.torch_schedule_free_sgd is used", when=(("warmup_steps", NONZERO),),
                claims=(Claim("schedulefree.SGDScheduleFree(params, lr=0.05, momentum=0.8, weight_decay=0.1, "
                              "warmup_steps=5)", "optax.contrib.schedule_free_sgd(0.05, warmup_steps=5, b1=0.8, "
                              "weight_decay=0.1)", 0.1739),)),
           _SF_NOTE),
    arguments=(("lr", "learning_rate (no schedule)"), ("momentum", "b1 (the averaging)"),
               ("weight_decay", "weight_decay (L2 on the y sequence)"),
               ("warmup_steps", "0: optax.contrib.schedule_free_sgd; else switcheroo_optax.torch_schedule_free_sgd"),
               ("r", "0 only"), ("weight_lr_power", "weight_lr_power")),
))

# -- transformers 5.25.0 ----------------------------------------------------------------------------------
register(OptimizerRow(
    torch="Adafactor", module="transformers.optimization", aliases=("transformers.Adafactor",),
    package="transformers 5.25.0",
    signature=(("lr", None), ("eps", (1e-30, 1e-3)), ("clip_threshold", 1.0), ("decay_rate", -0.8), ("beta1", None),
               ("weight_decay", 0.0), ("scale_parameter", True), ("relative_step", True), ("warmup_init", False)),
    keyword_only=(), derived={"eps1": "{eps}[0]", "eps2": "{eps}[1]"},
    variants=(
        Variant(when=(("relative_step", True), ("__schedule__", True)), problem=(
            "with relative_step=True Adafactor computes its own step size and a learning-rate scheduler cannot "
            "drive it (LambdaLR cannot even start on lr=None): set relative_step=False and lr, or drop the scheduler")),
        Variant(l2_weight_decay=False, chain=(Tx(f"{HELPERS}.hf_adafactor", (
            _hk("learning_rate", "{lr}", None), _hk("eps1", "{eps1}", 1e-30), _hk("eps2", "{eps2}", 1e-3),
            _hk("clip_threshold", "{clip_threshold}", 1.0), _hk("decay_rate", "{decay_rate}", -0.8),
            _hk("beta1", "{beta1}", None), _hk("weight_decay", "{weight_decay}", 0.0),
            _hk("scale_parameter", "{scale_parameter}", True), _hk("relative_step", "{relative_step}", True),
            _hk("warmup_init", "{warmup_init}", False))),)),
    ),
    notes=(Note("optax.adafactor factors only dimensions of 128 or more, applies the learning rate before the "
                "parameter scale and decays the weights without it (6.9 apart with both defaults), so "
                "switcheroo_optax.hf_adafactor is used",
                claims=(Claim("transformers.optimization.Adafactor(params)", "optax.adafactor()", 6.86),)),),
    arguments=(("lr", "learning_rate (used when relative_step=False; a schedule folds in)"),
               ("eps", "eps1, eps2"), ("clip_threshold", "clip_threshold"), ("decay_rate", "decay_rate"),
               ("beta1", "beta1"), ("weight_decay", "weight_decay (times the step size)"),
               ("scale_parameter", "scale_parameter"), ("relative_step", "relative_step"),
               ("warmup_init", "warmup_init")),
))

# -- apex and DeepSpeed: documented math (neither installs on a CPU machine) ------------------------------
_FUSED_NOTE = Note("{qualified} needs CUDA, so it is not run here: its documented update is torch's AdamW "
                   "(adam_w_mode=True, the default) or Adam with L2 weight decay, which the rewrite reproduces "
                   "and the tests run against")


def _fused_adam(name: str, module: str, package: str, mode: str, signature, aliases=()) -> None:
    register(OptimizerRow(
        torch=name, module=module, aliases=aliases, package=package, proof="documented",
        signature=signature, keyword_only=(), derived=BETAS,
        flags=("set_grad_none", "capturable", "master_weights", "fp32_optimizer_states"),
        variants=(
            Variant(when=(("amsgrad", True),), problem=f"{module}.{name} does not implement amsgrad (it raises)"),
            Variant(when=(("bias_correction", False),), problem=(
                "bias_correction=False: Optax's Adam always corrects the moments' bias; port it by hand")),
            Variant(when=((mode, False),), chain=(Tx("optax.adam", _ADAM_KWS),)),
            Variant(l2_weight_decay=False, chain=(Tx("optax.adamw", _ADAM_KWS + (Kw("weight_decay", "{weight_decay}"),)),)),
        ),
        notes=(Note(_FUSED_NOTE.text.format(qualified=f"{module}.{name}")),
               Note("its weight_decay defaults to 0, optax.adamw's to 1e-4: always written")),
        arguments=(("lr", "learning_rate"), ("betas", "b1, b2"), ("eps", "eps"),
                   ("weight_decay", f"{mode}=True: optax.adamw's weight_decay; False: L2 (add_decayed_weights first)"),
                   (mode, "optax.adamw (True) or optax.adam with L2 (False)"),
                   ("bias_correction", "True only: OPX201 otherwise"), ("amsgrad", "False only")),
    ))


_FUSED_SIG = (("lr", 1e-3), ("bias_correction", True), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("adam_w_mode", True),
              ("weight_decay", 0.0), ("amsgrad", False), ("set_grad_none", True))
_fused_adam("FusedAdam", "apex.optimizers", "apex (documented math)", "adam_w_mode",
            _FUSED_SIG + (("capturable", False), ("master_weights", False)), aliases=("apex.optimizers.fused_adam.FusedAdam",))
_fused_adam("FusedAdam", "deepspeed.ops.adam", "deepspeed (documented math)", "adam_w_mode", _FUSED_SIG,
            aliases=("deepspeed.ops.adam.fused_adam.FusedAdam",))
_fused_adam("DeepSpeedCPUAdam", "deepspeed.ops.adam", "deepspeed (documented math)", "adamw_mode",
            (("lr", 1e-3), ("bias_correction", True), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0),
             ("amsgrad", False), ("adamw_mode", True), ("fp32_optimizer_states", True)),
            aliases=("deepspeed.ops.adam.cpu_adam.DeepSpeedCPUAdam",))

# Classes recognised as optimizers (their flows are traced, their steps found) that have no
# rewrite: the construction's OPX201 says why.
UNMAPPED: dict[str, str] = {
    "apex.optimizers.FusedLAMB": (
        "apex's FusedLAMB clips the global gradient norm to max_grad_norm inside the step and applies the trust "
        "ratio only with weight decay (or use_nvlamb); it needs CUDA, so no rewrite is proven here: port it by hand "
        "(optax.lamb differs)"),
    "apex.optimizers.FusedSGD": "apex's FusedSGD needs CUDA and is not in switcheroo's catalog: port it by hand",
    "apex.optimizers.FusedNovoGrad": "apex's FusedNovoGrad is not in switcheroo's catalog: port it by hand",
    "deepspeed.ops.lamb.FusedLamb": (
        "DeepSpeed's FusedLamb clips the trust ratio to [min_coeff, max_coeff] inside a CUDA kernel: no rewrite is "
        "proven here; port it by hand"),
    "deepspeed.ops.adagrad.DeepSpeedCPUAdagrad": "DeepSpeed's CPU Adagrad is not in switcheroo's catalog: port it by hand",
    "deepspeed.ops.lion.FusedLion": "DeepSpeed's FusedLion needs CUDA and is not in switcheroo's catalog: port it by hand",
    "deepspeed.ops.lion.DeepSpeedCPULion": "DeepSpeed's CPU Lion is not in switcheroo's catalog: port it by hand",
}
_DUMMY = ("accelerate's DummyOptim stands for the optimizer DeepSpeed builds from its config file "
          "(deepspeed.initialize): port that optimizer, as the config describes it, by hand")
UNMAPPED["accelerate.utils.DummyOptim"] = UNMAPPED["accelerate.utils.deepspeed.DummyOptim"] = _DUMMY
for _name in ("GeminiAdamOptimizer", "HybridAdam", "CPUAdam", "FusedAdam", "FusedLAMB"):
    UNMAPPED[f"colossalai.nn.optimizer.{_name}"] = (
        f"ColossalAI's {_name} shards and offloads its state (ZeRO / Gemini) inside its own kernels: no rewrite is "
        "proven here; port it by hand (the update is Adam's: optax.adamw, with jax.sharding for the state)")
UNMAPPED["colossalai.nn.optimizer.gemini_optimizer.GeminiAdamOptimizer"] = \
    UNMAPPED["colossalai.nn.optimizer.GeminiAdamOptimizer"]
for _name in ("LAMB", "LAMB8bit", "LAMB32bit", "LARS", "LARS8bit", "LARS32bit", "PytorchLARS", "SGD", "SGD8bit",
              "SGD32bit", "RMSprop", "RMSprop8bit", "RMSprop32bit", "Adagrad", "Adagrad8bit", "Adagrad32bit",
              "AdEMAMix", "AdEMAMix8bit", "AdEMAMix32bit", "PagedAdEMAMix", "PagedAdEMAMix8bit", "PagedAdEMAMix32bit"):
    UNMAPPED[f"bitsandbytes.optim.{_name}"] = (f"bitsandbytes' {_name} is not in switcheroo's catalog yet: port it "
                                                "by hand (docs/optimizers.md lists what is)")
for _name in ("AdamWScheduleFreeClosure", "SGDScheduleFreeClosure", "RAdamScheduleFree", "RAdamScheduleFreeClosure",
              "ScheduleFreeWrapper", "ScheduleFreeWrapperReference", "AdamWScheduleFreeReference",
              "AdamWScheduleFreePaper", "SGDScheduleFreeReference"):
    UNMAPPED[f"schedulefree.{_name}"] = (f"schedulefree's {_name} is not in switcheroo's catalog (AdamWScheduleFree and "
                                         "SGDScheduleFree are): port it by hand")



def _modules() -> set[str]:
    out = set()
    for q in list(UNMAPPED) + [r.qualified for r in OPTIMIZERS.values() if r.module != "torch.optim"]:
        parts = q.split(".")[:-1]
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


# The modules these classes live in, with their packages (`import bitsandbytes as bnb`): an import
# of one whose every use a fix converted is dropped.
MODULES: set[str] = _modules()
ROOTS: set[str] = {m.split(".")[0] for m in MODULES} - {"torch"}
