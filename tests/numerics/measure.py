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
from switcheroo_lsp.knowledge import catalog
from test_claims import CLAIMS, measure

OUT = ROOT / "docs" / "optimizers.md"
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
    for name in catalog.OPTIMIZERS:
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
    for name, row in catalog.OPTIMIZERS.items():
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


def render() -> str:
    lines = ["# torch.optim → Optax: the optimizer table", "",
             f"Generated by `{COMMAND}` (torch {harness.torch.__version__}, jax {harness.jax.__version__}, "
             f"optax {harness.optax.__version__}); do not edit by hand. The proof runs in CI: "
             "`.venv/bin/python -m pytest tests/numerics -q`.", "",
             "switcheroo's catalog (server/switcheroo_lsp/knowledge/catalog.py) has one row per torch optimizer. Each "
             "rewrite below is exact: the same parameters and gradients give torch's trajectory to float64 "
             "rounding (≤ 1e-12 over 50 steps; float32 within 1e-5 relative). LBFGS is the one optimizer that "
             "amplifies rounding past that: its rows show torch's own sensitivity beside the difference.", ""]
    optimizer_table(lines)
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
