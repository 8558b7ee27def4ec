"""Plain JSON data, written fast: orjson, held to the bytes pydantic_core writes."""

from __future__ import annotations

from typing import Final, NoReturn

import orjson

# orjson writes the plain JSON types (str, int to 64 bits, float, bool, None, dicts with
# str keys, lists, tuples, UUIDs, enums) to the bytes pydantic_core writes, three to
# four times as fast (tests/protocol/test_fast_encode.py holds them equal). All else it
# refuses, through FAST_OPTIONS and refuse(): datetimes, dataclasses, subclasses, models,
# bytes, sets, larger ints, lone surrogates, nesting past MAX_DEPTH (its limit and
# pydantic's are the same 254); pydantic then writes it, or says why it cannot.
fast_dumps: Final = orjson.dumps
FAST_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
#: What :data:`fast_dumps` raises for a value it leaves to pydantic.
FAST_REFUSED: Final = orjson.JSONEncodeError
#: The types of the data orjson is tried on. Data that is a model, a datetime, a
#: dataclass and the like goes straight to pydantic: orjson's refusal (an exception)
#: costs about 0.5 us, more than pydantic takes to write a small model.
PLAIN_TYPES: Final = frozenset({dict, list, tuple, str, int, float, bool, type(None)})


def refuse(value: object) -> NoReturn:
    """orjson's ``default``: a value it cannot write plainly is pydantic's to write."""
    raise TypeError
