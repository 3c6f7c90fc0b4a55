"""Where a new third-party import (`import optax`) goes among a file's imports, as isort has them:
`from __future__`, the standard library, third party, first party (relative imports and the
project's own modules), each section after the one before.

Where a file's imports follow that order, the new import goes after the last third-party one
(before the first first-party one when there is none); where they do not (no sections to
speak of), after the last import. Plain data in, plain data out: the core and the notebook
writer (which places the imports of a notebook's rewrite itself) share it.
"""

from __future__ import annotations

import sys

SECTIONS = ("future", "stdlib", "third", "first")


def section(module: str | None, level: int = 0, first_party: frozenset[str] = frozenset()) -> str:
    """The section of `import module` / `from module import ...` (`level`: its leading dots)."""
    if level:
        return "first"
    top = (module or "").split(".", 1)[0]
    if top == "__future__":
        return "future"
    if top in first_party:
        return "first"
    if top in sys.stdlib_module_names:
        return "stdlib"
    return "third"


def place(sections: list[str]) -> tuple[int, str]:
    """(the index of the import the new one goes next to, "after" or "before") for a file
    whose imports, in order, are in `sections` (not empty)."""
    rank = [SECTIONS.index(s) for s in sections]
    if all(a <= b for a, b in zip(rank, rank[1:])):
        third = [i for i, s in enumerate(sections) if s == "third"]
        if third:
            return third[-1], "after"
        if "first" in sections:
            return sections.index("first"), "before"
    return len(sections) - 1, "after"
