"""The conformance profile served by the reference Python child.

A worker that registers these four actions can be checked at the ``profile`` level of
``python -m peepsy.conformance``:

    echo        answers with the request's data, unchanged
    fail        fails: status 500, the error text is the request's data (a string)
    sleep       waits data milliseconds, then answers with data
    callMaster  sends the master a REQUEST {action: data.action, data: data.data} and
                answers with the master's response data (or fails if the master did)
"""

import asyncio
from typing import Any

from peepsy import Child, HandlerError

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
    return await child.request(data["action"], data.get("data"))


if __name__ == "__main__":
    child.run()
