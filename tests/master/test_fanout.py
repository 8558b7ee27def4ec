"""Master.map and Master.as_completed: bounded concurrency, order, lazy pull, the timeout
counted from dispatch, and the error policy both ways (in-memory children)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pytest

from peepsy import Action, Master, PeepsyTimeoutError, RemoteError, Reply
from peepsy.protocol import RequestReceived
from tests.master._support import Farm, Peer, hold, in_flight_is, run, until


def jittered(peer: Peer, request: RequestReceived) -> None:
    """Answer with the data, after a random short delay: answers come out of order."""
    delay = random.uniform(0, 0.01)
    asyncio.get_running_loop().call_later(delay, peer.reply, request, 200, request.data)


def failing_on(bad: int) -> Any:
    def auto(peer: Peer, request: RequestReceived) -> None:
        if request.data == bad:
            peer.reply(request, 500, error=f"item {bad} failed")
        else:
            peer.reply(request, data=request.data)

    return auto


class Counting:
    """An iterable that records how many items were taken from it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for i in range(self.count):
            self.taken += 1
            yield i


async def group_of(farm: Farm, master: Master[Any, Any], size: int) -> list[Peer]:
    return [await farm.spawn(master, f"w{i}", "pool") for i in range(size)]


def state_cap(peer: Peer, cap: int) -> None:
    peer.write(peer.raw_line({"type": "READY", "pid": 4242, "maxConcurrency": cap}))


def test_map_keeps_input_order_and_never_exceeds_the_groups_capacity() -> None:
    async def main() -> None:
        farm = Farm(jittered)
        async with farm.master() as master:
            await group_of(farm, master, 3)
            replies = [r async for r in master.map("echo", "pool", range(60))]
        assert [r.data for r in replies] == list(range(60))
        assert all(isinstance(r, Reply) for r in replies)
        assert farm.peak_in_flight == 3  # three sequential members: one each

    run(main())


def test_a_window_full_of_finished_results_is_refilled_once_they_are_yielded() -> None:
    # The first item is held while the next ones finish: map holds MAP_WINDOW x
    # concurrency items started and not yet yielded, then waits for the first.
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            peers = await group_of(farm, master, 2)
            items = Counting(20)
            results = master.map("echo", "pool", items)
            first = asyncio.ensure_future(anext(results))
            held = None
            while items.taken < 8:
                await until(lambda: farm.in_flight == 2)
                for peer in peers:
                    for request in list(peer.unanswered.values()):
                        if request.data == 0:
                            held = (peer, request)
                        else:
                            peer.reply(request, data=request.data)
                await until(lambda: farm.in_flight == 1 or items.taken == 8)
            await until(lambda: farm.in_flight == 1)
            assert items.taken == 8  # the window: 2 in flight x 4
            assert held is not None
            held[0].reply(held[1], data=0)
            assert (await first).data == 0
            farm.auto = echo_auto
            for peer in peers:
                peer.auto = echo_auto
            rest = [r.data async for r in results]
            assert rest == list(range(1, 20))

    run(main())


def echo_auto(peer: Peer, request: RequestReceived) -> None:
    peer.reply(request, data=request.data)


def test_explicit_concurrency_wins_over_capacity() -> None:
    async def main() -> None:
        farm = Farm(jittered)
        async with farm.master() as master:
            await farm.spawn(master, "w", mode="concurrent")
            out = [r.data async for r in master.map("echo", "w", range(20), concurrency=2)]
        assert out == list(range(20))
        assert farm.peak_in_flight == 2

    run(main())


def test_a_concurrent_child_runs_its_stated_cap_and_a_group_its_own_cap() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "c", mode="concurrent")
            state_cap(peer, 3)
            await until(lambda: master._workers["c"].stated_concurrency == 3)
            items = Counting(10)
            results = master.map("echo", "c", items)
            first = asyncio.ensure_future(anext(results))
            await until(in_flight_is(farm, 3))
            assert items.taken == 3
            for request in list(peer.unanswered.values()):
                peer.reply(request, data=request.data)
            assert (await first).data == 0
            await results.aclose()

    run(main())


def test_a_groups_own_cap_bounds_the_sum_of_its_members() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            await group_of(farm, master, 4)
            master.configure_group("pool", max_concurrency=2)
            pooled = master.map("echo", "pool", range(5))
            pending = asyncio.ensure_future(anext(pooled))
            await until(in_flight_is(farm, 2))
            pending.cancel()  # the consumer is cancelled: so is what it had in flight
            with contextlib.suppress(asyncio.CancelledError):
                await pending
            await pooled.aclose()
            assert master.active_requests == 0

    run(main())


def test_an_unstated_cap_and_an_unknown_target() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "c", mode="concurrent")
            replies = [r.data async for r in master.map("echo", "c", range(40))]
            assert replies == list(range(40))
            with pytest.raises(Exception, match="nowhere"):
                [r async for r in master.map("echo", "nowhere", [1])]

    run(main())


def test_items_are_pulled_lazily() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            peers = await group_of(farm, master, 2)

            def endless() -> Iterator[int]:
                i = 0
                while True:
                    taken.append(i)
                    yield i
                    i += 1

            taken: list[int] = []
            results = master.map("echo", "pool", endless())
            first = asyncio.ensure_future(anext(results))
            await until(in_flight_is(farm, 2))
            assert taken == [0, 1]
            request = next(iter(peers[0].unanswered.values()))
            peers[0].reply(request, data=request.data)
            assert (await first).data == 0
            await until(in_flight_is(farm, 2))
            assert taken == [0, 1, 2]
            await results.aclose()  # leaving early withdraws what is in flight
            assert master.active_requests == 0

    run(main())


def test_the_timeout_counts_from_dispatch_not_from_the_call() -> None:
    # Three items on one sequential child, each answered 0.6 s after it is sent, with a
    # 1.5 s timeout: gathered at once, the third would wait 1.2 s in the child's queue
    # and time out; through map it is sent when the child is free.
    async def main() -> None:
        def later(peer: Peer, request: RequestReceived) -> None:
            asyncio.get_running_loop().call_later(0.6, peer.reply, request, 200, request.data)

        farm = Farm(later)
        async with farm.master() as master:
            await farm.spawn(master, "w")
            out = [r.data async for r in master.map("echo", "w", range(3), timeout=1500)]
        assert out == [0, 1, 2]
        assert farm.peak_in_flight == 1

    run(main())


def test_a_timeout_is_a_failure_like_any_other() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            await farm.spawn(master, "w")
            out = [r async for r in master.map("x", "w", [1], timeout=50, on_error="return")]
        assert isinstance(out[0], PeepsyTimeoutError)

    run(main())


def test_raise_yields_what_comes_before_the_failure_then_raises_and_withdraws() -> None:
    async def main() -> None:
        farm = Farm(failing_on(3), protocol="1.1")
        async with farm.master() as master:
            await group_of(farm, master, 2)
            items = Counting(1000)
            seen: list[int] = []

            async def consume() -> None:
                async for reply in master.map("echo", "pool", items):
                    seen.append(reply.data)

            with pytest.raises(RemoteError, match="item 3 failed"):
                await consume()
            assert seen == [0, 1, 2]
            assert items.taken < 10  # nothing more is sent after the failure
            assert master.active_requests == 0

    run(main())


def test_raise_withdraws_requests_after_the_failure_that_are_still_running() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            peers = await group_of(farm, master, 3)
            results = master.map("echo", "pool", range(3))
            first = asyncio.ensure_future(anext(results))
            await until(in_flight_is(farm, 3))
            by_data = {r.data: (p, r) for p in peers for r in p.unanswered.values()}
            peer, request = by_data[1]
            peer.reply(request, 500, error="boom")
            await until(lambda: len(by_data[2][0].cancels) == 1)  # after it: withdrawn
            peer0, request0 = by_data[0]
            peer0.reply(request0, data=0)  # before it: still awaited and yielded
            assert (await first).data == 0
            with pytest.raises(RemoteError, match="boom"):
                await anext(results)

    run(main())


def test_return_puts_the_exception_in_the_items_place() -> None:
    async def main() -> None:
        farm = Farm(failing_on(2))
        async with farm.master() as master:
            await group_of(farm, master, 2)
            out = [r async for r in master.map("echo", "pool", range(5), on_error="return")]
        assert [r.data for r in out if isinstance(r, Reply)] == [0, 1, 3, 4]
        assert isinstance(out[2], RemoteError)

    run(main())


def test_as_completed_yields_every_index_once() -> None:
    async def main() -> None:
        farm = Farm(jittered)
        async with farm.master() as master:
            await group_of(farm, master, 3)
            pairs = [p async for p in master.as_completed("echo", "pool", range(30))]
        assert sorted(i for i, _ in pairs) == list(range(30))
        assert all(reply.data == i for i, reply in pairs)
        assert farm.peak_in_flight == 3

    run(main())


def test_as_completed_raise_withdraws_everything_else_and_return_goes_on() -> None:
    async def main() -> None:
        farm = Farm(failing_on(4), protocol="1.1")
        async with farm.master() as master:
            await group_of(farm, master, 2)
            with pytest.raises(RemoteError):
                [p async for p in master.as_completed("echo", "pool", range(100))]
            assert master.active_requests == 0
            pairs = [p async for p in master.as_completed("e", "pool", range(6), on_error="return")]
        failed = [i for i, r in pairs if isinstance(r, RemoteError)]
        assert failed == [4]
        assert len(pairs) == 6

    run(main())


def test_an_item_refused_before_sending_is_that_items_failure() -> None:
    # A request() that raises at the call, not when awaited, fails its item alone.
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w")
            send = master.request

            def refusing(action: str, target: str, data: Any, **options: Any) -> Any:
                if data == 2:
                    raise TypeError("refused 2")
                return send(action, target, data, **options)

            master.request = refusing  # type: ignore[method-assign,assignment]
            out = [r async for r in master.map("echo", "w", [1, 2, 3], on_error="return")]
        assert [r.data for r in out if isinstance(r, Reply)] == [1, 3]
        assert isinstance(out[1], TypeError)

    run(main())


def test_an_empty_iterable_yields_nothing_and_sends_nothing() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w")
            assert [r async for r in master.map("echo", "w", [])] == []
            assert [p async for p in master.as_completed("echo", "w", iter(()))] == []
        assert peer.requests == []

    run(main())


def test_a_typed_action_yields_its_response_type() -> None:
    number = Action("echo", int, int)

    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w")
            assert [n async for n in master.map(number, "w", [1, 2])] == [1, 2]
            async with contextlib.aclosing(master.as_completed(number, "w", [5])) as pairs:
                assert [p async for p in pairs] == [(0, 5)]

    run(main())


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"concurrency": 0}, ValueError),
        ({"concurrency": "2"}, TypeError),
        ({"on_error": "ignore"}, ValueError),
    ],
)
def test_bad_options_are_refused_at_the_call(options: dict[str, Any], error: type) -> None:
    master = Farm().master()
    with pytest.raises(error):
        master.map("echo", "w", [1], **options)
    with pytest.raises(error):
        master.as_completed("echo", "w", [1], **options)


def test_results_after_a_failure_are_dropped_even_when_already_in() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            peers = await group_of(farm, master, 4)
            results = master.map("echo", "pool", range(4))
            first = asyncio.ensure_future(anext(results))
            await until(in_flight_is(farm, 4))
            by_data = {r.data: (p, r) for p in peers for r in p.unanswered.values()}
            by_data[3][0].reply(by_data[3][1], data=3)  # in, waiting for its turn
            await until(in_flight_is(farm, 3))
            # A failure and a success after it, in the same loop pass.
            by_data[1][0].reply(by_data[1][1], 500, error="boom")
            by_data[2][0].reply(by_data[2][1], data=2)
            by_data[0][0].reply(by_data[0][1], data=0)
            assert (await first).data == 0
            with pytest.raises(RemoteError, match="boom"):
                await anext(results)

    run(main())


def test_a_request_cancelled_elsewhere_is_a_failure_and_an_interrupt_goes_through() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w")
            loop = asyncio.get_running_loop()

            def settled(action: str, target: str, data: Any, **options: Any) -> Any:
                future: asyncio.Future[Any] = loop.create_future()
                if data == "cancelled":
                    future.cancel()
                else:
                    future.set_exception(KeyboardInterrupt())
                return future

            master.request = settled  # type: ignore[method-assign,assignment]
            out = [r async for r in master.map("x", "w", ["cancelled"], on_error="return")]
            assert isinstance(out[0], asyncio.CancelledError)
            with pytest.raises(KeyboardInterrupt):
                [r async for r in master.map("x", "w", ["interrupt"], on_error="return")]

    run(main())
