"""One retry policy for every request peepsy sends, from the master or from a child."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final, TypeVar

from peepsy._errors import (
    PeepsyError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyTimeoutError,
    RemoteError,
)
from peepsy._failures import CANCELLED_STATUS, NOT_RUN_STATUSES

T = TypeVar("T")
log = logging.getLogger("peepsy.session")

#: Failures after which the request cannot have completed, or cannot be told to have:
#: no answer in time, the process gone, no such target, and answers saying it never ran.
RETRYABLE: Final = (PeepsyTimeoutError, PeepsyProcessError, PeepsyNotFoundError, RemoteError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Up to ``retries`` more attempts, ``delay`` ms apart, after a failure that left
    the request unrun or unknown (RESP-2): a timeout, a lost process, an unknown target,
    a 408 or 503 answer, and the answer statuses listed in ``statuses``. A 499 (its
    sender cancelled it) is never retried, even when listed: someone gave it up."""

    retries: int = 0
    delay: int = 1000
    statuses: Collection[int] = ()

    def allows(self, exc: PeepsyError) -> bool:
        """Whether a request that failed with ``exc`` may be tried again under this policy."""
        if isinstance(exc, RemoteError):
            status = exc.status
            if status == CANCELLED_STATUS:
                return False
            return status in NOT_RUN_STATUSES or status in self.statuses
        return isinstance(exc, RETRYABLE)

    async def run(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """``attempt()`` until it succeeds, fails for good, or the attempts run out."""
        attempts = 1 + self.retries
        number = 1
        while True:
            try:
                return await attempt()
            except RETRYABLE as exc:
                if number >= attempts or not self.allows(exc):
                    raise
                number += 1
                log.info("retrying %s (attempt %d of %d): %s", what, number, attempts, exc)
                await asyncio.sleep(self.delay / 1000)
