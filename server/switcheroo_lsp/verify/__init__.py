"""`switcheroo-lsp verify`: run each torch construction and the Optax code fix-all writes for it
side by side, on the file's own hyperparameters, and compare the trajectories.

Split so that only the runners import torch, jax, optax or matplotlib (the server, `check` and
`fix` never do):

  literals.py     expressions of the user's code as libcst trees: safe evaluation of literals,
                  the references an expression needs, substitution of their values
  hyperparams.py  static resolution of those references in the user's document
  cases.py        what to run for each construction (torch calls, the Optax text), resolved
  problems.py     the fixed problems: a seeded MLP regression and an ill-conditioned quadratic
  torch_runner.py / optax_runner.py   the two sides; targets.py picks the rewrite's runner
  compare.py      trajectories -> max |dtheta|, first step over the catalog's tolerance, status
  plot.py         one PNG per construction (matplotlib, Agg)
  command.py      the command line
"""
