"""Documents: text, positions, and the libcst parse of each top-level statement.

`text` holds the line and column bookkeeping; `chunks` finds where top-level statements begin
without parsing; `parsed` parses each chunk with libcst, reuses unchanged chunks across edits,
and maps libcst nodes (which have no positions) back to lines and columns.
"""
