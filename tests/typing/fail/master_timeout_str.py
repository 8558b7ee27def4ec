"""Timeouts are integer milliseconds, never strings (the Master's default too)."""

from peepsy import Master

master = Master(timeout="5000")  # E: arg-type
