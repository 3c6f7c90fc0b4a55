"""A torch optimizer's construction `Call` -> the Optax expression, as libcst nodes.

Lossless: every keyword that is one of the user's arguments reuses the user's node (its text,
quoting, inner comments), and keeps the user's spacing around `=`. A call written over several
lines stays over several lines: each output keyword goes on the line of the argument it came
from (arguments written on one line stay on one line), with that argument's trailing comment and the comment lines above it (`betas=(0.9, 0.95),
# GPT-2` -> `b1=0.9, b2=0.95,  # GPT-2`); comments of arguments that Optax does not take
(`model.parameters()`, `foreach=`) stay where they were, as comment lines. A chain puts each
transform on its own line, and a transform whose arguments carry comments is itself spread over
lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..analysis.arguments import unwrap_tensor
from ..knowledge.emit import LINE_LIMIT, Emission, TxCall, Value, rename_optax, tx_text
from .fitting import fitted

_SPACE = cst.SimpleWhitespace(" ")
_NONE = cst.SimpleWhitespace("")
_EQUAL = cst.AssignEqual(whitespace_before=_NONE, whitespace_after=_NONE)   # `kw=value`, as PEP 8 has it


@dataclass
class _Source:
    """One argument of the torch call: the comment lines above it and the comment after it."""
    arg: cst.Arg
    lead: list = field(default_factory=list)          # EmptyLines
    trail: cst.TrailingWhitespace | None = None       # with a comment
    line: int = 0                                     # which of the call's lines it starts on


@dataclass
class _Layout:
    indent: bool
    last_line: cst.SimpleWhitespace                    # the indentation of an argument line
    open_ws: cst.BaseParenthesizableWhitespace         # after "("
    close_ws: cst.BaseParenthesizableWhitespace | None  # before ")", when ")" is on its own line
    trailing_comma: bool
    tail: list = field(default_factory=list)           # comment lines before ")"

    def line_break(self, trail=None, lead=()) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(
            first_line=trail or cst.TrailingWhitespace(), empty_lines=self.aligned(lead), indent=self.indent,
            last_line=self.last_line)

    def aligned(self, lines) -> list:
        """Comment lines indented like this layout's arguments (they may come from another)."""
        return [self.comment_line(line.comment) if line.comment is not None else line for line in lines]

    def comment_line(self, comment: cst.Comment) -> cst.EmptyLine:
        return cst.EmptyLine(indent=self.indent, whitespace=self.last_line, comment=comment)

    def deeper(self, by: str) -> "_Layout":
        last = cst.SimpleWhitespace(self.last_line.value + by)
        return _Layout(self.indent, last, cst.ParenthesizedWhitespace(indent=self.indent, last_line=last),
                       cst.ParenthesizedWhitespace(indent=self.indent, last_line=self.last_line), True)


def build(call: cst.Call, emission: Emission, named: dict[str, cst.Arg], optax_name: str, indent: str,
          default_indent: str = "    ", columns: tuple[int, int] | None = None,
          fit: tuple[int, int] | None = None) -> cst.BaseExpression:
    """The Optax expression replacing `call`. `named` maps torch's argument names to the call's
    Args; `indent` is the statement's indentation (for a long chain broken over lines);
    `columns`: where the torch call starts on its line and where the new expression will
    (arguments aligned under the torch call's `(` follow the new one's); `fit`: (the column the
    expression starts at, the indentation of the line it is on): one made of text is spread
    over lines there when it does not fit (fitting.py); None: it stays on one line."""
    builder = _Builder(named, optax_name)
    layout, sources = _read_layout(call)
    transforms = emission.transforms
    if len(transforms) == 1 and not isinstance(transforms[0], TxCall):
        # Made up of text: comments go above the statement; spread when it grows past the limit
        # (and past the torch call's first line, whose length the file already lives with).
        node = builder.single_line(transforms[0])
        if fit is None or fit[0] + len(_code(node)) <= max(
                LINE_LIMIT, (columns[0] if columns else 0) + len(_code(call).split("\n")[0])):
            return node
        return fitted(node, fit[0], fit[1], default_indent)
    if layout is not None and columns is not None:
        head = rename_optax(transforms[0].func, optax_name) if len(transforms) == 1 else f"{optax_name}.chain"
        layout = _realigned(layout, call, columns, head, indent)
    if layout is None:
        generated = _Layout(True, cst.SimpleWhitespace(default_indent),
                            cst.ParenthesizedWhitespace(indent=True, last_line=cst.SimpleWhitespace(default_indent)),
                            cst.ParenthesizedWhitespace(indent=True, last_line=_NONE), True)
        nodes = [builder.single_line(t) for t in transforms]
        if len(nodes) == 1:
            # One call on one line, as the torch call was; spread when it grows past the limit
            # (and past the torch call, whose length the file already lives with).
            args = builder.args_of(transforms[0])
            if columns is None or len(args) < 2 or columns[1] + len(_code(nodes[0])) <= max(
                    LINE_LIMIT, columns[0] + len(_code(call))):
                return nodes[0]
            func = rename_optax(transforms[0].func, optax_name)
            return builder.spread(func, [(a, None, []) for a, _ in args], generated, [])
        chain = _call(f"{optax_name}.chain", [cst.Arg(n) for n in nodes])
        if len(indent) + len(_code(chain)) <= LINE_LIMIT or any(" if " in tx_text(t) for t in transforms):
            return chain
        return builder.spread(f"{optax_name}.chain", [(cst.Arg(n), None, []) for n in nodes], generated, [])
    return builder.multi_line(transforms, layout, sources, default_indent)


def _code(node) -> str:
    return cst.Module(body=()).code_for_node(node)


class _Builder:
    def __init__(self, named: dict[str, cst.Arg], optax_name: str):
        self.named = named
        self.optax_name = optax_name
        self.source_of = {id(a): name for name, a in named.items()}
        self.line_of: dict[str, int] = {}       # torch argument -> the line of the call it is on

    # -- values -------------------------------------------------------------------------------
    def value(self, v: Value) -> cst.BaseExpression:
        if v.ref is not None and v.ref[0] in self.named:
            node = unwrap_tensor(self.named[v.ref[0]].value)    # the emitter saw the number inside
            if v.ref[1] is None:
                return node
            if isinstance(node, (cst.Tuple, cst.List)) and v.ref[1] < len(node.elements):
                return node.elements[v.ref[1]].value
        return cst.parse_expression(rename_optax(v.text, self.optax_name))

    def keyword(self, name: str, v: Value) -> cst.Arg:
        equal = _EQUAL
        if v.ref is not None and v.ref[1] is None and v.ref[0] in self.named:
            source = self.named[v.ref[0]]
            if source.keyword is not None:
                equal = source.equal        # the user's spacing around `=`
        return cst.Arg(value=self.value(v), keyword=cst.Name(name), equal=equal)

    def args_of(self, tx: TxCall) -> list[tuple[cst.Arg, tuple[str, int | None] | None]]:
        """(Arg, the torch argument (and element) it comes from)."""
        out = [(cst.Arg(self.value(v)), self._ref(v)) for v in tx.args]
        out += [(self.keyword(k, v), self._ref(v) or self._schedule_of(k)) for k, v in tx.kws]
        return out

    def _schedule_of(self, keyword: str):
        """A schedule folded into `learning_rate` is written where torch's `lr` was, with its
        comment (its value is new text, not the user's node)."""
        return ("lr", None) if keyword == "learning_rate" and "lr" in self.named else None

    def _ref(self, v: Value):
        return v.ref if v.ref is not None and v.ref[0] in self.named else None

    def element_trail(self, ref) -> cst.TrailingWhitespace | None:
        """The comment after an element of a tuple argument written over lines
        (`betas=(0.9,  # first` + newline + `0.999)`), which then gets a line of its own."""
        node = self.named[ref[0]].value
        if ref[1] is None or not isinstance(node, (cst.Tuple, cst.List)) or ref[1] >= len(node.elements):
            return None
        comma = node.elements[ref[1]].comma
        if isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace):
            return comma.whitespace_after.first_line
        return None

    def single_line(self, tx) -> cst.BaseExpression:
        if not isinstance(tx, TxCall):
            return cst.parse_expression(rename_optax(tx, self.optax_name))
        return _call(rename_optax(tx.func, self.optax_name), [a for a, _ in self.args_of(tx)])

    # -- several lines ----------------------------------------------------------------------------
    def multi_line(self, transforms, layout: _Layout, sources: list[_Source], default_indent: str):
        commented = {self.source_of[id(s.arg)] for s in sources
                     if id(s.arg) in self.source_of and (s.lead or s.trail is not None)}
        used = set()
        for tx in transforms:
            if isinstance(tx, TxCall):
                used.update(ref[0] for _, ref in self.args_of(tx) if ref is not None)
        # Comments of arguments Optax does not take move on to the next argument it does take.
        leads: dict[str, list] = {}
        carry: list = []
        for s in sources:
            name = self.source_of.get(id(s.arg))
            lines = list(s.lead)
            if name in used:
                leads[name] = carry + lines
                carry = []
            else:
                carry += lines + ([layout.comment_line(s.trail.comment)] if s.trail is not None else [])
        trails = {self.source_of[id(s.arg)]: s.trail for s in sources if id(s.arg) in self.source_of}
        self.line_of = {self.source_of[id(s.arg)]: s.line for s in sources if id(s.arg) in self.source_of}
        if len(transforms) == 1 and isinstance(transforms[0], TxCall):
            tx = transforms[0]
            rows = self.rows(self.args_of(tx), leads, trails)
            return self.spread(rename_optax(tx.func, self.optax_name), rows, layout, carry)
        rows = []
        for tx in transforms:
            if not isinstance(tx, TxCall):
                rows.append((cst.Arg(self.single_line(tx)), None, []))
                continue
            args = self.args_of(tx)
            refs = [ref for _, ref in args if ref is not None]
            if not any(r[0] in commented or self.element_trail(r) is not None for r in refs):
                rows.append((cst.Arg(self.single_line(tx)), None, []))
                continue
            own = self.rows(args, leads, trails)
            commented_rows = [r for r in own if r[1] is not None or r[2]]
            if len(commented_rows) == 1 and not any(r[1] is not None or r[2] for r in own if r is not commented_rows[0]):
                # One commented argument: the transform on one line, the comments beside it.
                rows.append((cst.Arg(self.single_line(tx)), commented_rows[0][1], commented_rows[0][2]))
                continue
            inner = layout.deeper(default_indent)
            rows.append((cst.Arg(self.spread(rename_optax(tx.func, self.optax_name), own, inner, [])), None, []))
        return self.spread(f"{self.optax_name}.chain", rows, layout, carry)

    def spread(self, func: str, rows, layout: _Layout, carry: list) -> cst.Call:
        """`func(` + one row per line + `)`. A row is (Args on one line, the trailing comment
        of the line, the comment lines above it)."""
        args: list[cst.Arg] = []
        rows = [(r[0] if isinstance(r[0], list) else [r[0]], r[1], r[2]) for r in rows]
        open_ws = layout.open_ws
        for i, (line_args, trail, lead) in enumerate(rows):
            if i == 0 and lead:
                open_ws = _with_lines(open_ws, lead, layout)
            last = i == len(rows) - 1
            for j, arg in enumerate(line_args):
                if j < len(line_args) - 1:
                    args.append(arg.with_changes(comma=cst.Comma(whitespace_after=_SPACE)))
                elif not last:
                    after = layout.line_break(trail, rows[i + 1][2])
                    args.append(arg.with_changes(comma=cst.Comma(whitespace_after=after)))
                else:
                    close = layout.close_ws
                    tail = carry + layout.tail
                    if close is None:
                        if tail:           # `)` was on the last argument's line: comments go above it
                            close = cst.ParenthesizedWhitespace(
                                first_line=trail or cst.TrailingWhitespace(), empty_lines=layout.aligned(tail),
                                indent=layout.indent, last_line=layout.last_line)
                            args.append(arg.with_changes(comma=cst.Comma(whitespace_after=close)))
                        else:
                            args.append(arg)
                        continue
                    close = close.with_changes(first_line=trail or cst.TrailingWhitespace(),
                                               empty_lines=layout.aligned(tail))
                    if layout.trailing_comma:
                        args.append(arg.with_changes(comma=cst.Comma(whitespace_after=close)))
                    else:
                        args.append(arg.with_changes(whitespace_after_arg=close))
        if not rows and carry:
            open_ws = _with_lines(open_ws, carry, layout)
        return cst.Call(func=cst.parse_expression(func), args=args, whitespace_before_args=open_ws)


    def rows(self, args, leads: dict, trails: dict):
        """Output keywords grouped by the torch argument they come from, one group per line (one
        line per element where a tuple argument's elements carry comments)."""
        rows: list = []
        where: dict[str, int] = {}
        last_line = None          # the call's line the last row's torch argument was on
        for arg, ref in args:
            if ref is None:
                rows.append(([arg], None, []))
                last_line = None
                continue
            name = ref[0]
            element = self.element_trail(ref)
            if element is not None:
                rows.append(([arg], element, leads.pop(name, [])))
                last_line = None
                continue
            if name in where:
                rows[where[name]][0].append(arg)
                continue
            line = self.line_of.get(name)
            if line is not None and line == last_line and not leads.get(name):
                # Written on the line of the argument before it: it stays beside it.
                where[name] = len(rows) - 1
                rows[-1][0].append(arg)
                continue
            where[name] = len(rows)
            rows.append(([arg], None, leads.pop(name, [])))
            last_line = line
        # The argument's own trailing comment goes on the last line made from it.
        last = {}
        for i, (_, _, _) in enumerate(rows):
            for a in rows[i][0]:
                ref = next((r for x, r in args if x is a), None)
                if ref is not None:
                    last[ref[0]] = i
        for name, i in last.items():
            if trails.get(name) is not None:
                line_args, _, lead = rows[i]
                rows[i] = (line_args, trails[name], lead)
        return rows


def _with_lines(ws, lines: list, layout: _Layout):
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return ws.with_changes(empty_lines=list(ws.empty_lines) + layout.aligned(lines))
    return layout.line_break(None, lines)


def _call(func: str, args: list[cst.Arg]) -> cst.Call:
    fixed = [a.with_changes(comma=cst.Comma(whitespace_after=_SPACE)) for a in args[:-1]] + args[-1:]
    return cst.Call(func=cst.parse_expression(func), args=fixed)


def _read_layout(call: cst.Call) -> tuple[_Layout | None, list[_Source]]:
    """How the torch call is laid out over lines (None: on one line) and its arguments'
    comments."""
    args = list(call.args)
    pws = isinstance
    breaks = [call.whitespace_before_args] + [
        a.comma.whitespace_after if isinstance(a.comma, cst.Comma) else a.whitespace_after_arg for a in args]
    if not any(pws(b, cst.ParenthesizedWhitespace) for b in breaks):
        return None, []
    sources = [_Source(a) for a in args]
    line = 0
    for i, a in enumerate(args):
        before = breaks[i]
        if isinstance(before, cst.ParenthesizedWhitespace) and i > 0:
            sources[i].lead = list(before.empty_lines)
        line += isinstance(before, cst.ParenthesizedWhitespace)
        sources[i].line = line
        after = breaks[i + 1]
        if isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None:
            sources[i].trail = after.first_line
    first_pw = next(b for b in breaks if isinstance(b, cst.ParenthesizedWhitespace))
    indent, last_line = first_pw.indent, first_pw.last_line
    open_ws = call.whitespace_before_args
    if isinstance(open_ws, cst.ParenthesizedWhitespace):
        indent, last_line = open_ws.indent, open_ws.last_line
    elif args:     # `f(a,` + newline: the arguments hang after the parenthesis
        for b in breaks[1:-1]:
            if isinstance(b, cst.ParenthesizedWhitespace):
                indent, last_line = b.indent, b.last_line
                break
    final = breaks[-1] if args else None
    close_ws, tail = None, []
    if isinstance(final, cst.ParenthesizedWhitespace):
        close_ws = final
        tail = list(final.empty_lines)
    if isinstance(open_ws, cst.ParenthesizedWhitespace) and args:
        # The comments above the first argument belong to it.
        sources[0].lead = list(open_ws.empty_lines)
        open_ws = open_ws.with_changes(empty_lines=[])
    trailing_comma = bool(args) and isinstance(args[-1].comma, cst.Comma)
    return _Layout(indent, last_line, open_ws, close_ws, trailing_comma, tail), sources


def _realigned(layout: _Layout, call: cst.Call, columns: tuple[int, int], func: str, indent: str) -> _Layout:
    """Arguments aligned under the torch call's opening bracket (`torch.optim.Adam(lr=lr,` then
    `betas=...` under `lr`) follow the new call's bracket; a hanging indent stays as it is."""
    before = call.whitespace_before_args
    if isinstance(before, cst.ParenthesizedWhitespace) or layout.last_line.value.strip(" "):
        return layout           # arguments start on a line of their own, or tabs: not aligned
    base = len(indent) if layout.indent else 0
    codegen = cst.Module(body=()).code_for_node
    old = columns[0] + len(codegen(call.func)) + len(codegen(call.whitespace_after_func)) + 1 + len(before.value)
    new = columns[1] + len(func) + 1 + len(before.value)
    if base + len(layout.last_line.value) != old or new < base or new == old:
        return layout
    last_line = cst.SimpleWhitespace(" " * (new - base))
    close_ws = layout.close_ws
    if close_ws is not None and close_ws.indent == layout.indent and close_ws.last_line.value == layout.last_line.value:
        close_ws = close_ws.with_changes(last_line=last_line)
    return _Layout(layout.indent, last_line, layout.open_ws, close_ws, layout.trailing_comma, layout.tail)


def patch_optax(call: cst.Call, learning_rate: str | None, prefix: tuple[str, ...], optax_name: str
                ) -> cst.BaseExpression:
    """An optimizer already written in Optax, with a schedule and clipping folded in."""
    if learning_rate is not None:
        call = call.visit(_LearningRate(cst.parse_expression(learning_rate)))
    if prefix:
        new = [cst.Arg(cst.parse_expression(rename_optax(p, optax_name)),
                       comma=cst.Comma(whitespace_after=_SPACE)) for p in prefix]
        func = cst.Module(body=()).code_for_node(call.func)
        if func == f"{optax_name}.chain":
            call = call.with_changes(args=new + list(call.args))
        else:
            call = _call(f"{optax_name}.chain", new + [cst.Arg(call)])
    return call


class _LearningRate(cst.CSTTransformer):
    """Replaces the value of the first `learning_rate=` keyword."""

    def __init__(self, value):
        self.new = value
        self.done = False

    def leave_Arg(self, original, updated):
        if not self.done and updated.keyword is not None and updated.keyword.value == "learning_rate":
            self.done = True
            return updated.with_changes(value=self.new)
        return updated
