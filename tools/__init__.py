"""Developer tools: schema bundling and model generation (not shipped in the wheel)."""
