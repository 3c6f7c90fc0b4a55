"""IPython syntax in a code cell, masked so that the cell parses as Python.

IPython rewrites these before Python sees a cell, and so do we, line for line:
- `%%name ...` on the cell's first line: a cell magic. `%%time` and the others in
  PYTHON_CELL_MAGICS run their body as Python in the notebook's namespace, so only the first
  line is masked; any other (`%%bash`, `%%writefile`, `%%html` ...) makes the cell not Python.
- at the start of a logical line: `%line_magic`, `!shell`, `x = %magic` / `x = !cmd`,
  `?name`, `name?` / `name??` — with their backslash continuations.

A masked line becomes a placeholder of the same indentation that names its line number: a bare
name statement for its first physical line (a statement, so a block holding only a magic stays a
block; the name itself, not a trailing comment, carries the tag, so it moves with the statement
whatever a rewrite does around it), a comment for backslash-continuation lines. The lines around
it keep their positions, and a rewritten cell gets its IPython lines back verbatim
(`Masked.unmask`) — or is refused if a placeholder went missing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

# Cell magics whose body IPython runs as Python in the user's namespace.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})

# Unique per process: no user text can carry it, so a placeholder is never mistaken for code.
MARK = f"__switcheroo_ipython_{secrets.token_hex(4)}"
_TAG = re.compile(rf"{MARK}_(\d+)$")
_BREAK = re.compile(r"\r\n|\r|\n")
_CELL_MAGIC = re.compile(r"%%(\w+)")
# `x = %magic ...`, `a, b = !cmd` (IPython's assignment forms)
_ASSIGN_ESCAPE = re.compile(r"[ \t]*[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*[%!]")


def split_lines(text: str) -> list[tuple[str, str]]:
    """(content, line break) per line; breaks only at \\r\\n, \\r and \\n, as Python's tokenizer."""
    out, pos = [], 0
    for m in _BREAK.finditer(text):
        out.append((text[pos:m.start()], m.group()))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], ""))
    return out


@dataclass(frozen=True)
class Masked:
    text: str                          # the cell as Python: same lines, same line breaks
    hidden: tuple[tuple[int, str], ...] = ()         # (line, original content) of each masked line
    placeholders: tuple[tuple[int, str], ...] = ()   # (line, placeholder content)
    runs: bool = True                  # False: a cell magic whose body is not Python (%%bash ...)
    magic: str = ""                    # the cell magic's name, if any

    def unmask(self, text: str) -> str | None:
        """`text` (this cell's masked text after a rewrite) with every placeholder turned back
        into its IPython line; None if a placeholder is missing, doubled or altered."""
        if not self.hidden:
            return text
        expected, original = dict(self.placeholders), dict(self.hidden)
        seen: set[int] = set()
        out = []
        for content, brk in split_lines(text):
            m = _TAG.search(content)
            if m:
                n = int(m.group(1))
                if n in seen or expected.get(n) != content:
                    return None
                seen.add(n)
                content = original[n]
            out.append(content + brk)
        return "".join(out) if seen == set(expected) else None


def is_placeholder(line: str) -> bool:
    return _TAG.search(line) is not None


def without_placeholders(text: str) -> str:
    """`text` without its placeholder lines (a rewrite shown in a hover echoes the untouched
    statements around it, placeholders included)."""
    return "".join(c + b for c, b in split_lines(text) if not _TAG.search(c))


def is_continuation_placeholder(line: str) -> bool:
    """A masked backslash-continuation line (a comment, not a statement)."""
    return line.lstrip().startswith(f"# {MARK}_")


@dataclass
class _State:
    depth: int = 0            # open brackets
    quote: str | None = None  # the open string's quote (' " ''' \"\"\")
    continued: bool = False   # the previous line ended in a backslash outside strings

    @property
    def at_statement_start(self) -> bool:
        return not (self.depth or self.quote or self.continued)


def _scan(line: str, state: _State) -> str:
    """Advance `state` over one physical line; return the last code character outside strings
    and comments ('' if none)."""
    i, n, last = 0, len(line), ""
    depth, quote = state.depth, state.quote
    in_comment = False
    while i < n:
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote, last = None, ch
                continue
            i += 1
            continue
        if ch == "#":
            in_comment = True
            break
        if ch in "'\"":
            quote = ch * 3 if line.startswith(ch * 3, i) else ch
            i += len(quote)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if not ch.isspace():
            last = ch
        i += 1
    ends_in_backslash = line.endswith("\\") and not in_comment
    if quote is not None and len(quote) == 1 and not ends_in_backslash:
        quote = None          # an unterminated string: Python reports it; we just move on
    state.depth, state.quote = depth, quote
    state.continued = quote is None and ends_in_backslash
    return last


def _is_escape(content: str) -> bool:
    """Does this line, starting a logical line, hold IPython syntax?"""
    stripped = content.lstrip()
    if stripped.startswith(("%", "!", "?")) or _ASSIGN_ESCAPE.match(content):
        return True
    probe = _State()
    # `obj?` / `obj??`: a `?` ending a one-line statement (never Python outside a string).
    return _scan(content, probe) == "?" and probe.at_statement_start


@lru_cache(maxsize=8192)
def mask(source: str) -> Masked:
    """The cell `source` as Python (see the module docstring); cached, cells rarely change."""
    lines = split_lines(source)
    first = next((i for i, (content, _) in enumerate(lines) if content.strip()), None)
    masked = {}
    magic = ""
    start = 0
    if first is not None and lines[first][0].startswith("%%"):
        m = _CELL_MAGIC.match(lines[first][0])
        magic = m.group(1) if m else ""
        if magic not in PYTHON_CELL_MAGICS:
            return Masked(source, runs=False, magic=magic)
        masked[first] = first
        start = first + 1
    state = _State()
    i = start
    while i < len(lines):
        content = lines[i][0]
        if state.at_statement_start and _is_escape(content):
            head = i
            masked[i] = head
            while lines[i][0].endswith("\\") and i + 1 < len(lines):
                i += 1
                masked[i] = head
            i += 1
            continue
        _scan(content, state)
        i += 1
    if not masked:
        return Masked(source, magic=magic)
    out, hidden, placeholders = [], [], []
    for n, (content, brk) in enumerate(lines):
        if n in masked:
            head = lines[masked[n]][0]
            indent = head[:len(head) - len(head.lstrip())]
            placeholder = f"{indent}{'' if masked[n] == n else '# '}{MARK}_{n}"
            hidden.append((n, content))
            placeholders.append((n, placeholder))
            content = placeholder
        out.append(content + brk)
    return Masked("".join(out), tuple(hidden), tuple(placeholders), magic=magic)
