"""What both ends of a peepsy channel do at run time, written once.

The master runs one :class:`Session` per child and the child one for its master: the
calls each side makes (futures, deadlines, retries), the serving of the other side's
requests (:class:`Server`: handlers, scheduling, answers), and a listener for the
rest. The protocol itself is in :mod:`peepsy.protocol`; bytes move in
:mod:`peepsy.transport`.
"""

from peepsy.session._deadlines import Deadlines
from peepsy.session._retry import RetryPolicy
from peepsy.session._serving import DEFAULT_QUEUE_TIMEOUT_MS, Server
from peepsy.session._session import Call, Session, SessionListener, Slot, answer_of, expire

__all__ = [
    "DEFAULT_QUEUE_TIMEOUT_MS",
    "Call",
    "Deadlines",
    "RetryPolicy",
    "Server",
    "Session",
    "SessionListener",
    "Slot",
    "answer_of",
    "expire",
]
