"""peepsy._actions: typed Action declarations, handler entries and the registry."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import BaseModel, Field

from peepsy import Action, Child, EncodeError, Master, PeepsyValidationError
from peepsy._actions import HandlerEntry, Handlers


class Params(BaseModel):
    first_name: str = Field(alias="firstName")
    age: int


class Result(BaseModel):
    greeting: str


@dataclasses.dataclass
class Point:
    x: int
    y: int


GREET = Action("greet", Params, Result)


# --- Action -------------------------------------------------------------------------------


def test_action_holds_its_name_and_types() -> None:
    assert GREET.name == "greet"
    assert (GREET.request_type, GREET.response_type) == (Params, Result)
    assert repr(GREET) == "Action('greet', Params, Result)"


def test_action_repr_shows_generic_types_whole() -> None:
    # list[int] has __name__ "list": a repr built on __name__ alone loses the [int].
    assert repr(Action("sum", list[int], int)) == "Action('sum', list[int], int)"


@pytest.mark.parametrize("name", ["", "x" * 257])
def test_action_name_is_1_to_256_characters(name: str) -> None:
    with pytest.raises(ValueError, match=r"1\.\.256"):
        Action(name, int, int)
    assert Action("x" * 256, int, int).name == "x" * 256


def test_dump_uses_json_values_and_aliases() -> None:
    assert GREET.dump_request(Params(firstName="Ada", age=36)) == {"firstName": "Ada", "age": 36}
    assert GREET.dump_response(Result(greeting="hi")) == {"greeting": "hi"}
    assert Action("p", Point, Point).dump_request(Point(1, 2)) == {"x": 1, "y": 2}


def test_data_that_cannot_be_written_is_an_encode_error() -> None:
    anything = Action("any", dict, dict)
    with pytest.raises(EncodeError, match="cannot write the request data of 'any'"):
        anything.dump_request({"x": object()})
    with pytest.raises(EncodeError, match="cannot write the response data of 'any'"):
        anything.dump_response({"x": object()})


def test_parse_validates_into_the_declared_types() -> None:
    assert GREET.parse_request({"firstName": "Ada", "age": "36"}) == Params(firstName="Ada", age=36)
    assert GREET.parse_response({"greeting": "hi"}) == Result(greeting="hi")
    assert Action("p", Point, list[int]).parse_request({"x": 1, "y": 2}) == Point(1, 2)


def test_invalid_request_data_names_the_action_and_every_path() -> None:
    with pytest.raises(PeepsyValidationError) as info:
        GREET.parse_request({"age": "old"})
    error = info.value
    assert error.action == "greet"
    assert error.code == "PEEPSY_VALIDATION"
    assert [i.path for i in error.issues] == ["$.firstName", "$.age"]
    assert str(error).startswith("request data of action 'greet' is invalid: $.firstName: ")
    assert "$.age: " in str(error)
    # The validation error stays out of the chain (raised ``from None``).
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_invalid_response_data_says_response() -> None:
    with pytest.raises(PeepsyValidationError, match="response data of action 'nums'") as info:
        Action("nums", int, list[int]).parse_response([1, "two", 3])
    assert [i.path for i in info.value.issues] == ["$[1]"]
    with pytest.raises(PeepsyValidationError) as info:
        Action("n", int, int).parse_response({"not": "an int"})
    assert [i.path for i in info.value.issues] == ["$"]


# --- HandlerEntry.run ------------------------------------------------------------------------


def entry(fn: Any, action: Action[Any, Any] | None = None, *, inline: bool = False) -> HandlerEntry:
    return HandlerEntry("test", fn, action, inline)


def test_a_coroutine_function_runs_on_the_loop() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()

        async def handler(data: int) -> tuple[int, bool]:
            await asyncio.sleep(0)
            return data + 1, threading.get_ident() == loop_thread

        item = entry(handler)
        assert item.is_async
        assert await item.run(1, None) == (2, True)

    asyncio.run(main())


def test_a_plain_function_runs_in_the_executor_unless_inline() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()

        def where(data: Any) -> bool:
            return threading.get_ident() == loop_thread

        assert await entry(where).run(None, None) is False
        with ThreadPoolExecutor(1, thread_name_prefix="given") as pool:
            names = await entry(lambda data: threading.current_thread().name).run(None, pool)
            assert names.startswith("given")
        assert await entry(where, inline=True).run(None, None) is True

    asyncio.run(main())


def test_an_inline_function_returning_an_awaitable_is_awaited() -> None:
    async def main() -> None:
        async def later(data: int) -> int:
            return data * 10

        def start_later(data: int) -> Coroutine[Any, Any, int]:
            return later(data)  # not a coroutine function, but returns an awaitable

        assert await entry(start_later, inline=True).run(4, None) == 40

    asyncio.run(main())


def test_a_partial_of_a_coroutine_function_is_async() -> None:
    async def main() -> None:
        async def add(n: int, data: int) -> int:
            return n + data

        item = entry(functools.partial(add, 5))
        assert item.is_async
        assert await item.run(1, None) == 6

    asyncio.run(main())


def test_a_callable_returning_an_awaitable_is_awaited_when_not_inline() -> None:
    # register_handler accepts Callable[[Req], Awaitable[Resp]]: an object with an async
    # __call__, or a lambda that returns a coroutine, is one.
    class AsyncCallable:
        async def __call__(self, data: int) -> int:
            return data * 2

    async def main() -> None:
        result = await entry(AsyncCallable()).run(21, None)
        if inspect.iscoroutine(result):
            result.close()  # never awaited: close it, so that only the assert reports
        assert result == 42

    asyncio.run(main())


def test_a_typed_entry_parses_the_request_and_dumps_the_response() -> None:
    async def main() -> None:
        def greet(params: Params) -> Result:
            assert isinstance(params, Params)
            return Result(greeting=f"hi {params.first_name}")

        item = entry(greet, GREET, inline=True)
        assert await item.run({"firstName": "Ada", "age": 1}, None) == {"greeting": "hi Ada"}
        with pytest.raises(PeepsyValidationError, match="request data of action 'greet'"):
            await item.run({"age": 1}, None)

    asyncio.run(main())


def test_an_untyped_entry_passes_data_through() -> None:
    async def main() -> None:
        data = {"a": [1]}
        assert await entry(lambda d: d, inline=True).run(data, None) is data

    asyncio.run(main())


# --- Handlers and the registry ------------------------------------------------------------------


def test_handlers_table() -> None:
    handlers = Handlers()
    assert len(handlers) == 0
    handlers.add("b", print)
    handlers.add(GREET, print, inline=True)
    assert "b" in handlers
    assert "greet" in handlers
    assert "zzz" not in handlers
    assert len(handlers) == 2
    assert handlers.names() == ["b", "greet"]
    greet = handlers.get("greet")
    assert greet is not None
    assert (greet.name, greet.action, greet.inline) == ("greet", GREET, True)
    b = handlers.get("b")
    assert b is not None
    assert (b.action, b.inline) == (None, False)
    assert handlers.get("zzz") is None
    assert handlers.remove("b") is True
    assert handlers.remove("b") is False
    assert handlers.names() == ["greet"]


def test_registering_again_replaces() -> None:
    handlers = Handlers()
    handlers.add("x", len)
    handlers.add("x", abs)
    item = handlers.get("x")
    assert item is not None
    assert item.fn is abs
    assert len(handlers) == 1


@pytest.mark.parametrize("name", ["", "x" * 257, 5, None])
def test_bad_action_names_are_refused(name: Any) -> None:
    with pytest.raises(ValueError, match=r"1\.\.256 characters"):
        Handlers().add(name, print)


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="a handler must be callable, not int"):
        Handlers().add("x", 5)  # type: ignore[arg-type]


@pytest.mark.parametrize("registry", [Child, Master])
def test_the_registry_api(registry: type[Child] | type[Master[Any, Any]]) -> None:
    owner = registry()

    @owner.handler("b")
    def b(data: Any) -> Any:
        return data

    @owner.handler(GREET, inline=True)
    def greet(params: Params) -> Result:
        return Result(greeting=params.first_name)

    owner.register_handler("a", b)
    assert b(1) == 1  # the decorator hands the function back
    assert greet(Params(firstName="x", age=1)) == Result(greeting="x")
    assert owner.actions == ["a", "b", "greet"]
    assert owner.unregister_handler(GREET) is True
    assert owner.unregister_handler("a") is True
    assert owner.unregister_handler("a") is False
    assert owner.actions == ["b"]
