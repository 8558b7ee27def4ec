"""A conformance-profile worker that can be broken on purpose, one rule at a time.

Without ``--mutation`` this is a correct peepsy worker, written on plain asyncio from
docs/protocol.md alone (it does not import peepsy, so that a mutation can break the
wire in any way it likes). It serves the conformance profile: ``echo``, ``fail``,
``sleep`` and ``callMaster`` (see conformance/workers/python_worker.py).

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
    "drops-legacy-shape": "ignores REQUESTs in the legacy nested shape",
    "legacy-loses": "prefers the flat id and action over the nested ones",
    "no-400": "ignores invalid requests, even those whose id it can read",
    "runs-duplicate-ids": "runs and answers a second request with the id of one it still owes",
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
    # requests to the master
    "call-master-wrong": "callMaster answers with the master's data wrapped in a list",
    "call-master-failure-lost": "callMaster turns the master's failure into a success",
}

MAX_LINE = 16 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 5000
SHUTDOWN_GRACE_MS = 10_000
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


def _valid_name(value: object, most: int) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= most


class Worker(asyncio.Protocol):
    def __init__(self, mutation: str | None) -> None:
        self.m = mutation
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
        self.call_ids = itertools.count(1)
        self.buffer = bytearray()
        self.skipping = False
        self.line_number = 0
        self.finished: asyncio.Future[int] = self.loop.create_future()
        self.heartbeat_wake = asyncio.Event()
        self.wrote_anything = False
        self.deaf = False  # init-repeat-breaks: a second INIT stopped it serving
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

    def send(self, message: dict[str, Any]) -> None:
        try:
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:  # 1e400 came in as infinity; JSON has none (FRAME-3)
            text = json.dumps(_finite(message), ensure_ascii=False, separators=(",", ":"))
        end = "\r\n" if self.m == "crlf" else "\n"
        self.write_raw((text + end).encode("utf-8"))

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
        future: asyncio.Future[Any] = self.loop.create_future()
        self.calls[rid] = future
        request: dict[str, Any] = {"type": "REQUEST", "id": rid, "action": data["action"]}
        if "data" in data:
            request["data"] = data["data"]
        request["timeout"] = DEFAULT_TIMEOUT_MS
        self.send(request)
        try:
            answer = await asyncio.wait_for(future, DEFAULT_TIMEOUT_MS / 1000)
        except TimeoutError:
            raise Failure(500, "PeepsyTimeoutError", "the master did not answer") from None
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
                    self.buffer = bytearray()
            if nl < 0:
                return
            self.line_number += 1
            if self.skipping:
                log(f"line {self.line_number}: too long; dropped")
                self.skipping = False
            else:
                line = bytes(self.buffer)
                self.buffer = bytearray()
                self.line(line)
            start = nl + 1

    def eof_received(self) -> bool:
        if self.m == "no-exit-on-eof":
            return True
        for future in self.calls.values():
            if not future.done():
                future.set_exception(Failure(500, "HandlerError", "the master is gone"))
        self.shutdown(SHUTDOWN_GRACE_MS)
        return True

    def line(self, raw: bytes) -> None:
        if self.line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
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
            log(f"line {self.line_number}: not UTF-8")
            return
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
            msg = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            if self.m == "crash-on-bad-json":
                os._exit(3)
            log(f"line {self.line_number}: not JSON: {exc}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            if self.m == "crash-on-bad-json":
                os._exit(3)
            log(f"line {self.line_number}: not a message")
            return
        self.message(msg)

    def message(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "REQUEST":
            self.request(msg)
        elif kind == "RESPONSE":
            self.response(msg)
        elif kind == "INIT":
            self.init(msg)
        elif kind == "SHUTDOWN":
            if self.m == "ignores-shutdown":
                return
            if self.m == "exits-nonzero-on-shutdown":
                os._exit(1)
            if self.m == "shutdown-abandons":
                os._exit(0)
            timeout = msg.get("timeout")
            self.shutdown(timeout if _valid_int(timeout, 1, 300_000) else SHUTDOWN_GRACE_MS)
        elif kind in ("READY", "HEARTBEAT"):
            if self.m == "wrong-role-crash":
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
        if not _valid_int(msg.get("status"), 100, 599):
            log(f"an invalid RESPONSE to {rid!r}")
            return
        if not future.done():
            future.set_result(msg)

    def init(self, msg: dict[str, Any]) -> None:
        if self.init_seen:
            if self.m == "init-repeat-breaks":
                self.deaf = True
            return
        if msg.get("mode") not in ("sequential", "concurrent"):
            return
        self.init_seen = True
        self.mode = msg["mode"]
        interval = msg.get("heartbeatInterval")
        if _valid_int(interval, 1, 300_000):
            self.heartbeat_ms = interval
            self.heartbeat_wake.set()
        self.pump()

    # --- requests -------------------------------------------------------------------

    def request(self, msg: dict[str, Any]) -> None:
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
        readable = None
        if isinstance(body, dict) and _valid_name(body.get("id"), 128):
            readable = body["id"]
        elif legacy and not isinstance(body, dict) and _valid_name(msg.get("id"), 128):
            readable = msg["id"]
        problem = self.problem(msg, body)
        if problem is None and self.m == "rejects-unknown-members":
            known = {"type", "id", "action", "data", "timeout", "priority", "request"}
            if set(msg) - known:
                problem = "unknown members"
        if problem is not None:
            if readable is not None and readable not in self.owed and self.m != "no-400":
                self.respond_failure(
                    readable,
                    400,
                    "PeepsyBadRequestError",
                    f"invalid REQUEST: {problem}",
                    "PEEPSY_BAD_REQUEST",
                )
            else:
                log(f"dropped an invalid REQUEST: {problem}")
            return
        assert isinstance(body, dict)
        rid: str = body["id"]
        action: str = body["action"]
        if rid in self.owed and self.m != "runs-duplicate-ids":
            log(f"a second request {rid!r} while the first runs: ignored (ID-2)")
            return
        self.owed.add(rid)
        if self.stopping and self.m != "accepts-after-shutdown":
            self.respond_failure(
                rid, 503, "PeepsyShutdownError", "shutting down", "PEEPSY_SHUTTING_DOWN"
            )
            return
        if action not in self.handlers:
            text = NOT_FOUND.format(action)
            if self.m == "wrong-404-text":
                text = f"unknown action {action!r}"
            status = 500 if self.m == "unknown-action-500" else 404
            self.respond_failure(rid, status, "PeepsyNotFoundError", text, "PEEPSY_NOT_FOUND")
            return
        timeout = msg.get("timeout", DEFAULT_TIMEOUT_MS)
        priority = 0 if self.m == "no-priority" else msg.get("priority", 0)
        item = Queued((-priority, next(self.seq)), rid, action, body.get("data"), timeout)
        if self.running < self.capacity() and not self.queue:
            self.start(item)
            return
        if self.m != "drops-expired":
            item.timer = self.loop.call_later(timeout / 1000, self.expire, item)
        else:
            item.timer = self.loop.call_later(timeout / 1000, self.drop, item)
        heapq.heappush(self.queue, item)

    @staticmethod
    def problem(msg: dict[str, Any], body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request is not an object"
        if not _valid_name(body.get("id"), 128):
            return "id is not a string of 1..128 characters"
        if not _valid_name(body.get("action"), 256):
            return "action is not a string of 1..256 characters"
        if "timeout" in msg and not _valid_int(msg["timeout"], 1, 300_000):
            return "timeout is not an integer of 1..300000"
        if "priority" in msg and not _valid_int(msg["priority"], -(2**31), 2**31 - 1):
            return "priority is not a 32-bit integer"
        return None

    def capacity(self) -> float:
        if self.m == "sequential-overlaps":
            return float("inf")
        if self.m == "concurrent-serializes":
            return 1
        return 1 if self.mode == "sequential" else float("inf")

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
        task.add_done_callback(self.tasks.discard)

    async def run(self, item: Queued) -> None:
        try:
            result = await self.handlers[item.action](item.data)
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
            self.running -= 1
            self.pump()
            if self.stopping and self.running == 0:
                self.exit()

    # --- stopping -------------------------------------------------------------------

    def shutdown(self, grace_ms: int) -> None:
        if self.stopping:
            return
        self.stopping = self.m != "accepts-after-shutdown"
        while (item := self.take()) is not None:
            if self.m == "drops-queued-at-shutdown":
                self.owed.discard(item.id)
                continue
            self.respond_failure(
                item.id, 503, "PeepsyShutdownError", "shutting down", "PEEPSY_SHUTTING_DOWN"
            )
        if self.running == 0 or self.m == "accepts-after-shutdown":
            # accepts-after-shutdown waits a little, serving, before it exits
            delay = 0.5 if self.m == "accepts-after-shutdown" else 0.0
            self.loop.call_later(delay, self.exit)
        else:
            self.loop.call_later(grace_ms / 1000, self.exit)

    def exit(self) -> None:
        if self.m == "partial-line":
            self.write_raw(b'{"type":"HEARTBEAT"')
        if not self.finished.done():
            self.finished.set_result(0)

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


async def serve(mutation: str | None) -> int:
    worker = Worker(mutation)
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
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, what in MUTATIONS.items():
            sys.stdout.write(f"{name:<28} {what}\n")
        return 0
    code = asyncio.run(serve(args.mutation))
    sys.stderr.flush()
    # Leave at once: nothing is buffered (stdout is written with os.write), and a normal
    # exit could wait on nothing useful.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
