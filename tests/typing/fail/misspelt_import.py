"""A misspelt name from peepsy is an error, not a silent Any (lazy imports stay typed)."""

from peepsy import Mastr  # E: attr-defined

master = Mastr()
