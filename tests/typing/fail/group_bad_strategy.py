"""configure_group's strategy is round-robin, random or least-busy."""

from peepsy import Master

master = Master()
master.configure_group("pool", strategy="fastest")  # E: arg-type
