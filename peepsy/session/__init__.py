"""What both ends of a peepsy channel do at run time, written once.

The master runs one :class:`Session` per child and the child one for its master: the
calls each side makes (futures, deadlines, retries, cancellation), the serving of the
other side's requests (:class:`Server`: handlers, scheduling, answers, each handler with
its :class:`RequestContext`), and a listener for the rest. The protocol itself is in
:mod:`peepsy.protocol`; bytes move in :mod:`peepsy.transport`.
"""

from peepsy.session._call import Call, Slot, answer_of, expire
from peepsy.session._context import RequestContext, current_request
from peepsy.session._deadlines import Deadlines
from peepsy.session._retry import RetryPolicy
from peepsy.session._serving import DEFAULT_QUEUE_TIMEOUT_MS, Server
from peepsy.session._session import MAX_CANCELLED, Session, SessionListener

__all__ = [
    "DEFAULT_QUEUE_TIMEOUT_MS",
    "MAX_CANCELLED",
    "Call",
    "Deadlines",
    "RequestContext",
    "RetryPolicy",
    "Server",
    "Session",
    "SessionListener",
    "Slot",
    "answer_of",
    "current_request",
    "expire",
]
