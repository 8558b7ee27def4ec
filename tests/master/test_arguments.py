"""Bad arguments to ``request()`` fail clearly: a TypeError naming the argument, raised
where the caller awaits, and nothing is sent (issue 10, item 6)."""

from __future__ import annotations

from typing import Any

import pytest

from peepsy import LocalProtocolError, Master
from tests.master._support import Farm, run


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((None, "w1"), {}, r"action is a str or an Action, not NoneType \(None\)"),
        ((123, "w1"), {}, r"action is a str or an Action, not int \(123\)"),
        ((object(), "w1"), {}, "action is a str or an Action, not object"),
        (("x", None), {}, r"target is a str \(the name of a child or a group\), not NoneType"),
        (("x", 123), {}, "target is a str .*, not int"),
        (("x", ["w1"]), {}, "target is a str .*, not list"),
        (("x", "w1"), {"priority": "high"}, r"priority is an int, not str \('high'\)"),
        (("x", "w1"), {"priority": 1.5}, "priority is an int, not float"),
        (("x", "w1"), {"timeout": "100"}, "timeout is an integer number of milliseconds"),
        (("x", "w1"), {"retries": "1"}, r"retries is an integer >= 0, not str"),
    ],
)
def test_arguments_of_the_wrong_type_are_a_type_error(
    args: tuple[Any, ...], options: dict[str, Any], message: str
) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            # Before: AttributeError: 'NoneType' object has no attribute 'name' (and
            # others: a bad priority reached the protocol core, a list target raised
            # 'unhashable type' from request() itself).
            call = master.request(*args, **options)
            with pytest.raises(TypeError, match=message):
                await call
            assert farm.peer("w1").requests == []

    run(main())


def test_a_priority_out_of_range_is_still_the_cores_to_refuse() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(LocalProtocolError, match="priority is a 32-bit integer"):
                await master.request("x", "w1", priority=2**31)

    run(main())


@pytest.mark.parametrize("name", ["stall_grace", "startup_grace", "restart_cooldown"])
@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (True, ValueError), ("1", TypeError)]
)
def test_the_new_master_options_are_validated(
    name: str, value: object, error: type[Exception]
) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(error, match=name):
        Master(**options)
