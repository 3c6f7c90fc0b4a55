"""Front ends: the language server (`lsp`), the command line (`cli`), hover text and settings.

They translate their world (LSP messages, command lines, files) to the pure core in
`switcheroo_lsp.engine` and back; no analysis happens here. Notebooks: `notebook_files` (the
command line on an .ipynb file) and `notebook_sync` (LSP notebook sync), over `switcheroo_lsp.notebooks`.
"""
