"""What one verification found: a construction, its torch original against its rewrite on every
verify problem (compare.ProblemResult), and the tolerance it was judged by. `command.py` runs and
reports them; `run.py` (which imports torch and jax) makes them."""

from __future__ import annotations

from dataclasses import dataclass

from . import cases as C


@dataclass
class Outcome:
    resolved: C.Resolved
    target: str
    results: list          # compare.ProblemResult, one per problem
    tolerance: float
    tolerance_why: str
    dtype: str
    plot: str | None = None

    @property
    def case(self) -> C.Case:
        return self.resolved.case

    @property
    def max_abs(self) -> float:
        return max(r.max_abs for r in self.results)

    @property
    def max_rel(self) -> float:
        return max(r.max_rel for r in self.results)

    @property
    def steps(self) -> int:
        return min(r.steps for r in self.results)

    @property
    def first_over(self) -> tuple[int, str] | None:
        overs = [(r.first_over, r.problem) for r in self.results if r.first_over is not None]
        return min(overs) if overs else None

    @property
    def status(self) -> str:
        return "fail" if self.first_over is not None else "pass"

    def again(self, res: C.Resolved) -> "Outcome":
        """This outcome for another construction with the same texts."""
        return Outcome(res, self.target, self.results, self.tolerance, self.tolerance_why, self.dtype)

    def row(self) -> dict:
        case, first = self.case, self.first_over
        return {
            "path": case.path, "line": case.line, "column": case.column, "optimizer": case.rewrite.torch,
            "rewrite": case.rewrite.written or case.rewrite.optax, "steps": self.steps, "max_abs_diff": self.max_abs,
            "max_rel_diff": self.max_rel, "tolerance": self.tolerance, "status": self.status,
            "first_step_over": first[0] if first else None, "dtype": self.dtype, "target": self.target,
            "problems": [{"name": r.problem, "steps": r.steps, "max_abs_diff": r.max_abs, "max_rel_diff": r.max_rel,
                          "tolerance": r.tolerance, "first_step_over": r.first_over, "stopped": r.stopped}
                         for r in self.results],
            "values": {k: {"value": repr(v.value), "source": v.source} for k, v in self.resolved.values.items()},
            "notes": self.resolved.notes, "plot": self.plot,
        }
