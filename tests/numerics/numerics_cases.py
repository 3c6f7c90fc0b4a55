"""The torch calls the numerics tests run: explicit examples (every recipe of every catalog
row, every argument) and hypothesis strategies that sample argument values per row.

Ranges keep the reference problem well behaved (the parameters move 0.1-10, nothing diverges),
so that a 1e-12 bound in float64 measures formulas, not chaos.
"""

from __future__ import annotations

from hypothesis import strategies as st
from numerics_harness import config

# -- explicit examples ------------------------------------------------------------------------------
# (call, cfg) pairs; cfg is what `cfg.<name>` evaluates to in the program.
CFG = config(lr=0.01, momentum=0.9, zero=0.0, betas=(0.8, 0.99), amsgrad=True, no=False, yes=True,
             lr_decay=0.02, steps=(1e-4, 0.05), wd=0.05)

EXAMPLES: dict[str, list[tuple[str, object]]] = {
    "SGD": [
        ("torch.optim.SGD(params, lr=0.01)", None),
        ("torch.optim.SGD(params, 0.01, 0.9)", None),
        ("torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)", None),
        ("torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=0.1)", None),
        ("torch.optim.SGD(params, lr=0.01, momentum=0.9, dampening=0.5)", None),
        ("torch.optim.SGD(params, lr=1e-3, weight_decay=0.1, maximize=True)", None),
        ("torch.optim.SGD(params, lr=0.01, momentum=cfg.momentum, dampening=0.3)", CFG),
        ("torch.optim.SGD(params, lr=0.01, momentum=cfg.zero, dampening=0.3)", CFG),
        ("torch.optim.SGD(params, lr=cfg.lr, momentum=0.5, maximize=cfg.yes, foreach=False)", CFG),
    ],
    "Adam": [
        ("torch.optim.Adam(params, lr=0.01)", None),
        ("torch.optim.Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6)", None),
        ("torch.optim.Adam(params, lr=0.01, weight_decay=0.1)", None),
        ("torch.optim.Adam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", None),
        ("torch.optim.Adam(params, lr=0.01, amsgrad=True)", None),
        ("torch.optim.Adam(params, lr=0.01, betas=(0.9, 0.9), amsgrad=True, weight_decay=0.1)", None),
        ("torch.optim.Adam(params, lr=0.01, amsgrad=True, weight_decay=0.1, decoupled_weight_decay=True)", None),
        ("torch.optim.Adam(params, lr=0.01, weight_decay=0.1, maximize=True)", None),
        ("torch.optim.Adam(params, lr=0.01, fused=False, foreach=False, capturable=False, differentiable=False)", None),
        ("torch.optim.Adam(params, lr=torch.tensor(0.01))", None),
        ("torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, amsgrad=cfg.amsgrad, weight_decay=cfg.wd)", CFG),
        ("torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, amsgrad=cfg.no, maximize=cfg.yes)", CFG),
    ],
    "AdamW": [
        ("torch.optim.AdamW(params, lr=0.01)", None),
        ("torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)", None),
        ("torch.optim.AdamW(params, lr=0.01, weight_decay=0.1, amsgrad=True)", None),
        ("torch.optim.AdamW(params, lr=0.01, betas=(0.5, 0.9), eps=1e-6, maximize=True)", None),
        ("torch.optim.AdamW(params, lr=0.01, amsgrad=cfg.no, betas=cfg.betas)", CFG),
    ],
    "Adagrad": [
        ("torch.optim.Adagrad(params, lr=0.01)", None),
        ("torch.optim.Adagrad(params, lr=0.01, eps=1e-2)", None),
        ("torch.optim.Adagrad(params, lr=0.01, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)", None),
        ("torch.optim.Adagrad(params, lr=0.1, lr_decay=cfg.lr_decay, maximize=True)", CFG),
    ],
    "RMSprop": [
        ("torch.optim.RMSprop(params, lr=0.01)", None),
        ("torch.optim.RMSprop(params, lr=0.01, alpha=0.9, eps=1e-3, centered=True)", None),
        ("torch.optim.RMSprop(params, lr=0.01, momentum=0.9)", None),
        ("torch.optim.RMSprop(params, lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)", None),
        ("torch.optim.RMSprop(params, lr=0.01, centered=cfg.yes, maximize=True)", CFG),
    ],
    "Adadelta": [
        ("torch.optim.Adadelta(params)", None),
        ("torch.optim.Adadelta(params, lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.1)", None),
        ("torch.optim.Adadelta(params, lr=2.0, maximize=True)", None),
    ],
    "Adamax": [
        ("torch.optim.Adamax(params, lr=0.01)", None),
        ("torch.optim.Adamax(params, lr=0.01, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)", None),
        ("torch.optim.Adamax(params, lr=0.01, maximize=True)", None),
    ],
    "NAdam": [
        ("torch.optim.NAdam(params, lr=0.01)", None),
        ("torch.optim.NAdam(params, lr=0.01, weight_decay=0.1)", None),
        ("torch.optim.NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", None),
        ("torch.optim.NAdam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-4, momentum_decay=0.02, maximize=True)", None),
        ("torch.optim.NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=cfg.yes)", CFG),
    ],
    "RAdam": [
        ("torch.optim.RAdam(params, lr=0.01)", None),
        ("torch.optim.RAdam(params, lr=0.01, eps=1e-3)", None),
        ("torch.optim.RAdam(params, lr=0.01, weight_decay=0.1)", None),
        ("torch.optim.RAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", None),
        ("torch.optim.RAdam(params, lr=0.01, betas=cfg.betas, maximize=True)", CFG),
    ],
    "Rprop": [
        ("torch.optim.Rprop(params, lr=0.01)", None),
        ("torch.optim.Rprop(params, lr=0.01, etas=(0.3, 1.5), step_sizes=(1e-4, 0.05))", None),
        ("torch.optim.Rprop(params, lr=0.2, step_sizes=cfg.steps, maximize=True)", CFG),
    ],
    "ASGD": [
        ("torch.optim.ASGD(params, lr=0.01)", None),
        ("torch.optim.ASGD(params, lr=0.05, lambd=0.1, alpha=0.5, weight_decay=0.1)", None),
        ("torch.optim.ASGD(params, lr=0.02, t0=10, maximize=True)", None),
    ],
    "Adafactor": [
        ("torch.optim.Adafactor(params, lr=0.01)", None),
        ("torch.optim.Adafactor(params, lr=0.05, weight_decay=0.1, d=2.0)", None),
        ("torch.optim.Adafactor(params, lr=0.01, beta2_decay=-0.5, eps=(None, 1e-2))", None),
        ("torch.optim.Adafactor(params, lr=0.01, eps=(1e-20, 1e-3), maximize=True)", None),
    ],
    "SparseAdam": [
        ("torch.optim.SparseAdam(params, lr=0.01)", None),
        ("torch.optim.SparseAdam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-4)", None),
        ("torch.optim.SparseAdam(params, lr=0.01, maximize=True)", None),
    ],
    "LBFGS": [
        ("torch.optim.LBFGS(params, lr=1, max_iter=1, history_size=10)", None),
        ("torch.optim.LBFGS(params, lr=0.05, max_iter=5, history_size=10)", None),
        ("torch.optim.LBFGS(params, lr=0.3, max_iter=3, history_size=4)", None),
        ("torch.optim.LBFGS(params, lr=0.5, max_iter=10, max_eval=7, tolerance_change=1e-6, history_size=5)", None),
        ("torch.optim.LBFGS(params)", None),
    ],
}

# With a scheduler stepped after every optimizer.step(): the rewrite folds the schedule into
# the learning rate (`lr` enters a formula for some rows). (call, torch scheduler expression)
SCHEDULED = [
    ("torch.optim.Adagrad(params, lr=0.1, lr_decay=0.01)", "torch.optim.lr_scheduler.ExponentialLR(opt, 0.95)"),
    ("torch.optim.RMSprop(params, lr=0.01, momentum=0.9)", "torch.optim.lr_scheduler.ExponentialLR(opt, 0.95)"),
    ("torch.optim.RMSprop(params, lr=0.01, momentum=0.9, centered=True)",
     "torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50)"),
    ("torch.optim.NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)",
     "torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50)"),
    ("torch.optim.RAdam(params, lr=0.01)", "torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50)"),
    ("torch.optim.Adam(params, lr=0.01, amsgrad=True)", "torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50)"),
    # OneCycleLR also cycles beta1 (cycle_momentum): the helpers take it through inject_hyperparams.
    ("torch.optim.Adam(params, lr=0.01, amsgrad=True)", "torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=50)"),
    ("torch.optim.NAdam(params, lr=0.01)", "torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=50)"),
    ("torch.optim.SparseAdam(params, lr=0.01)", "torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=50)"),
    ("torch.optim.Adagrad(params, lr=0.1)", "torch.optim.lr_scheduler.StepLR(opt, 10, 0.5)"),
    ("torch.optim.Adadelta(params)", "torch.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, 20)"),
    ("torch.optim.Adamax(params, lr=0.01)", "torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=50)"),
]
# Rows whose lr is not a plain scale: a schedule cannot be folded in (OPX201 on the scheduler).
UNSCHEDULABLE = ["torch.optim.Rprop(params, lr=0.01)", "torch.optim.ASGD(params, lr=0.01)",
                 "torch.optim.Adafactor(params, lr=0.01)", "torch.optim.LBFGS(params, lr=1, max_iter=1)"]

# Calls whose rewrite is OPX201 without a fix (no faithful equivalent).
NO_FIX = [
    "torch.optim.LBFGS(params, line_search_fn='strong_wolfe')",
    "torch.optim.LBFGS(params, lr=1, max_iter=1, history_size=10, line_search_fn=cfg.ls)",
    "torch.optim.Adam(params, lr=0.01, betaz=(0.9, 0.99))",
    "torch.optim.SGD(params, lr=0.01, momentum=0.9, **extra)",
    "torch.optim.Adam(params, 0.01, (0.9, 0.99), 1e-8, 0, False, None, 1)",
]

# A representative subset for float32 (relative 1e-5): one example per row, plus the helpers.
FLOAT32 = [
    "torch.optim.SGD(params, lr=0.01, momentum=0.9, dampening=0.5, weight_decay=0.1)",
    "torch.optim.Adam(params, lr=0.01, weight_decay=0.1)",
    "torch.optim.Adam(params, lr=0.01, amsgrad=True)",
    "torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)",
    "torch.optim.Adagrad(params, lr=0.01, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)",
    "torch.optim.RMSprop(params, lr=0.01, momentum=0.9, centered=True)",
    "torch.optim.Adadelta(params, lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.1)",
    "torch.optim.Adamax(params, lr=0.01, betas=(0.8, 0.99), eps=1e-3)",
    "torch.optim.NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)",
    "torch.optim.RAdam(params, lr=0.01, eps=1e-3)",
    "torch.optim.Rprop(params, lr=0.01, etas=(0.3, 1.5), step_sizes=(1e-4, 0.05))",
    "torch.optim.ASGD(params, lr=0.05, lambd=0.1, alpha=0.5, weight_decay=0.1)",
    "torch.optim.Adafactor(params, lr=0.05, weight_decay=0.1, d=2.0)",
    "torch.optim.SparseAdam(params, lr=0.01)",
    "torch.optim.LBFGS(params, lr=1, max_iter=1, history_size=10)",
]


# -- hypothesis strategies --------------------------------------------------------------------------
def _f(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _or_zero(s):
    return st.one_of(st.just(0.0), s)


def _maybe(name, s):
    """The argument given or left to torch's default."""
    return st.one_of(st.just({}), s.map(lambda v: {name: v}))


def _merge(*parts):
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


_BETAS = st.tuples(_f(0.0, 0.99), _f(0.5, 0.9999))
_EPS = st.one_of(st.just(1e-8), _f(1e-10, 1e-3))
_WD = _or_zero(_f(0.0, 0.2))
_MAX = st.booleans().map(lambda b: {"maximize": True} if b else {})


def _sgd():
    def build(d):
        if not d.get("momentum") or d.get("dampening"):
            d.pop("nesterov", None)        # torch: nesterov needs momentum and zero dampening
        return d
    return _merge(_maybe("lr", _f(1e-3, 0.05)), _maybe("momentum", _or_zero(_f(0.0, 0.95))),
                  _maybe("dampening", _or_zero(_f(0.0, 0.9))), _maybe("weight_decay", _WD),
                  _maybe("nesterov", st.booleans()), _MAX).map(build)


def _adam(decoupled=True, default_wd=_WD):
    parts = [_maybe("lr", _f(1e-4, 0.05)), _maybe("betas", _BETAS), _maybe("eps", _EPS),
             _maybe("weight_decay", default_wd), _maybe("amsgrad", st.booleans()), _MAX]
    if decoupled:
        parts.append(_maybe("decoupled_weight_decay", st.booleans()))
    return _merge(*parts)


STRATEGIES = {
    "SGD": _sgd(),
    "Adam": _adam(),
    "AdamW": _adam(decoupled=False),
    "Adagrad": _merge(_maybe("lr", _f(1e-3, 0.5)), _maybe("lr_decay", _or_zero(_f(0.0, 0.1))),
                      _maybe("weight_decay", _WD), _maybe("initial_accumulator_value", _f(0.0, 1.0)),
                      _maybe("eps", _f(1e-10, 1e-2)), _MAX),
    "RMSprop": _merge(_maybe("lr", _f(1e-4, 0.02)), _maybe("alpha", _f(0.5, 0.999)), _maybe("eps", _EPS),
                      _maybe("weight_decay", _WD), _maybe("momentum", _or_zero(_f(0.0, 0.9))),
                      _maybe("centered", st.booleans()), _MAX),
    "Adadelta": _merge(_maybe("lr", _f(0.1, 2.0)), _maybe("rho", _f(0.5, 0.99)), _maybe("eps", _f(1e-8, 1e-4)),
                       _maybe("weight_decay", _WD), _MAX),
    "Adamax": _merge(_maybe("lr", _f(1e-3, 0.05)), _maybe("betas", _BETAS), _maybe("eps", _EPS),
                     _maybe("weight_decay", _WD), _MAX),
    "NAdam": _merge(_maybe("lr", _f(1e-3, 0.05)), _maybe("betas", _BETAS), _maybe("eps", _EPS),
                    _maybe("weight_decay", _WD), _maybe("momentum_decay", _f(1e-4, 0.1)),
                    _maybe("decoupled_weight_decay", st.booleans()), _MAX),
    "RAdam": _merge(_maybe("lr", _f(1e-3, 0.05)), _maybe("betas", st.tuples(_f(0.0, 0.99), _f(0.9, 0.9999))),
                    _maybe("eps", _EPS), _maybe("weight_decay", _WD),
                    _maybe("decoupled_weight_decay", st.booleans()), _MAX),
    "Rprop": _merge(_maybe("lr", _f(1e-3, 0.1)), _maybe("etas", st.tuples(_f(0.1, 0.9), _f(1.05, 2.0))),
                    _maybe("step_sizes", st.tuples(_f(1e-7, 1e-3), _f(0.01, 50.0))), _MAX),
    "ASGD": _merge(_maybe("lr", _f(1e-3, 0.1)), _maybe("lambd", _or_zero(_f(0.0, 0.1))),
                   _maybe("alpha", _f(0.1, 1.0)), _maybe("t0", _f(1.0, 1e6)), _maybe("weight_decay", _WD), _MAX),
    "Adafactor": _merge(_maybe("lr", _f(1e-3, 0.1)), _maybe("beta2_decay", _f(-1.0, -0.1)),
                        _maybe("eps", st.tuples(st.one_of(st.none(), _f(1e-30, 1e-10)), _f(1e-4, 1e-2))),
                        _maybe("d", _f(1.0, 3.0)), _maybe("weight_decay", _WD), _MAX),
    "SparseAdam": _merge(_maybe("lr", _f(1e-4, 0.05)), _maybe("betas", _BETAS), _maybe("eps", _EPS), _MAX),
    "LBFGS": _merge(_maybe("lr", _f(0.05, 1.0)), _maybe("max_iter", st.integers(1, 25)),
                    _maybe("history_size", st.integers(1, 20)),
                    _maybe("tolerance_change", st.one_of(st.just(1e-9), _f(1e-12, 1e-6)))),
}


def call_of(name: str, kwargs: dict) -> str:
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return f"torch.optim.{name}(params{args})"
