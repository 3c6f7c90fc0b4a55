"""Jupyter notebooks: the code cells of a notebook analysed as one program.

    ipython.py   IPython syntax (`%magic`, `%%cell_magic`, `!shell`, `expr?`) masked for parsing
    program.py   code cells <-> one program: the position map, fixes back into cell sources
    ipynb.py     reading .ipynb files, and writing back only the cell sources a fix changed
    files.py     the command line's work on one .ipynb file (findings, fixed text, diff)
    lsp.py       LSP 3.17 notebook sync: per-cell diagnostics, code actions and hovers

The core (`engine`) never sees a notebook: it analyses the program these modules build.
"""
