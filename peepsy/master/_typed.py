"""The run-time half of ``Master[ReqT, RespT]``: what mypy believes, checked.

A subscripted master validates the data of string actions it sends against ``ReqT``
and the data of the replies it returns against ``RespT``, so that ``Reply[AddResult]``
holds an ``AddResult`` at run time too. Python records the type arguments on the
instance (``__orig_class__``) only after ``__init__`` returns, so they are looked up at
the first request, once; the adapters are built once per type pair and shared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar, get_args, get_origin

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from peepsy._actions import ActionLike
from peepsy._errors import EncodeError, PeepsyValidationError
from peepsy.master._routing import checked_reply_call
from peepsy.master._stats import Reply, make_reply


class TypedData:
    """The adapters of one ``(ReqT, RespT)`` pair; ``None`` for a side typed ``Any``."""

    __slots__ = ("label", "reply_kind", "request", "request_name", "response", "response_name")

    def __init__(self, request: Any, response: Any) -> None:
        self.request = None if _unchecked(request) else TypeAdapter[Any](request)
        self.response = None if _unchecked(response) else TypeAdapter[Any](response)
        self.request_name = _type_name(request)
        self.response_name = _type_name(response)
        self.label = f"Master[{self.request_name}, {self.response_name}]"
        #: What the router sends at once for this master: its reply checked as it lands.
        self.reply_kind = None if self.response is None else checked_reply_call(self.check)

    def dump_request(self, action: str, target: str, data: Any) -> Any:
        """``data`` validated against ``ReqT`` and written as JSON data (a model to its
        fields). ``None`` is "no data", which the signature allows whatever ``ReqT``."""
        adapter = self.request
        if adapter is None or data is None:
            return data
        try:
            value = adapter.validate_python(data)
            return adapter.dump_python(value, mode="json", by_alias=True)
        except ValidationError as exc:
            raise _invalid(
                exc,
                action,
                f"the data for {action!r} to {target!r} is not a valid "
                f"{self.request_name} ({self.label}); nothing was sent",
            ) from None
        except (PydanticSerializationError, UnicodeError) as exc:  # bytes that are not UTF-8
            raise EncodeError(f"cannot write the request data of {action!r}: {exc}") from exc

    async def checked(self, call: Coroutine[Any, Any, Reply[Any]]) -> Reply[Any]:
        """The reply ``call`` resolves to, its data validated against ``RespT``."""
        return self.check(await call)

    def check(self, reply: Reply[Any]) -> Reply[Any]:
        """``reply`` with its data validated against ``RespT`` (only called when typed)."""
        adapter = self.response
        assert adapter is not None
        try:
            data = adapter.validate_python(reply.data)
        except ValidationError as exc:
            raise _invalid(
                exc,
                reply.action,
                f"the reply to {reply.action!r} from {reply.target!r} is "
                f"not a valid {self.response_name} ({self.label})",
            ) from None
        return make_reply(reply.status, data, reply.id, reply.target, reply.action)


def typed_data(master: object, origin: type) -> TypedData | None:
    """The checks ``master`` owes its type arguments as an ``origin[ReqT, RespT]``, or
    None when it has none to make (unsubscripted, or both typed ``Any``)."""
    args = _type_arguments(master, origin)
    if len(args) != 2 or all(_unchecked(arg) for arg in args):
        return None
    try:
        return _shared(*args)
    except TypeError:  # an unhashable type argument: this master's own adapters
        return TypedData(*args)


def checked_request(
    typed: TypedData | None,
    send: Callable[..., Coroutine[Any, Any, Any]],
    action: str | ActionLike[Any, Any],
    target: str,
    data: Any,
    *args: Any,
) -> Coroutine[Any, Any, Any]:
    """``send(action, target, data, *args)`` (the router's request) with ``typed``'s
    checks on both sides; a typed :class:`~peepsy.Action` checks its own data."""
    if typed is None or not isinstance(action, str):
        return send(action, target, data, *args)
    try:
        data = typed.dump_request(action, target, data)
    except Exception as exc:  # a model's own validator may raise anything
        return _failing(exc)
    # Sent now, as an unchecked request is; only its reply waits for the check, made as
    # the reply lands when the router sent it at once, else in a coroutine around it.
    kind = typed.reply_kind
    if kind is None:
        return send(action, target, data, *args)
    call = send(action, target, data, *args, kind)
    return call if isinstance(call, kind) else typed.checked(call)


async def _failing(exc: BaseException) -> Any:
    # A request refused before sending still raises where the caller awaits.
    raise exc


@functools.lru_cache(maxsize=256)
def _shared(request: object, response: object) -> TypedData:
    return TypedData(request, response)


def _type_arguments(master: object, origin: type) -> tuple[object, ...]:
    alias = vars(master).get("__orig_class__")
    if alias is not None:
        return get_args(alias)
    # class AddMaster(Master[AddParams, AddResult]): the arguments are on a base.
    for cls in type(master).__mro__:
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is origin:
                return get_args(base)
    return ()


def _unchecked(tp: object) -> bool:
    # A type variable left open (class M(Master[ReqT, RespT])) promises nothing either.
    return tp is Any or tp is object or isinstance(tp, TypeVar)


def _type_name(tp: object) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp).replace("typing.", "")


def _invalid(exc: ValidationError, action: str, what: str) -> PeepsyValidationError:
    issues = PeepsyValidationError.from_pydantic(exc, action=action, what="data").issues
    listed = "; ".join(str(issue) for issue in issues)
    return PeepsyValidationError(f"{what}: {listed}", action=action, issues=issues)


#: A master whose type arguments have not been looked up yet (before its first request).
UNRESOLVED: Final = TypedData(Any, Any)
