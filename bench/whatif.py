"""What-if patches for the benchmarks: proposed core changes, applied by monkeypatching so that
they can be measured before anyone edits the core. Nothing imports this but the bench.

    SWITCHEROO_BENCH_WHATIF=owner-memo,name-scan python bench/run.py --whatif ...

owner-memo  builder._parameters_owner computed once per optimizer (it is recomputed for every
            optimizer on every names_for call: quadratic in the optimizers of a file)
name-scan   analysis._plan_unused_imports finds an import alias's uses with a literal-first
            regex and checks the preceding character itself (the `(?<![\\w.])name\\b` pattern
            defeats re's literal-prefix search: 5-19 ms per alias per construction fix at 5k lines)
"""

from __future__ import annotations

import os
import re

_PREFIX = r"(?<![\w.])"
_BEFORE = re.compile(r"[\w.]")


def apply(names: list[str]) -> None:
    if "owner-memo" in names:
        from switcheroo_lsp import builder
        original = builder._parameters_owner
        memo: dict[int, tuple] = {}

        def owner(ident):
            hit = memo.get(id(ident))
            if hit is None or hit[0] is not ident:
                if len(memo) > 100_000:
                    memo.clear()
                hit = memo[id(ident)] = (ident, original(ident))
            return hit[1]

        builder._parameters_owner = owner
    if "name-scan" in names:
        from switcheroo_lsp import analysis

        class _Re:
            def __getattr__(self, name):
                return getattr(re, name)

            @staticmethod
            def finditer(pattern, text, flags=0):
                if not pattern.startswith(_PREFIX):
                    return re.finditer(pattern, text, flags)
                rest = pattern[len(_PREFIX):]
                return (m for m in re.finditer(rest, text, flags)
                        if m.start() == 0 or not _BEFORE.match(text, m.start() - 1))

        analysis.re = _Re()


def from_env() -> list[str]:
    names = [n for n in os.environ.get("SWITCHEROO_BENCH_WHATIF", "").split(",") if n]
    apply(names)
    return names
