"""What the core reports: codes, findings and fixes (plain data, no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..document.text import Span

if TYPE_CHECKING:
    from ..knowledge.emit import Emission
    from ..knowledge.schedules import Schedule
    from .facts import StmtContext
    from .tracing import Identity

CODES: dict[str, tuple[str, str]] = {
    # code: (default severity, what it is about)
    "OPX101": ("information", "torch optimizer construction"),
    "OPX102": ("information", "optimizer.step()"),
    "OPX103": ("information", "optimizer.zero_grad()"),
    "OPX104": ("information", "torch LR scheduler construction"),
    "OPX105": ("information", "scheduler.step()"),
    "OPX106": ("information", "gradient clipping before a step"),
    "OPX107": ("information", "a hyperparameter set or read by hand through param_groups"),
    "OPX201": ("warning", "no faithful Optax equivalent"),
    "OPX202": ("warning", "needs a manual rewrite"),
    "OPX203": ("warning", "the step rewrite needs names that are not defined here"),
}
SEVERITIES = ("error", "warning", "information", "hint")
DOCS_URL = "https://github.com/switcheroo-lsp/switcheroo-lsp#{code}"   # README "Diagnostic codes"


@dataclass(frozen=True)
class TextEdit:
    span: Span
    new_text: str


@dataclass
class Fix:
    title: str
    edits: list[TextEdit]
    preferred: bool = True


@dataclass
class Finding:
    code: str
    span: Span
    message: str
    kind: str                  # "construct" | "step" | "zero_grad" | "manual" | "undefined" | "unmapped"
    noqa_lines: tuple[int, ...] = ()     # where `# noqa` suppresses it
    ignore_line: int = 0                 # where the "ignore" action puts `# noqa: CODE`
    fixable: bool = False
    severity: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    key: int = 0                         # index in the analysis; ties a finding to its fix

    def __post_init__(self):
        if not self.severity:
            self.severity = CODES[self.code][0]

    @property
    def docs(self) -> str:
        return DOCS_URL.format(code=self.code.lower())


@dataclass
class Names:
    """What an optimizer's rewrites call its state, parameters and gradients."""
    state: str          # `opt_state`, or `self.opt_state` for an attribute receiver
    params: str
    grads: str
    module: str = ""    # the module whose parameters it trains, as the rewrite's scope reaches it
                        # (targets that wrap a module: `model`, `self.model`); "" where unknown


@dataclass(eq=False)
class Site:
    """Where a finding is and what its fix needs (kept beside the analysis, never re-derived)."""
    finding: Finding | None
    ctx: "StmtContext"
    identity: "Identity | None" = None          # the optimizer concerned
    emission: "Emission | None" = None
    names: Names | None = None
    receiver: str = ""
    missing: tuple[str, ...] = ()
    state_init: tuple | None = None             # (StmtContext, texts): where an attribute's state starts
    ids: frozenset = frozenset()                # every optimizer the receiver may be
    sched: "Identity | None" = None             # schedulers: the scheduler itself
    schedule: "Schedule | None" = None
    absorbed: list = field(default_factory=list)   # SequentialLR members' statements, removed with it
    steps_per_epoch_missing: bool = False
    plateau_state: str = ""                     # ReduceLROnPlateau: its state's name
    metric: str = ""                            # ReduceLROnPlateau.step(metric)
    clip: str = ""                              # clipping: the Optax transform
    norm_target: str = ""                       # `total = clip_grad_norm_(...)`: keep `total`
    norm_grads: str = ""
    groups: Any = None                          # parameter groups (param_groups.Groups)
    gradients: Any = None                       # steps: where their gradients come from (gradients.StepGradients)
    hyper: Any = None                           # param_groups writes and reads (hyperparams.HyperUse)
    hyper_state: Any = None                     # and where they live once converted (hyper_state.HyperState)
