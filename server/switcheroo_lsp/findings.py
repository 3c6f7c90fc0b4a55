"""What the core reports: codes, findings and fixes (plain data, no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .source import Span

CODES: dict[str, tuple[str, str]] = {
    # code: (default severity, what it is about)
    "OPX101": ("information", "torch optimizer construction"),
    "OPX102": ("information", "optimizer.step()"),
    "OPX103": ("information", "optimizer.zero_grad()"),
    "OPX104": ("information", "torch LR scheduler construction"),
    "OPX105": ("information", "scheduler.step()"),
    "OPX106": ("information", "gradient clipping before a step"),
    "OPX201": ("warning", "no faithful Optax equivalent"),
    "OPX202": ("warning", "needs a manual rewrite"),
    "OPX203": ("warning", "the step rewrite needs names that are not defined here"),
}
SEVERITIES = ("error", "warning", "information", "hint")
DOCS_URL = "https://github.com/switcheroo-lsp/switcheroo-lsp#{code}"


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
