"""creditbus: the credit-archive integration bus (shared core)."""

__version__ = "0.1.0"
