"""Where top-level statements begin, found without parsing.

A document is cut into chunks, each one top-level statement (a `def` with its decorators and
body, an `if` with its `else`, an import...) plus the comment and blank lines that follow it.
Each chunk parses on its own with libcst, so an edit re-parses only the chunks it touches.

The cut is made by a small scanner that knows only what decides where a statement may begin:
strings (a quote inside one is not code), comments, brackets (a newline inside them does not end
a statement) and backslash continuations. A logical line begins at the first character of a
line that is at bracket depth 0, outside strings and not continued; a chunk begins at a logical
line in column 0 that is not an `else`/`elif`/`except`/`finally` clause, nor the `def`/`class`
of a decorator group. The scanner also records every logical line's start: the analysis walks
statements in the same order and reads their lines from this list, instead of asking libcst to
generate positions for the whole tree (several times the cost of the parse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"""'''|\"\"\"|'|"|\#|[(\[{]|[)\]}]|\\(?:\r\n|\r|\n)|\r\n|\r|\n""")
# The rest of a string after its opening quote(s): escapes skip a character (a line break too).
_STRING_END = {
    "'''": re.compile(r"(?:[^'\\]|\\(?:\r\n|[\s\S]|\Z)|'(?!''))*(?:'''|\Z)"),
    '"""': re.compile(r'(?:[^"\\]|\\(?:\r\n|[\s\S]|\Z)|"(?!""))*(?:"""|\Z)'),
    "'": re.compile(r"(?:[^'\\\r\n]|\\(?:\r\n|[\s\S]|\Z))*(?:'|(?=[\r\n])|\Z)"),
    '"': re.compile(r'(?:[^"\\\r\n]|\\(?:\r\n|[\s\S]|\Z))*(?:"|(?=[\r\n])|\Z)'),
}
_COMMENT_END = re.compile(r"[^\r\n]*")
_BLANK = re.compile(r"[ \t\f]*")
_CLAUSE = re.compile(r"(?:else|elif|except|finally)\b")
_DEFINITION = re.compile(r"(?:def|class|async[ \t\f]+def)\b")


@dataclass(frozen=True)
class Chunk:
    """One top-level statement's text and where its logical lines begin (offsets into `text`)."""
    text: str
    logical_lines: tuple[int, ...]


def split(text: str) -> list[Chunk]:
    """The whole document as chunks; their texts concatenate to `text`."""
    return [chunk for _, chunk in scan(text, 0)]


def scan(text: str, start: int):
    """Chunks of `text` from `start`, which must be where a chunk begins (0, or a boundary an
    earlier scan reported). Yields (chunk start offset, Chunk) lazily, so that a caller who
    finds it is back in step with an earlier scan can stop early."""
    for begin, end, logical in _boundaries(text, start):
        yield begin, Chunk(text[begin:end], tuple(o - begin for o in logical))


def _boundaries(text: str, start: int):
    n = len(text)
    chunk_start = start
    logical: list[int] = []
    awaiting_definition = False      # inside a decorator group, before its def/class
    depth = 0
    pos = start
    line_start = start               # where the current physical line begins, for column checks
    at_line_start = True             # the next non-blank character may begin a logical line
    while True:
        if at_line_start:
            at_line_start = False
            first = _BLANK.match(text, pos).end()
            if first < n and text[first] not in "#\r\n":
                if first == line_start and logical and not _CLAUSE.match(text, first) \
                        and not (awaiting_definition and (text[first] == "@" or _DEFINITION.match(text, first))):
                    yield chunk_start, first, logical
                    chunk_start, logical = first, []
                    awaiting_definition = False
                if first == line_start:
                    if text[first] == "@":
                        awaiting_definition = True
                    elif _DEFINITION.match(text, first):
                        awaiting_definition = False
                logical.append(first)
            pos = first
        m = _TOKEN.search(text, pos)
        if m is None:
            break
        token = m.group()
        pos = m.end()
        c = token[0]
        if c in "'\"":
            pos = _STRING_END[token].match(text, pos).end()
        elif c == "#":
            pos = _COMMENT_END.match(text, pos).end()
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif c == "\\":
            pass                       # a continued line: the next one does not begin anything
        elif depth == 0:               # a line break that ends a logical line
            line_start = pos
            at_line_start = True
    yield chunk_start, n, logical


def comments(text: str) -> list[tuple[int, str]]:
    """(offset, text) of every comment in `text`, which starts where a statement may (strings
    are skipped, so a `#` inside one is not a comment)."""
    out = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.search(text, pos)
        if m is None:
            break
        token = m.group()
        pos = m.end()
        if token[0] in "'\"":
            pos = _STRING_END[token].match(text, pos).end()
        elif token == "#":
            end = _COMMENT_END.match(text, pos).end()
            out.append((m.start(), text[m.start():end]))
            pos = end
    return out
