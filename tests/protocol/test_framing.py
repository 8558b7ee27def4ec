"""LineFramer: bytes in any chunking -> numbered lines and framing errors (FRAME-*)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    MIN_MAX_LINE_BYTES,
    InvalidJson,
    LineFramer,
    LineRun,
    LineTooLong,
    RemoteProtocolError,
    TruncatedLine,
    parse,
)
from peepsy.protocol._framing import HEAD_BYTES

BOM = b"\xef\xbb\xbf"

# What the framer said, in a form that does not depend on how the input was chunked:
# ("line", number, bytes) for a line, (error class name, line number) for an error.
Outcome = tuple[str, int, bytes] | tuple[str, int | None]


def outcome(items: Sequence[tuple[int, bytes] | RemoteProtocolError]) -> list[Outcome]:
    out: list[Outcome] = []
    for item in items:
        if isinstance(item, tuple):
            out.append(("line", item[0], item[1]))
        else:
            out.append((type(item).__name__, item.line))
    return out


def run(chunks: list[bytes], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[Outcome]:
    """Feed the chunks in order, then close the stream."""
    framer = LineFramer(max_line_bytes)
    items: list[tuple[int, bytes] | RemoteProtocolError] = []
    for chunk in chunks:
        items.extend(framer.feed(chunk))
    items.extend(framer.close())
    return outcome(items)


def run_in_runs(chunks: list[bytes], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[Outcome]:
    """As :func:`run`, through ``feed_runs``, each run split as a reader falls back to."""
    framer = LineFramer(max_line_bytes)
    items: list[tuple[int, bytes] | RemoteProtocolError] = []
    for chunk in chunks:
        for item in framer.feed_runs(chunk):
            if isinstance(item, LineRun):
                assert len(item.data) <= max_line_bytes - 1  # no line in it can be too long
                assert b"\n" in item.data  # two lines at least
                items.extend(framer.split(item))
            else:
                items.append(item)
    items.extend(framer.close())
    return outcome(items)


# A BOM opening the stream, CRLF and LF endings, blank and whitespace-only lines,
# multi-byte UTF-8, and a partial last line.
STREAM = (
    BOM
    + b'{"type":"HEARTBEAT","pid":1,"timestamp":2}\r\n'
    + b"\n"
    + b" \t \r\n"
    + b'{"type":"SHUTDOWN","x":"\xc3\xa9\xf0\x9f\x98\x80"}\n'
    + b"\r\n"
    + b'{"type":"READY","pid":3}\n'
    + b'{"partial":'
)
STREAM_OUTCOME: list[Outcome] = [
    ("line", 1, b'{"type":"HEARTBEAT","pid":1,"timestamp":2}'),
    ("line", 4, b'{"type":"SHUTDOWN","x":"\xc3\xa9\xf0\x9f\x98\x80"}'),
    ("line", 6, b'{"type":"READY","pid":3}'),
    ("TruncatedLine", 7),
]

# With a 16-byte limit: a line dropped when it completes within a chunk or when it is
# still unterminated, depending on the split, and the lines around it unharmed.
LONG_STREAM = b"short\n" + b"L" * 40 + b"\n" + b"after\n" + b"x" * 15 + b"\n" + b"y" * 16 + b"\n"
LONG_OUTCOME: list[Outcome] = [
    ("line", 1, b"short"),
    ("LineTooLong", 2),
    ("line", 3, b"after"),
    ("line", 4, b"x" * 15),
    ("LineTooLong", 5),
]


def test_the_reference_streams_give_the_expected_outcome() -> None:
    assert run([STREAM]) == STREAM_OUTCOME
    assert run([LONG_STREAM], max_line_bytes=16) == LONG_OUTCOME


@pytest.mark.parametrize("split", range(len(STREAM) + 1))
def test_every_split_point_gives_the_same_lines(split: int) -> None:
    assert run([STREAM[:split], STREAM[split:]]) == STREAM_OUTCOME


def test_every_pair_of_split_points_gives_the_same_lines() -> None:
    for i in range(len(STREAM) + 1):
        for j in range(i, len(STREAM) + 1):
            chunks = [STREAM[:i], STREAM[i:j], STREAM[j:]]
            assert run(chunks) == STREAM_OUTCOME, (i, j)


def test_one_byte_at_a_time_gives_the_same_lines() -> None:
    assert run([STREAM[i : i + 1] for i in range(len(STREAM))]) == STREAM_OUTCOME


@pytest.mark.parametrize("split", range(len(LONG_STREAM) + 1))
def test_every_split_point_drops_the_same_long_lines(split: int) -> None:
    chunks = [LONG_STREAM[:split], LONG_STREAM[split:]]
    assert run(chunks, max_line_bytes=16) == LONG_OUTCOME


def test_one_byte_at_a_time_drops_the_same_long_lines() -> None:
    chunks = [LONG_STREAM[i : i + 1] for i in range(len(LONG_STREAM))]
    assert run(chunks, max_line_bytes=16) == LONG_OUTCOME


# --- runs: the same lines, taken whole ------------------------------------------------


def test_runs_give_the_same_lines_at_every_pair_of_split_points() -> None:
    for i in range(len(STREAM) + 1):
        for j in range(i, len(STREAM) + 1):
            chunks = [STREAM[:i], STREAM[i:j], STREAM[j:]]
            assert run_in_runs(chunks) == STREAM_OUTCOME, (i, j)


@pytest.mark.parametrize("split", range(len(LONG_STREAM) + 1))
def test_runs_drop_the_same_long_lines(split: int) -> None:
    chunks = [LONG_STREAM[:split], LONG_STREAM[split:]]
    assert run_in_runs(chunks, max_line_bytes=16) == LONG_OUTCOME


def test_a_run_is_the_complete_lines_after_the_pending_one() -> None:
    framer = LineFramer()
    assert framer.feed_runs(b'{"a"') == []
    items = framer.feed_runs(b':1}\n{"b":2}\r\n\n{"c":3}\n{"d"')
    assert items[0] == (1, b'{"a":1}')
    run = items[1]
    assert isinstance(run, LineRun)
    assert (run.first, run.data) == (2, b'{"b":2}\r\n\n{"c":3}')
    assert framer.split(run) == [(2, b'{"b":2}'), (4, b'{"c":3}')]
    assert len(items) == 2
    assert framer.line_number == 4
    assert framer.feed_runs(b":4}\n") == [(5, b'{"d":4}')]  # one line: no run
    assert "first=2" in repr(run)


_LINE = st.sampled_from(
    [b'{"x":1}', b"", b" ", b"\t\r", b"\r", b'{"y":"\xc3\xa9"}\r', b" {}", b"\x0c{}", b"z" * 20]
)


@given(
    lines=st.lists(_LINE, max_size=12),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    tail=st.sampled_from([b"", b'{"partial"', b"w" * 20]),
)
def test_runs_give_the_same_outcome_as_lines_for_any_stream_and_chunking(
    lines: list[bytes], cuts: list[int], tail: bytes
) -> None:
    stream = b"".join(line + b"\n" for line in lines) + tail
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    for limit in (16, DEFAULT_MAX_LINE_BYTES):
        assert run_in_runs(chunks, limit) == run(chunks, limit)


# --- line endings and blank lines (FRAME-4, FRAME-5) -------------------------------


def test_crlf_lines_lose_the_carriage_return() -> None:
    framer = LineFramer()
    assert framer.feed(b"a\r\nb\nc\r\n") == [(1, b"a"), (2, b"b"), (3, b"c")]


def test_only_one_carriage_return_before_the_newline_is_dropped() -> None:
    framer = LineFramer()
    assert framer.feed(b"a\r\r\nb\rc\n\rd\n") == [(1, b"a\r"), (2, b"b\rc"), (3, b"\rd")]


def test_carriage_return_split_from_its_newline() -> None:
    framer = LineFramer()
    assert framer.feed(b"abc\r") == []
    assert framer.buffered == 4
    assert framer.feed(b"\n") == [(1, b"abc")]


def test_blank_and_whitespace_only_lines_are_skipped_but_counted() -> None:
    framer = LineFramer()
    items = framer.feed(b"\n\r\n \n\t\t\n  \r\n\r\r\n{}\n")
    assert items == [(7, b"{}")]
    assert framer.line_number == 7


def test_line_with_leading_and_trailing_spaces_is_kept_as_is() -> None:
    framer = LineFramer()
    assert framer.feed(b"  {} \t\n") == [(1, b"  {} \t")]


# --- byte-order mark (FRAME-7) ------------------------------------------------------


def test_bom_opening_the_stream_is_stripped() -> None:
    framer = LineFramer()
    assert framer.feed(BOM + b"{}\n{}\n") == [(1, b"{}"), (2, b"{}")]


@pytest.mark.parametrize("at", [1, 2, 3])
def test_bom_split_across_feeds_is_stripped(at: int) -> None:
    framer = LineFramer()
    assert framer.feed(BOM[:at]) == []
    assert framer.buffered == (at if at < 3 else 0)
    assert framer.feed(BOM[at:] + b"{}\n") == [(1, b"{}")]


def test_bom_one_byte_then_the_rest_is_stripped() -> None:
    framer = LineFramer()
    assert framer.feed(b"\xef") == []
    assert framer.buffered == 1
    assert framer.feed(b"\xbb\xbf" + b'{"type":"SHUTDOWN"}\n') == [(1, b'{"type":"SHUTDOWN"}')]


def test_bom_one_byte_per_feed_is_stripped() -> None:
    framer = LineFramer()
    assert framer.feed(b"\xef") == []
    assert framer.feed(b"\xbb") == []
    assert framer.feed(b"\xbf") == []
    assert framer.buffered == 0
    assert framer.feed(b"{}\n") == [(1, b"{}")]


def test_empty_feed_does_not_end_the_start_of_the_stream() -> None:
    framer = LineFramer()
    assert framer.feed(b"") == []
    assert framer.feed(BOM + b"{}\n") == [(1, b"{}")]


def test_bom_is_stripped_only_once() -> None:
    framer = LineFramer()
    assert framer.feed(BOM + BOM + b"{}\n") == [(1, BOM + b"{}")]


def test_bom_on_a_later_line_is_not_stripped_and_fails_to_parse() -> None:
    framer = LineFramer()
    items = framer.feed(b'{"type":"SHUTDOWN"}\n' + BOM + b'{"type":"SHUTDOWN"}\n')
    assert items == [(1, b'{"type":"SHUTDOWN"}'), (2, BOM + b'{"type":"SHUTDOWN"}')]
    second = items[1]
    assert isinstance(second, tuple)
    with pytest.raises(InvalidJson) as info:
        parse(second[1], line_number=second[0])
    assert info.value.line == 2


def test_bom_after_a_blank_first_line_is_not_stripped() -> None:
    framer = LineFramer()
    assert framer.feed(b"\n" + BOM + b"{}\n") == [(2, BOM + b"{}")]


def test_bom_in_a_later_feed_is_not_stripped() -> None:
    framer = LineFramer()
    assert framer.feed(b"{}\n") == [(1, b"{}")]
    assert framer.feed(BOM + b"{}\n") == [(2, BOM + b"{}")]


def test_bom_prefix_followed_by_other_bytes_is_kept() -> None:
    framer = LineFramer()
    assert framer.feed(b"\xef") == []
    assert framer.feed(b"x\n") == [(1, b"\xefx")]


def test_stream_ending_inside_a_bom_is_a_truncated_line() -> None:
    framer = LineFramer()
    assert framer.feed(b"\xef\xbb") == []
    errors = framer.close()
    assert len(errors) == 1
    assert isinstance(errors[0], TruncatedLine)
    assert errors[0].line == 1


# --- line length (FRAME-6) ---------------------------------------------------------


def test_limit_counts_the_newline() -> None:
    framer = LineFramer(16)
    assert framer.feed(b"a" * 15 + b"\n") == [(1, b"a" * 15)]
    items = framer.feed(b"b" * 16 + b"\n")
    assert len(items) == 1
    error = items[0]
    assert isinstance(error, LineTooLong)
    assert error.line == 2
    assert error.reason == "line of 17 bytes exceeds the limit of 16 bytes; it is dropped"
    assert str(error) == "line 2: " + error.reason
    assert error.request_id is None
    assert error.issues == ()


def test_limit_counts_the_carriage_return() -> None:
    framer = LineFramer(16)
    assert framer.feed(b"a" * 14 + b"\r\n") == [(1, b"a" * 14)]
    items = framer.feed(b"b" * 15 + b"\r\n")
    assert [type(i) for i in items] == [LineTooLong]


def test_smallest_limit() -> None:
    framer = LineFramer(2)
    assert framer.max_line_bytes == 2
    assert framer.feed(b"a\n") == [(1, b"a")]
    assert [type(i) for i in framer.feed(b"ab\n")] == [LineTooLong]
    assert framer.feed(b"c\n") == [(3, b"c")]


def test_long_line_within_one_feed_costs_only_itself() -> None:
    framer = LineFramer(16)
    items = framer.feed(b"one\n" + b"x" * 100 + b"\ntwo\n")
    assert outcome(items) == [("line", 1, b"one"), ("LineTooLong", 2), ("line", 3, b"two")]
    assert isinstance(items[1], LineTooLong)
    assert "of 101 bytes" in items[1].reason
    assert framer.buffered == 0


def test_long_unterminated_line_is_reported_once_then_discarded() -> None:
    framer = LineFramer(16)
    assert framer.feed(b"{}\n" + b"x" * 10) == [(1, b"{}")]
    assert framer.buffered == 10
    items = framer.feed(b"x" * 10)
    assert len(items) == 1
    error = items[0]
    assert isinstance(error, LineTooLong)
    assert error.line == 2
    assert error.reason == "line of at least 20 bytes exceeds the limit of 16 bytes; it is dropped"
    # Discarding: nothing is kept or reported until the newline.
    assert framer.buffered == 0
    assert framer.feed(b"y" * 1000) == []
    assert framer.buffered == 0
    assert framer.feed(b"z" * 5) == []
    assert framer.line_number == 1
    # The newline ends the dropped line; the next line comes through as usual.
    assert framer.feed(b"zz\n{}\n") == [(3, b"{}")]
    assert framer.line_number == 3


def test_newline_ending_the_discarded_line_may_open_the_next_feed() -> None:
    framer = LineFramer(16)
    assert [type(i) for i in framer.feed(b"x" * 16)] == [LineTooLong]
    assert framer.feed(b"\n") == []
    assert framer.feed(b"ok\n") == [(2, b"ok")]


def test_unterminated_line_of_max_minus_one_bytes_is_kept() -> None:
    framer = LineFramer(16)
    assert framer.feed(b"a" * 15) == []
    assert framer.buffered == 15
    assert framer.feed(b"\n") == [(1, b"a" * 15)]


def test_unterminated_line_reaching_the_limit_is_dropped_at_once() -> None:
    framer = LineFramer(16)
    assert framer.feed(b"a" * 15) == []
    items = framer.feed(b"a")
    assert [type(i) for i in items] == [LineTooLong]
    assert isinstance(items[0], LineTooLong)
    assert items[0].line == 1
    assert "at least 16 bytes" in items[0].reason
    assert framer.buffered == 0


def test_each_long_line_is_reported() -> None:
    framer = LineFramer(16)
    items = framer.feed(b"x" * 20)
    items += framer.feed(b"\n" + b"y" * 20)
    items += framer.feed(b"\n")
    assert outcome(items) == [("LineTooLong", 1), ("LineTooLong", 2)]


def test_bom_does_not_count_toward_the_limit() -> None:
    framer = LineFramer(16)
    assert framer.feed(BOM + b"a" * 15 + b"\n") == [(1, b"a" * 15)]


# --- end of stream (FRAME-2) ---------------------------------------------------------


def test_close_reports_a_partial_last_line() -> None:
    framer = LineFramer()
    framer.feed(b'{}\n\n{"type":')
    errors = framer.close()
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, TruncatedLine)
    assert error.line == 3
    assert error.reason == "stream ended inside a line (8 bytes without a newline)"
    assert error.rule == "FRAME-2"
    assert framer.buffered == 0


@pytest.mark.parametrize("rest", [b"", b" ", b"\r", b" \t\r "])
def test_close_ignores_an_empty_or_whitespace_only_remainder(rest: bytes) -> None:
    framer = LineFramer()
    framer.feed(b"{}\n" + rest)
    assert framer.close() == []
    assert framer.buffered == 0


def test_close_while_discarding_reports_nothing_more() -> None:
    framer = LineFramer(16)
    assert [type(i) for i in framer.feed(b"x" * 40)] == [LineTooLong]
    assert framer.close() == []


def test_close_of_an_untouched_framer() -> None:
    assert LineFramer().close() == []


# --- construction and properties --------------------------------------------------


@pytest.mark.parametrize("size", [1, 0, -1])
def test_max_line_bytes_below_two_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        LineFramer(size)


def test_defaults() -> None:
    framer = LineFramer()
    assert framer.max_line_bytes == DEFAULT_MAX_LINE_BYTES == 16 * 1024 * 1024
    assert MIN_MAX_LINE_BYTES == 1024 * 1024
    assert DEFAULT_MAX_LINE_BYTES >= MIN_MAX_LINE_BYTES
    assert framer.line_number == 0
    assert framer.buffered == 0


def test_properties_follow_the_stream() -> None:
    framer = LineFramer(64)
    assert framer.max_line_bytes == 64
    framer.feed(b"a\n\nbc")
    assert framer.line_number == 2
    assert framer.buffered == 2
    framer.feed(b"d\n")
    assert framer.line_number == 3
    assert framer.buffered == 0


@pytest.mark.parametrize("max_line_bytes", [MIN_MAX_LINE_BYTES, DEFAULT_MAX_LINE_BYTES])
def test_a_line_of_one_mebibyte_with_its_newline_is_accepted(max_line_bytes: int) -> None:
    """FRAME-6: 1 MiB, the newline included, is the least a receiver accepts."""
    head, tail = b'{"type":"SHUTDOWN","x":"', b'"}'
    line = head + b"a" * (MIN_MAX_LINE_BYTES - 1 - len(head) - len(tail)) + tail
    assert len(line + b"\n") == 1024 * 1024
    framer = LineFramer(max_line_bytes)
    chunk = 64 * 1024
    items: list[tuple[int, bytes] | RemoteProtocolError] = []
    for i in range(0, len(line) + 1, chunk):
        items += framer.feed((line + b"\n")[i : i + chunk])
    assert items == [(1, line)]
    assert parse(line).type == "SHUTDOWN"


def test_one_byte_over_the_least_limit_is_dropped() -> None:
    framer = LineFramer(MIN_MAX_LINE_BYTES)
    items = framer.feed(b"a" * MIN_MAX_LINE_BYTES + b"\n")
    assert [type(i) for i in items] == [LineTooLong]


def test_a_long_line_in_chunks_of_mixed_sizes_comes_out_whole() -> None:
    """Small and large chunks of one pending line, in any order, give back its bytes."""
    line = bytes(range(32, 127)) * 1000  # 95 kB, no newline
    sizes = [1, 5000, 3, 4095, 4096, 2, 10_000, 7]
    chunks, at, k = [], 0, 0
    while at < len(line):
        chunks.append(line[at : at + sizes[k % len(sizes)]])
        at += sizes[k % len(sizes)]
        k += 1
    framer = LineFramer(DEFAULT_MAX_LINE_BYTES)
    for chunk in chunks:
        assert framer.feed(chunk) == []
    assert framer.buffered == len(line)
    assert framer.feed(b"\nnext") == [(1, line)]
    assert framer.buffered == 4


def test_a_long_line_held_in_small_chunks_reports_its_head() -> None:
    """The head of a line that grew too long is read across the chunks it came in."""
    framer = LineFramer(3000)
    body = b'{"type":"REQUEST","id":"r1",' + b'"x":"' + b"a" * 4000
    items = [item for i in range(0, len(body), 7) for item in framer.feed(body[i : i + 7])]
    assert [type(item) for item in items] == [LineTooLong]
    error = items[0]
    assert isinstance(error, LineTooLong)
    assert error.head == body[:HEAD_BYTES]
    assert framer.buffered == 0
