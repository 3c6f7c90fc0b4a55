"""Hypothesis strategies for programs that take optimizers everywhere real training code does:
names rebound over an import, functions and classes they are passed to, factories that return
them (alone or with a scheduler), wrappers, checkpoint dicts, `param_groups` reads and writes,
containers, libraries they are handed to (saved, stepped by a Trainer, configured by a
Lightning-like hook), attributes reached through objects whose class cannot be told, classes
chosen between torch's and the project's own optimizer, schedulers with their own API.

Each drawn program is executable by sandbox.py: a few flows, each a definitions part and a
driver part that runs it (loops run twice). Names a port must still define (`grads`, `params`)
are given by the sandbox, so that what runs is what the optimizer objects reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

CLASSES = ("SGD", "Adam", "AdamW", "RMSprop")


@dataclass
class Flow:
    defs: str
    driver: str
    header: str = ""         # imports it needs


def _ctor(cls: str, params: str = "model.parameters()") -> str:
    lr = {"SGD": "0.1", "Adam": "1e-3", "AdamW": "3e-4", "RMSprop": "1e-2"}[cls]
    return f"torch.optim.{cls}({params}, lr={lr})"


EXTRAS = {
    # what else the program may do with the optimizer named {o} (at the driver's level)
    "log_lr": 'print("lr", {o}.param_groups[0]["lr"])',
    "set_lr": '{o}.param_groups[0]["lr"] = 0.05',
    "checkpoint": 'ckpt = {{"opt": {o}.state_dict()}}\n{o}.load_state_dict(ckpt["opt"])',
    "saved": "somelib.save({o})",
    "in_a_list": "kept = [{o}]\nkept[0].zero_grad()",
    "in_a_dict": 'registry = {{"main": {o}}}\nregistry["main"].step()',
    "compiled": "{o}.step = torch.compile({o}.step)",
    "getattr": 'getattr({o}, "zero_grad")()',
    "helper": "step_it({o})",
    "printed": "print({o})",
    "none_check": "if {o} is not None:\n    {o}.zero_grad()",
}
HELPER = "def step_it(o):\n    o.zero_grad()\n    o.step()\n"


def _loop(o: str, body_extra: str = "") -> str:
    lines = ["for x in loader:", f"    {o}.zero_grad()", "    loss = model(x).sum()", "    loss.backward()",
             f"    {o}.step()"]
    if body_extra:
        lines += ["    " + line for line in body_extra.split("\n")]
    return "\n".join(lines) + "\n"


@st.composite
def module_level(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    extra = draw(st.sampled_from([None, *EXTRAS]))
    defs = HELPER if extra == "helper" else ""
    driver = f"{o} = {_ctor(cls)}\n" + _loop(o) + (EXTRAS[extra].format(o=o) + "\n" if extra else "")
    return Flow(defs, driver)


@st.composite
def rebound_import(draw, n: int) -> Flow:
    cls = draw(st.sampled_from(CLASSES))
    return Flow("", f"optim = {_ctor(cls)}\n" + _loop("optim"), header="import torch.optim as optim")


@st.composite
def passed_to_function(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    also_env = draw(st.booleans())
    defs = (f"def train{n}(o, steps):\n    for _ in range(steps):\n        o.zero_grad()\n"
            f"        model(1).sum().backward()\n        o.step()\n")
    driver = f"{o} = {_ctor(cls)}\ntrain{n}({o}, 2)\n" + (f"train{n}(Env(), 1)\n" if also_env else "")
    return Flow(defs, driver)


@st.composite
def factory(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    with_sched = draw(st.booleans())
    if with_sched:
        defs = (f"def make{n}(m):\n    o = {_ctor(cls, 'm.parameters()')}\n"
                f"    s = torch.optim.lr_scheduler.StepLR(o, step_size=2)\n    return o, s\n")
        extra = draw(st.sampled_from(["", "print(sched{n}.get_last_lr())", "state = sched{n}.state_dict()",
                                      "somelib.save(sched{n})"]))
        driver = (f"{o}, sched{n} = make{n}(model)\n" + _loop(o, f"sched{n}.step()")
                  + (extra.format(n=n) + "\n" if extra else ""))
    else:
        defs = f"def make{n}(m):\n    return {_ctor(cls, 'm.parameters()')}\n"
        driver = f"{o} = make{n}(model)\n" + _loop(o)
    return Flow(defs, driver)


@st.composite
def class_holder(draw, n: int) -> Flow:
    cls = draw(st.sampled_from(CLASSES))
    extra = draw(st.sampled_from(["", "save", "untyped", "checkpoint"]))
    methods = [f"    def __init__(self, model):\n        self.model = model\n        self.opt = {_ctor(cls)}\n",
               "    def step(self):\n        self.opt.zero_grad()\n        self.model(1).sum().backward()\n"
               "        self.opt.step()\n"]
    if extra == "save":
        methods.append("    def save(self):\n        somelib.save(self.opt)\n")
    if extra == "checkpoint":
        methods.append('    def save(self):\n        return {"opt": self.opt.state_dict()}\n')
    defs = f"class Trainer{n}:\n" + "\n".join(methods)
    driver = f"t{n} = Trainer{n}(model)\nt{n}.step()\nt{n}.step()\n"
    if extra in ("save", "checkpoint"):
        driver += f"t{n}.save()\n"
    if extra == "untyped":
        defs += f"\n\ndef poke{n}(holder):\n    holder.opt.step()\n"
        driver += f"poke{n}(t{n})\n"
    return Flow(defs, driver)


@st.composite
def given_to_class(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    defs = (f"class Stepper{n}:\n    def __init__(self, model, optimizer):\n        self.model = model\n"
            f"        self.optimizer = optimizer\n\n    def run(self):\n        self.optimizer.zero_grad()\n"
            f"        self.model(1).sum().backward()\n        self.optimizer.step()\n")
    driver = f"{o} = {_ctor(cls)}\ns{n} = Stepper{n}(model, {o})\ns{n}.run()\ns{n}.run()\n"
    return Flow(defs, driver)


@st.composite
def wrapped(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    driver = (f"accelerator = accelerate.Accelerator()\n{o} = {_ctor(cls)}\n"
              f"model, {o} = accelerator.prepare(model, {o})\n" + _loop(o))
    return Flow("", driver)


@st.composite
def chosen_class(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    own = draw(st.booleans())
    other = f"Own{n}(model.parameters())" if own else _ctor(draw(st.sampled_from(CLASSES)))
    defs = (f"class Own{n}(torch.optim.Optimizer):\n    def step(self):\n        pass\n" if own else "")
    driver = f"if flag:\n    {o} = {_ctor(cls)}\nelse:\n    {o} = {other}\n" + _loop(o)
    return Flow(defs, driver)


@st.composite
def library_hook(draw, n: int) -> Flow:
    cls = draw(st.sampled_from(CLASSES))
    defs = (f"class Lit{n}(somelib.LightningModule):\n    def configure_optimizers(self):\n"
            f"        return {_ctor(cls, 'self.parameters()')}\n")
    return Flow(defs, f"somelib.fit(Lit{n}())\n")


@st.composite
def handed_to_trainer(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    return Flow("", f"{o} = {_ctor(cls)}\ntrainer = somelib.Trainer(model=model, optimizers=({o}, None))\n"
                    "trainer.train()\n")


@st.composite
def scheduled(draw, n: int) -> Flow:
    o, cls = f"opt{n}", draw(st.sampled_from(CLASSES))
    extra = draw(st.sampled_from(["", "print(sched.get_last_lr()[0])", "blob = sched.state_dict()",
                                  "sched.load_state_dict({})"]))
    per_epoch = draw(st.booleans())
    driver = f"{o} = {_ctor(cls)}\nsched = torch.optim.lr_scheduler.StepLR({o}, step_size=2)\n"
    if per_epoch:
        driver += "for epoch in range(2):\n" + "".join("    " + line + "\n" for line in _loop(o).splitlines())
        driver += "    sched.step()\n"
    else:
        driver += _loop(o, "sched.step()")
    return Flow("", driver + (extra + "\n" if extra else ""))


FLOWS = [module_level, rebound_import, passed_to_function, factory, class_holder, given_to_class, wrapped,
         chosen_class, library_hook, handed_to_trainer, scheduled]
PRELUDE = """\
import torch
import accelerate
import somelib


class Env:
    def step(self, action=0):
        return action

    def zero_grad(self):
        pass


model = torch.nn.Linear(4, 1)
loader = [1, 2]
flag = True
"""


@st.composite
def programs(draw) -> str:
    chosen = draw(st.lists(st.sampled_from(FLOWS), min_size=1, max_size=3))
    flows = [draw(make(i)) for i, make in enumerate(chosen)]
    headers = sorted({f.header for f in flows if f.header})
    head = "\n".join(headers) + ("\n" if headers else "")
    defs = "\n\n".join(f.defs for f in flows if f.defs)
    helper = HELPER if any("step_it(" in f.driver for f in flows) and HELPER not in defs else ""
    body = "\n".join(f.driver for f in flows)
    return head + PRELUDE + "\n\n" + (helper + "\n\n" if helper else "") + (defs + "\n\n" if defs else "") + body
