"""Analysis: what a parsed document does with torch.optim.

`facts` walks each chunk's libcst tree (scopes, bindings, calls, receivers); `program` joins
the chunks; `tracing` ties receivers to the optimizers built in the file; `constructions`,
`training_loop` and `noqa` turn that into findings (`findings`); `analyze` runs them in order.
"""
