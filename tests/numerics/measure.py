#!/usr/bin/env python
"""Write docs/optimizers.md: the optimizer table, from the catalog and real measurements.

    .venv/bin/python tests/numerics/measure.py            # rewrites docs/optimizers.md
    .venv/bin/python tests/numerics/measure.py --stdout   # prints it instead

Every number is measured here, through the same pipeline the tests use: the torch call goes
into a small program, `fix_all` rewrites it, the rewritten text is executed, and both run 50
steps on spec/verify_torch_optax.py's problem (float64, and float32 for a subset).
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT / "server")]
warnings.filterwarnings("ignore")

import numerics_harness as harness
import switcheroo_optax
from numerics_cases import EXAMPLES, FLOAT32, NO_FIX
from switcheroo_lsp.knowledge import catalog, factories
from switcheroo_lsp.knowledge.libraries import UNMAPPED
from test_claims import CLAIMS, measure

OUT = ROOT / "docs" / "optimizers.md"
TORCH_ROWS = [k for k, r in catalog.OPTIMIZERS.items() if r.module == "torch.optim"]
LIBRARY_ROWS = [k for k, r in catalog.OPTIMIZERS.items() if r.module != "torch.optim"]
COMMAND = ".venv/bin/python tests/numerics/measure.py"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_cell(' '.join(text.split()))}`"


def _short(call: str) -> str:
    return call.replace("torch.optim.", "", 1).replace("(params, ", "(").replace("(params)", "()")


def _default(value) -> str:
    return f"`{value!r}`"


def optimizer_table(lines: list[str]) -> None:
    f32 = {}
    for call in FLOAT32:
        r = harness.compare(call, "float32")
        f32[call] = r.diff / r.scale
    lines += ["## The table", "",
              "One line per catalog recipe and argument (the numerics tests run these and, for every row, "
              "hypothesis-sampled argument values). **diff** is max |p_torch − p_optax| over 50 steps and all "
              "37 coordinates in float64; **moved** is how far torch's parameters travelled; **f32** is the "
              "float32 difference relative to the parameters' size (subset). `cfg.x` arguments are expressions, "
              "run with the values in tests/numerics/cases.py.", "",
              "| torch | Optax rewrite (what the fix writes) | exact | diff f64 | moved | f32 rel |",
              "|---|---|---|---|---|---|"]
    for name in TORCH_ROWS:
        for call, cfg in EXAMPLES[name]:
            r = harness.compare(call, "float64", cfg)
            exact = "yes" if r.built.finding.code == "OPX101" and r.built.emission.exact else "**no**"
            f = f"{f32[call]:.1e}" if call in f32 else ""
            diff = f"{r.diff:.1e}"
            if r.diff > 1e-12:
                diff += f" (torch's own rounding sensitivity: {harness.torch_sensitivity(call, 'float64', cfg):.1e})"
            lines.append(f"| {_code(_short(call))} | {_code(r.built.emission.one_line())} | {exact} | {diff} | "
                         f"{r.moved:.2g} | {f} |")
    lines.append("")


def arguments_table(lines: list[str]) -> None:
    lines += ["## Every argument", "",
              "torch 2.13.0's signature with its defaults made explicit, and what each argument becomes. "
              "Implementation flags (`foreach`, `fused`, `capturable`, `differentiable`) change how torch "
              "computes, not what: they are dropped, with a note. An unknown or misspelled keyword is "
              "OPX201 without a fix. An argument given as an expression is carried over as that expression; "
              "a tuple given as an expression (`betas=cfg.betas`) becomes `cfg.betas[0]`, `cfg.betas[1]`; a "
              "boolean flag given as an expression (`amsgrad=cfg.amsgrad`) becomes "
              "`(recipe_if_true if cfg.amsgrad else recipe_if_false)`.", "",
              "| optimizer | argument | torch default | becomes |", "|---|---|---|---|"]
    for name in TORCH_ROWS:
        row = catalog.OPTIMIZERS[name]
        defaults = row.defaults()
        for arg, becomes in row.arguments:
            lines.append(f"| {name} | `{arg}` | {_default(defaults[arg])} | {_cell(becomes)} |")
    lines.append("")


def notes_section(lines: list[str]) -> None:
    lines += ["## What the messages and hovers explain", "",
              "Each row's notes, shown when they apply (the first one in the diagnostic, all in the hover).", ""]
    for name, row in catalog.OPTIMIZERS.items():
        texts = [n.text for n in row.notes] + [t for v in row.variants for t in v.notes]
        if texts:
            lines.append(f"- **{name}**: " + " · ".join(_cell(t) for t in texts))
    lines.append("")


def claims_table(lines: list[str]) -> None:
    lines += ["## The naive translations, measured", "",
              "What the notes quote (re-measured by tests/numerics/test_claims.py, which fails if a quoted "
              "number is off by more than 10%).", "",
              "| torch | naive Optax | diff f64 | setup |", "|---|---|---|---|"]
    for _, claim, _ in CLAIMS:
        lines.append(f"| {_code(_short(claim.torch))} | {_code(claim.optax)} | {measure(claim):.2e} | {claim.setup} |")
    lines.append("")


def not_exact_section(lines: list[str]) -> None:
    approximate = [(name, v) for name, row in catalog.OPTIMIZERS.items() for v in row.variants
                   if not v.exact and not v.problem]
    lines += ["## Not exact, or no rewrite", ""]
    if approximate:
        lines += ["Approximate recipes (OPX201, fix titled \"(approximate)\"):", ""]
        lines += [f"- **{name}** {v.when}: {_cell(v.difference)}" for name, v in approximate] + [""]
    else:
        lines += ["No catalog recipe is approximate: every fix switcheroo offers for an optimizer is exact (OPX101)."]
    lines += ["What has no faithful equivalent gets OPX201 and no fix, with the reason:", "",
              "| torch | diagnostic |", "|---|---|"]
    for call in NO_FIX:
        _, _, finding = harness.analyzed(call)
        lines.append(f"| {_code(_short(call))} | {finding.code}: {_cell(finding.message)} |")
    lines += ["",
              "Limits worth knowing, all stated in the notes:", "",
              "- **ASGD**: the parameters are exact; torch's averaged copy `ax` is not kept. A file that reads "
              "`state[...]['ax']` gets OPX201 without a fix.",
              "- **SparseAdam**: exact when \"rows present in torch's sparse gradient\" are the rows with a nonzero "
              "JAX gradient (true for embedding lookups); a looked-up row whose gradient is exactly zero would "
              "differ. `optax.adam` on the same problem is 0.116 off.",
              "- **LBFGS**: one `update(..., value_fn=loss_fn)` is one torch `step(closure)`, early exits included; "
              "`line_search_fn='strong_wolfe'` has no equivalent. LBFGS amplifies rounding (torch itself moves "
              "~1e-11 when its start moves by 1e-15 over 50 steps of 5 iterations), so where a trajectory exceeds "
              "1e-12 the tests require it to stay within 10x of torch's own sensitivity.",
              "- **Schedules**: rows whose `lr` is not a plain scale (Rprop's initial step size, ASGD's and "
              "Adafactor's formulas, LBFGS) cannot take a folded scheduler: OPX201 on the scheduler. Adagrad's "
              "`lr_decay` composes with a schedule; RMSprop with momentum switches to torch's order.",
              ""]


def helpers_section(lines: list[str]) -> None:
    lines += ["## switcheroo_optax", "",
              "Where plain Optax is not exact, the rewrite imports `switcheroo_optax` (server/switcheroo_optax/, "
              "plain jax + optax, importable on its own; install switcheroo-lsp or copy the package). "
              "Each transform's docstring gives torch's formula.", "",
              "| transform | reproduces |", "|---|---|"]
    for name in switcheroo_optax.__all__:
        fn = getattr(switcheroo_optax, name)
        if inspect.isfunction(fn):
            doc = inspect.getdoc(fn).split("\n\n")[0].replace("\n", " ")
            params = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                               for p in inspect.signature(fn).parameters.values())
            lines.append(f"| `{name}({params})` | {_cell(doc)} |")
    lines.append("")


def library_section(lines: list[str]) -> None:
    """The rows beyond torch.optim, each run against its package (tests/numerics/test_libraries.py)."""
    import numpy as np
    from library_cases import DOCUMENTED, EIGHT_BIT
    from library_cases import EXAMPLES as LIBRARY_EXAMPLES
    from numerics_large import large_diff

    packages = sorted({catalog.OPTIMIZERS[k].package for k in LIBRARY_ROWS})
    lines += ["## Beyond torch.optim: the libraries around it", "",
              "Rows of the same catalog (server/switcheroo_lsp/knowledge/libraries.py) for the optimizers training code "
              "takes from other packages, each proven like torch's: the package (pinned in the `ecosystem` test extra: "
              + ", ".join(p for p in packages if "documented" not in p) + ") runs against the Optax text the fix "
              "writes, 50 steps on the same problem. bitsandbytes computes in float32 whatever the parameters' dtype: "
              "its rows are measured in float32 (**f32 rel**, within 1e-5 of the parameters' size, as torch's float32 "
              "rows); the others in float64 (≤ 1e-12).", "",
              "| package | call | Optax rewrite (what the fix writes) | exact | diff | moved |", "|---|---|---|---|---|---|"]
    for key in LIBRARY_ROWS:
        row = catalog.OPTIMIZERS[key]
        for call, cfg in LIBRARY_EXAMPLES.get(key, []):
            dtype = "float32" if row.precision == "float32" else "float64"
            r = harness.compare(call, dtype, cfg)
            exact = "yes" if r.built.emission.exact else "**approximate**"
            diff = f"{r.diff / r.scale:.1e} f32 rel" if dtype == "float32" else f"{r.diff:.1e}"
            lines.append(f"| {row.package} | {_code(call.replace('(params, ', '(').replace('(params)', '()'))} | "
                         f"{_code(r.built.emission.one_line())} | {exact} | {diff} | {r.moved:.2g} |")
    lines += ["", "**8-bit states** (bitsandbytes' `*8bit` classes, `optim_bits=8`): \"(approximate)\" rewrites. On "
              "the 37-parameter problem above bitsandbytes keeps 32-bit states (tensors under min_8bit_size=4096), so "
              "they agree; measured here on a 64×96 matrix and a 4096-vector (10,240 parameters, float32, 50 steps):", "",
              "| call | Optax rewrite | max \\|Δθ\\| |", "|---|---|---|"]
    import jax.numpy as jnp
    for call in EIGHT_BIT:
        built = harness.emitted(call)
        d = large_diff(call, built.make([jnp.zeros(1)]))
        lines.append(f"| {_code(call.replace('(params, ', '('))} | {_code(built.emission.one_line())} | {d:.2e} |")
    lines += ["", "**Documented math** (apex and DeepSpeed need CUDA and do not install here): the rewrite follows the "
              "update their documentation gives, and runs against the torch optimizer with that update:", "",
              "| call | torch reference | Optax rewrite | diff f64 |", "|---|---|---|---|"]
    for call, reference in DOCUMENTED:
        with harness.precision("float64") as dt:
            built = harness.emitted(call, load=False)
            t = harness.run_torch(reference, dt)
            j = harness.run_optax(built.make(None), dt)
        lines.append(f"| {_code(call.replace('(params, ', '('))} | {_code(_short(reference))} | "
                     f"{_code(built.emission.one_line())} | {float(np.max(np.abs(t - j))):.1e} |")
    lines += ["", "`torch.distributed.optim.ZeroRedundancyOptimizer(params, optimizer_class=..., ...)` becomes its "
              "optimizer_class's rewrite (the sharding is jax.sharding's business): tests/numerics/test_libraries.py "
              "runs it on a one-process gloo group against the rewrite (float64, ≤ 1e-12).", "",
              "Known classes without a rewrite (their constructions get OPX201 saying why, and their flows stay "
              "torch): " + ", ".join(f"`{q}`" for q in sorted(UNMAPPED)) + ".", ""]
    lines += ["### Their arguments", "", "| class | argument | default | becomes |", "|---|---|---|---|"]
    for key in LIBRARY_ROWS:
        row = catalog.OPTIMIZERS[key]
        defaults = row.defaults()
        for arg, becomes in row.arguments:
            lines.append(f"| {row.qualified} | `{arg}` | {_default(defaults[arg])} | {_cell(becomes)} |")
    lines.append("")


def factories_section(lines: list[str]) -> None:
    """timm's create_optimizer_v2 and the schedules of transformers and diffusers."""
    import test_libraries as tl
    import test_library_schedules as ts

    lines += ["## Library factories", "",
              "timm's `create_optimizer_v2(model, opt=..., ...)` (timm 1.0.31): its name becomes the catalog row of the "
              "class timm builds, with timm's defaults; its weight-decay exclusion of biases and norm parameters becomes "
              "`mask=switcheroo_optax.timm_weight_decay_mask()`. Run against the real `create_optimizer_v2` on a module "
              "with biases and a norm layer (float64):", "", "| call | Optax rewrite | diff f64 |", "|---|---|---|"]
    for call in tl.TIMM:
        text, diff = _timm(tl, call)
        lines.append(f"| {_code(call)} | {_code(text)} | {diff:.1e} |")
    names = ", ".join(f"`{n}`" for n, v in factories.TIMM_NAMES.items() if v.key)
    lines += ["", f"Names with a rewrite: {names}; the others name timm's own optimizers, not in the catalog yet "
              "(OPX201).", "",
              "Schedules of transformers 5.25.0 and diffusers 0.42.1 (their `get_*_schedule*` functions, and "
              "`get_scheduler(name, ...)` for every name they accept) fold into the optimizer's `learning_rate` as "
              "switcheroo_optax's schedule functions; a name chosen at run time (`args.lr_scheduler`) as "
              "`switcheroo_optax.transformers_schedule(name, ...)` / `diffusers_schedule(name, ...)`, the same choice. "
              "Against the libraries' schedulers stepping torch's optimizer (50 steps, float64; schedules are held "
              "to 5e-6 as torch's):", "", "| optimizer | scheduler | diff |", "|---|---|---|"]
    for call, sched in ts.SCHEDULED:
        analysis, fixed, expression, namespace = ts._optimizer(ts._program(call, sched))
        diff = ts._compare(call, sched, expression, namespace)
        lines.append(f"| {_code(_short(call))} | {_code(sched)} | {diff:.1e} |")
    lines += ["", "`get_scheduler` names without a schedule: " + "; ".join(
        f"{f.qualified}('{n}'): {v.why}" for f in (factories.TRANSFORMERS_GET_SCHEDULER,)
        for n, v in f.names.items() if v.row is None) + ".", ""]


def _timm(tl, call: str) -> tuple[str, float]:
    """The rewrite of a create_optimizer_v2 call and its distance from timm (as the test runs it)."""
    import ast

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import torch
    from ecosystem import require

    timm_optim = require("timm")
    program = tl.TIMM_PROGRAM.format(call=call)
    analysis = harness.analyze(program)
    fixed = harness.apply(program, analysis.fix_all())
    fn = next(n for n in ast.parse(fixed).body if isinstance(n, ast.FunctionDef))
    assign = next(st for st in fn.body if isinstance(st, ast.Assign) and ast.unparse(st.targets[0]) == "opt")
    text = ast.get_source_segment(fixed, assign.value)
    with harness.precision("float64"):
        model = tl._timm_model(torch)
        x0 = {k: v.detach().numpy().copy() for k, v in model.named_parameters()}
        namespace = {"create_optimizer_v2": timm_optim.create_optimizer_v2, "torch": torch}
        exec(compile(program, "<timm>", "exec"), namespace)
        opt = namespace["make"](model)
        rng = np.random.default_rng(0)
        targets = {k: rng.standard_normal(v.shape) for k, v in x0.items()}
        out_t = []
        for t in range(harness.STEPS):
            for k, p in model.named_parameters():
                p.grad = torch.tensor((1 + t % 3) * (p.detach().numpy() - targets[k]))
            opt.step()
            out_t.append(np.concatenate([p.detach().numpy().ravel() for _, p in model.named_parameters()]))
        fixed_ns: dict = {}
        exec(compile(fixed, "<fixed>", "exec"), fixed_ns)
        params = {k: jnp.asarray(v) for k, v in x0.items()}
        tx = eval(text, fixed_ns)
        state = tx.init(params)
        out_j = []
        for t in range(harness.STEPS):
            grads = jax.tree.map(lambda p, k: (1 + t % 3) * (p - targets[k]), params, {k: k for k in params})
            u, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, u)
            out_j.append(np.concatenate([np.asarray(params[k]).ravel() for k in x0]))
    return " ".join(text.split()), float(np.max(np.abs(np.array(out_t) - np.array(out_j))))


def render() -> str:
    lines = ["# torch.optim → Optax: the optimizer table", "",
             f"Generated by `{COMMAND}` (torch {harness.torch.__version__}, jax {harness.jax.__version__}, "
             f"optax {harness.optax.__version__}); do not edit by hand. The proof runs in CI: "
             "`.venv/bin/python -m pytest tests/numerics -q`.", "",
             "switcheroo's catalog (server/switcheroo_lsp/knowledge/catalog.py) has one row per torch optimizer "
             "(and rows for the libraries around torch: [below](#beyond-torchoptim-the-libraries-around-it)). Each "
             "rewrite below is exact: the same parameters and gradients give torch's trajectory to float64 "
             "rounding (≤ 1e-12 over 50 steps; float32 within 1e-5 relative). LBFGS is the one optimizer that "
             "amplifies rounding past that: its rows show torch's own sensitivity beside the difference.", ""]
    optimizer_table(lines)
    library_section(lines)
    factories_section(lines)
    not_exact_section(lines)
    arguments_table(lines)
    notes_section(lines)
    claims_table(lines)
    helpers_section(lines)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> None:
    text = render()
    if "--stdout" in argv:
        sys.stdout.write(text)
    else:
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(text)
        print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
