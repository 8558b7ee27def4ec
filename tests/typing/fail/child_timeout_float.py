"""Timeouts are integer milliseconds, not float seconds."""

from peepsy import Child

child = Child(timeout=2.5)  # E: arg-type
