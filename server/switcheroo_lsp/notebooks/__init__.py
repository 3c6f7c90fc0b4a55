"""Jupyter notebooks: the code cells of a notebook analysed as one program.

    ipython.py   IPython syntax (`%magic`, `%%cell_magic`, `!shell`, `expr?`) masked for parsing
    program.py   code cells <-> one program: the position map, fixes back into cell sources
    ipynb.py     reading .ipynb files, and writing back only the cell sources a fix changed

The core (`engine`) never sees a notebook: it analyses the program these modules build. The
front ends use them: frontends/notebook_files.py (the command line on one .ipynb file) and
frontends/notebook_sync.py (LSP 3.17 notebook sync: per-cell diagnostics, code actions, hovers).
"""
