"""The scanner that cuts a document into top-level statements, and the parse that reuses
unchanged chunks across edits: it must always equal a fresh parse of the same text."""

import libcst as cst
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from switcheroo_lsp.document.chunks import split
from switcheroo_lsp.document.parsed import ParsedDocument

SAMPLE = '''# header comment

"""Docstring."""
import torch  # trailing
x = (1,
2)
@decorator
@decorator2(
 3)
def f():
    s = """
def g(): pass
"""
    return 1
    # indented trailing comment
# top-level comment
if x:
    pass
else:
    pass
y = 1 + \\
2
class A: pass
'''


def test_chunks_are_top_level_statements_and_concatenate_to_the_text():
    chunks = split(SAMPLE)
    assert "".join(c.text for c in chunks) == SAMPLE
    firsts = [c.text.split("\n")[0] for c in chunks]
    assert firsts == ["# header comment", "import torch  # trailing", "x = (1,", "@decorator", "if x:",
                      "y = 1 + \\", "class A: pass"]
    # A string that looks like a def, a comment and the else clause stay inside their statement.
    assert "def g(): pass" in chunks[3].text and "# top-level comment" in chunks[3].text
    assert "else:" in chunks[4].text


def test_logical_lines_are_where_statements_and_clauses_begin():
    chunk = split(SAMPLE)[3]
    starts = [chunk.text[o:].split("\n")[0] for o in chunk.logical_lines]
    assert starts == ["@decorator", "@decorator2(", "def f():", 's = """', "return 1"]


@pytest.mark.parametrize("text", [SAMPLE, SAMPLE.replace("\n", "\r\n"), "", "\n\n", "# only a comment\n",
                                  "x = 'unterminated\ny = 2\n", 'x = """never closed\n', "def f(:\n  pass\n"])
def test_each_chunk_round_trips_through_libcst(text):
    doc = ParsedDocument.parse(text)
    assert "".join(c.text for c in doc.chunks) == text
    for c in doc.chunks:
        if c.module is not None:
            assert c.module.code == c.text


def test_a_syntax_error_is_placed_in_the_document():
    doc = ParsedDocument.parse("import torch\n\n\ndef f(:\n    pass\n")
    error = doc.syntax_error
    assert (error.message, error.pos.line, error.pos.col) == ("invalid syntax", 3, 6)


def test_a_syntax_error_says_what_python_says_where_python_says_it():
    # libcst would list the tokens it expected on line 4; Python points at the `(` on line 2.
    doc = ParsedDocument.parse("import torch\nopt = torch.optim.SGD([], lr=0.1\nopt.step()\n\nx = 1\n")
    assert (doc.syntax_error.message, doc.syntax_error.pos.line) == ("'(' was never closed", 1)
    doc = ParsedDocument.parse("import torch\nfor x in data:\nopt.step()\n")
    assert doc.syntax_error.message == "expected an indented block after 'for' statement on line 2"
    assert doc.syntax_error.pos.line == 2


def test_what_python_cannot_place_is_said_by_libcst():
    error = ParsedDocument.parse("import torch\nx = 1\x00\n").syntax_error     # compile() raises ValueError
    assert error.message.startswith("tokenizer error") and error.pos.line == 1


LINES = ["import torch\n", "opt = torch.optim.SGD(m.parameters(), lr=0.1)\n", "def train(opt):\n",
         "    for x in data:\n", "        opt.zero_grad()\n", "        opt.step()\n", "class T:\n",
         "    def __init__(self):\n", "        self.o = torch.optim.Adam(\n", "            p, lr=1e-3)\n",
         "@dec\n", "else:\n", "# comment\n", "\n", "s = '''\n", "'''\n", "x = (1,\n", "    2)\n", "y = 1 + \\\n"]
PIECES = ["(", ")", "[", "'", '"', '"""', "#", "\\\n", "\n", "\r\n", "\r", "    ", "\t", "é", "𝔘", ":", "else:",
          "def ", "@", "x", ""]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=25),
       st.lists(st.tuples(st.floats(0, 1), st.integers(0, 12), st.sampled_from(PIECES + LINES)), min_size=1,
                max_size=12))
@example(lines=["import torch\n", "class T:\n"], edits=[(0.0, 0, "class T:\n")])   # a chunk's text moves
def test_an_edited_document_equals_a_fresh_parse(lines, edits):
    doc = ParsedDocument.parse("".join(lines))
    for where, length, piece in edits:
        text = doc.text
        start = int(where * len(text))
        new = text[:start] + piece + text[start + length:]
        doc = doc.replaced(new)
        fresh = ParsedDocument.parse(new)
        assert doc.starts == fresh.starts
        assert [c.chunk for c in doc.chunks] == [c.chunk for c in fresh.chunks]
        assert [c.error for c in doc.chunks] == [c.error for c in fresh.chunks]
        assert len({id(c) for c in doc.chunks}) == len(doc.chunks)     # a chunk is never shared
        for c, f in zip(doc.chunks, fresh.chunks):
            if c.module is not None:
                assert c.module.deep_equals(f.module)


def test_an_edit_reparses_only_the_chunks_it_touches():
    text = "".join(f"def f{i}(opt):\n    opt.step()\n\n" for i in range(50))
    doc = ParsedDocument.parse(text)
    middle = text.index("def f25")
    new = text[:middle] + "x = 1\n" + text[middle:]
    edited = doc.replaced(new)
    old = set(map(id, doc.chunks))
    reparsed = [c for c in edited.chunks if id(c) not in old]
    assert [c.text for c in reparsed] == ["x = 1\n"] or len(reparsed) <= 2
    assert isinstance(edited.chunks[-1].module, cst.Module) and edited.chunks[-1] is doc.chunks[-1]
