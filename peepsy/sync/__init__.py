"""Blocking APIs for scripts: :class:`Master` and :class:`Executor` (docs/scripts.md)."""

from peepsy.sync._executor import Executor
from peepsy.sync._master import Master

__all__ = ["Executor", "Master"]
