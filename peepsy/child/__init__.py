"""The reference child (worker) implementation."""

from peepsy.child._child import Child, Mode

__all__ = ["Child", "Mode"]
