import os
import sys

# `python -m switcheroo_lsp` puts the working directory first on sys.path, and editors start the
# server in the user's project: a `json.py` or `ast.py` there would be imported, i.e. run, in place
# of the standard library's. This package is already imported; nothing else may come from there.
if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == os.getcwd():
    del sys.path[0]

from .frontends.cli import main  # noqa: E402

raise SystemExit(main())
