"""What a set of fixes does to the document, statement by statement (plain data).

A plan collects, per statement, its change: replaced by new statements (or removed), a node
inside it swapped (the torch construction `Call` for its Optax expression), comment lines and
statements to put before or after it. `plan.py` fills it, one module per rewrite family;
`render.py` applies it with libcst.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..analysis.arguments import code
from ..analysis.facts import StmtContext
from ..knowledge.emit import Extras


@dataclass(eq=False)
class Change:
    """What happens to one statement (a small statement, or a compound one's header)."""
    ctx: StmtContext
    texts: list | None = None         # replaced by these (statement texts or nodes; "# ..." are comment
                                      # lines above them); [] removes it; None keeps it
    swap: tuple | None = None         # (a node inside it, its replacement)
    before: list[str] = field(default_factory=list)     # comment lines and statements above it
    after: list = field(default_factory=list)           # statements after it (texts, or whole statement nodes)
    zero_grad: bool = False           # a removed zero_grad(): its trailing comment may go with it
    commented: bool = True            # its text has a `#`: the rewrite must look for comments to keep
    moved: bool = False               # removed here because it moved (with its comments) into new code
    drop_if_empty: bool = False       # an `if` whose body the fixes empty goes too (its comments stay)


@dataclass
class Plan:
    changes: dict[int, Change] = field(default_factory=dict)

    has_hash: object = None           # ctx -> does the statement's text hold a `#` (None: assume so)
    per_step: set[str] = field(default_factory=set)    # names each step needs anew (its grads): todos.py

    def change(self, ctx: StmtContext) -> Change:
        c = self.changes.get(id(ctx.stmt))
        if c is None:
            c = self.changes[id(ctx.stmt)] = Change(ctx)
            if self.has_hash is not None:
                c.commented = self.has_hash(ctx)
        return c

    def replace(self, ctx: StmtContext, texts: list) -> None:
        self.change(ctx).texts = list(texts)

    def remove(self, ctx: StmtContext) -> None:
        self.change(ctx).texts = []

    def add_before(self, ctx: StmtContext, texts: list[str]) -> None:
        _add_unique(self.change(ctx).before, texts)

    def add_after(self, ctx: StmtContext, texts: list[str]) -> None:
        _add_unique(self.change(ctx).after, texts)

    def written(self) -> str:
        """All the code the plan writes (to decide which imports it needs)."""
        parts = []
        for c in self.changes.values():
            for t in (c.texts or []) + c.before + c.after:
                if isinstance(t, str) and t.startswith("#"):
                    continue        # a TODO naming `nnx.value_and_grad` needs no import
                if isinstance(t, cst.BaseStatement):
                    continue        # the user's statements moved (into a loss function): nothing new
                parts.append(t if isinstance(t, str) else code(t))
            if c.swap is not None:
                parts.append(code(c.swap[1]))
        return "\n".join(parts)

    def __bool__(self) -> bool:
        return bool(self.changes)


def _add_unique(have: list, texts: list) -> None:
    have.extend(t for t in texts if t not in have)


@dataclass
class Folded:
    """What fixes fold into one optimizer's construction (a schedule, clipping, TODO lines)."""
    learning_rate: str | None = None
    momentum: str | None = None
    prefix: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    accumulate: object = None         # gradients.Accumulation: the transform goes inside optax.MultiSteps

    def extras(self) -> Extras | None:
        if self.learning_rate is None and self.momentum is None and not self.prefix:
            return None
        return Extras(self.learning_rate, self.momentum, tuple(self.prefix))
