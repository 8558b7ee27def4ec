"""peepsy.sync.Master takes durations as integer milliseconds, as peepsy.Master does."""

import peepsy.sync

master = peepsy.sync.Master(timeout="5s")  # E: arg-type
