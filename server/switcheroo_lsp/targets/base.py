"""The seam between the analysis and the API a rewrite emits.

A target decides what a torch optimizer's construction, step and zero_grad become, which names
those lines read (so that the analysis can say which are missing, OPX203), what the messages,
titles and hovers say, and which imports the result needs. The faithful Optax transform itself
(the catalog's emission) is the same for every target; a target may wrap it in an object that
owns the module it trains (`Wrapper`: `nnx.Optimizer(model, <transform>, wrt=nnx.Param)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..analysis.findings import Names


@dataclass(frozen=True)
class Wrapper:
    """`func(<module>, <transform>, kw=value, ...)`: the optimizer object a target builds
    around the Optax transform, given the module whose parameters the torch optimizer trains."""
    func: str                                   # 'nnx.Optimizer'
    keywords: tuple[tuple[str, str], ...] = ()  # (('wrt', 'nnx.Param'),)

    def text(self, module: str, transform: str) -> str:
        kws = "".join(f", {k}={v}" for k, v in self.keywords)
        return f"{self.func}({module}, {transform}{kws})"


@dataclass(frozen=True)
class Import:
    """An import the new code needs when it uses `name.` (and the file does not bind it)."""
    name: str            # 'nnx'
    qualified: str       # 'flax.nnx'
    statement: str       # 'from flax import nnx'


class Target(Protocol):
    name: str
    label: str                   # what the code becomes, for titles: 'Optax', 'Flax NNX'
    has_init_line: bool          # the construction is followed by `<state> = <opt>.init(<params>)`
    wrapper: Wrapper | None      # None: the Optax transform is the optimizer itself
    imports: tuple[Import, ...]  # besides optax (and jnp, switcheroo_optax), which the transforms decide
    step_why: str                # why the step changes, for OPX102's message
    zero_grad_why: str           # why zero_grad() goes, for OPX103's message
    plateau_problem: str         # "" when ReduceLROnPlateau converts; else why it needs a person (OPX202)
    pattern: str                 # the hover's paragraph on how the target's optimizers work

    def construction_summary(self, transform: str, module: str | None) -> str:
        """What OPX101's message says the construction becomes (one line)."""

    def construction_title(self, head: str) -> str:
        """The construction's quick fix title ('Convert to optax.adam')."""

    def no_module_message(self, qualified: str, why: str) -> str:
        """OPX202 for a construction whose parameters come from no module (a wrapping target)."""

    def init_lines(self, target: str, names: Names) -> list[str]:
        """Statements after the construction (`opt_state = opt.init(params)`)."""

    def init_reads(self, names: Names) -> list[str]:
        """Names the init lines read."""

    def steps_of(self, kinds: frozenset[str]) -> "Target":
        """The target whose step form applies to an optimizer of these kinds ('torch', 'optax',
        'annotated'): an optimizer the file already builds in Optax is a bare transform, stepped
        the functional way whatever the target."""

    def step_lines(self, receiver: str, names: Names, plateau_state: str, optax_name: str) -> list[str]:
        """Statements that replace `<receiver>.step()`."""

    def step_summary(self, receiver: str, names: Names) -> str:
        """The step's rewrite on one line, for messages."""

    def step_title(self, receiver: str, names: Names) -> str:
        """The step's quick fix title."""

    def step_refs(self, names: Names) -> list[str]:
        """Names the step lines read that may come from an enclosing scope (a module)."""

    def step_reads(self, names: Names) -> list[str]:
        """Names the step lines read that the step's own scope must bind (in the order a TODO
        names them, after `step_refs`)."""

    def params_hint(self, names: Names) -> str:
        """An example definition of what the init line reads."""

    def grads_hint(self, names: Names) -> str:
        """An example definition of what the step lines read."""

    derives_grads: bool          # the step's rewrite computes its gradients (analysis/gradients.py's region)

    def grads_call(self, region, names: Names) -> str:
        """The statement that computes the loss and the gradients from the region's loss function."""

    def gradients_note(self, gradients, names: Names) -> str:
        """What OPX102's message adds about the gradients ('' when nothing)."""

    def todo_note(self, gradients, names: Names, missing) -> str:
        """What OPX203's message and the TODO add about the gradients: why they are not derived,
        or where the loss is computed ('' when nothing)."""

    hyperparams_need_state: bool  # the hyperparameters are reached through the state's name (not the object)

    def hyperparam(self, receiver: str, names: Names, name: str, inner: bool = False, path: str = "") -> str:
        """Where optax.inject_hyperparams keeps hyperparameter `name`, as an expression that reads
        and writes it (`inner`: the transform is inside optax.MultiSteps; `path`: from the state to
        the injected transform's, a parameter group's in a multi_transform)."""

    def manual_message(self, member: str, receiver: str, lbfgs: bool = False) -> str:
        """OPX202 for a use of the optimizer that needs a person: `member` is 'closure' (a
        `step(closure)`), 'step_value' (the step's value used), 'state', 'state_dict',
        'load_state_dict', 'add_param_group' or 'param_groups'."""
