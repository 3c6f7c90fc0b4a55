"""Long generated expressions are spread the way a formatter would, and only those: what fits,
what is already on several lines, and what cannot be split without changing it stay as they are
(transforms/fitting.py). The fixtures show it in context (tests/fixtures/**/param_groups*)."""

import ast

import libcst as cst

from switcheroo_lsp.knowledge.emit import LINE_LIMIT
from switcheroo_lsp.transforms.fitting import fitted


def spread(text: str, column: int = 12, indent: int = 0) -> str:
    """The statement `optimizer = <text>` as written once its value is fitted."""
    node = fitted(cst.parse_expression(text), column, indent, "    ")
    module = cst.parse_module(f"optimizer = {text}\n")
    stmt = module.body[0].with_changes(body=[module.body[0].body[0].with_changes(value=node)])
    return module.with_changes(body=[stmt]).code


def test_a_long_call_puts_each_argument_on_its_own_line_and_a_dict_each_entry():
    groups = ('optax.multi_transform({"group0": optax.sgd(learning_rate=0.1, momentum=0.9), '
              '"group1": optax.sgd(learning_rate=0.01, momentum=0.9)}, param_labels)')
    out = spread(groups)
    assert out == ('optimizer = optax.multi_transform(\n'
                   '    {\n'
                   '        "group0": optax.sgd(learning_rate=0.1, momentum=0.9),\n'
                   '        "group1": optax.sgd(learning_rate=0.01, momentum=0.9),\n'
                   '    },\n'
                   '    param_labels,\n'
                   ')\n')
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(f"optimizer = {groups}\n"))
    assert max(len(line) for line in out.splitlines()) <= LINE_LIMIT


def test_what_fits_or_is_already_spread_is_left_as_it_is():
    assert spread("optax.sgd(learning_rate=0.1)") == "optimizer = optax.sgd(learning_rate=0.1)\n"
    written = "optax.adam(\n    learning_rate=1e-3,  # " + "x" * 90 + "\n)"
    assert spread(written) == f"optimizer = {written}\n"


def test_the_inner_call_of_a_curried_call_is_spread_and_the_outer_arguments_follow_its_bracket():
    chain = ("optax.inject_hyperparams(lambda learning_rate: optax.chain(optax.add_decayed_weights(1e-3), "
             "optax.sgd(learning_rate=learning_rate, momentum=0.9)))(learning_rate=0.1)")
    out = spread(chain, indent=4, column=16)
    assert out.splitlines()[-1] == ")(learning_rate=0.1)"
    assert "    lambda learning_rate: optax.chain(\n" in out
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(f"optimizer = {chain}\n"))


def test_starred_arguments_and_dict_unpacking_are_not_split():
    starred = "optax.chain(*[optax.sgd(learning_rate=0.1, momentum=0.9) for _ in range(3)], " + "x" * 40 + ")"
    assert spread(starred) == f"optimizer = {starred}\n"
    unpacked = "dict(**{" + ", ".join(f'"k{i}": {i}' for i in range(20)) + "}, **base)"
    out = spread(unpacked)
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(f"optimizer = {unpacked}\n"))
