"""The real server, with every call to the core's `analyze` counted on stderr.

Only the benchmarks use it: `python bench/counting_server.py` behaves exactly like
`switcheroo-lsp serve` and writes `switcheroo-bench: analyze <chars>` per analysis.
"""

import sys

import switcheroo_lsp.frontends.lsp as server

_analyze = server.analyze


def counted(text, *args, **kwargs):
    sys.stderr.write(f"switcheroo-bench: analyze {len(text)}\n")
    sys.stderr.flush()
    return _analyze(text, *args, **kwargs)


server.analyze = counted

if __name__ == "__main__":
    server.serve()
