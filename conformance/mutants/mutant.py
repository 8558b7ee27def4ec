"""A conformance-profile worker that can be broken on purpose, one rule at a time.

Without ``--mutation`` this is a correct peepsy worker, written on plain asyncio from
docs/protocol.md alone (it does not import peepsy, so that a mutation can break the
wire in any way it likes). It serves the conformance profile: ``echo``, ``fail``,
``sleep`` and ``callMaster`` (see conformance/workers/python_worker.py).

It speaks protocol 1.1 (CANCEL); ``--protocol 1.0`` makes it a worker from before
CANCEL, which states 1.0 in READY and ignores CANCEL as a type it does not know (MSG-5):
correct at 1.0, and not checked at the suite's cancel level. ``--protocol none`` is the
same worker stating no version at all, as older workers do (VER-1: it speaks 1.0).

``--mutation NAME`` breaks exactly one rule; ``--list`` prints the names. The mutants
prove that the conformance suite catches each kind of broken worker:
tests/conformance/test_mutants.py runs the suite against every one of them and checks
that the checks meant to catch it fail, and only those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import math
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

MUTATIONS: dict[str, str] = {
    # framing and streams
    "prints-banner": "writes a line of plain text to stdout at start",
    "stray-print": "prints to stdout inside a handler",
    "crlf": "ends every line it writes with CR LF",
    "bom": "writes a byte-order mark before its first line",
    "partial-line": "exits leaving a line without its newline",
    "crash-on-blank-line": "exits on an empty or whitespace-only line",
    "rejects-leading-bom": "treats a byte-order mark opening the stream as bad JSON",
    "rejects-cr": "treats a line that ends with CR as bad JSON",
    "crash-on-bad-json": "exits on a line that is not JSON",
    "crash-on-bad-utf8": "exits on a line that is not UTF-8",
    "splits-unicode-lines": "splits lines at U+2028 and other Unicode line breaks",
    "one-mib-fails": "drops lines over 64 KiB",
    "huge-line-crash": "exits on a line over its 16 MiB limit instead of dropping it",
    "rejects-nesting-64": "rejects data nested deeper than 32 levels",
    "deep-nesting-crash": "exits on data nested deeper than 1000 levels",
    "acts-on-partial-line-at-eof": "at end of input acts on a last line that has no newline",
    "two-messages-one-line-accepted": "acts on each JSON value of a line that holds several",
    "bom-everywhere-accepted": "ignores a byte-order mark opening any line, not only the first",
    "accepts-invalid-utf8-in-request": "reads a line that is not UTF-8 with replacement characters",
    "rejects-lone-surrogate": "drops a line whose strings hold a lone surrogate (FRAME-9)",
    "echo-replaces-lone-surrogate": "echo answers a lone surrogate as U+FFFD (FRAME-10)",
    "writes-raw-surrogates": "writes lone surrogates as raw bytes, not as escapes (FRAME-9)",
    "ignores-peer-line-limit": "writes lines longer than the maxLineBytes INIT states",
    "drops-over-long-silently": "drops an over-long REQUEST line without answering 413",
    "node-cmd-crash": 'exits on a Node {"cmd": ...} message (NODE-1)',
    # messages
    "wrong-id": "answers with an id other than the request's",
    "answers-twice": "sends every RESPONSE twice",
    "missing-status": "leaves status out of its responses",
    "string-status": 'writes status as a string ("404")',
    "extra-members": "adds a member the protocol does not define to its responses",
    "nested-extra-member": "adds an undefined member inside errorPayload",
    "fractional-status": "writes statuses as 404.0 (MSG-7)",
    "sends-stack": "puts a stack trace in every errorPayload (RESP-5)",
    "rejects-unknown-members": "answers 400 to a request with members it does not know",
    "crash-on-unknown-type": "exits on a message of a type it does not know",
    "answers-unknown-type": "answers a message of unknown type with a 400 RESPONSE",
    "answers-unmatched-response": "answers a RESPONSE it did not ask for",
    "wrong-role-crash": "exits on a HEARTBEAT or READY from the master",
    "invalid-master-message-crash": "exits on an invalid HEARTBEAT or READY (MSG-9)",
    "drops-legacy-shape": "ignores REQUESTs in the legacy nested shape",
    "legacy-loses": "prefers the flat id and action over the nested ones",
    "no-400": "ignores invalid requests, even those whose id it can read",
    "runs-duplicate-ids": "runs and answers a second request with the id of one it still owes",
    "rejects-integral-float": "answers 400 to a timeout written 5000.0 (MSG-8)",
    "id-length-utf16": "counts id lengths in UTF-16 code units, not code points",
    "runs-timeout-0": "takes timeout 0 as valid (no deadline) instead of answering 400",
    "invalid-duplicate-answered-400": "answers 400 to an invalid request that reuses an owed id",
    "404-before-503": "answers an unknown action 404, not 503, after SHUTDOWN",
    "503-before-400": "answers an invalid request 503, not 400, after SHUTDOWN",
    # answers
    "unknown-action-500": "answers 500 instead of 404 to an unknown action",
    "wrong-404-text": "answers an unknown action with its own error text",
    "no-error-string": "leaves error out of failures",
    "error-on-success": "adds an error member to successes",
    "no-error-payload": "leaves errorPayload out of failures",
    "echo-drops-null": "echo answers null members of objects by leaving them out",
    "fail-wrong-status": "answers a failing handler with 200 and the error as data",
    # lifecycle
    "requires-init": "ignores requests until INIT has arrived",
    "ready-after-answer": "sends READY only after its first RESPONSE",
    "reads-flat-id-beside-request": "answers 400 under the flat id beside a request object",
    "ready-twice": "sends READY for every INIT, repeats included",
    "invalid-init-stops": "stops serving after an invalid INIT",
    "invalid-shutdown-stops": "stops on a SHUTDOWN whose timeout is invalid",
    "drops-after-shutdown": "drops requests that arrive after SHUTDOWN, unanswered",
    "shutdown-ignores-deadline": "on SHUTDOWN waits for running handlers however long they take",
    "exits-1-on-eof": "exits with status 1 when its input ends",
    "eof-waits-for-handlers": "at end of input waits for running handlers however long they take",
    "init-repeat-breaks": "stops serving when a second INIT arrives",
    "ignores-shutdown": "does not exit on SHUTDOWN",
    "exits-nonzero-on-shutdown": "exits with status 1 on SHUTDOWN",
    "shutdown-abandons": "exits at once on SHUTDOWN, abandoning the requests in flight",
    "accepts-after-shutdown": "goes on serving requests that arrive after SHUTDOWN",
    "drops-queued-at-shutdown": "on SHUTDOWN drops the requests waiting in its queue, unanswered",
    "no-exit-on-eof": "does not exit when its input ends",
    "no-heartbeat": "never sends HEARTBEAT",
    "heartbeats-stall-when-busy": "sleep blocks the event loop: no HEARTBEAT meanwhile",
    # scheduling
    "sequential-overlaps": "runs requests concurrently in sequential mode",
    "concurrent-serializes": "runs requests one at a time in concurrent mode",
    "no-priority": "runs queued requests in arrival order whatever their priority",
    "drops-expired": "drops requests that expire in the queue instead of answering 408",
    "never-expires-without-timeout": "a queued request without timeout never expires",
    "default-timeout-2000": "a queued request without timeout expires after 2000 ms, not 5000",
    "concurrent-no-queue-expiry": "concurrent mode: queued requests never expire",
    "concurrent-ignores-priority": "concurrent mode: queued requests run in arrival order",
    "concurrent-drops-at-shutdown": "concurrent mode: SHUTDOWN drops queued requests unanswered",
    # requests to the master
    "call-master-wrong": "callMaster answers with the master's data wrapped in a list",
    "call-master-failure-lost": "callMaster turns the master's failure into a success",
    "call-master-never-times-out": "callMaster passes the timeout on but never times out itself",
    "waits-on-invalid-answer": "ignores an invalid answer to its own request until its timeout",
    "call-master-legacy-shape": "callMaster sends its request in the legacy nested shape (REQ-6)",
    # cancellation (protocol 1.1)
    "ignores-cancel": "states protocol 1.1 in READY but ignores CANCEL",
    "cancel-runs-queued": "answers 499 to a cancelled queued request, then runs it all the same",
    "cancel-answers-twice": "answers 499 to a cancelled running request at once and lets it"
    " run on to a second answer",
    "cancel-answers-unknown": "answers 404 to a CANCEL for an id it owes no answer for",
    "cancels-to-1.0-master": "cancels its own timed-out call even to a master that stated 1.0",
    "cancels-wrong-id": "cancels its own timed-out call under an id it never sent",
}

MAX_LINE = 16 * 1024 * 1024
#: What a peer that states no maxLineBytes accepts (FRAME-6).
PEER_LINE_DEFAULT = 1024 * 1024
DEFAULT_TIMEOUT_MS = 5000
SHUTDOWN_GRACE_MS = 10_000
#: At end of input a child exits within 1000 ms whatever its handlers do (STREAM-3).
EOF_GRACE_MS = 1000
BOM = b"\xef\xbb\xbf"
#: The start of a REQUEST line as the suite writes it, where an over-long line's id can
#: be read without parsing the line (FRAME-12).
VISIBLE_ID = re.compile(rb'^\s*\{"type":\s*"REQUEST",\s*"id":\s*"([^"\\]{1,128})"')
PROTOCOL_VERSION = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")
#: rejects-integral-float: 5000.0 is not taken for 5000 (MSG-8 says it must be).
STRICT_INTEGERS = False
NOT_FOUND = "No handler registered for action: {}"


def log(text: str) -> None:
    sys.stderr.write(f"mutant: {text}\n")
    sys.stderr.flush()


class Failure(Exception):
    """A handler's failure: the status and payload of its answer."""

    def __init__(self, status: int, name: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.code = code


@dataclass(order=True)
class Queued:
    key: tuple[int, int]
    id: str = field(compare=False)
    action: str = field(compare=False)
    data: Any = field(compare=False)
    timeout: int = field(compare=False)
    done: bool = field(default=False, compare=False)
    timer: asyncio.TimerHandle | None = field(default=None, compare=False)
    #: A CANCEL came for it once it started (CANCEL-4): its stop is answered 499.
    cancelled: bool = field(default=False, compare=False)
    #: Its handler, running: what a CANCEL cancels.
    handler: asyncio.Task[Any] | None = field(default=None, compare=False)


def depth(text: str, care: int = 32) -> int:
    """The deepest nesting of brackets in a JSON text, strings aside (or a cheap lower
    bound when there are too few brackets to matter)."""
    brackets = text.count("[") + text.count("{")
    if brackets <= care:
        return brackets
    deepest = level = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    return deepest


def _valid_int(value: object, low: int, high: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _as_int(value: object, low: int, high: int) -> int | None:
    """The integer a JSON number stands for, within bounds: 5000.0 and 5e3 are 5000
    (MSG-8: JSON has one number type); 5000.5, "5000" and true are no integer."""
    if isinstance(value, float) and value.is_integer() and not STRICT_INTEGERS:
        value = int(value)
    return value if _valid_int(value, low, high) else None


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    if isinstance(value, dict):
        return {k: _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    return value


class LineTooLong(Exception):
    """A line that the peer's stated limit does not allow (FRAME-11)."""


def _valid_name(value: object, most: int) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= most


class Worker(asyncio.Protocol):
    def __init__(self, mutation: str | None, protocol: str = "1.1") -> None:
        self.m = mutation
        #: The version its READY states ("none": none, so 1.0); only 1.1 knows CANCEL.
        self.protocol = protocol
        #: ready-after-answer: whether its late READY has gone out.
        self.late_ready_sent = False
        self.loop = asyncio.get_running_loop()
        self.mode = "sequential"
        self.heartbeat_ms = 2000
        self.init_seen = False
        self.stopping = False
        self.running = 0
        self.queue: list[Queued] = []
        self.seq = itertools.count()
        self.owed: set[str] = set()
        self.calls: dict[str, asyncio.Future[Any]] = {}
        #: The requests running now, by id, for CANCEL to stop (CANCEL-4).
        self.active: dict[str, Queued] = {}
        #: The master stated protocol 1.1 or later in INIT: it may be sent CANCEL.
        self.master_cancels = False
        self.call_ids = itertools.count(1)
        self.buffer = bytearray()
        self.skipping = False
        self.line_number = 0
        self.finished: asyncio.Future[int] = self.loop.create_future()
        self.heartbeat_wake = asyncio.Event()
        self.wrote_anything = False
        self.deaf = False  # init-repeat-breaks: a second INIT stopped it serving
        #: The concurrency cap INIT asked for (concurrent mode; none: no cap).
        self.max_concurrency: int | None = None
        #: The longest line the master accepts: INIT's maxLineBytes, else 1 MiB (FRAME-6).
        self.peer_limit = PEER_LINE_DEFAULT
        #: An over-long REQUEST being skipped whose id showed at its start (FRAME-12).
        self.skipped_id: str | None = None
        self.exit_code = 0
        self.deadline: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.handlers: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "echo": self.echo,
            "fail": self.fail,
            "sleep": self.sleep,
            "callMaster": self.call_master,
        }

    # --- writing --------------------------------------------------------------------

    def write_raw(self, data: bytes) -> None:
        if self.m == "bom" and not self.wrote_anything:
            data = b"\xef\xbb\xbf" + data
        self.wrote_anything = True
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(1, view) :]
        except BrokenPipeError:
            os._exit(0)

    def encode(self, message: dict[str, Any]) -> bytes:
        try:
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:  # 1e400 came in as infinity; JSON has none (FRAME-3)
            message = _finite(message)
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        end = "\r\n" if self.m == "crlf" else "\n"
        try:
            return (text + end).encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (FRAME-9): UTF-8 cannot hold it, so it goes out as its
            # \uXXXX escape, as ensure_ascii writes every non-ASCII character.
            if self.m == "writes-raw-surrogates":
                return (text + end).encode("utf-8", "surrogatepass")
            text = json.dumps(message, ensure_ascii=True, separators=(",", ":"))
            return (text + end).encode("ascii")

    def send(self, message: dict[str, Any]) -> None:
        data = self.encode(message)
        if len(data) > self.peer_limit and self.m != "ignores-peer-line-limit":
            # FRAME-11: never a line over the master's limit. An answer becomes a 413;
            # a request of ours is not sent, and its call fails here.
            text = f"the message is {len(data)} bytes; the master accepts {self.peer_limit}"
            if message.get("type") != "RESPONSE":
                raise LineTooLong(text)
            data = self.encode(
                {
                    "type": "RESPONSE",
                    "id": message.get("id"),
                    "status": 413,
                    "error": text,
                    "errorPayload": {
                        "name": "PeepsyLineTooLongError",
                        "message": text,
                        "code": "PEEPSY_LINE_TOO_LONG",
                    },
                }
            )
        self.write_raw(data)
        if (
            self.m == "ready-after-answer"
            and message.get("type") == "RESPONSE"
            and not self.late_ready_sent
        ):
            self.late_ready_sent = True
            self.ready()

    def respond(self, rid: str, status: int, data: Any = None) -> None:
        self.owed.discard(rid)
        message: dict[str, Any] = {"type": "RESPONSE", "id": rid, "status": status, "data": data}
        if self.m == "error-on-success":
            message["error"] = ""
        self.send_response(message)

    def respond_failure(
        self, rid: str, status: int, name: str, text: str, code: str | None = None
    ) -> None:
        self.owed.discard(rid)
        payload: dict[str, Any] = {"name": name, "message": text}
        if code is not None:
            payload["code"] = code
        if self.m == "sends-stack":
            payload["stack"] = "Traceback (most recent call last): ..."
        elif self.m == "nested-extra-member":
            payload["internal"] = {"host": "db-7"}
        message: dict[str, Any] = {"type": "RESPONSE", "id": rid, "status": status}
        if self.m != "no-error-string":
            message["error"] = text
        if self.m != "no-error-payload":
            message["errorPayload"] = payload
        self.send_response(message)

    def send_response(self, message: dict[str, Any]) -> None:
        self.send(self.mutate_response(message))
        if self.m == "answers-twice":
            self.send(message)

    def mutate_response(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.m == "wrong-id":
            message["id"] = "not-" + message["id"]
        elif self.m == "missing-status":
            del message["status"]
        elif self.m == "string-status":
            message["status"] = str(message["status"])
        elif self.m == "extra-members":
            message["elapsed"] = 1
        elif self.m == "fractional-status" and "status" in message:
            message["status"] = float(message["status"])
        return message

    # --- handlers -------------------------------------------------------------------

    async def echo(self, data: Any) -> Any:
        if self.m == "echo-drops-null" and isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        if self.m == "echo-replaces-lone-surrogate":
            return _replace_surrogates(data)
        return data

    async def fail(self, data: Any) -> Any:
        text = data if isinstance(data, str) else "failed on purpose"
        raise Failure(500, "HandlerError", text, "E_FAIL")

    async def sleep(self, data: Any) -> Any:
        if not isinstance(data, int | float) or isinstance(data, bool):
            raise Failure(500, "HandlerError", "sleep wants a number of milliseconds")
        if self.m == "heartbeats-stall-when-busy":
            # Blocks the event loop, and with it the heartbeat timer (HB-1).
            time.sleep(max(float(data), 0.0) / 1000)  # noqa: ASYNC251
        else:
            await asyncio.sleep(max(float(data), 0.0) / 1000)
        return data

    async def call_master(self, data: Any) -> Any:
        if not isinstance(data, dict) or not _valid_name(data.get("action"), 256):
            raise Failure(500, "HandlerError", 'callMaster wants {"action": NAME, "data": ANY}')
        rid = f"c{next(self.call_ids)}"
        # REQ-11: the timeout asked for goes in the request, and the call fails at it.
        timeout = _as_int(data.get("timeout"), 1, 300_000) or DEFAULT_TIMEOUT_MS
        body: dict[str, Any] = {"id": rid, "action": data["action"]}
        if "data" in data:
            body["data"] = data["data"]
        request: dict[str, Any] = {"type": "REQUEST", **body}
        if self.m == "call-master-legacy-shape":
            request = {"type": "REQUEST", "request": body}
        request["timeout"] = timeout
        future: asyncio.Future[Any] = self.loop.create_future()
        self.calls[rid] = future
        try:
            self.send(request)
            limit = None if self.m == "call-master-never-times-out" else timeout / 1000
            answer = await asyncio.wait_for(future, limit)
        except LineTooLong as exc:
            raise Failure(500, "PeepsyLineTooLongError", str(exc), "PEEPSY_LINE_TOO_LONG") from None
        except TimeoutError:
            self.cancel_own_call(rid)
            raise Failure(
                500, "PeepsyTimeoutError", f"the master did not answer within {timeout} ms"
            ) from None
        finally:
            self.calls.pop(rid, None)
        status = answer.get("status")
        if isinstance(status, int) and status >= 400 and self.m != "call-master-failure-lost":
            payload = answer.get("errorPayload")
            payload = payload if isinstance(payload, dict) else {}
            text = answer.get("error")
            if not isinstance(text, str):
                text = payload.get("message")
            if not isinstance(text, str):
                text = f"the master answered with status {status}"
            name = payload.get("name")
            code = payload.get("code")
            raise Failure(
                500 if status in (408, 503) else status,
                name if _valid_name(name, 256) else "RemoteError",
                text,
                code if _valid_name(code, 256) else None,
            )
        result = answer.get("data")
        return [result] if self.m == "call-master-wrong" else result

    def cancel_own_call(self, rid: str) -> None:
        """CANCEL-1: the call gave up on its request; a master that stated 1.1 is told
        (its answer, when it comes, finds no call and is ignored)."""
        if self.protocol != "1.1":
            return
        if self.master_cancels or self.m == "cancels-to-1.0-master":
            wrong = self.m == "cancels-wrong-id"
            self.send({"type": "CANCEL", "id": "x" + rid if wrong else rid, "reason": "timeout"})

    # --- reading --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            end = len(data) if nl < 0 else nl
            if not self.skipping:
                self.buffer += data[start:end]
                limit = 64 * 1024 if self.m == "one-mib-fails" else MAX_LINE
                if len(self.buffer) + 1 > limit:
                    if self.m == "huge-line-crash":
                        log("line too long: giving up")
                        os._exit(3)
                    self.skipping = True
                    visible = VISIBLE_ID.match(self.buffer[:4096])
                    self.skipped_id = visible.group(1).decode() if visible else None
                    self.buffer = bytearray()
            if nl < 0:
                return
            self.line_number += 1
            if self.skipping:
                log(f"line {self.line_number}: too long; dropped")
                self.skipping = False
                if self.skipped_id is not None and self.m != "drops-over-long-silently":
                    # FRAME-12: the id showed at the start of the line: say why it is lost.
                    self.respond_failure(
                        self.skipped_id,
                        413,
                        "PeepsyLineTooLongError",
                        f"the line is longer than the {MAX_LINE} bytes this worker accepts",
                        "PEEPSY_LINE_TOO_LONG",
                    )
            else:
                line = bytes(self.buffer)
                self.buffer = bytearray()
                self.line(line)
            start = nl + 1

    def eof_received(self) -> bool:
        if self.m == "no-exit-on-eof":
            return True
        if self.buffer and self.m == "acts-on-partial-line-at-eof":
            self.line(bytes(self.buffer))
        # FRAME-2: a last line without its newline is cut off, not acted on.
        self.buffer = bytearray()
        for future in self.calls.values():
            if not future.done():
                future.set_exception(Failure(500, "HandlerError", "the master is gone"))
        if self.m == "exits-1-on-eof":
            self.exit_code = 1
        # STREAM-3: exit 0 within 1000 ms, abandoning handlers still running.
        self.shutdown(None if self.m == "eof-waits-for-handlers" else EOF_GRACE_MS)
        return True

    def line(self, raw: bytes) -> None:
        if raw.startswith(BOM) and (self.line_number == 1 or self.m == "bom-everywhere-accepted"):
            if self.m == "rejects-leading-bom":
                log("line 1: not JSON (a BOM)")
                return
            raw = raw[3:]
        if self.m == "rejects-cr" and raw.endswith(b"\r"):
            log(f"line {self.line_number}: not JSON (CR)")
            return
        if not raw.strip(b" \t\r\n"):
            if self.m == "crash-on-blank-line":
                os._exit(3)
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            if self.m == "crash-on-bad-utf8":
                os._exit(3)
            if self.m != "accepts-invalid-utf8-in-request":
                log(f"line {self.line_number}: not UTF-8")
                return
            text = raw.decode("utf-8", "replace")
        pieces = text.splitlines() if self.m == "splits-unicode-lines" else [text]
        for piece in pieces:
            self.text_line(piece)

    def text_line(self, text: str) -> None:
        deepest = depth(text)
        if self.m == "rejects-nesting-64" and deepest > 32:
            log(f"line {self.line_number}: too deep")
            return
        if self.m == "deep-nesting-crash" and deepest > 1000:
            os._exit(3)
        if deepest > 512:
            log(f"line {self.line_number}: nested deeper than 512 levels; dropped")
            return
        try:
            # A BOM inside the stream makes its line invalid (FRAME-7): json.loads
            # refuses a text that starts with one.
            values = [json.loads(text, parse_constant=_reject_constant)]
        except ValueError as exc:
            if self.m == "crash-on-bad-json":
                os._exit(3)
            if self.m == "two-messages-one-line-accepted":
                values = _several(text)
            else:
                log(f"line {self.line_number}: not JSON: {exc}")
                return
        for msg in values:
            if isinstance(msg, dict) and "cmd" in msg and self.m == "node-cmd-crash":
                os._exit(3)
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                if self.m == "crash-on-bad-json":
                    os._exit(3)
                log(f"line {self.line_number}: not a message")
                continue
            if self.m == "rejects-lone-surrogate" and _has_lone_surrogate(msg):
                log(f"line {self.line_number}: a lone surrogate")
                continue
            self.message(msg)

    def message(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "REQUEST":
            self.request(msg)
        elif kind == "RESPONSE":
            self.response(msg)
        elif kind == "INIT":
            self.init(msg)
        elif kind == "CANCEL" and self.protocol == "1.1":
            self.cancel(msg)
        elif kind == "SHUTDOWN":
            timeout = msg.get("timeout")
            valid = _as_int(timeout, 1, 300_000)
            if "timeout" in msg and valid is None and self.m != "invalid-shutdown-stops":
                log(f"an invalid SHUTDOWN (timeout {timeout!r}): ignored (MSG-9)")
                return
            if self.m == "ignores-shutdown":
                return
            if self.m == "exits-nonzero-on-shutdown":
                os._exit(1)
            if self.m == "shutdown-abandons":
                os._exit(0)
            self.shutdown(
                None if self.m == "shutdown-ignores-deadline" else valid or SHUTDOWN_GRACE_MS
            )
        elif kind in ("READY", "HEARTBEAT"):
            if self.m == "wrong-role-crash":
                os._exit(3)
            if self.m == "invalid-master-message-crash" and not _valid_int(
                msg.get("pid"), 1, 2**53
            ):
                os._exit(3)
            log(f"a child does not receive {kind}")
        else:
            if self.m == "crash-on-unknown-type":
                os._exit(3)
            if self.m == "answers-unknown-type" and isinstance(msg.get("id"), str):
                self.respond_failure(msg["id"], 400, "PeepsyBadRequestError", "unknown type")
                return
            log(f"unknown message type {kind!r}")

    def response(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        future = self.calls.get(rid) if isinstance(rid, str) else None
        if future is None:
            if self.m == "answers-unmatched-response" and isinstance(rid, str):
                self.respond_failure(rid, 400, "PeepsyBadRequestError", "no such request")
                return
            log(f"a RESPONSE to {rid!r}, which is none of ours")
            return
        status = _as_int(msg.get("status"), 100, 599)
        error = msg.get("error")
        if status is None or ("error" in msg and not isinstance(error, str)):
            if self.m == "waits-on-invalid-answer":
                log(f"an invalid RESPONSE to {rid!r}: ignored")
                return
            # MSG-9: an invalid answer to one of ours fails that call at once.
            if not future.done():
                future.set_exception(
                    Failure(
                        500,
                        "PeepsyInvalidResponseError",
                        f"the master's answer was invalid (status {msg.get('status')!r})",
                    )
                )
            return
        if not future.done():
            future.set_result({**msg, "status": status})

    def valid_init(self, msg: dict[str, Any]) -> bool:
        def fits(name: str, low: int, high: int) -> bool:
            return name not in msg or _as_int(msg[name], low, high) is not None

        protocol = msg.get("protocol", "1.0")
        return (
            msg.get("mode") in ("sequential", "concurrent")
            and isinstance(protocol, str)
            and bool(PROTOCOL_VERSION.match(protocol))
            and ("target" not in msg or _valid_name(msg["target"], 256))
            and fits("heartbeatInterval", 1, 300_000)
            and fits("maxConcurrency", 1, 65536)
            and fits("maxLineBytes", PEER_LINE_DEFAULT, 2**53 - 1)
        )

    def init(self, msg: dict[str, Any]) -> None:
        if not self.valid_init(msg):
            # MSG-9: as if it had not come.
            if self.m == "invalid-init-stops":
                self.deaf = True
            log("an invalid INIT: ignored")
            return
        if self.init_seen:
            if self.m == "init-repeat-breaks":
                self.deaf = True
            if self.m == "ready-twice":
                self.ready()
            return
        self.init_seen = True
        self.mode = msg["mode"]
        major, minor = msg.get("protocol", "1.0").split(".")
        self.master_cancels = (int(major), int(minor)) >= (1, 1)
        interval = _as_int(msg.get("heartbeatInterval"), 1, 300_000)
        if interval is not None:
            self.heartbeat_ms = interval
            self.heartbeat_wake.set()
        if self.mode == "concurrent":
            self.max_concurrency = _as_int(msg.get("maxConcurrency"), 1, 65536)
        self.peer_limit = _as_int(msg.get("maxLineBytes"), 1, 2**53 - 1) or PEER_LINE_DEFAULT
        if self.m != "ready-after-answer":
            self.ready()  # READY-2: the first message after the first INIT
        self.pump()

    def ready(self) -> None:
        message: dict[str, Any] = {
            "type": "READY",
            "pid": os.getpid(),
            "mode": self.mode,
            "actions": sorted(self.handlers),
            "implementation": "peepsy-mutant/1.0",
            "maxLineBytes": MAX_LINE,
        }
        if self.protocol != "none":
            message["protocol"] = self.protocol
        cap = 1 if self.mode == "sequential" else self.max_concurrency
        if cap is not None:
            message["maxConcurrency"] = cap
        self.send(message)

    # --- requests -------------------------------------------------------------------

    def valid_id(self, value: object) -> TypeGuard[str]:
        """ID-1: 1..128 characters, counted in code points (Python's len)."""
        if not isinstance(value, str):
            return False
        size = len(value)
        if self.m == "id-length-utf16":
            size = len(value.encode("utf-16-le", "surrogatepass")) // 2
        return 0 < size <= 128

    def request(self, msg: dict[str, Any]) -> None:  # noqa: PLR0915 - REQ-9's steps, in order
        if self.m == "requires-init" and not self.init_seen:
            return
        if self.deaf:
            return
        legacy = "request" in msg
        if legacy and self.m == "drops-legacy-shape":
            return
        body = msg.get("request") if legacy else msg
        if self.m == "legacy-loses" and "id" in msg and "action" in msg:
            body = msg
        # REQ-9, 1: no readable id (REQ-10): dropped, never answered.
        rid: str | None = None
        if isinstance(body, dict) and self.valid_id(body.get("id")):
            rid = body["id"]
        elif self.m == "reads-flat-id-beside-request" and legacy and self.valid_id(msg.get("id")):
            rid = msg["id"]
        if rid is None:
            log("a REQUEST without a readable id: dropped")
            return
        problem = self.problem(msg, body)
        if problem is None and self.m == "rejects-unknown-members":
            known = {"type", "id", "action", "data", "timeout", "priority", "request"}
            if set(msg) - known:
                problem = "unknown members"
        # 2: an id still owed: neither run nor answered (ID-2).
        duplicate_ok = self.m == "runs-duplicate-ids" or (
            problem is not None and self.m == "invalid-duplicate-answered-400"
        )
        if rid in self.owed and not duplicate_ok:
            log(f"a second request {rid!r} while the first runs: ignored (ID-2)")
            return
        if self.stopping and self.m == "503-before-400":
            self.refuse(rid)
            return
        # 3: invalid: 400 (REQ-7).
        if problem is not None:
            if self.m == "no-400":
                log(f"dropped an invalid REQUEST: {problem}")
                return
            self.respond_failure(
                rid,
                400,
                "PeepsyBadRequestError",
                f"invalid REQUEST: {problem}",
                "PEEPSY_BAD_REQUEST",
            )
            return
        assert isinstance(body, dict)
        action: str = body["action"]
        self.owed.add(rid)
        if self.m == "404-before-503" and action not in self.handlers:
            self.not_found(rid, action)
            return
        # 4: shutting down: 503 (SHUT-1).
        if self.stopping and self.m != "accepts-after-shutdown":
            if self.m == "drops-after-shutdown":
                self.owed.discard(rid)
                log(f"after SHUTDOWN: dropped {rid!r}")
                return
            self.refuse(rid)
            return
        # 5: no handler: 404 (RESP-4).
        if action not in self.handlers:
            self.not_found(rid, action)
            return
        # 6: run or queue.
        given = _as_int(msg.get("timeout"), 0, 300_000)
        default = 2000 if self.m == "default-timeout-2000" else DEFAULT_TIMEOUT_MS
        timeout = default if given is None else given
        concurrent = self.mode == "concurrent"
        priority = _as_int(msg.get("priority"), -(2**31), 2**31 - 1) or 0
        if self.m == "no-priority" or (concurrent and self.m == "concurrent-ignores-priority"):
            priority = 0
        item = Queued((-priority, next(self.seq)), rid, action, body.get("data"), timeout)
        if self.running < self.capacity() and not self.queue:
            self.start(item)
            return
        expires = not (
            (given is None and self.m == "never-expires-without-timeout")
            or timeout == 0  # runs-timeout-0 lets 0 through: no deadline
            or (concurrent and self.m == "concurrent-no-queue-expiry")
        )
        # REQ-4: the timeout counts from now, when the request was read.
        if expires:
            callback = self.drop if self.m == "drops-expired" else self.expire
            item.timer = self.loop.call_later(timeout / 1000, callback, item)
        heapq.heappush(self.queue, item)

    def cancel(self, msg: dict[str, Any]) -> None:
        """CANCEL-2..6: a queued request is answered 499 and never runs, a running one
        is stopped (its stop answered 499); an id owed no answer is ignored."""
        rid = msg.get("id")
        if self.m == "ignores-cancel" or not self.valid_id(rid):
            log(f"a CANCEL for {rid!r}: ignored")
            return
        if rid in self.owed:
            for item in self.queue:
                if item.id == rid and not item.done:
                    item.done = self.m != "cancel-runs-queued"
                    if item.timer is not None:
                        item.timer.cancel()
                    self.cancelled(rid)
                    return
        if rid in self.active and rid in self.owed:
            item = self.active[rid]
            if self.m == "cancel-answers-twice":
                self.cancelled(rid)
                return
            if not item.cancelled:
                item.cancelled = True
                # None: started, its handler not yet: run() sees the flag first.
                if item.handler is not None:
                    item.handler.cancel()
            return
        if self.m == "cancel-answers-unknown":
            self.respond_failure(rid, 404, "PeepsyNotFoundError", f"no request {rid!r} to cancel")
            return
        log(f"a CANCEL for {rid!r}, which is owed no answer: ignored (CANCEL-2)")

    def cancelled(self, rid: str) -> None:
        self.respond_failure(rid, 499, "PeepsyCancelledError", "cancelled", "PEEPSY_CANCELLED")

    def refuse(self, rid: str) -> None:
        self.respond_failure(
            rid, 503, "PeepsyShutdownError", "shutting down", "PEEPSY_SHUTTING_DOWN"
        )

    def not_found(self, rid: str, action: str) -> None:
        text = NOT_FOUND.format(action)
        if self.m == "wrong-404-text":
            text = f"unknown action {action!r}"
        status = 500 if self.m == "unknown-action-500" else 404
        self.respond_failure(rid, status, "PeepsyNotFoundError", text, "PEEPSY_NOT_FOUND")

    def problem(self, msg: dict[str, Any], body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request is not an object"
        if not self.valid_id(body.get("id")):
            return "id is not a string of 1..128 characters"
        if not _valid_name(body.get("action"), 256):
            return "action is not a string of 1..256 characters"
        shortest = 0 if self.m == "runs-timeout-0" else 1
        if "timeout" in msg and _as_int(msg["timeout"], shortest, 300_000) is None:
            return "timeout is not an integer of 1..300000"
        if "priority" in msg and _as_int(msg["priority"], -(2**31), 2**31 - 1) is None:
            return "priority is not a 32-bit integer"
        return None

    def capacity(self) -> float:
        if self.m == "sequential-overlaps":
            return float("inf")
        if self.m == "concurrent-serializes":
            return 1
        if self.mode == "sequential":
            return 1
        return float("inf") if self.max_concurrency is None else self.max_concurrency

    def expire(self, item: Queued) -> None:
        if item.done:
            return
        item.done = True
        self.respond_failure(
            item.id,
            408,
            "PeepsyTimeoutError",
            f"Request expired in the queue after {item.timeout}ms",
            "PEEPSY_TIMEOUT",
        )

    def drop(self, item: Queued) -> None:
        if not item.done:
            item.done = True
            self.owed.discard(item.id)

    def take(self) -> Queued | None:
        while self.queue:
            item = heapq.heappop(self.queue)
            if not item.done:
                item.done = True
                if item.timer is not None:
                    item.timer.cancel()
                return item
        return None

    def pump(self) -> None:
        while not self.stopping and self.running < self.capacity():
            item = self.take()
            if item is None:
                return
            self.start(item)

    def start(self, item: Queued) -> None:
        self.running += 1
        task = self.loop.create_task(self.run(item))
        self.tasks.add(task)
        self.active[item.id] = item
        task.add_done_callback(self.tasks.discard)

    async def run(self, item: Queued) -> None:
        try:
            if item.cancelled:
                raise asyncio.CancelledError
            # A task of its own, so that a CANCEL stops the handler and not this answer.
            item.handler = self.loop.create_task(self.handlers[item.action](item.data))
            result = await item.handler
        except asyncio.CancelledError:
            if not item.cancelled:
                raise
            self.cancelled(item.id)  # it stopped because of its CANCEL (CANCEL-4)
        except Failure as exc:
            if self.m == "fail-wrong-status":
                self.respond(item.id, 200, exc.message)
            else:
                self.respond_failure(item.id, exc.status, exc.name, exc.message, exc.code)
        except Exception as exc:  # a bug in a handler still gets an answer (RESP-1)
            self.respond_failure(item.id, 500, type(exc).__name__, str(exc) or "error")
        else:
            if self.m == "stray-print":
                self.write_raw(f"handled {item.action}\n".encode())
            self.respond(item.id, 200, result)
        finally:
            self.active.pop(item.id, None)
            self.running -= 1
            self.pump()
            if self.stopping and self.running == 0:
                self.exit()

    # --- stopping -------------------------------------------------------------------

    def shutdown(self, grace_ms: int | None) -> None:
        """Stop taking work; exit when the running handlers are done, or at the latest
        after ``grace_ms`` (SHUT-6, STREAM-3), abandoning them; None: no deadline."""
        if grace_ms is not None:
            when = self.loop.time() + grace_ms / 1000
            if self.deadline is None or when < self.deadline.when():
                if self.deadline is not None:
                    self.deadline.cancel()
                self.deadline = self.loop.call_at(when, self.exit)
        if self.stopping:
            return
        self.stopping = self.m != "accepts-after-shutdown"
        concurrent = self.mode == "concurrent"
        while (item := self.take()) is not None:
            # SHUT-4: waiting requests are answered 503 and never run.
            if self.m == "drops-queued-at-shutdown" or (
                concurrent and self.m == "concurrent-drops-at-shutdown"
            ):
                self.owed.discard(item.id)
                continue
            self.refuse(item.id)
        if self.running == 0 or self.m == "accepts-after-shutdown":
            # accepts-after-shutdown waits a little, serving, before it exits. The exit
            # comes after the rest of this read is handled (SHUT-7: the same write).
            delay = 0.5 if self.m == "accepts-after-shutdown" else 0.0
            self.loop.call_later(delay, self.exit)

    def exit(self) -> None:
        if self.m == "partial-line":
            self.write_raw(b'{"type":"HEARTBEAT"')
        if not self.finished.done():
            self.finished.set_result(self.exit_code)

    async def heartbeats(self) -> None:
        if self.m == "no-heartbeat":
            return
        while True:
            self.send(
                {
                    "type": "HEARTBEAT",
                    "pid": os.getpid(),
                    "timestamp": int(time.time() * 1000),
                    "requestsActive": self.running + len(self.queue),
                }
            )
            self.heartbeat_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.heartbeat_wake.wait(), self.heartbeat_ms / 1000)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _several(text: str) -> list[Any]:
    """two-messages-one-line-accepted: every JSON value in a line, one after another."""
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    values: list[Any] = []
    at = 0
    while at < len(text):
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at == len(text):
            break
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError:
            break
        values.append(value)
    return values


async def serve(mutation: str | None, protocol: str = "1.1") -> int:
    global STRICT_INTEGERS  # noqa: PLW0603 - one process, one mutation
    STRICT_INTEGERS = mutation == "rejects-integral-float"
    worker = Worker(mutation, protocol)
    if mutation == "prints-banner":
        worker.write_raw(b"mutant worker starting\n")
    loop = asyncio.get_running_loop()
    stdin = os.fdopen(0, "rb", buffering=0, closefd=False)
    await loop.connect_read_pipe(lambda: worker, stdin)
    beat = loop.create_task(worker.heartbeats())
    code = await worker.finished
    beat.cancel()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mutation", choices=sorted(MUTATIONS), help="the rule to break")
    parser.add_argument(
        "--protocol",
        choices=["1.0", "1.1", "none"],
        default="1.1",
        help="the version READY states; 1.0 (or none: no version stated) makes it a worker"
        " from before CANCEL (default 1.1)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, what in MUTATIONS.items():
            sys.stdout.write(f"{name:<28} {what}\n")
        return 0
    code = asyncio.run(serve(args.mutation, args.protocol))
    sys.stderr.flush()
    # Leave at once: nothing is buffered (stdout is written with os.write), and a normal
    # exit could wait on nothing useful.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
