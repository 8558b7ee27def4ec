"""The children the benchmark's lanes talk to; each runs as a script (no peepsy import
but ``peepsy_echo``), so that its start-up and its loop stay as small as they can be."""
