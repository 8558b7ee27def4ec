"""Node's own control lines are dropped by the Node IPC transport, before the core."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from peepsy.transport._node_ipc import CONTROL_MARK, ControlFilter

PEEPSY_LINES = st.sampled_from(
    [
        b'{"type":"SHUTDOWN"}\n',
        b'{"type":"REQUEST","id":"m1","action":"a","data":"{\\"cmd\\":\\"NODE_X\\"}"}\n',
        b'{"cmd":"NODEX"}\n',  # not the mark: a peepsy-shaped line of someone else's
        b' {"cmd":"NODE_HANDLE"}\n',  # the mark not at the line's start
        b'{"cmd":"NOD',  # a final partial line that stops inside the mark's prefix
        b"\n",
    ]
)
CONTROL_LINES = st.sampled_from(
    [
        b'{"cmd":"NODE_HANDLE","type":"REQUEST","id":"m1"}\n',
        b'{"cmd":"NODE_HANDLE_ACK"}\n',
    ]
)


def _run(chunks: list[bytes]) -> bytes:
    f = ControlFilter()
    return b"".join(f.feed(chunk) for chunk in chunks)


def test_control_lines_are_dropped_and_peepsy_lines_kept() -> None:
    data = b'{"cmd":"NODE_HANDLE","type":"REQUEST","id":"m1"}\n{"type":"SHUTDOWN"}\n'
    assert _run([data]) == b'{"type":"SHUTDOWN"}\n'


def test_a_read_without_the_mark_passes_through_as_it_is() -> None:
    data = b'{"type":"RESPONSE","id":"m1","status":200}\n{"type":"RESP'
    f = ControlFilter()
    assert f.feed(data) is data


@given(
    st.lists(st.tuples(st.booleans(), PEEPSY_LINES, CONTROL_LINES), max_size=12),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_split_of_any_mix_keeps_exactly_the_peepsy_bytes(
    lines: list[tuple[bool, bytes, bytes]], cuts: list[int]
) -> None:
    stream: list[bytes] = []
    expected: list[bytes] = []
    for is_control, ours, theirs in lines:
        if expected and not expected[-1].endswith(b"\n"):
            break  # only the very last line may be partial
        if is_control:
            stream.append(theirs)
        else:
            stream.append(ours)
            expected.append(ours)
    data = b"".join(stream)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    out = _run(chunks)
    want = b"".join(expected)
    if want.endswith(b'{"cmd":"NOD'):
        # A stream that ends inside what may still become the mark is held back.
        assert out == want[: -len(b'{"cmd":"NOD')]
    else:
        assert out == want
    assert CONTROL_MARK not in out.replace(b' {"cmd":"NODE_', b"")
