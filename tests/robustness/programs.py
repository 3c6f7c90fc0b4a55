"""Hypothesis strategies for torch training programs built from the constructs the core handles.

A program is a tree of statements rendered with a drawn indentation unit (spaces or tabs) and
line break (LF or CRLF). What varies: the import form, one or two optimizers (SGD, Adam, AdamW,
RMSprop, with literal or expression arguments), where they live (module level, a function, a
class storing `self.optimizer`, a function that receives it from its caller), the blocks nested
around the step (for / while / if / with / try), one-line bodies (`if c: opt.step()`),
`;`-joined statements, decorators, comments (sometimes `# noqa`), non-ASCII strings (with the
characters that other line splitters break at: form feed, U+2028, U+0085), and a scheduler
(per update or per epoch) and gradient clipping before the step.

Every drawn program parses; `Program.noqa` says whether a construction carries `# noqa` (its
optimizer then stays torch, so fix-all legitimately leaves its OPX10x findings).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from hypothesis import strategies as st

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop")
# The rest of the catalog, drawn now and then with a sample of their own arguments.
OTHERS = ("Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD", "Adafactor", "SparseAdam")
SCHEDULERS = {
    "StepLR": "step_size=10, gamma=0.5",
    "ExponentialLR": "gamma=0.9",
    "CosineAnnealingLR": "T_max=100",
    "MultiStepLR": "milestones=[30, 80], gamma=0.1",
    "LinearLR": "start_factor=0.5, total_iters=4",
    "ConstantLR": "factor=0.5",
    "PolynomialLR": "total_iters=10, power=2.0",
    "LambdaLR": "lr_lambda=lambda e: 0.95 ** e",
    "CosineAnnealingWarmRestarts": "T_0=10, T_mult=2",
    "OneCycleLR": "max_lr=0.1, total_steps=1000",
    "ReduceLROnPlateau": "mode='min', factor=0.5, patience=2",
}
# Characters chosen to hurt: multi-byte UTF-8, astral (two UTF-16 units), and line separators
# that only some splitters honour (str.splitlines breaks at \x0c, \x1c-\x1e, \x85, \u2028).
TRICKY = "é€ñ日本😀🚀\u2028\x0c\x85\x1c"
WORDS = ("loss", "état", "naïve", "ok", "日本語", "😀", "step", "lr", "x")


@dataclass
class Program:
    text: str
    noqa: bool
    description: str

    def __repr__(self) -> str:       # what hypothesis prints for a failing example
        return f"Program({self.description}):\n{self.text}"


# A statement is a str (one line; may contain `; `) or a Block.
@dataclass
class Block:
    header: str
    body: list
    inline: bool = False           # `header: stmt` on one line
    siblings: tuple = ()           # (header, body) pairs that follow at the same level: else/except/finally


def render(stmts: list, unit: str, nl: str, depth: int = 0) -> list[str]:
    out: list[str] = []
    pad = unit * depth
    for s in stmts:
        if isinstance(s, str):
            out.extend(pad + line if line else "" for line in s.split("\n"))
            continue
        if s.inline:
            out.append(f"{pad}{s.header}: {s.body[0]}")
        else:
            out.append(f"{pad}{s.header}:")
            out.extend(render(s.body or ["pass"], unit, nl, depth + 1))
        for header, body in s.siblings:
            out.append(f"{pad}{header}:")
            out.extend(render(body or ["pass"], unit, nl, depth + 1))
    return out


# -- pieces -------------------------------------------------------------------------------------------

literal_or_expr = st.sampled_from


def _string(draw) -> str:
    text = draw(st.text(alphabet=st.sampled_from(TRICKY + "abc -_"), min_size=1, max_size=6))
    return repr(text)      # a valid literal whatever the characters ("\x0c" etc. stay escaped or raw)


def _raw_string(draw) -> str:
    """A string literal with the tricky characters written raw into the source."""
    text = draw(st.text(alphabet=st.sampled_from(TRICKY + "abc "), min_size=1, max_size=6))
    return '"' + text.replace("\\", "") + '"'


def _comment(draw) -> str:
    words = draw(st.lists(st.sampled_from(WORDS + tuple(TRICKY)), min_size=1, max_size=4))
    return "# " + " ".join(words)


def _other_args(draw, cls: str, params: str) -> str:
    from switcheroo_lsp.knowledge import catalog
    args = [params]
    for name, default in catalog.OPTIMIZERS[cls].signature:
        if draw(st.integers(0, 2)) or name in ("foreach", "maximize", "differentiable", "capturable"):
            continue
        if isinstance(default, bool):
            value = repr(draw(st.booleans()))
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            value = draw(st.sampled_from([repr(default), repr(default * 0.5 if default else 0.1), name + "_value"]))
        elif isinstance(default, tuple) and all(isinstance(v, (int, float)) for v in default):
            value = draw(st.sampled_from([repr(default), repr(tuple(v * 0.5 for v in default))]))
        else:
            continue
        args.append(f"{name}={value}")
    return ", ".join(args)


def _optimizer_args(draw, cls: str, params: str) -> str:
    if cls in OTHERS:
        return _other_args(draw, cls, params)
    lr = draw(st.sampled_from(["0.1", "1e-3", "3e-4", "lr", "args.lr", "base_lr * 0.5", "cfg['lr']"]))
    args = [params]
    if draw(st.booleans()):
        args.append(f"lr={lr}")
    else:
        args.append(lr)
    extra = {
        "SGD": {"momentum": ["0", "0.9", "mom"], "dampening": ["0", "0.1"], "nesterov": ["False", "True"],
                "weight_decay": ["0", "1e-4", "wd"]},
        "Adam": {"betas": ["(0.9, 0.999)", "(0.8, 0.99)", "betas"], "eps": ["1e-8", "1e-6"],
                 "weight_decay": ["0", "1e-4"], "amsgrad": ["False", "True"]},
        "AdamW": {"betas": ["(0.9, 0.999)", "(0.9, 0.95)"], "eps": ["1e-8"], "weight_decay": ["0.01", "0.1", "wd"],
                  "amsgrad": ["False", "True"]},
        "RMSprop": {"alpha": ["0.99", "0.9"], "eps": ["1e-8"], "momentum": ["0", "0.9"],
                    "centered": ["False", "True"], "weight_decay": ["0", "1e-4"]},
    }[cls]
    for name, values in extra.items():
        if draw(st.integers(0, 3)) == 0:
            value = draw(st.sampled_from(values))
            if cls == "SGD" and name == "nesterov" and value == "True":
                args.append("momentum=0.9")
                if any(a.startswith("momentum=") for a in args[:-1]):
                    args.pop()
                args.append("nesterov=True")
                continue
            if not any(a.startswith(f"{name}=") for a in args):
                args.append(f"{name}={value}")
    return ", ".join(args)


ZERO_GRAD_NOTE = "zero-grad note"    # the one comment a fix may drop: a removed zero_grad()'s trailing one


def _maybe_multiline(draw, head: str, args: str, unit: str, comments: bool = False) -> str:
    """Sometimes break a call's arguments over lines (a multi-line statement); with `comments`,
    always one argument per line, each with a comment, comment lines between, and a tuple
    argument's elements on their own lines with theirs."""
    if comments:
        lines = [f"{head}(  {_comment(draw)}" if draw(st.booleans()) else f"{head}("]
        for arg in split_args(args):
            if draw(st.integers(0, 2)) == 0:
                lines.append(f"{unit}{_comment(draw)}")
            name, eq, value = arg.partition("=")
            if eq and value.startswith("(") and value.endswith(")") and ", " in value:
                first, second = split_args(value[1:-1])[:2]
                arg = f"{name}=({first},  {_comment(draw)}\n{unit}{unit}{second})"
            lines.append(f"{unit}{arg},  {_comment(draw)}")
        if draw(st.booleans()):
            lines.append(f"{unit}{_comment(draw)}")
        return "\n".join(lines) + "\n)"
    if draw(st.integers(0, 4)) == 0 and ", " in args:
        first, rest = args.split(", ", 1)
        return f"{head}({first},\n{unit}{unit}{rest})"
    return f"{head}({args})"


def split_args(args: str) -> list[str]:
    """`a, b=(1, 2), c` -> ['a', 'b=(1, 2)', 'c'] (commas at bracket depth 0)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(args):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(args[start:i].strip())
            start = i + 1
    out.append(args[start:].strip())
    return [a for a in out if a]


@dataclass
class Opt:
    var: str              # how it is referred to: opt / self.optimizer
    construct: str        # the construction statement (may span lines)
    model: str
    sched: str | None     # scheduler variable, or None
    sched_construct: str | None
    per_epoch: bool
    clip: str | None
    plateau: bool = False


@st.composite
def programs(draw, comments: bool = False) -> Program:
    """A program; with `comments`, comments in every construction and every loop body."""
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    unit = draw(st.sampled_from(["    ", "\t", "  "]))
    form = draw(st.sampled_from(["import torch", "import torch.optim as optim", "from torch import optim",
                                 "from torch.optim import X as A"]))
    container = draw(st.sampled_from(["module", "function", "method", "passed", "annotated", "trainer"]))
    selfish = container in ("method", "trainer")     # the loop runs in a method: self.<attr>
    count = draw(st.integers(1, 2))
    sched_import = draw(st.sampled_from(["attr", "from"]))
    notes = [f"{form!r} {container} x{count} {'CRLF' if nl == chr(13) + chr(10) else 'LF'} "
             f"{'tab' if unit == chr(9) else repr(unit)}"]
    imports = ["import torch"] if form != "import torch" else []
    imports.append(form if form != "from torch.optim import X as A" else None)
    noqa = False
    opts: list[Opt] = []
    from_optim: list[str] = []
    from_sched: list[str] = []
    for k in range(count):
        cls = draw(st.sampled_from(OPTIMIZERS)) if draw(st.integers(0, 4)) else draw(st.sampled_from(OPTIMIZERS + OTHERS))
        if form == "import torch":
            ref = f"torch.optim.{cls}"
        elif form in ("import torch.optim as optim", "from torch import optim"):
            ref = f"optim.{cls}"
        else:
            alias = f"{cls[0]}{k}"
            from_optim.append(f"{cls} as {alias}")
            ref = alias
        model = ["model", "critic"][k]
        if selfish:
            var = ["self.optimizer", "self.opt_d"][k]
        else:
            var = draw(st.sampled_from([["opt", "optimizer", "opt_g"], ["opt_d", "optimizer2"]][k]))
        # trainer: built in main() as a local, handed to Trainer(...), stored as self.<attr>
        built = ["opt", "opt_d"][k] if container == "trainer" else var
        params = f"self.{model}.parameters()" if container == "method" else f"{model}.parameters()"
        call = _maybe_multiline(draw, ref, _optimizer_args(draw, cls, params), unit, comments)
        construct = f"{built} = {call}"
        sched_or_clip = draw(st.integers(0, 3))     # 1: scheduler, 2: clipping, 3: both
        if draw(st.integers(0, 9)) == 0:   # found bug 1 (fixed 57e7ff6): noqa-kept optimizers stay torch
            noqa = True
            lines = construct.split("\n")
            lines[0] += draw(st.sampled_from(["  # noqa", "  # noqa: OPX101", "  # NOQA: OPX101, OPX102"]))
            construct = "\n".join(lines)
        elif draw(st.integers(0, 5)) == 0:
            lines = construct.split("\n")
            lines[-1] += "  " + _comment(draw)
            construct = "\n".join(lines)
        sched = sched_construct = None
        per_epoch = False
        if sched_or_clip in (1, 3):   # on every optimizer (bug 4, Rprop/ASGD/Adafactor: fixed aa03dc8)
            name = draw(st.sampled_from(sorted(SCHEDULERS)))
            if sched_import == "attr":
                sref = f"torch.optim.lr_scheduler.{name}"
            else:
                from_sched.append(name)
                sref = name
            sched = ["self.scheduler", "self.sched_d"][k] if selfish else ["sched", "sched_d"][k]
            sched_construct = f"{sched} = {sref}({var}, {SCHEDULERS[name]})"
            if comments:
                sched_construct += "  " + _comment(draw)
            per_epoch = draw(st.booleans())
        clip = None
        if sched_or_clip in (2, 3):
            target = f"self.{model}" if selfish else model
            clip = draw(st.sampled_from([
                f"torch.nn.utils.clip_grad_norm_({target}.parameters(), 1.0)",
                f"torch.nn.utils.clip_grad_norm_({target}.parameters(), max_norm=0.5)",
                f"torch.nn.utils.clip_grad_value_({target}.parameters(), clip_value=0.1)",
            ]))
        plateau = bool(sched_construct and "ReduceLROnPlateau" in sched_construct)
        opts.append(Opt(var, construct, model, sched, sched_construct, per_epoch, clip, plateau))
        notes.append(f"{cls}{' +sched' if sched else ''}{' per-epoch' if per_epoch else ''}{' +clip' if clip else ''}")
    if from_optim:
        imports.append("from torch.optim import " + ", ".join(from_optim))
    if from_sched:
        imports.append("from torch.optim.lr_scheduler import " + ", ".join(from_sched))
    imports = [i for i in imports if i]
    if draw(st.booleans()):
        imports.insert(0, "import math")

    # -- the innermost body: zero_grad, forward, backward, clip, step, per-update scheduler ------
    inner: list = []
    for o in opts:
        style = draw(st.integers(0, 7))
        if style == 0:
            inner.append(f"{o.var}.zero_grad(); out = {o.model}(x)")
        elif style == 1:
            inner.append(f"{o.var}.zero_grad(set_to_none=True)")
        elif style == 2:
            inner.append(Block("if i_accum == 0", [f"{o.var}.zero_grad()"], inline=draw(st.booleans())))
        elif style == 3:
            inner.append(Block("if i_accum == 0", [_comment(draw), f"{o.var}.zero_grad()  " + _comment(draw)]))
        elif style == 4:
            inner.append(f"{o.var}.zero_grad();")
        else:
            inner.append(f"{o.var}.zero_grad()")
        inner.append(f"loss = loss_fn({o.model}(x), y)  " + _comment(draw) if draw(st.integers(0, 3)) == 0
                     else f"loss = loss_fn({o.model}(x), y)")
        backward = draw(st.integers(0, 6))
        if backward == 0:
            inner.append(f"label = {_raw_string(draw)}; loss.backward()")
        elif backward == 1:
            inner.append("loss = \\\n    loss * 1.0\nloss.backward()")
        elif backward == 2:
            inner.append("\x0c")          # a form feed alone on a line: whitespace to Python
            inner.append("loss.backward()")
        else:
            inner.append("loss.backward()")
        if o.clip:
            inner.append(o.clip)
        step_style = draw(st.integers(0, 8))
        if step_style == 0:
            inner.append(Block("if ready", [f"{o.var}.step()"], inline=True))
        elif step_style == 1:
            inner.append(f"total += 1; {o.var}.step()")
        elif step_style == 2:
            inner.append(f"{o.var}.step()  " + _comment(draw))
        elif step_style == 3:
            inner.append(Block("if i_accum == 0", [f"{o.var}.step()", f"{o.var}.zero_grad()"]))
        elif step_style == 4:
            inner.append(f"{o.var}.step();")
        elif step_style == 5:
            inner.append(Block("if ready", ["pass"], siblings=(("elif step_ok", [f"{o.var}.step()"]),)))
        else:
            inner.append(f"{o.var}.step()")
        if o.sched and not o.per_epoch:
            inner.append(f"{o.sched}.step({'loss' if o.plateau else ''})")
        if draw(st.integers(0, 3)) == 0:
            inner.append(f"print({_string(draw)}, loss.item())")

    if comments:
        inner = _sprinkle(draw, inner)

    # -- blocks nested around it ------------------------------------------------------------------
    body = inner
    kinds = draw(st.lists(st.sampled_from(["for", "while", "if", "with", "try", "for-else", "def"]),
                          min_size=0, max_size=3))
    for kind in kinds:
        if kind == "for":
            body = [Block("for i in range(3)", body)]
        elif kind == "for-else":
            body = [Block("for j in range(2)", body, siblings=(("else", ["total += 0"]),))]
        elif kind == "def" and container != "module":
            # a closure doing the update (names from the enclosing function)
            body = [Block("def update(x, y)", ["nonlocal total"] + body if container == "function" else body),
                    "update(x, y)"]
        elif kind == "while":
            body = [Block("while running", body + ["running = False"])]
        elif kind == "if":
            siblings = (("else", [f"print({_string(draw)})"]),) if draw(st.booleans()) else ()
            body = [Block("if step_ok", body, siblings=siblings)]
        elif kind == "with":
            body = [Block(draw(st.sampled_from(["with torch.autograd.set_detect_anomaly(True)",
                                                "with ctx as c", "with open('log.txt') as f, ctx"])), body)]
        else:
            body = [Block("try", body, siblings=(("except RuntimeError as err", [f"print({_string(draw)}, err)"]),)
                          + ((("finally", ["running = False"]),) if draw(st.booleans()) else ()))]
    loop = [Block("for x, y in loader", body)]
    epoch_steps = [f"{o.sched}.step({'loss' if o.plateau else ''})" for o in opts if o.sched and o.per_epoch]
    if epoch_steps:
        loop = [Block("for epoch in range(epochs)", loop + epoch_steps)]
    prelude = ["total = 0", "running = True", "ready = step_ok = True"]
    if draw(st.integers(0, 3)) == 0:
        prelude.append(_comment(draw))
    if draw(st.integers(0, 3)) == 0:
        prelude.append(f"banner = {_raw_string(draw)}")

    constructs = [o.construct for o in opts] + [o.sched_construct for o in opts if o.sched_construct]
    decorators = draw(st.lists(st.sampled_from(["@timed", "@functools.lru_cache(maxsize=None)",
                                                "@contextlib.contextmanager"]), max_size=2, unique=True))
    models = ["model = make_model()", "critic = make_model()"][:count]
    if container == "module":
        top: list = models + constructs + prelude + loop
    elif container == "function":
        top = decorators + [Block("def train(model, critic, loader, params, grads, epochs=2)",
                                  constructs + prelude + loop + ["return params"])]
    elif container == "method":
        init = ["self.model = model", "self.critic = critic"] + constructs
        loop_self = render_replace(loop + [], "model(x)", "self.model(x)")
        loop_self = render_replace(loop_self, "critic(x)", "self.critic(x)")
        top = [Block("class Trainer", [
            '"""Owns its optimizers."""',
            Block("def __init__(self, model, critic)", init),
            "",
            *decorators,
            Block("def fit(self, loader, params, grads, epochs=2)", prelude + loop_self + ["return params"]),
        ])]
    elif container == "trainer":
        locals_ = [["opt", "opt_d"][k] for k in range(count)]
        init = (["self.model = model", "self.critic = critic"]
                + [f"{o.var} = {name}" for o, name in zip(opts, locals_)]
                + [o.sched_construct for o in opts if o.sched_construct])
        loop_self = render_replace(loop + [], "model(x)", "self.model(x)")
        loop_self = render_replace(loop_self, "critic(x)", "self.critic(x)")
        top = [Block("class Trainer", [
            Block(f"def __init__(self, model, critic, {', '.join(locals_)})", init),
            "",
            *decorators,
            Block("def fit(self, loader, params, grads, epochs=2)", prelude + loop_self + ["return params"]),
        ]), "", Block("def main(loader, params, grads)", models + [o.construct for o in opts] + [
            f"Trainer(model, {'critic' if count > 1 else 'None'}, {', '.join(locals_)}).fit(loader, params, grads)"])]
    elif container == "annotated":
        annotation = draw(st.sampled_from(["torch.optim.Optimizer", "'torch.optim.Optimizer'"]))
        args = ", ".join(f"{o.var}: {annotation}" for o in opts)
        top = decorators + [Block(f"def train(model, critic, loader, {args}, params, grads, epochs=2)",
                                  [o.sched_construct for o in opts if o.sched_construct]
                                  + prelude + loop + ["return params"])]
    else:  # passed: built in main(), handed to train()
        optvars = [o.var for o in opts]
        top = decorators + [
            Block(f"def train(model, critic, loader, {', '.join(optvars)}, params, grads, epochs=2)",
                  prelude + _without_sched(loop, opts) + ["return params"]),
            "",
            Block("def main(loader, params, grads)", models + [o.construct for o in opts] + [
                f"train(model, {'critic' if count > 1 else 'None'}, loader, {', '.join(optvars)}, params, grads)"]),
        ]
    lines = imports + [""] + render(top, unit, nl)
    if draw(st.integers(0, 4)) == 0:
        lines.insert(0, '"""Training script ' + draw(st.sampled_from(WORDS)) + '."""')
    text = nl.join(lines) + nl
    ast.parse(text)        # the generator only draws valid programs
    return Program(text, noqa, "; ".join(notes))


def _sprinkle(draw, stmts: list) -> list:
    """Comment lines between statements and trailing comments after them (a zero_grad()'s is
    marked: it is the one comment a fix may drop)."""
    out = []
    for s in stmts:
        if draw(st.integers(0, 2)) == 0:
            out.append(_comment(draw))
        if isinstance(s, str) and "\n" not in s and not s.endswith((";", "\x0c")) and "#" not in s:
            if draw(st.booleans()):
                note = ZERO_GRAD_NOTE if ".zero_grad(" in s else ""
                s = f"{s}  {_comment(draw)} {note}".rstrip()
        elif isinstance(s, Block) and not s.inline:
            s = Block(s.header, _sprinkle(draw, s.body), s.inline, s.siblings)
        out.append(s)
    if draw(st.booleans()):
        out.append(_comment(draw))
    return out


def _without_sched(stmts: list, opts: list[Opt]) -> list:
    """`passed` programs build the optimizers in main(); their schedulers are left out."""
    names = {o.sched for o in opts if o.sched}
    out = []
    for s in stmts:
        if isinstance(s, str):
            if any(s.startswith(f"{n}.step(") for n in names):
                continue
            out.append(s)
        else:
            body = _without_sched(s.body, opts)
            if s.header == "for epoch in range(epochs)" and len(body) == 1:
                out.extend(body)
                continue
            out.append(Block(s.header, body or ["pass"], s.inline,
                             tuple((h, _without_sched(b, opts)) for h, b in s.siblings)))
    return out


def render_replace(stmts: list, old: str, new: str) -> list:
    out = []
    for s in stmts:
        if isinstance(s, str):
            out.append(s.replace(old, new) if f"self.{old}" not in s else s)
        else:
            out.append(Block(s.header.replace(old, new), render_replace(s.body, old, new), s.inline,
                             tuple((h.replace(old, new), render_replace(b, old, new)) for h, b in s.siblings)))
    return out
