"""Master conformance: the suite plays a master's children (stub processes that relay to
the suite) and drives the master through its harness (conformance/MASTER.md)."""
