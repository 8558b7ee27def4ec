"""``Master[ReqT, RespT]`` at run time: the data of string actions is validated against
``ReqT`` before it is sent, and the data of their replies against ``RespT``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Generic

import pytest
from pydantic import BaseModel, field_validator
from typing_extensions import TypeVar

from peepsy import Action, EncodeError, Master, PeepsyValidationError, RemoteError, Reply
from peepsy.master._typed import typed_data
from tests.master._support import Farm, hold, run, until


class AddParams(BaseModel):
    a: int
    b: int


class AddResult(BaseModel):
    sum: int


class Loose(BaseModel):
    value: Any


def answer_sum(peer: Any, request: Any) -> None:
    data = request.data
    peer.reply(request, data={"sum": data["a"] + data["b"]})


def answer_text(peer: Any, request: Any) -> None:
    peer.reply(request, data="not a result")


def test_a_right_reply_becomes_the_response_type() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_sum)
        async with Master[AddParams, AddResult](launcher=farm.launcher()) as master:
            peer = await farm.spawn(master, "w1")
            reply = await master.request("add", "w1", AddParams(a=1, b=2))
            assert reply == Reply(200, AddResult(sum=3), reply.id, "w1", "add")
            # A model is written as its JSON fields; a dict is checked, then written.
            await master.request("add", "w1", {"a": "4", "b": 5})  # type: ignore[call-overload]
            assert [r.data for r in peer.requests] == [{"a": 1, "b": 2}, {"a": 4, "b": 5}]

    run(main())


def test_a_wrong_reply_is_a_validation_error_naming_what_was_expected() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_text)
        async with Master[AddParams, AddResult](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            with pytest.raises(PeepsyValidationError) as caught:
                await master.request("add", "w1", AddParams(a=1, b=2))
            error = caught.value
            assert error.action == "add"
            assert [issue.path for issue in error.issues] == ["$"]
            assert str(error).startswith(
                "the reply to 'add' from 'w1' is not a valid AddResult "
                "(Master[AddParams, AddResult]): $: "
            )

    run(main())


def test_wrong_data_raises_where_awaited_and_nothing_is_sent() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_sum)
        async with Master[AddParams, AddResult](launcher=farm.launcher()) as master:
            peer = await farm.spawn(master, "w1")
            pending = master.request("add", "w1", {"a": "one"})  # type: ignore[call-overload]
            assert asyncio.iscoroutine(pending)
            with pytest.raises(PeepsyValidationError) as caught:
                await pending
            assert caught.value.action == "add"
            assert [issue.path for issue in caught.value.issues] == ["$.a", "$.b"]
            assert "is not a valid AddParams" in str(caught.value)
            assert "nothing was sent" in str(caught.value)
            assert peer.requests == []
            assert master.active_requests == 0

    run(main())


def test_data_that_validates_but_cannot_be_written_is_an_encode_error() -> None:
    async def main() -> None:
        farm = Farm()
        async with Master[Loose, Any](launcher=farm.launcher()) as master:
            peer = await farm.spawn(master, "w1")
            with pytest.raises(EncodeError, match="request data of 'echo'"):
                await master.request("echo", "w1", Loose(value=object()))
            with pytest.raises(EncodeError, match="request data of 'x'"):
                await Master[bytes, Any](launcher=farm.launcher()).request("x", "w1", b"\xff")
            assert peer.requests == []

    run(main())


def test_a_checked_request_is_still_sent_at_once() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with Master[AddParams, AddResult](launcher=farm.launcher()) as master:
            peer = await farm.spawn(master, "w1")
            pending = master.request("add", "w1", AddParams(a=1, b=2))
            await until(lambda: len(peer.requests) == 1)  # before anyone awaits it
            peer.reply(peer.requests[0], data={"sum": 3})
            assert (await pending).data == AddResult(sum=3)

    run(main())


def test_no_data_is_sent_as_no_data() -> None:
    async def main() -> None:
        farm = Farm()
        async with Master[AddParams, int | None](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            reply = await master.request("echo", "w1")
            assert reply.data is None

    run(main())


def test_opting_out_returns_the_raw_data() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_text)
        master = Master[AddParams, AddResult](launcher=farm.launcher(), validate_types=False)
        async with master:
            peer = await farm.spawn(master, "w1")
            pending = master.request("add", "w1", {"a": "one"})  # type: ignore[call-overload]
            assert type(pending).__name__ == "_ReplyCall"  # the unchecked fast path
            reply = await pending
            assert reply.data == "not a result"
            assert peer.requests[0].data == {"a": "one"}

    run(main())


def test_validate_types_is_a_bool() -> None:
    with pytest.raises(TypeError, match="validate_types"):
        Master(validate_types=1)  # type: ignore[arg-type]


def test_an_unsubscripted_master_keeps_the_fast_path() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_text)
        for master in (
            Master(launcher=farm.launcher()),
            Master[Any, Any](launcher=farm.launcher()),
        ):
            async with master:
                await farm.spawn(master, "w1")
                for _ in range(2):  # the first request looks the type arguments up
                    pending = master.request("add", "w1", {"a": "one"})
                    assert type(pending).__name__ == "_ReplyCall"
                    assert (await pending).data == "not a result"

    run(main())


def test_a_typed_action_checks_itself() -> None:
    async def main() -> None:
        add = Action("add", AddParams, AddResult)
        farm = Farm(auto=answer_sum)
        async with Master[int, str](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            assert await master.request(add, "w1", AddParams(a=1, b=2)) == AddResult(sum=3)

    run(main())


def test_one_side_typed_checks_that_side_only() -> None:
    async def main() -> None:
        farm = Farm()
        async with Master[Any, int](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            assert (await master.request("echo", "w1", "7")).data == 7
            with pytest.raises(PeepsyValidationError, match="not a valid int"):
                await master.request("echo", "w1", {"any": "thing"})
        async with Master[int, Any](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w2")
            # "7" is checked as an int, then sent as one.
            assert (await master.request("echo", "w2", "7")).data == 7  # type: ignore[call-overload]
            with pytest.raises(PeepsyValidationError, match="not a valid int"):
                await master.request("echo", "w2", "seven")  # type: ignore[call-overload]

    run(main())


ReqT = TypeVar("ReqT", default=Any)
RespT = TypeVar("RespT", default=Any)


class AddMaster(Master[AddParams, AddResult]):
    """Type arguments on a base class count as on the instance."""


class MyMaster(Master[ReqT, RespT], Generic[ReqT, RespT]):
    """A generic subclass: open type parameters promise nothing."""


def test_type_arguments_are_found_where_python_keeps_them() -> None:
    assert typed_data(Master(), Master) is None
    assert typed_data(Master[Any, Any](), Master) is None
    assert typed_data(MyMaster(), Master) is None
    typed = typed_data(AddMaster(), Master)
    assert typed is not None
    assert typed.label == "Master[AddParams, AddResult]"
    # Adapters are built once per type pair and shared by every master of that pair.
    assert typed_data(Master[AddParams, AddResult](), Master) is typed
    subscripted = typed_data(MyMaster[int, str](), Master)
    assert subscripted is not None
    assert subscripted.label == "Master[int, str]"


def test_an_unhashable_type_argument_gets_its_own_adapters() -> None:
    unhashable = Annotated[int, []]
    first = typed_data(Master[unhashable, Any](), Master)
    second = typed_data(Master[unhashable, Any](), Master)
    assert first is not None
    assert second is not None
    assert first is not second
    assert first.request_name == "Annotated[int, []]"


def test_a_subclass_validates_its_replies() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_text)
        async with AddMaster(launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            with pytest.raises(PeepsyValidationError, match="not a valid AddResult"):
                await master.request("add", "w1", AddParams(a=1, b=2))

    run(main())


def test_replies_are_checked_on_the_slow_path_too() -> None:
    async def main() -> None:
        farm = Farm(auto=answer_sum)
        async with Master[AddParams, AddResult](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            # With retries the request takes the router's coroutine, not the call sent
            # at once; the check wraps it.
            reply = await master.request("add", "w1", AddParams(a=1, b=2), retries=1)
            assert reply.data == AddResult(sum=3)
            farm.peer("w1").auto = answer_text
            with pytest.raises(PeepsyValidationError, match="not a valid AddResult"):
                await master.request("add", "w1", AddParams(a=1, b=2), retries=1)

    run(main())


def test_a_failure_status_is_a_remote_error_as_ever() -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply_raw(request.id, 404, error="nope"))
        async with Master[AddParams, AddResult](launcher=farm.launcher()) as master:
            await farm.spawn(master, "w1")
            with pytest.raises(RemoteError) as caught:
                await master.request("add", "w1", AddParams(a=1, b=2))
            assert caught.value.status == 404

    run(main())


class Picky(BaseModel):
    value: int

    @field_validator("value")
    @classmethod
    def refuse(cls, value: int) -> int:
        if value == 13:
            raise KeyError("unlucky")  # not a ValueError: pydantic lets it through
        return value


def test_a_validator_raising_anything_fails_only_its_request() -> None:
    async def main() -> None:
        farm = Farm()
        async with Master[Picky, Picky](launcher=farm.launcher()) as master:
            peer = await farm.spawn(master, "w1")
            pending = master.request("echo", "w1", {"value": 13})  # type: ignore[call-overload]
            with pytest.raises(KeyError, match="unlucky"):
                await pending
            assert peer.requests == []
            # A reply that makes the validator raise fails that request only.
            peer.auto = lambda peer, request: peer.reply(request, data={"value": 13})
            with pytest.raises(KeyError, match="unlucky"):
                await master.request("echo", "w1", Picky(value=1))
            peer.auto = answer_value
            assert (await master.request("echo", "w1", Picky(value=2))).data == Picky(value=2)

    run(main())


def answer_value(peer: Any, request: Any) -> None:
    peer.reply(request, data=request.data)
