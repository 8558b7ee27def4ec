"""The conformance profile served by the reference Python child.

A worker that registers these four actions can be checked at the ``profile`` level of
``python -m peepsy.conformance``, and, since a peepsy ``Child`` speaks protocol 1.1
(CANCEL), at the ``cancel`` level too:

    echo        answers with the request's data, unchanged
    fail        fails: status 500, the error text is the request's data (a string)
    sleep       waits data milliseconds, then answers with data; a CANCEL for it stops
                it at once (it is an async handler, cancelled through asyncio), and the
                child answers 499, as the cancel level wants
    callMaster  sends the master a REQUEST {action: data.action, data: data.data} (with
                timeout data.timeout when given) and answers with the master's response
                data; any failure of the call (a failure answer, an invalid answer, no
                answer in time) fails callMaster: status >= 400 and an error string
"""

import asyncio
from typing import Any

from peepsy import Child, HandlerError, PeepsyError, RemoteError

child = Child()


@child.handler("echo")
async def echo(data: Any) -> Any:
    return data


@child.handler("fail")
async def fail(data: Any) -> Any:
    raise HandlerError(str(data) if data is not None else "failed on purpose", code="E_FAIL")


@child.handler("sleep")
async def sleep(data: Any) -> Any:
    await asyncio.sleep(float(data) / 1000)
    return data


@child.handler("callMaster")
async def call_master(data: Any) -> Any:
    timeout = data.get("timeout")
    try:
        return await child.request(data["action"], data.get("data"), timeout=timeout)
    except RemoteError:
        raise  # the master's own failure, relayed with its status
    except PeepsyError as exc:
        # 502: the master did not give a usable answer (REQ-11, MSG-9).
        raise HandlerError(f"callMaster failed: {exc}", status=502, code=exc.code) from exc


if __name__ == "__main__":
    child.run()
