"""The reference child (worker) implementation."""

from peepsy.child._child import Child, Mode
from peepsy.session._context import RequestContext, current_request

__all__ = ["Child", "Mode", "RequestContext", "current_request"]
