"""`switcheroo-lsp verify` with every construction's rewrite replaced by the Optax text given as
the first argument: the real command, fed a rewrite the core would never write, to show that
verify catches an unfaithful one. Usage: python unfaithful_rewrite.py 'optax.adamw(…)' verify …
"""

import dataclasses
import sys

from switcheroo_lsp.engine import Analysis
from switcheroo_lsp.frontends.cli import main

REWRITE = sys.argv[1]
_original = Analysis.construction_rewrites


def _unfaithful(self):
    return [dataclasses.replace(r, optax=REWRITE, written=r.written.replace(r.optax, REWRITE)) for r in _original(self)]


Analysis.construction_rewrites = _unfaithful
sys.exit(main(sys.argv[2:]))
