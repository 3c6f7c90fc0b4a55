"""The pure core's entry point: source text in; findings, fixes and explanations out.

Front ends (the language server, the command line) and the tests call only this module.
"""

from __future__ import annotations

from .legacy_analysis import Analysis, ConstructionRewrite, analyze
from .findings import CODES, SEVERITIES, Finding, Fix, TextEdit
from .findings import DOCS_URL   # where each code is documented: "{code}" is its lower-case anchor
from .rewrite import apply
from .source import Pos, Source, Span, from_units, to_units

__all__ = ["Analysis", "ConstructionRewrite", "analyze", "apply", "CODES", "SEVERITIES", "Finding", "Fix", "TextEdit",
           "Pos", "Source", "Span", "from_units", "to_units", "DOCS_URL"]
