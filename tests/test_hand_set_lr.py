"""Learning rates set by hand (issue 24): what stays for a person says why, and the hover says
where the learning rate lives now. The rewrites are fixtures (gradients/hand_set_lr.py,
manual/hand_set_lr_*.py); their numerics are tests/numerics/test_hyperparams.py."""

from pathlib import Path

from switcheroo_lsp.engine import Pos, analyze
from switcheroo_lsp.frontends.hover import hover

FIXTURES = Path(__file__).parent / "fixtures"


def _by_line(text: str, target: str = "optax") -> dict[int, list]:
    out: dict[int, list] = {}
    for f in analyze(text, target).findings:
        out.setdefault(f.span.start.line + 1, []).append(f)
    return out


def test_per_group_writes_convert_each_to_its_groups_state():
    text = (FIXTURES / "manual" / "hand_set_lr_per_group.py").read_text()
    for target in ("optax", "flax-nnx"):
        found = _by_line(text, target)
        assert [f.code for f in found[13]] == ["OPX107"] and [f.code for f in found[20]] == ["OPX107"]
        assert 'inner_states["group1"].inner_state.hyperparams["learning_rate"]' in found[20][0].message
        assert not [f for fs in found.values() for f in fs if f.code == "OPX202"], target


def test_per_group_writes_that_cannot_be_told_apart_say_why_they_stay():
    found = _by_line((FIXTURES / "manual" / "hand_set_lr_groups_apart.py").read_text())
    said = {line: next(f.message for f in fs if f.code == "OPX202") for line, fs in found.items()
            if any(f.code == "OPX202" for f in fs)}
    assert "which group is which cannot be told statically" in said[11]
    assert "group 1 is given no literal 'lr_scale'" in said[13]
    assert "a condition fix-all cannot decide" in said[15] and "epoch is not known" in said[15]
    assert "cannot read statically (head_index)" in said[18]
    assert "the optimizer has 2 groups" in said[19]
    assert sorted(said) == [11, 13, 15, 18, 19]


def test_a_write_where_the_state_is_not_in_scope_stays_on_optax_and_converts_on_nnx():
    text = (FIXTURES / "manual" / "hand_set_lr_in_a_function.py").read_text()
    optax_line = _by_line(text)[7]
    assert [f.code for f in optax_line] == ["OPX202"] and "not in scope here" in optax_line[0].message
    assert [f.code for f in _by_line(text, "flax-nnx")[7]] == ["OPX107"]


def test_hover_says_where_the_learning_rate_lives():
    text = (FIXTURES / "gradients" / "hand_set_lr.py").read_text()
    analysis = analyze(text)
    write = next(f for f in analysis.findings if f.code == "OPX107")
    markdown, _ = hover(analysis, write.span.start)
    assert 'opt_state.hyperparams["learning_rate"]' in markdown and "inject_hyperparams" in markdown
    construct = next(f for f in analysis.findings if f.code == "OPX101")
    markdown, _ = hover(analysis, Pos(construct.span.start.line, construct.span.start.col))
    assert "**Set by hand:**" in markdown


def test_hover_says_which_group_moved_where():
    text = (FIXTURES / "manual" / "hand_set_lr_per_group.py").read_text()
    analysis = analyze(text)
    loop = next(f for f in analysis.findings if f.code == "OPX107")
    markdown, _ = hover(analysis, loop.span.start)
    assert ("group 1's `betas` (`model.head.parameters()`) → `(opt_state.inner_states[\"group1\"].inner_state"
            ".hyperparams[\"b1\"], opt_state.inner_states[\"group1\"].inner_state.hyperparams[\"b2\"])`") in markdown
    assert "group 0's `weight_decay` (`model.body.parameters()`) → " in markdown
    construct = next(f for f in analysis.findings if f.code == "OPX101")
    markdown, _ = hover(analysis, construct.span.start)
    assert ('group 1 (`model.head.parameters()`): `lr`, `betas`, `weight_decay` in '
            '`opt_state.inner_states["group1"].inner_state.hyperparams`') in markdown


def test_a_condition_python_itself_would_reject_stays_torch_saying_so():
    text = ("import torch\n\nopt = torch.optim.SGD([{'params': a.parameters()}, {'params': b.parameters()}], lr=0.1)\n"
            "for i, g in enumerate(opt.param_groups):\n"
            "    if i < 'head':\n"
            "        g['lr'] = 0.0\n")
    found = _by_line(text)
    said = [f.message for f in found[4] if f.code == "OPX202"]
    assert said and "a condition fix-all cannot decide for each group (i < 'head')" in said[0]


def test_a_choice_converts_once_for_every_candidate_and_the_hover_says_so():
    text = (FIXTURES / "gradients" / "hand_set_lr_choice.py").read_text()
    for target in ("optax", "flax-nnx"):
        found = _by_line(text, target)
        assert [f.code for f in found[13]] == ["OPX107"] and [f.code for f in found[18]] == ["OPX107"], target
        assert [f.code for f in found[39]] == ["OPX107"] and [f.code for f in found[45]] == ["OPX107"], target
    analysis = analyze(text)
    construct = next(f for f in analysis.findings if f.code == "OPX101" and "SGD" in f.message)
    markdown, _ = hover(analysis, construct.span.start)
    assert "**Set by hand:**" in markdown       # the SGD candidate keeps what the shared loop sets


def test_a_choice_a_candidate_cannot_follow_names_that_candidate_and_why():
    text = (FIXTURES / "manual" / "hand_set_lr_choice_apart.py").read_text()
    for target, state in (("optax", "opt_state"), ("flax-nnx", "opt.opt_state")):
        found = _by_line(text, target)
        said = {line: next(f.message for f in fs if f.code == "OPX202") for line, fs in found.items()
                if any(f.code == "OPX202" and "param_groups" in f.message for f in fs)}
        assert sorted(said) == [15, 23, 34], target
        assert "it may be the LARS built at line 13: LARS, the project's own" in said[15]
        assert "not every candidate can keep them in its state: torch.optim.SGD: torch.optim.SGD's betas" in said[23]
        assert (f"the AdamW built at line 30 keeps it at {state}.hyperparams[\"learning_rate\"]" in said[34]
                and f"the SGD built at line 32 at {state}.inner_states[\"group0\"]" in said[34]), said[34]


def test_a_group_picked_by_a_name_that_always_holds_one_integer_converts():
    text = ("import torch\n\nopt = torch.optim.SGD([{'params': a.parameters()}, {'params': b.parameters()}], lr=0.1)\n"
            "if freeze:\n    te_idx = 1\nelse:\n    te_idx = 1\n"
            "opt.param_groups[te_idx]['lr'] = 0.0\n")
    found = _by_line(text)
    assert [f.code for f in found[8]] == ["OPX107"]
    assert 'inner_states["group1"]' in found[8][0].message
    # Bound to different values (diffusers' te_idx = 0 / te_idx = 1): which group cannot be told.
    found = _by_line(text.replace("else:\n    te_idx = 1", "else:\n    te_idx = 0"))
    said = [f.message for f in found[8] if f.code == "OPX202"]
    assert said and "cannot read statically (te_idx)" in said[0]


def test_hover_says_which_link_of_the_chain_reads_each_value():
    text = (FIXTURES / "gradients" / "hand_set_weight_decay.py").read_text()
    for target, place in (("optax", 'opt_state.hyperparams["weight_decay"]'),
                          ("flax-nnx", 'optimizer.opt_state.hyperparams["weight_decay"][...]')):
        analysis = analyze(text, target)
        loop = next(f for f in analysis.findings if f.code == "OPX107")
        markdown, _ = hover(analysis, loop.span.start)
        assert f"`weight_decay` → `{place}` (read by `optax.add_decayed_weights` in the chain)" in markdown
        assert "(read by `optax.adam` in the chain)" in markdown


def test_a_name_the_chain_already_uses_is_named_apart_and_the_hover_says_so():
    text = ("import torch\nweight_decay = 0.1\n"
            "opt = torch.optim.Adam(params, lr=weight_decay / 2, weight_decay=weight_decay)\n"
            "for t in range(5):\n    opt.param_groups[0]['weight_decay'] = weight_decay * t\n"
            "    opt.zero_grad()\n    loss(t).backward()\n    opt.step()\n")
    analysis = analyze(text)
    construct = next(f for f in analysis.findings if f.code == "OPX101")
    assert ("lambda weight_decay_2: optax.chain(optax.add_decayed_weights(weight_decay_2), "
            "optax.adam(learning_rate=weight_decay / 2)))(weight_decay_2=weight_decay)") in construct.message
    write = next(f for f in analysis.findings if f.code == "OPX107")
    markdown, _ = hover(analysis, write.span.start)
    assert ('`opt_state.hyperparams["weight_decay_2"]` (read by `optax.add_decayed_weights` in the chain; named '
            '`weight_decay_2`: `weight_decay` already names a value of yours the chain uses)') in markdown


def test_a_value_a_link_keeps_in_its_own_state_stays_torch_saying_why():
    """RAdam's rewrite injects optax.radam itself: its b1 is a number kept in that link's state from
    the start, which a factory around it could not change."""
    text = ("import torch\nopt = torch.optim.RAdam(params, lr=0.05)\nfor t in range(5):\n"
            "    opt.param_groups[0]['betas'] = (0.9 - 0.01 * t, 0.999)\n"
            "    opt.zero_grad()\n    loss(t).backward()\n    opt.step()\n")
    said = [f.message for f in _by_line(text)[4] if f.code == "OPX202"]
    assert said and ("torch.optim.RAdam's betas is a number of its rewrite's own optax.radam link, which keeps it "
                     "in that link's state from the start") in said[0]


def test_a_form_over_the_groups_fix_all_cannot_follow_says_which_forms_convert():
    text = ("import torch\n\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "lrs = [g['lr'] for g in opt.param_groups]\nopt.step()\n")
    said = [f.message for f in _by_line(text)[5] if f.code == "OPX202"]
    assert len(said) == 1 and "a comprehension, zip() or len()" in said[0] and "enumerate()" in said[0]


def test_clipping_that_cannot_join_an_injected_chain_says_why_not_that_its_limit_is_missing():
    """RAdam's rewrite keeps its learning rate in its own injected link: with clipping folded in front,
    that link is the chain's second, not where the loop's writes are addressed. The clipping stays,
    saying that, not that its limit (a literal) is unavailable where the optimizer is built."""
    text = ("import torch\nopt = torch.optim.RAdam(params, lr=0.05)\nfor t in range(5):\n"
            "    opt.param_groups[0]['lr'] = 0.05 * (1 - t / 5)\n"
            "    opt.zero_grad()\n    loss(t).backward()\n"
            "    torch.nn.utils.clip_grad_norm_(params, 1.0)\n    opt.step()\n")
    said = [f.message for f in _by_line(text)[7] if f.code == "OPX202"]
    assert len(said) == 1 and "not available where the optimizer is built" not in said[0], said
    assert "folded into the optimizer's chain, it would move the values the loop sets by hand into the state of " \
           "the chain's next link" in said[0], said


def test_a_group_whose_values_would_sit_inside_a_link_of_its_chain_says_so():
    """Per group, a value RAdam's own injected link keeps (behind its L2 decay) has no address this
    fix writes: the write stays for a person, saying why."""
    text = ("import torch\nopt = torch.optim.RAdam([{'params': [w]}, {'params': [v], 'lr': 0.01}], lr=0.05, "
            "weight_decay=0.1)\nfor t in range(5):\n    for i, g in enumerate(opt.param_groups):\n"
            "        if i == 1:\n            g['lr'] = 0.01 / (1 + t)\n"
            "    opt.zero_grad()\n    loss(t).backward()\n    opt.step()\n")
    said = [f.message for f in _by_line(text)[4] if f.code == "OPX202"]
    assert said and "would be kept inside a link of the group's own chain" in said[0], said
