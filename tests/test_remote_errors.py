"""How a failure answered by the peer reads to the caller: a RemoteError's text names the
remote exception type, the action and who answered; a stack sent (only when the peer was
told to send it) is chained, so the error prints like a local one."""

from __future__ import annotations

import copy
import pickle
import traceback
from typing import Any

import pytest

from peepsy import RemoteError, RemoteTraceback, error_from_wire, error_to_wire
from peepsy.protocol import ErrorPayload, Response

STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/worker.py", line 12, in div\n'
    '    return data["a"] / data["b"]\n'
    "ZeroDivisionError: division by zero\n"
)


def failed(status: int = 500, **members: Any) -> Response:
    return Response.model_validate({"type": "RESPONSE", "id": "m1", "status": status, **members})


def payload(**members: Any) -> dict[str, Any]:
    return {"name": "ZeroDivisionError", "message": "division by zero", **members}


@pytest.mark.parametrize(
    ("members", "where", "text"),
    [
        (
            {"error": "division by zero", "errorPayload": payload()},
            {"action": "div", "target": "w1"},
            "ZeroDivisionError: division by zero (action 'div' on 'w1', status 500)",
        ),
        (  # a group's member answered
            {"error": "division by zero", "errorPayload": payload()},
            {"action": "div", "target": "w1", "group": "pool"},
            "ZeroDivisionError: division by zero (action 'div' on 'w1' in group 'pool', "
            "status 500)",
        ),
        (  # a Node child's legacy answer: a message, no name
            {"error": "Cannot divide by zero"},
            {"action": "div", "target": "node1"},
            "Cannot divide by zero (action 'div' on 'node1', status 500)",
        ),
        (  # no message at all
            {"error": ""},
            {"action": "div", "target": "w1"},
            "no error message (action 'div' on 'w1', status 500)",
        ),
        (  # a code the handler chose is news; peepsy's own codes repeat the name
            {
                "error": "no user",
                "errorPayload": {"name": "HandlerError", "message": "no user", "code": "E_NO_USER"},
            },
            {"action": "get", "target": "master"},
            "HandlerError: no user (action 'get' on 'master', status 500, code 'E_NO_USER')",
        ),
        (
            {"error": "x", "errorPayload": payload(code="PEEPSY_HANDLER_ERROR")},
            {"target": "w1"},
            "ZeroDivisionError: x (on 'w1', status 500)",
        ),
        (
            {"error": "x", "errorPayload": payload(code="HANDLER_ERROR")},
            {},
            "ZeroDivisionError: x (status 500)",
        ),
    ],
)
def test_the_text_names_type_action_and_target(
    members: dict[str, Any], where: dict[str, str], text: str
) -> None:
    error = error_from_wire(failed(**members), **where)
    assert str(error) == text
    # The remote text itself is kept as it came.
    assert error.message == (members["error"] or "")


def test_a_group_named_like_its_target_is_not_repeated() -> None:
    error = RemoteError("m", status=500, action="a", target="solo", group="solo")
    assert str(error) == "m (action 'a' on 'solo', status 500)"


def test_a_stack_sent_is_chained_and_prints_like_a_local_traceback() -> None:
    error = error_from_wire(
        failed(error="division by zero", errorPayload=payload(stack=STACK)),
        action="div",
        target="w1",
    )
    cause = error.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert STACK.rstrip() in str(cause)
    printed = "".join(traceback.format_exception(error))
    assert printed.index('File "/srv/worker.py", line 12, in div') < printed.index(
        "The above exception was the direct cause of the following exception:"
    )
    assert printed.rstrip().endswith(
        "RemoteError: ZeroDivisionError: division by zero (action 'div' on 'w1', status 500)"
    )


@pytest.mark.parametrize(
    "members", [{"errorPayload": payload()}, {}, {"errorPayload": payload(stack="")}]
)
def test_without_a_stack_nothing_is_chained(members: dict[str, Any]) -> None:
    error = error_from_wire(failed(error="division by zero", **members))
    assert error.__cause__ is None
    assert "direct cause" not in "".join(traceback.format_exception(error))


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))]
)
def test_a_remote_error_copies_and_pickles(clone: Any) -> None:
    error = error_from_wire(
        failed(error="division by zero", errorPayload=payload(code="E_DIV")),
        action="div",
        target="w1",
        group="pool",
    )
    again = clone(error)
    assert type(again) is RemoteError
    assert (again.message, again.status, again.action, again.target, again.group) == (
        "division by zero",
        500,
        "div",
        "w1",
        "pool",
    )
    assert again.payload == error.payload
    assert str(again) == str(error)
    assert again.__cause__ is None


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))]
)
def test_a_copy_keeps_the_chained_remote_traceback(clone: Any) -> None:
    error = error_from_wire(
        failed(error="division by zero", errorPayload=payload(stack=STACK)), action="div"
    )
    again = clone(error)
    assert isinstance(again.__cause__, RemoteTraceback)
    assert str(again.__cause__) == str(error.__cause__)


def test_relaying_a_remote_error_sends_its_own_text_not_the_description() -> None:
    error = error_from_wire(
        failed(error="division by zero", errorPayload=payload()), action="div", target="w1"
    )
    status, sent = error_to_wire(error)
    assert (status, sent.name, sent.message) == (500, "ZeroDivisionError", "division by zero")
    bare = RemoteError("", status=418)
    assert error_to_wire(bare)[1].message == "request failed with status 418"
    assert isinstance(sent, ErrorPayload)
