from __future__ import annotations

import gc
from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """Collect what each test here left once pytest has let go of its log records: a
    logged exception's traceback keeps the frames of the master that logged it (and so
    its transports) alive until then. See ``_support.run``."""
    try:
        return (yield)
    finally:
        gc.collect()
