"""A handler's exception is logged where it ran (peepsy.child) with its traceback, since
only its text crosses the wire; what a handler chose to answer, invalid request data and
a cancellation are not crashes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import BaseModel

from peepsy import Action, Child, HandlerError, current_request
from peepsy._failures import handler_frames
from tests.child._support import line, run, serving


class Numbers(BaseModel):
    a: int


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "peepsy.child" and "handler for" in r.message]


def test_a_crash_is_logged_at_error_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def div(data: Any) -> Any:
        return data["a"] / data["b"]

    async def main() -> str:
        child = Child()
        child.register_handler("div", div)
        async with serving(child) as master:
            rid = master.request("div", {"a": 1, "b": 0})
            assert (await master.response(rid)).status == 500
            return rid

    caplog.set_level(logging.DEBUG, logger="peepsy")
    rid = run(main())
    [record] = records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        f"handler for 'div' (request {rid!r}) raised ZeroDivisionError: division by zero"
    )
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError
    printed = logging.Formatter().formatException(record.exc_info)
    assert 'return data["a"] / data["b"]' in printed
    # The traceback starts at the handler: peepsy's and asyncio's frames that ran it
    # are not the handler author's business.
    assert "_serving.py" not in printed
    assert "concurrent/futures" not in printed


@pytest.mark.parametrize(
    ("status", "level"), [(404, logging.INFO), (409, logging.INFO), (500, logging.WARNING)]
)
def test_a_chosen_answer_is_logged_lower_without_traceback(
    caplog: pytest.LogCaptureFixture, status: int, level: int
) -> None:
    def get(data: Any) -> Any:
        raise HandlerError("no such user", status=status, code="E_NO_USER")

    async def main() -> None:
        child = Child()
        child.register_handler("get", get, inline=True)
        async with serving(child) as master:
            rid = master.request("get", 7)
            assert (await master.response(rid)).status == status

    caplog.set_level(logging.DEBUG, logger="peepsy")
    run(main())
    [record] = records(caplog)
    assert (record.levelno, record.exc_info) == (level, None)
    assert record.getMessage().endswith(f"answered {status}: no such user")


def test_invalid_request_data_is_a_warning_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    add = Action("add", Numbers, Numbers)

    async def main() -> None:
        child = Child()
        child.register_handler(add, lambda n: n)
        async with serving(child) as master:
            rid = master.request("add", {"a": "x"})
            assert (await master.response(rid)).status == 422

    caplog.set_level(logging.DEBUG, logger="peepsy")
    run(main())
    [record] = records(caplog)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    assert "$.a" in record.getMessage()


def test_a_result_that_cannot_be_sent_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("odd", lambda data: object(), inline=True)
        async with serving(child) as master:
            rid = master.request("odd")
            assert (await master.response(rid)).status == 500

    caplog.set_level(logging.DEBUG, logger="peepsy")
    run(main())
    [record] = records(caplog)
    assert record.levelno == logging.ERROR
    assert "returned what cannot be sent" in record.getMessage()


def test_a_cancellation_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def wait(data: Any) -> Any:
        assert current_request() is not None
        started.set()
        await asyncio.sleep(30)

    async def main() -> None:
        child = Child()
        child.register_handler("wait", wait)
        async with serving(child) as master:
            master.init("sequential", protocol="1.1")
            rid = master.request("wait")
            await started.wait()
            master.feed(line({"type": "CANCEL", "id": rid}))
            assert (await master.response(rid)).status == 499

    caplog.set_level(logging.DEBUG, logger="peepsy")
    run(main())
    assert records(caplog) == []


def test_with_no_logging_configured_the_traceback_still_reaches_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert logging.lastResort is not None
    # As in a worker process nobody configured logging in: no handler anywhere, so
    # Python's last-resort handler writes WARNING and above to stderr.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])

    def boom(data: Any) -> Any:
        raise RuntimeError("it broke")

    async def main() -> None:
        child = Child()
        child.register_handler("boom", boom)
        async with serving(child) as master:
            rid = master.request("boom")
            assert (await master.response(rid)).status == 500

    run(main())
    err = capsys.readouterr().err
    assert "raised RuntimeError: it broke" in err
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError("it broke")' in err


@pytest.mark.parametrize("inline", [False, True])
def test_with_include_stack_the_stack_sent_starts_at_the_handler(inline: bool) -> None:
    def inner(data: Any) -> Any:
        raise KeyError(data)

    def lookup(data: Any) -> Any:
        return inner(data)

    async def main() -> dict[str, Any]:
        child = Child(include_stack=True)
        child.register_handler("lookup", lookup, inline=inline)
        async with serving(child) as master:
            rid = master.request("lookup", "k")
            await master.response(rid)
            return master.payload(rid)

    payload = run(main())
    stack = payload["stack"]
    assert stack.startswith("Traceback (most recent call last):\n")
    assert "in lookup\n    return inner(data)" in stack
    assert "in inner\n    raise KeyError(data)" in stack
    assert "peepsy" not in stack.split("in lookup")[0]


def test_a_failure_inside_peepsy_keeps_its_whole_traceback() -> None:
    try:
        Action("add", Numbers, Numbers).parse_request({"a": "x"})
    except Exception as exc:
        error = exc
    inner = error.__traceback__
    assert inner is not None
    assert inner.tb_next is not None
    # Seen from inside peepsy only (as a failure of peepsy's own would be): kept whole.
    error = error.with_traceback(inner.tb_next)
    assert handler_frames(error) is inner.tb_next
    assert handler_frames(ValueError("never raised")) is None


def test_a_child_named_by_init_says_its_name(caplog: pytest.LogCaptureFixture) -> None:
    # Several children may share the master's stderr: each line says whose it is.
    async def main() -> None:
        child = Child()
        child.register_handler("boom", lambda data: 1 / 0, inline=True)
        async with serving(child) as master:
            master.init("sequential", target="w7")
            rid = master.request("boom")
            assert (await master.response(rid)).status == 500

    caplog.set_level(logging.DEBUG, logger="peepsy")
    run(main())
    [record] = records(caplog)
    assert record.getMessage().startswith("handler for 'boom' on 'w7' (request ")
