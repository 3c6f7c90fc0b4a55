"""The seam between the analysis and the API a rewrite emits.

A target decides what a torch optimizer's construction, step and zero_grad become, which names
those lines read (so that the analysis can say which are missing, OPX203), what the messages
and hovers say, and which imports the result needs. The faithful Optax transform itself (the
catalog's emission) is the same for every target.
"""

from __future__ import annotations

from typing import Protocol

from ..analysis.findings import Names


class Target(Protocol):
    name: str
    has_init_line: bool          # the construction is followed by `<state> = <opt>.init(<params>)`
    step_why: str                # why the step changes, for OPX102's message
    pattern: str                 # the hover's paragraph on how the target's optimizers work

    def construction_summary(self, transform: str) -> str:
        """What OPX101's message says the construction becomes (one line)."""

    def construction_text(self, transform: str, owner: str | None) -> str:
        """The expression that replaces the torch construction, around the Optax transform's
        text (`owner`: the module whose parameters it trains, where known)."""

    def init_lines(self, target: str, names: Names) -> list[str]:
        """Statements after the construction (`opt_state = opt.init(params)`)."""

    def init_reads(self, names: Names) -> list[str]:
        """Names the init lines read."""

    def step_lines(self, receiver: str, names: Names, plateau_state: str, optax_name: str) -> list[str]:
        """Statements that replace `<receiver>.step()`."""

    def step_summary(self, receiver: str, names: Names) -> str:
        """The step's rewrite on one line, for messages."""

    def step_reads(self, names: Names) -> list[str]:
        """Names the step lines read (in the order a TODO names them)."""

    def params_hint(self, names: Names) -> str:
        """An example definition of what the init line reads."""

    def grads_hint(self, names: Names) -> str:
        """An example definition of what the step lines read."""
