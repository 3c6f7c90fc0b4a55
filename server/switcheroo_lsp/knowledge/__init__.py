"""What torch.optim becomes in Optax, as data: the optimizer catalog and the scheduler table,
and the emitter that turns a row and a call's arguments into the faithful Optax expression.
Messages, hovers, rewrites, docs/optimizers.md and the numerical tests all read these."""

# The rows beyond torch.optim register themselves in catalog.OPTIMIZERS when this package loads.
from . import libraries  # noqa: E402,F401
