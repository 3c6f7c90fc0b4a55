"""The real server, with every call to the core's `analyze` counted on stderr.

Only the benchmarks use it: `python bench/counting_server.py` behaves exactly like
`switcheroo-lsp serve` and writes `switcheroo-bench: analyze <chars>` per analysis (and applies
the what-if patches named in SWITCHEROO_BENCH_WHATIF, see whatif.py).
"""

import sys
from pathlib import Path

import switcheroo_lsp.frontends.lsp as server

sys.path.insert(0, str(Path(__file__).resolve().parent))
import whatif  # noqa: E402

whatif.from_env()      # SWITCHEROO_BENCH_WHATIF: proposed core changes, measured before they are made

_analyze = server.analyze


def counted(text):
    sys.stderr.write(f"switcheroo-bench: analyze {len(text)}\n")
    sys.stderr.flush()
    return _analyze(text)


server.analyze = counted

if __name__ == "__main__":
    server.serve()
