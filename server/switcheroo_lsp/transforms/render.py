"""Apply a plan to the document's chunks with libcst; the new code of each changed chunk.

The transform visits only the path from a chunk's root to the statements that change (the
facts walk recorded it), so a fix costs what it touches, not the size of the chunk. Statement
lists are rebuilt where they change:
- a replaced statement's line keeps its comment lines above and its trailing comment (on the
  first line that replaces it); TODO comments go above it;
- statements joined by `;` stay on their line, and a one-line body (`if c: opt.step()`) stays
  one line (its comments go above the compound statement);
- a removed statement's comment lines move to the next statement (or the block's end); its
  trailing comment too, except a removed `zero_grad()`'s; a block left empty gets `pass`; the
  blank lines around it do not add up (one run where two met; none at a block's start or end);
- any comment inside a rewritten statement that the new code does not carry is put above it,
  so that no fix ever loses a comment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import libcst as cst

from ..document.parsed import header_only
from .changes import Change, Plan

_SEMICOLON = cst.Semicolon(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(" "))
_SUITE_OWNERS = (cst.If, cst.For, cst.While, cst.With, cst.FunctionDef, cst.ClassDef, cst.Else, cst.ExceptHandler,
                 cst.ExceptStarHandler, cst.Finally, cst.Try, cst.TryStar, cst.MatchCase)


def render(doc, plan: Plan) -> dict[int, str]:
    """chunk index -> the chunk's new code, for the chunks the plan changes."""
    by_chunk: dict[int, list[Change]] = {}
    index = {id(c): i for i, c in enumerate(doc.chunks)}
    for change in plan.changes.values():
        by_chunk.setdefault(index[id(change.ctx.chunk)], []).append(change)
    out = {}
    newline = doc.source.newline
    for i, changes in sorted(by_chunk.items()):
        module = doc.chunks[i].module
        # New lines are written with the document's line break (a one-line chunk cannot tell).
        module = module.with_changes(default_newline=newline)
        new = module.visit(_Rewriter(changes))
        # A chunk whose only statement is gone is nothing at all (libcst would write "\n").
        out[i] = new.code if new.body or new.header or new.footer else ""
    return out


def comment_line(text: str) -> cst.EmptyLine:
    return cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""), comment=cst.Comment(text))


def comments_in(node: cst.CSTNode) -> list[str]:
    found: list[str] = []

    class _Comments(cst.CSTVisitor):
        def visit_Comment(self, n):
            found.append(n.value)

    node.visit(_Comments())
    return found


def small_statement(text):
    """A small statement from its text (or as it is, when it is already a node)."""
    if not isinstance(text, str):
        return text
    return _parsed_statement(text)


@lru_cache(maxsize=4096)
def _parsed_statement(text: str):
    """Nodes are immutable: one parse of `params = optax.apply_updates(params, updates)` serves
    every step of the file."""
    line = cst.parse_statement(text + "\n")
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        raise ValueError(f"not one simple statement: {text!r}")
    return line.body[0]


@dataclass
class _Removed:
    """A line whose statements are all gone, and the comments it leaves behind."""
    leading: list
    trailing: cst.TrailingWhitespace
    hoisted: list
    zero_grad: bool

    def lines(self) -> list:
        keep = list(self.leading) + list(self.hoisted)
        if self.trailing.comment is not None and not self.zero_grad:
            keep.append(comment_line(self.trailing.comment.value))
        return keep


class _Rewriter(cst.CSTTransformer):
    def __init__(self, changes: list[Change]):
        super().__init__()
        self.by_stmt = {id(c.ctx.stmt): c for c in changes}
        self.swaps = {id(c.swap[0]): c.swap[1] for c in changes if c.swap is not None}
        self.path: set[int] = set()
        for c in changes:
            self.path.update(id(n) for n in c.ctx.path)
        self.inside = 0
        self.emptied: set[int] = set()      # blocks every statement of which went (`pass` is left)

    # -- where to go ----------------------------------------------------------------------------
    def on_visit(self, node) -> bool:
        if self.inside:
            return True
        if id(node) in self.by_stmt:
            self.inside += 1
            return True
        return id(node) in self.path or isinstance(node, cst.Module)   # the root is a copy (with_changes)

    def on_leave(self, original, updated):
        if id(original) in self.by_stmt:
            self.inside -= 1
        swap = self.swaps.get(id(original))
        if swap is not None:
            return swap
        if isinstance(original, cst.Module) or (isinstance(original, cst.IndentedBlock) and id(original) in self.path):
            return self._block(original, updated)
        if isinstance(original, _SUITE_OWNERS) and isinstance(original.body, cst.SimpleStatementSuite) \
                and any(id(s) in self.by_stmt for s in original.body.body):
            return self._suite(original, updated)
        return updated

    # -- statement lists ------------------------------------------------------------------------
    def _block(self, original, updated):
        items: list = []          # statements, or _Removed markers
        for orig, upd in zip(original.body, updated.body):
            if isinstance(orig, cst.SimpleStatementLine) and any(id(s) in self.by_stmt for s in orig.body):
                items.extend(self._line(orig, upd))
                continue
            change = self.by_stmt.get(id(orig))
            if change is not None:          # a compound statement: a node of its header swapped
                items.extend(self._compound(orig, upd, change))
                continue
            items.append(upd)
        body, carry = [], []
        real = [x for x in items if not isinstance(x, _Removed)]
        if not real and isinstance(original, cst.IndentedBlock):
            self.emptied.add(id(original))
            removed = [x for x in items if isinstance(x, _Removed)]
            lines = [line for r in removed[:-1] for line in r.lines()]
            last = removed[-1]
            # Nothing left in the block: `pass`, with the last statement's trailing comment.
            return updated.with_changes(body=[cst.SimpleStatementLine(
                body=[cst.Pass()], leading_lines=lines + list(last.leading) + list(last.hoisted),
                trailing_whitespace=last.trailing)])
        removed = False
        for x in items:
            if isinstance(x, _Removed):
                carry.extend(x.lines())
                removed = True
                continue
            if removed:
                lines = _joined(carry, list(x.leading_lines))
                if not body and isinstance(original, cst.IndentedBlock):
                    lines = _strip_blanks(lines)        # now the block's first statement
                x = x.with_changes(leading_lines=lines)
                carry, removed = [], False
            body.append(x)
        changes = {"body": body}
        if carry:
            changes["footer"] = _strip_blanks(carry[::-1])[::-1] + list(updated.footer)
        return updated.with_changes(**changes)

    def _line(self, orig: cst.SimpleStatementLine, upd: cst.SimpleStatementLine) -> list:
        """The lines that replace one line of statements."""
        smalls, above, before, after = [], [], [], []
        removed_comments: list = []
        zero_grad = False
        moved = True              # every statement of the line moved elsewhere, with its comments
        for o, u in zip(orig.body, upd.body):
            change = self.by_stmt.get(id(o))
            if change is None:
                smalls.append(u)
                continue
            new, comments = self._statements(change, u)
            above.extend(comments)
            before.extend(small_statement(t) for t in change.before if not t.startswith("#"))
            after.extend(change.after)
            moved = moved and change.moved and not new
            lost = _lost_comments(o, new) if change.commented and not change.moved else []
            if new:
                above.extend(comment_line(c) for c in lost)
            else:
                removed_comments.extend(comment_line(c) for c in lost)
                zero_grad = zero_grad or change.zero_grad
            smalls.extend(new)
        after_lines = _lines_of(after)
        if not smalls:
            out = []
            if before:
                out.extend(cst.SimpleStatementLine(body=[s]) for s in before)
            if moved:       # the comments went with the statement
                removed = _Removed(above, cst.TrailingWhitespace(), [], False)
            else:
                removed = _Removed(list(orig.leading_lines) + above, orig.trailing_whitespace, removed_comments,
                                   zero_grad)
            if out or after_lines:
                lines = out + after_lines
                lines[0] = lines[0].with_changes(leading_lines=removed.lines() + list(lines[0].leading_lines))
                return lines
            return [removed]
        leading = list(orig.leading_lines)
        if len(orig.body) == 1:
            lines = [cst.SimpleStatementLine(body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
                     for s in smalls]
            lines[0] = lines[0].with_changes(trailing_whitespace=orig.trailing_whitespace)
        else:
            # Shares its line with other code: it stays on that line.
            joined = []
            for i, s in enumerate(smalls):
                last = i == len(smalls) - 1
                if last:
                    joined.append(s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT))
                elif isinstance(s.semicolon, cst.Semicolon):
                    joined.append(s)            # its own `;` (and a backslash after it, if any)
                else:
                    joined.append(s.with_changes(semicolon=_SEMICOLON))
            lines = [upd.with_changes(body=joined, leading_lines=())]
        before_lines = [cst.SimpleStatementLine(body=[s]) for s in before]
        lines = before_lines + lines
        lines[0] = lines[0].with_changes(leading_lines=leading + above + list(lines[0].leading_lines)
                                         if not before_lines else leading)
        if before_lines and above:
            i = len(before_lines)
            lines[i] = lines[i].with_changes(leading_lines=above)
        return lines + after_lines

    def _statements(self, change: Change, updated) -> tuple[list, list]:
        """(the small statements that replace one, comment lines to put above them)."""
        comments = [comment_line(t) for t in change.before if t.startswith("#")]
        if change.texts is None:
            return [updated], comments
        new = []
        for t in change.texts:
            if isinstance(t, str) and t.startswith("#"):
                comments.append(comment_line(t))
            else:
                new.append(small_statement(t))
        return new, comments

    def _compound(self, orig, upd, change: Change) -> list:
        """A compound statement: a node of its header swapped, lines before or after it; or the
        statement removed (moved into new code, or an `if` the fixes emptied)."""
        emptied = (change.drop_if_empty and isinstance(orig, cst.If) and orig.orelse is None
                   and id(orig.body) in self.emptied)
        if change.texts == [] or emptied:
            after = _lines_of(change.after)
            if change.moved:
                return [_Removed([], cst.TrailingWhitespace(), [], False)] + after
            header = [comment_line(c) for c in _lost_comments(header_only(orig), [])]
            if isinstance(orig.body, cst.IndentedBlock) and orig.body.header.comment is not None:
                header.append(comment_line(orig.body.header.comment.value))
            kept = list(orig.leading_lines) + header
            if emptied:         # the `pass` left in its body carries the body's comments
                body = upd.body.body[0]
                kept += list(body.leading_lines)
                return [_Removed(kept, body.trailing_whitespace, [], False)] + after
            body = orig.body
            if isinstance(body, cst.IndentedBlock):     # its header's comment is kept above already
                body = body.with_changes(header=cst.TrailingWhitespace())
            inner = [comment_line(c) for c in comments_in(body)]
            return [_Removed(kept + inner, cst.TrailingWhitespace(), [], False)] + after
        lost = _lost_comments(header_only(orig), [header_only(upd)]) if change.commented else []
        comments = [comment_line(t) for t in change.before if t.startswith("#")] + [comment_line(c) for c in lost]
        before = _lines_of([t for t in change.before if not t.startswith("#")])
        if before:      # `import optax` before a file's first statement, a `def`: comments above stay above
            before[0] = before[0].with_changes(leading_lines=list(upd.leading_lines))
            blank = [cst.EmptyLine()] * 2 if isinstance(upd, (cst.FunctionDef, cst.ClassDef)) else []
            return before + [upd.with_changes(leading_lines=blank + comments)] + _lines_of(change.after)
        return [upd.with_changes(leading_lines=list(upd.leading_lines) + comments)] + _lines_of(change.after)

    def _suite(self, original, updated):
        """A one-line body (`if c: opt.step()`): it stays on its line; comments go above the
        compound statement (or clause) that owns it."""
        smalls, above = [], []
        for o, u in zip(original.body.body, updated.body.body):
            change = self.by_stmt.get(id(o))
            if change is None:
                smalls.append(u)
                continue
            new, comments = self._statements(change, u)
            above.extend(comments)
            if change.commented:
                above.extend(comment_line(c) for c in _lost_comments(o, new))
            smalls.extend(new)
            smalls.extend(small_statement(t) for t in change.after if not t.startswith("#"))
        if not smalls:
            smalls = [cst.Pass()]
        joined = [s.with_changes(semicolon=_SEMICOLON) for s in smalls[:-1]] + [
            smalls[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]
        new = updated.with_changes(body=updated.body.with_changes(body=joined))
        if above and hasattr(new, "leading_lines"):
            new = new.with_changes(leading_lines=list(new.leading_lines) + above)
        return new


def _blank(line) -> bool:
    return isinstance(line, cst.EmptyLine) and line.comment is None


def _joined(above: list, own: list) -> list:
    """The lines a removed statement leaves, above the next statement's own: where blank lines
    meet blank lines, the longer run alone (a `zero_grad()` between two blank lines leaves one)."""
    tail = len(above) - len(_strip_blanks(above[::-1]))
    head = len(own) - len(_strip_blanks(own))
    drop = min(tail, head)
    return above[:len(above) - drop] + own


def _strip_blanks(lines: list) -> list:
    """Without the blank lines it starts with."""
    i = 0
    while i < len(lines) and _blank(lines[i]):
        i += 1
    return lines[i:]


def _lines_of(texts: list) -> list[cst.SimpleStatementLine]:
    """Statement lines from texts; "# ..." texts are comment lines above the next statement."""
    lines, pending = [], []
    for t in texts:
        if isinstance(t, str) and t.startswith("#"):
            pending.append(comment_line(t))
            continue
        if isinstance(t, cst.BaseStatement):       # a whole statement (moved, or a new def)
            lines.append(t.with_changes(leading_lines=pending + list(t.leading_lines)) if pending else t)
        else:
            lines.append(cst.SimpleStatementLine(body=[small_statement(t)], leading_lines=pending))
        pending = []
    if pending and lines:
        lines[-1] = lines[-1].with_changes(leading_lines=list(lines[-1].leading_lines) + pending)
    return lines


def _lost_comments(old, new: list) -> list[str]:
    """Comments inside `old` that none of `new` carries (the rewrite puts them above)."""
    before = comments_in(old)
    if not before:
        return []
    have = Counter()
    for n in new:
        have.update(comments_in(n))
    lost = []
    for c in before:
        if have[c]:
            have[c] -= 1
        else:
            lost.append(c)
    return lost
