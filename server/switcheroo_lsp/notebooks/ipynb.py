"""Reading .ipynb files (nbformat 4), and writing back only the cell sources that changed.

The file is parsed with the standard `json` module. Writing does not re-serialise the notebook:
the text of each changed cell's `"source"` value is replaced in place, so that outputs,
execution counts, ids, metadata, the nbformat version, the key order, the indentation and every
other byte of the file stay as they were. A list-of-lines source stays a list of lines laid out
like the original (unchanged lines keep their exact JSON text); a string source stays a string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_NON_ASCII_ESCAPE = re.compile(r"\\u(?:00[89a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3})")
_BOM = "\ufeff"


class NotebookError(ValueError):
    """The file is not a notebook we can read; the message says why."""


@dataclass(frozen=True)
class NotebookCell:
    index: int               # 0-based position among all cells
    kind: str                # "code" | "markdown" | "raw"
    source: str
    language: str | None     # a per-cell language (VS Code's metadata.vscode.languageId), if set

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def is_python(self) -> bool:
        return self.kind == "code" and (self.language or "python").lower() == "python"


@dataclass
class Notebook:
    text: str                      # the file as read (without a byte order mark)
    cells: list[NotebookCell]
    language: str                  # the kernel's language, "python" when the file does not say
    bom: bool = False
    _sources: list = field(default_factory=list, repr=False)    # per cell: (start, end, value)

    @property
    def code_cells(self) -> list[NotebookCell]:
        return [c for c in self.cells if c.is_python]


def parse(text: str) -> Notebook:
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotebookError(f"not a notebook: invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise NotebookError("not a notebook: the JSON nests too deeply") from None
    if not isinstance(data, dict):
        raise NotebookError("not a notebook: the JSON is not an object")
    version = data.get("nbformat")
    if version != 4:
        if "nbformat" not in data:
            raise NotebookError("not a notebook: no \"nbformat\" field")
        raise NotebookError(f"nbformat {version!r} is not supported, only 4 "
                            "(jupyter nbconvert --to notebook --nbformat 4 converts it)")
    raw_cells = data.get("cells")
    if not isinstance(raw_cells, list):
        raise NotebookError("not a notebook: no \"cells\" list")
    cells = []
    for i, cell in enumerate(raw_cells):
        if not isinstance(cell, dict):
            raise NotebookError(f"cell {i + 1}: not an object")
        kind, source = cell.get("cell_type"), cell.get("source", "")
        if not isinstance(kind, str):
            raise NotebookError(f"cell {i + 1}: no \"cell_type\"")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        elif not isinstance(source, str):
            raise NotebookError(f"cell {i + 1}: \"source\" is neither a string nor a list of strings")
        meta = cell.get("metadata")
        vscode = meta.get("vscode") if isinstance(meta, dict) else None
        language = vscode.get("languageId") if isinstance(vscode, dict) else None
        cells.append(NotebookCell(i, kind, source, language if isinstance(language, str) else None))
    nb = Notebook(text, cells, _kernel_language(data.get("metadata")), bom)
    nb._sources = _source_spans(text, len(cells))
    return nb


def _kernel_language(meta) -> str:
    if isinstance(meta, dict):
        for key, field_name in (("kernelspec", "language"), ("language_info", "name")):
            section = meta.get(key)
            if isinstance(section, dict) and isinstance(section.get(field_name), str) and section[field_name]:
                return section[field_name].lower()
    return "python"


def with_sources(nb: Notebook, sources: dict[int, str]) -> str:
    """The file's text with the sources of the cells in `sources` (by index) replaced."""
    text = nb.text
    ascii_only = _escapes_non_ascii(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    for index in sorted(sources, reverse=True):
        span = nb._sources[index]
        if span is None:
            raise NotebookError(f"cell {index + 1}: has no \"source\" to rewrite")
        start, end, value = span
        new = _render(text, start, end, value, sources[index], ascii_only, newline)
        text = text[:start] + new + text[end:]
    return (_BOM if nb.bom else "") + text


# -- where the sources are ------------------------------------------------------------------------

def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()


def _members(text: str, i: int) -> dict[str, tuple[int, int]]:
    """The value spans of the object at text[i] ('{'), by key (the last of duplicate keys, as
    json.loads keeps it)."""
    spans = {}
    i = _skip(text, i + 1)
    if text[i] == "}":
        return spans
    while True:
        key, i = json.decoder.scanstring(text, i + 1)
        i = _skip(text, _skip(text, i) + 1)        # past ':'
        _, end = _DECODER.raw_decode(text, i)
        spans[key] = (i, end)
        i = _skip(text, end)
        if text[i] == "}":
            return spans
        i = _skip(text, i + 1)                     # past ','


def _elements(text: str, i: int) -> list[tuple[int, int]]:
    """The element spans of the array at text[i] ('[')."""
    spans = []
    i = _skip(text, i + 1)
    if text[i] == "]":
        return spans
    while True:
        _, end = _DECODER.raw_decode(text, i)
        spans.append((i, end))
        i = _skip(text, end)
        if text[i] == "]":
            return spans
        i = _skip(text, i + 1)


def _source_spans(text: str, count: int) -> list:
    """Per cell: (start, end, decoded value) of its "source" value in `text`, or None."""
    root = _members(text, _skip(text, 0))
    start, _ = root["cells"]
    out = []
    for c_start, _ in _elements(text, start):
        members = _members(text, c_start)
        if "source" in members:
            s, e = members["source"]
            out.append((s, e, json.loads(text[s:e])))
        else:
            out.append(None)
    assert len(out) == count
    return out


# -- writing a source value ------------------------------------------------------------------------

def _escapes_non_ascii(text: str) -> bool:
    """Was the file written with non-ASCII characters escaped (json's ensure_ascii)?"""
    return text.isascii() and _NON_ASCII_ESCAPE.search(text) is not None


def _split_source(source: str) -> list[str]:
    """nbformat's list-of-lines form: each line with its "\\n", the last without one."""
    lines, pos = [], 0
    while pos < len(source):
        nl = source.find("\n", pos)
        end = len(source) if nl < 0 else nl + 1
        lines.append(source[pos:end])
        pos = end
    return lines


def _indent_before(text: str, i: int) -> str | None:
    """The whitespace between the start of the line holding text[i] and text[i], or None if
    something else precedes it on that line."""
    line_start = max(text.rfind("\n", 0, i), text.rfind("\r", 0, i)) + 1
    prefix = text[line_start:i]
    return prefix if not prefix.strip() else None


def _indent_unit(text: str) -> str:
    m = re.search(r"[\r\n]([ \t]+)\S", text)
    return m.group(1) if m else ""


def _render(text: str, start: int, end: int, value, source: str, ascii_only: bool, newline: str) -> str:
    dump = (lambda s: json.dumps(s, ensure_ascii=ascii_only))
    if isinstance(value, str):
        return dump(source)
    lines = _split_source(source)
    if not lines:
        return "[]"
    elements = _elements(text, start)
    raw = {}
    for s, e in elements:
        raw.setdefault(json.loads(text[s:e]), text[s:e])    # unchanged lines keep their JSON text
    items = [raw.get(line) or dump(line) for line in lines]
    old = text[start:end]
    if elements and "\n" not in old and "\r" not in old:
        return "[" + ", ".join(items) + "]"                  # a one-line list stays on one line
    if elements:
        item_indent = _indent_before(text, elements[0][0])
        close_indent = _indent_before(text, end - 1)
    else:
        # `[]` before: lay the list out as the file lays out its other values.
        line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
        key_indent = re.match(r"[ \t]*", text[line_start:]).group()
        unit = _indent_unit(text)
        if not unit:
            return "[" + ", ".join(items) + "]"
        item_indent, close_indent = key_indent + unit, key_indent
    if item_indent is None or close_indent is None:
        return "[" + ", ".join(items) + "]"
    return "[" + newline + ("," + newline).join(item_indent + i for i in items) + newline + close_indent + "]"

