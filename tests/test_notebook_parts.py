"""The notebook modules one by one: IPython masking, the .ipynb writer, the cells <-> program map."""

import ast
import json

import pytest

from switcheroo_lsp.engine import Pos, Span, TextEdit, apply
from switcheroo_lsp.notebooks import ipynb
from switcheroo_lsp.notebooks.ipython import MARK, mask
from switcheroo_lsp.notebooks.program import BOUNDARY, Cell, FixError, analyze_cells, build

# -- IPython masking ----------------------------------------------------------------------------

MASKED = [
    # (cell, lines masked (0-based))
    ("%matplotlib inline\nimport torch\n", {0}),
    ("!pip install a \\\n    b\nx = 1", {0, 1}),
    ("for i in r:\n    %time f(i)\n", {1}),
    ("torch.optim.Adam?\n", {0}),
    ("?torch.optim\n", {0}),
    ("obj??  # look\n", {0}),
    ("files = !ls\nout, err = %sx ls\n", {0, 1}),
    ('y = "a%b"  # %x\n', set()),
    ('s = """\n%not_a_magic\n!nor_this\n"""\n', set()),
    ("x = (1 +\n     2)\n%who\n", {2}),
    ("d = {\n  'a': 1,\n}\n?d\n", {3}),
    ("x %= 3\nx == 2\n", set()),
    ("%%time\nx = 1\n!ls\n", {0, 2}),
    ("\n\n%%capture out\nimport torch\n", {2}),
    ("s = 'it''s'  # %\n%env A=1\n", {1}),
]


@pytest.mark.parametrize("source,masked_lines", MASKED)
def test_masking(source, masked_lines):
    m = mask(source)
    assert m.runs
    assert {line for line, _ in m.hidden} == masked_lines
    ast.parse(m.text)
    # Same lines, same breaks, the unmasked lines untouched.
    assert m.text.count("\n") == source.count("\n")
    for n, (a, b) in enumerate(zip(m.text.split("\n"), source.split("\n"))):
        assert (a == b) == (n not in masked_lines)
    assert m.unmask(m.text) == source


@pytest.mark.parametrize("source", ["%%bash\necho hi\n", "\n%%writefile x.py\nimport torch\n", "%%html\n<b>x</b>"])
def test_cell_magics_that_do_not_run_python(source):
    assert not mask(source).runs


def test_unmask_refuses_a_missing_doubled_or_altered_placeholder():
    m = mask("import torch\n%time x = 1\ny = 2\n")
    placeholder = m.text.splitlines()[1]
    assert m.unmask(m.text.replace(placeholder + "\n", "")) is None
    assert m.unmask(m.text + placeholder + "\n") is None
    assert m.unmask(m.text.replace(placeholder, "    " + placeholder)) is None
    assert m.unmask(m.text.replace("y = 2", "y = 3")) == "import torch\n%time x = 1\ny = 3\n"


# -- writing .ipynb sources ----------------------------------------------------------------------------

def notebook(source, indent=1, **dump) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": source}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
                      indent=indent, **dump)


@pytest.mark.parametrize("indent", [1, 2, 4, "\t"])
def test_a_list_source_keeps_its_layout(indent):
    text = notebook(["a = 1\n", "b = 2"], indent=indent)
    out = ipynb.with_sources(ipynb.parse(text), {0: "a = 1\nc = 3\nb = 2"})
    assert out == notebook(["a = 1\n", "c = 3\n", "b = 2"], indent=indent)


def test_an_empty_list_source_is_laid_out_like_the_file():
    text = notebook([], indent=2)
    out = ipynb.with_sources(ipynb.parse(text), {0: "import optax\n"})
    assert out == notebook(["import optax\n"], indent=2)


def test_one_line_and_minified_files_stay_so():
    text = notebook(["a = 1\n", "b"], indent=None)
    out = ipynb.with_sources(ipynb.parse(text), {0: "a = 2\nb"})
    assert out == notebook(["a = 2\n", "b"], indent=None)


def test_unchanged_lines_keep_their_exact_json_text():
    # Escaped "/" and a \u escape that json.dumps would write differently.
    text = notebook(["x = 1\n", "y = 2"]).replace('"x = 1\\n"', '"x = \\u0031\\n"').replace('"y = 2"', '"y\\/z = 2"')
    out = ipynb.with_sources(ipynb.parse(text), {0: "x = 1\nw = 0\ny/z = 2"})
    assert '"x = \\u0031\\n"' in out and '"y\\/z = 2"' in out and '"w = 0\\n"' in out


def test_bom_crlf_and_escaped_non_ascii_files_stay_so():
    text = "\ufeff" + notebook(["s = 'é'\n"], ensure_ascii=True).replace("\n", "\r\n")
    nb = ipynb.parse(text)
    assert nb.cells[0].source == "s = 'é'\n"
    out = ipynb.with_sources(nb, {0: "s = 'é'\nt = '€'\n"})
    assert out == "\ufeff" + notebook(["s = 'é'\n", "t = '€'\n"], ensure_ascii=True).replace("\n", "\r\n")


def test_duplicate_keys_follow_json_loads():
    text = '{"cells": [{"cell_type": "code", "source": ["old"], "source": ["new"]}], "nbformat": 4}'
    nb = ipynb.parse(text)
    assert nb.cells[0].source == "new"
    assert ipynb.with_sources(nb, {0: "newer"}) == \
        '{"cells": [{"cell_type": "code", "source": ["old"], "source": ["newer"]}], "nbformat": 4}'


@pytest.mark.parametrize("text,message", [
    ("{", "invalid JSON"),
    ("[]", "not an object"),
    ('{"cells": []}', 'no "nbformat"'),
    ('{"nbformat": 5, "cells": []}', "nbformat 5 is not supported"),
    ('{"nbformat": 4}', 'no "cells" list'),
    ('{"nbformat": 4, "cells": [{"source": "x"}]}', 'cell 1: no "cell_type"'),
    ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": [1]}]}', "cell 1: \"source\" is neither"),
])
def test_what_is_not_a_notebook_says_why(text, message):
    with pytest.raises(ipynb.NotebookError, match=message):
        ipynb.parse(text)


# -- the program ---------------------------------------------------------------------------------------

def cells(*sources):
    return [Cell(str(i), i + 1, s) for i, s in enumerate(sources)]


def test_positions_map_through_boundaries_and_skipped_cells():
    program = build(cells("import torch", "%%bash\nls", "a = 1\n\nb = 2\n", "c = 3"))
    assert [c.number for c in program.skipped] == [2]
    assert program.text == f"import torch\n{BOUNDARY}\na = 1\n\nb = 2\n{BOUNDARY}\nc = 3\n"
    assert [s.start for s in program.slots] == [0, 2, 6]
    assert program.locate(4).cell.number == 3 and program.locate(1) is None
    assert program.slots[1].span_in_cell(Span(Pos(4, 0), Pos(4, 5))) == Span(Pos(2, 0), Pos(2, 5))
    assert program.slots[2].pos_in_program(Pos(0, 4)) == Pos(6, 4)


def test_a_cell_that_does_not_parse_is_left_out_or_stood_in_for():
    program = build(cells("import torch", "x = (", "y = 1"))
    assert [b.cell.number for b in program.broken] == [2] and len(program.slots) == 2
    program = build(cells("import torch", "x = (", "y = 1"), stand_ins={"1": "x = 0\n"})
    assert [s.stand_in for s in program.slots] == [False, True, False]
    with pytest.raises(FixError, match="cell 2 does not parse"):
        program.new_sources(program.text.replace("x = 0", "x = 1"))


def test_an_edit_that_crosses_a_boundary_or_drops_a_magic_is_refused():
    program = build(cells("import torch\n%time f()\n", "y = 1\n"))
    with pytest.raises(FixError, match="across cells"):
        program.new_sources(program.text.replace(BOUNDARY + "\n", ""))
    placeholder = next(l for l in program.text.splitlines() if MARK in l and l != BOUNDARY)
    with pytest.raises(FixError, match="IPython syntax in cell 1"):
        program.new_sources(program.text.replace(placeholder + "\n", ""))


def test_added_imports_go_after_the_first_imports_cells_leading_imports():
    program = build(cells("%load_ext autoreload\nSEED = 0\n", "%matplotlib inline\nimport torch\nx = 1\n", "import numpy\n"))
    # Wherever a rewrite puts `import optax`, it lands in cell 2 after `import torch`.
    for at in (0, program.slots[2].start):
        edited = apply(program.text, [TextEdit(Span(Pos(at, 0), Pos(at, 0)), "import optax\n")])
        assert program.new_sources(edited) == {"1": "%matplotlib inline\nimport torch\nimport optax\nx = 1\n"}


def test_without_an_import_cell_added_imports_go_after_the_first_cells_magics():
    program = build(cells("%%time\n%load_ext x\nopt = 1\n", "y = 2\n"))
    edited = apply(program.text, [TextEdit(Span(Pos(5, 0), Pos(5, 0)), "import optax\n")])
    assert program.new_sources(edited) == {"0": "%%time\n%load_ext x\nimport optax\nopt = 1\n"}


def test_a_cell_without_a_final_line_break_keeps_none():
    program, analysis = analyze_cells(cells("import torch\nopt = torch.optim.SGD([], lr=0.1)"))
    out = program.new_sources(apply(program.text, analysis.fix_all()))
    assert not out["0"].endswith("\n") and "optax.sgd" in out["0"]


def test_rewritten_cells_keep_their_own_line_breaks():
    # The program's first line break is cell 1's (LF); cell 2 is CRLF throughout.
    program, analysis = analyze_cells(cells("import torch\nparams = {}\n",
                                            "opt = torch.optim.SGD([], lr=0.1)\r\nx = 1\r\n"))
    out = program.new_sources(apply(program.text, analysis.fix_all()))
    assert out["1"] == "opt = optax.sgd(learning_rate=0.1)\r\nopt_state = opt.init(params)\r\nx = 1\r\n"
    assert out["0"] == "import torch\nimport optax\nparams = {}\n"
