"""Statistics are frozen snapshots: assigning to one is an error."""

from peepsy import Master

master = Master()
stats = master.get_process_stats("w1")
stats.restarts = 0  # E: misc
