"""switcheroo-lsp: find torch.optim code and rewrite it as numerically faithful Optax."""

__version__ = "0.1.0"
