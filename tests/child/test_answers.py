"""What a Child answers: results, 404, 500, HandlerError, 422, encode failures, bad
requests (REQ-7), duplicate ids (ID-2); RESP-1, RESP-4, RESP-5, ERR-2."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from peepsy import Action, Child, HandlerError, PeepsyError, PeepsyTimeoutError
from tests.child._support import line, run, serving, settle, until


def test_results_of_sync_async_and_inline_handlers() -> None:
    async def main() -> None:
        child = Child("concurrent")
        child.register_handler("sync", lambda data: {"got": data})

        @child.handler("async")
        async def slow(data: Any) -> Any:
            await asyncio.sleep(0)
            return [data, data]

        child.register_handler("inline", lambda data: data is None, inline=True)
        async with serving(child) as master:
            ids = [
                master.request("sync", 1),
                master.request("async", "x"),
                master.request("inline"),
            ]
            answers = [await master.response(rid) for rid in ids]
            assert [(a.status, a.data) for a in answers] == [
                (200, {"got": 1}),
                (200, ["x", "x"]),
                (200, True),
            ]
            assert child.requests_handled == 3

    run(main())


def test_a_handler_that_returns_nothing_answers_null() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("noop", lambda data: None, inline=True)
        async with serving(child) as master:
            rid = master.request("noop", 1)
            answer = await master.response(rid)
            assert answer.status == 200
            raw = next(w for w in master.written if rid.encode() in w)
            assert b'"error' not in raw

    run(main())


def test_legacy_requests_are_served() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            rid = master.request("echo", {"k": [1]}, legacy=True)
            assert (await master.response(rid)).data == {"k": [1]}

    run(main())


def test_unknown_action_is_answered_404() -> None:
    async def main() -> None:
        async with serving(Child()) as master:
            rid = master.request("nope")
            answer = await master.response(rid)
            assert answer.status == 404
            assert answer.error == "No handler registered for action: nope"
            assert master.payload(rid) == {
                "name": "PeepsyNotFoundError",
                "message": "No handler registered for action: nope",
                "code": "PEEPSY_NOT_FOUND",
            }

    run(main())


class QuotaExceeded(Exception):
    code = "E_QUOTA"


class NumericCode(Exception):
    code = 429


class MyPeepsyError(PeepsyError):
    pass


def test_handler_exceptions_are_answered_500() -> None:
    async def main() -> None:
        child = Child("concurrent")
        errors: dict[str, Exception] = {
            "plain": ValueError("bad value"),
            "own-code": QuotaExceeded("over quota"),
            "numeric-code": NumericCode("slow down"),
            "empty": RuntimeError(),
            "peepsy": MyPeepsyError("mine"),
        }
        for name, exc in errors.items():

            def fail(data: Any, exc: Exception = exc) -> Any:
                raise exc

            child.register_handler(name, fail)
        async with serving(child) as master:
            ids = {name: master.request(name) for name in errors}
            for rid in ids.values():
                assert (await master.response(rid)).status == 500
            payloads = {name: master.payload(rid) for name, rid in ids.items()}
            assert payloads["plain"] == {
                "name": "ValueError",
                "message": "bad value",
                "code": "PEEPSY_HANDLER_ERROR",
            }
            assert master.responses[ids["plain"]].error == "bad value"
            assert payloads["own-code"]["code"] == "E_QUOTA"
            assert payloads["own-code"]["name"] == "QuotaExceeded"
            assert payloads["numeric-code"]["code"] == "PEEPSY_HANDLER_ERROR"
            # An exception without a message is named by its class.
            assert payloads["empty"]["message"] == "RuntimeError"
            assert (payloads["peepsy"]["name"], payloads["peepsy"]["code"]) == (
                "MyPeepsyError",
                "PEEPSY_ERROR",
            )
            assert all("stack" not in p for p in payloads.values())
            assert child.requests_handled == 5

    run(main())


def test_a_handler_that_raised_a_timeout_is_answered_500_not_408() -> None:
    # A handler whose own call timed out has run: 408 would invite a retry.
    async def main() -> None:
        child = Child()

        @child.handler("relay")
        async def relay(data: Any) -> Any:
            raise PeepsyTimeoutError("the backend did not answer")

        async with serving(child) as master:
            rid = master.request("relay")
            assert (await master.response(rid)).status == 500
            payload = master.payload(rid)
            assert (payload["name"], payload["code"]) == ("PeepsyTimeoutError", "PEEPSY_TIMEOUT")

    run(main())


def test_the_stack_is_sent_only_when_configured() -> None:
    async def main() -> None:
        child = Child(include_stack=True)

        @child.handler("boom")
        async def boom(data: Any) -> Any:
            raise KeyError("deep")

        async with serving(child) as master:
            rid = master.request("boom")
            await master.response(rid)
            stack = master.payload(rid)["stack"]
            assert "Traceback" in stack
            assert "KeyError" in stack

    run(main())


def test_handler_error_chooses_status_code_and_details() -> None:
    async def main() -> None:
        child = Child()

        @child.handler("find")
        def find(data: Any) -> Any:
            raise HandlerError("no such user", status=404, code="E_NO_USER", details={"id": 7})

        @child.handler("teapot")
        def teapot(data: Any) -> Any:
            raise HandlerError("short and stout", status=418)

        async with serving(child) as master:
            found = master.request("find")
            assert (await master.response(found)).status == 404
            assert master.payload(found) == {
                "name": "HandlerError",
                "message": "no such user",
                "code": "E_NO_USER",
                "details": {"id": 7},
            }
            pot = master.request("teapot")
            assert (await master.response(pot)).status == 418
            assert "details" not in master.payload(pot)

    run(main())


class Item(BaseModel):
    name: str
    tags: list[str]


TAG_COUNT = Action("tags", Item, int)


def test_typed_handler_with_invalid_data_is_answered_422() -> None:
    async def main() -> None:
        child = Child()

        @child.handler(TAG_COUNT)
        def tags(item: Item) -> int:
            return len(item.tags)

        async with serving(child) as master:
            good = master.request("tags", {"name": "a", "tags": ["x", "y"]})
            assert (await master.response(good)).data == 2
            bad = master.request("tags", {"tags": ["x", 3]})
            assert (await master.response(bad)).status == 422
            payload = master.payload(bad)
            assert (payload["name"], payload["code"]) == (
                "PeepsyValidationError",
                "PEEPSY_VALIDATION",
            )
            details = payload["details"]
            assert [d["path"] for d in details] == ["$.name", "$.tags[1]"]
            assert all(isinstance(d["message"], str) and d["message"] for d in details)
            assert set(details[0]) == {"path", "message"}

    run(main())


def test_a_typed_handler_result_is_dumped_by_its_declared_type() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler(
            Action("item", str, Item), lambda name: Item(name=name, tags=[]), inline=True
        )
        async with serving(child) as master:
            rid = master.request("item", "n")
            assert (await master.response(rid)).data == {"name": "n", "tags": []}

    run(main())


def test_an_unserializable_result_is_answered_500_encode_error() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("obj", lambda data: object(), inline=True)
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            rid = master.request("obj")
            assert (await master.response(rid)).status == 500
            payload = master.payload(rid)
            assert payload["name"] == "EncodeError"
            assert payload["code"] == "PEEPSY_ENCODE"
            # The child goes on.
            assert (await master.response(master.request("echo", 1))).data == 1

    run(main())


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "inline"])
def test_a_handler_error_that_cannot_be_written_still_gets_an_answer(inline: bool) -> None:
    # RESP-1: every accepted request gets exactly one answer, and the child goes on
    # with the requests that follow, in the same chunk of input too (FRAME-8).
    async def main() -> None:
        child = Child("concurrent")

        def odd(data: Any) -> Any:
            raise HandlerError("odd details", status=409, details={"when": object()})

        child.register_handler("odd", odd, inline=inline)
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            rid, after = master.requests_at_once(("odd", None), ("echo", "after"))
            await until(lambda: rid in master.responses and after in master.responses, 1)
            assert master.responses[rid].status >= 400
            assert master.responses[after].data == "after"

    run(main())


def test_an_invalid_request_with_a_readable_id_is_answered_400() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            master.feed(line({"type": "REQUEST", "id": "m77", "action": "x", "timeout": 0}))
            answer = await master.response("m77")
            assert answer.status == 400
            payload = master.payload("m77")
            assert (payload["name"], payload["code"]) == (
                "PeepsyBadRequestError",
                "PEEPSY_BAD_REQUEST",
            )
            assert [d["path"] for d in payload["details"]] == ["$.timeout"]
            # Unreadable lines cost only themselves (FRAME-8): nothing to answer.
            master.feed(b"not json\n")
            master.feed(line({"type": "REQUEST", "action": "x"}))
            await settle()
            assert list(master.responses) == ["m77"]
            assert child.requests_handled == 0

    run(main())


def test_a_duplicate_request_id_is_ignored() -> None:
    async def main() -> None:
        child = Child()
        gate = asyncio.Event()
        runs: list[Any] = []

        @child.handler("work")
        async def work(data: Any) -> Any:
            runs.append(data)
            await gate.wait()
            return data

        async with serving(child) as master:
            master.feed(line({"type": "REQUEST", "id": "m1", "action": "work", "data": 1}))
            await until(lambda: runs == [1])
            master.feed(line({"type": "REQUEST", "id": "m1", "action": "work", "data": 2}))
            await settle()
            gate.set()
            answer = await master.response("m1")
            await settle()
            assert answer.data == 1
            assert runs == [1]
            responses = [w for w in master.written if b'"RESPONSE"' in w]
            assert len(responses) == 1

    run(main())


def test_messages_a_child_does_not_take_are_ignored() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            master.feed(line({"type": "HEARTBEAT", "pid": 1, "timestamp": 2}))
            master.feed(line({"type": "NEWS", "text": "hi"}))
            master.feed(line({"cmd": "NODE_HANDLE"}))
            master.feed(line({"type": "RESPONSE", "id": "c5", "status": 200}))
            await settle()
            assert master.responses == {}
            assert (await master.response(master.request("echo", 3))).data == 3

    run(main())
