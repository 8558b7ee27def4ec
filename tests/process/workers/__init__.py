"""Small worker programs that the real-process tests spawn (one per behaviour)."""
