"""Transforms: the fixes as libcst rewrites. `plan` asks each rewrite family (`optimizers`,
`steps`, `schedules`, `clipping`, `imports`) what it changes (`changes`); `construction` builds
the Optax expression's nodes; `render` applies the plan to the chunks' trees."""
