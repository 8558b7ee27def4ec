"""Smoke tests of the benchmark: that it runs and what it writes, never how fast."""
