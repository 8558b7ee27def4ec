"""Typed action declarations and the handler registry that master and child share."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, Generic, Protocol, TypeVar, overload

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from peepsy._errors import EncodeError, PeepsyValidationError

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Req_contra = TypeVar("Req_contra", contravariant=True)
Resp_co = TypeVar("Resp_co", covariant=True)


class ActionLike(Protocol[Req_contra, Resp_co]):
    """What ``request()`` needs of a typed action. :class:`Action` is one.

    Contravariant in the request and covariant in the response, so that the result of
    ``await master.request(add, ...)`` can go wherever an ``AddResult`` fits (a list of
    ``BaseModel``, say), while a request model of the wrong type is still refused.
    """

    @property
    def name(self) -> str: ...
    def dump_request(self, value: Req_contra, /) -> Any: ...
    def parse_response(self, data: Any, /) -> Resp_co: ...


class Action(Generic[Req, Resp]):
    """An action name with the types of its request and response data.

    ::

        add = Action("add", AddParams, AddResult)
        result = await master.request(add, "w1", AddParams(a=1, b=2))  # an AddResult

    Any type pydantic can validate works (models, dataclasses, ``list[int]``, ...).
    ``Req`` is invariant on purpose: passing the wrong request type is a type error.
    """

    __slots__ = ("_request_adapter", "_response_adapter", "name", "request_type", "response_type")

    name: str
    request_type: type[Req]
    response_type: type[Resp]

    @overload
    def __init__(self, name: str, request: type[Req], response: type[Resp]) -> None: ...
    @overload
    def __init__(self: Action[Any, Any], name: str, request: object, response: object) -> None:
        """Special forms (``int | None``, ``Literal[...]``, ``Annotated[...]``) are not
        classes; such an action is typed ``Action[Any, Any]``."""

    def __init__(self, name: str, request: Any, response: Any) -> None:
        if not name or len(name) > 256:
            raise ValueError("an action name is 1..256 characters")
        self.name = name
        self.request_type = request
        self.response_type = response
        self._request_adapter: TypeAdapter[Req] = TypeAdapter(request)
        self._response_adapter: TypeAdapter[Resp] = TypeAdapter(response)

    def __repr__(self) -> str:
        req, resp = _type_name(self.request_type), _type_name(self.response_type)
        return f"Action({self.name!r}, {req}, {resp})"

    def dump_request(self, value: Req) -> Any:
        """The request data as JSON-ready Python (dicts, lists, str, ...), by alias.

        Raises:
            EncodeError: ``value`` cannot be written as the request type (a value of the
                wrong type inside a model, say).
        """
        try:
            return self._request_adapter.dump_python(value, mode="json", by_alias=True)
        except PydanticSerializationError as exc:
            raise EncodeError(f"cannot write the request data of {self.name!r}: {exc}") from exc

    def dump_response(self, value: Resp) -> Any:
        """The response data as JSON-ready Python (dicts, lists, str, ...), by alias.

        Raises:
            EncodeError: ``value`` cannot be written as the response type.
        """
        try:
            return self._response_adapter.dump_python(value, mode="json", by_alias=True)
        except PydanticSerializationError as exc:
            raise EncodeError(f"cannot write the response data of {self.name!r}: {exc}") from exc

    def parse_request(self, data: Any) -> Req:
        """Validate request data as it came off the wire into the request type.

        Raises:
            PeepsyValidationError: ``data`` does not fit the request type; its ``issues``
                name each problem by JSON path.
        """
        try:
            return self._request_adapter.validate_python(data)
        except ValidationError as exc:
            raise PeepsyValidationError.from_pydantic(
                exc, action=self.name, what="request data"
            ) from None

    def parse_response(self, data: Any) -> Resp:
        """Validate response data as it came off the wire into the response type.

        Raises:
            PeepsyValidationError: ``data`` does not fit the response type; its ``issues``
                name each problem by JSON path.
        """
        try:
            return self._response_adapter.validate_python(data)
        except ValidationError as exc:
            raise PeepsyValidationError.from_pydantic(
                exc, action=self.name, what="response data"
            ) from None


def _type_name(tp: object) -> str:
    # A class by its name; list[int], int | None and other forms as they are written.
    return tp.__name__ if isinstance(tp, type) else repr(tp)


SyncHandler = Callable[[Any], Any]
AsyncHandler = Callable[[Any], Awaitable[Any]]
AnyHandler = Callable[[Any], Any]
H = TypeVar("H", bound=AnyHandler)


class HandlerEntry:
    """A registered handler and how to run it."""

    __slots__ = ("action", "fn", "inline", "is_async", "name")

    def __init__(
        self, name: str, fn: AnyHandler, action: Action[Any, Any] | None, inline: bool
    ) -> None:
        self.name = name
        self.fn = fn
        self.action = action
        self.is_async = inspect.iscoroutinefunction(fn)
        self.inline = inline

    async def run(self, data: Any, executor: Executor | None) -> Any:
        """Run the handler on ``data``; return JSON-ready data or raise.

        Coroutine functions run on the event loop. Plain functions run in ``executor``
        (the loop's default executor when None), so a long computation never stalls the
        loop, unless registered ``inline``.
        """
        action = self.action
        arg = action.parse_request(data) if action is not None else data
        if self.is_async:
            result = await self.fn(arg)
        elif self.inline:
            result = self.fn(arg)
            if inspect.isawaitable(result):
                result = await result
        else:
            # In a copy of the caller's context, as asyncio.to_thread does: the thread
            # sees the request's context (peepsy.current_request()).
            run = contextvars.copy_context().run
            result = await asyncio.get_running_loop().run_in_executor(executor, run, self.fn, arg)
            if inspect.isawaitable(result):  # a plain callable that returned a coroutine
                result = await result
        if action is not None:
            return action.dump_response(result)
        return result


class Handlers:
    """Handlers for incoming requests, by action name."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, HandlerEntry] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> HandlerEntry | None:
        return self._entries.get(name)

    def add(self, action: str | Action[Any, Any], fn: AnyHandler, *, inline: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"a handler must be callable, not {type(fn).__name__}")
        typed = action if isinstance(action, Action) else None
        name = action.name if isinstance(action, Action) else action
        if not isinstance(name, str) or not 0 < len(name) <= 256:
            raise ValueError(f"an action name is a string of 1..256 characters, not {name!r}")
        self._entries[name] = HandlerEntry(name, fn, typed, inline)

    def remove(self, name: str) -> bool:
        return self._entries.pop(name, None) is not None


class HandlerRegistry:
    """The registration API of :class:`~peepsy.Master` and :class:`~peepsy.Child`."""

    _handlers: Handlers

    # Sync and async each on its own: mypy infers a lambda's parameter type from a plain
    # Callable but not from a union of them. Sync first, so that a lambda's mistakes are
    # reported against the signature it was meant for.
    @overload
    def register_handler(
        self, action: Action[Req, Resp], fn: Callable[[Req], Resp], *, inline: bool = ...
    ) -> None: ...
    @overload
    def register_handler(
        self,
        action: Action[Req, Resp],
        fn: Callable[[Req], Awaitable[Resp]],
        *,
        inline: bool = ...,
    ) -> None: ...
    @overload
    def register_handler(self, action: str, fn: AnyHandler, *, inline: bool = ...) -> None: ...
    def register_handler(
        self, action: str | Action[Any, Any], fn: AnyHandler, *, inline: bool = False
    ) -> None:
        """Register ``fn`` for requests to ``action`` (a name or a typed :class:`Action`).

        ``fn`` takes the request data and returns the response data; it may be a
        coroutine function. A plain function runs in a worker thread so that it cannot
        stall the channel, unless ``inline=True`` (for tiny, fast functions).
        Registering an action again replaces its handler.
        """
        self._handlers.add(action, fn, inline=inline)

    @overload
    def handler(
        self, action: Action[Req, Resp], *, inline: bool = ...
    ) -> TypedDecorator[Req, Resp]: ...
    @overload
    def handler(self, action: str, *, inline: bool = ...) -> Callable[[H], H]: ...
    def handler(
        self, action: str | Action[Any, Any], *, inline: bool = False
    ) -> Callable[[Any], Any]:
        """Decorator form of :meth:`register_handler`."""

        def decorate(fn: Any) -> Any:
            self._handlers.add(action, fn, inline=inline)
            return fn

        return decorate

    def unregister_handler(self, action: str | Action[Any, Any]) -> bool:
        """Remove the handler of ``action`` (a name or an :class:`Action`); requests for it are
        then answered 404. Returns whether there was one."""
        return self._handlers.remove(action.name if isinstance(action, Action) else action)

    @property
    def actions(self) -> list[str]:
        """The names of the registered actions, sorted."""
        return self._handlers.names()


class TypedDecorator(Protocol[Req, Resp]):
    """What ``@handler(action)`` returns for a typed action: the decorated function keeps
    its sync or async signature."""

    # Sync first, as in register_handler: mypy reports a function that fits neither
    # against the first overload, and a wrong plain function must not be told that it
    # should return an Awaitable. (A wrong coroutine function is then shown against the
    # plain signature, with its Coroutine[..., WrongType] next to the expected type.)
    @overload
    def __call__(self, fn: Callable[[Req], Resp]) -> Callable[[Req], Resp]: ...
    @overload
    def __call__(
        self, fn: Callable[[Req], Awaitable[Resp]]
    ) -> Callable[[Req], Awaitable[Resp]]: ...
