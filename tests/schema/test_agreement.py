"""jsonschema (the spec) and the pydantic models (the implementation) agree.

On every language-neutral vector, and on instances hypothesis-jsonschema draws from the
schemas themselves.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from peepsy.protocol import MESSAGE_ADAPTER, RemoteProtocolError, encode, parse
from tests._paths import SCHEMA_DIR, load_json, schema_id, schema_registry, vectors

VECTORS = vectors()
MESSAGE_VECTORS = [v for v in VECTORS if "message" in v]
LINE_VECTORS = [v for v in VECTORS if "line" in v]


@cache
def validator(name: str = "message.json") -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": schema_id(name)}, registry=schema_registry(), format_checker=None
    )


def test_vector_file_follows_its_schema() -> None:
    schema = load_json(SCHEMA_DIR.parent / "conformance" / "vectors" / "vectors.schema.json")
    Draft202012Validator(schema).validate(
        load_json(SCHEMA_DIR.parent / "conformance" / "vectors" / "messages.json")
    )
    ids = [v["id"] for v in VECTORS]
    assert len(ids) == len(set(ids)), "vector ids are unique"


def test_vectors_cover_every_message_type_both_ways() -> None:
    def kinds(valid: bool) -> set[str]:
        return {
            v["message"]["type"]
            for v in MESSAGE_VECTORS
            if v["valid"] is valid and isinstance(v["message"], dict) and "type" in v["message"]
        }

    every = {"INIT", "READY", "REQUEST", "RESPONSE", "HEARTBEAT", "SHUTDOWN", "CANCEL"}
    assert kinds(True) == every
    assert every <= kinds(False)


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=lambda v: v["id"])
def test_schema_and_models_agree_on_vector(vector: dict[str, Any]) -> None:
    line = json.dumps(vector["message"], ensure_ascii=False).encode()
    schema_ok = validator().is_valid(vector["message"])
    try:
        parse(line)
        model_ok = True
    except RemoteProtocolError:
        model_ok = False
    assert model_ok is vector["valid"], vector["description"]
    assert schema_ok is vector["valid"], vector["description"]


@pytest.mark.parametrize("vector", LINE_VECTORS, ids=lambda v: v["id"])
def test_line_vector_is_rejected(vector: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse(vector["line"].encode())
    assert info.value.rule.startswith("FRAME") or info.value.rule.startswith("MSG")


@pytest.mark.parametrize(
    "vector", [v for v in MESSAGE_VECTORS if v["valid"]], ids=lambda v: v["id"]
)
def test_valid_vectors_round_trip(vector: dict[str, Any]) -> None:
    message = parse(json.dumps(vector["message"]).encode())
    dumped = json.loads(encode(message))
    # Unknown members are dropped (MSG-4); everything else comes back as sent.
    known = _known_members(vector["message"])
    assert dumped == known


@pytest.mark.parametrize(
    "vector", [v for v in MESSAGE_VECTORS if v.get("sendable") is False], ids=lambda v: v["id"]
)
def test_unsendable_vectors_are_read_as_integers_and_written_as_integers(
    vector: dict[str, Any],
) -> None:
    """MSG-8: the receiver takes the integral float as its integer; MSG-7: what it writes
    back has neither fraction nor exponent. The vector's own text is parsed, as written."""
    text = _vector_text(vector["id"])
    message = parse(text)
    floats = {k: v for k, v in vector["message"].items() if isinstance(v, float)}
    assert floats, "an unsendable vector holds an integral float"
    line = encode(message)
    for key, value in floats.items():
        assert (
            f'"{key}":{int(value)},'.encode() in line or f'"{key}":{int(value)}}}'.encode() in line
        )
    assert b".0" not in line
    assert b"e3" not in line


def _vector_text(vector_id: str) -> bytes:
    """The vector's `message` exactly as messages.json writes it (5e3 stays 5e3)."""
    raw = (SCHEMA_DIR.parent / "conformance" / "vectors" / "messages.json").read_text("utf-8")
    start = raw.index(f'"id": "{vector_id}"')
    start = raw.index('"message": ', start) + len('"message": ')
    end = raw.index("\n   }", start) + len("\n   }")
    return " ".join(raw[start:end].split()).encode()


def _known_members(message: dict[str, Any]) -> dict[str, Any]:
    return _strip_unknown(message, parse(json.dumps(message).encode()))


def _strip_unknown(instance: dict[str, Any], model: BaseModel) -> dict[str, Any]:
    """The members of ``instance`` the model knows, at every depth (MSG-4)."""
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        key = field.alias or name
        if key in instance:
            value = getattr(model, name)
            out[key] = (
                _strip_unknown(instance[key], value)
                if isinstance(value, BaseModel)
                else instance[key]
            )
    return out


@pytest.mark.parametrize(
    "name",
    [
        "init.json",
        "ready.json",
        "request.json",
        "request-legacy.json",
        "response.json",
        "heartbeat.json",
        "shutdown.json",
        "cancel.json",
    ],
)
def test_generated_instances_are_accepted_and_round_trip(name: str) -> None:
    bundle = load_json(SCHEMA_DIR / "bundle.json")
    title = load_json(SCHEMA_DIR / name)["title"]
    schema = {"$defs": bundle["$defs"], "$ref": f"#/$defs/{title}"}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(schema, allow_x00=True, codec="utf-8"))
    def check(instance: dict[str, Any]) -> None:
        assert validator(name).is_valid(instance)
        message = parse(json.dumps(instance).encode())
        assert json.loads(encode(message)) == _known_members(instance)

    check()


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["type", "id", "status", "request", "action", "x"]),
                children,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
def test_schema_and_models_agree_on_arbitrary_json(value: Any) -> None:
    """Random JSON shaped like a message: both sides say yes or both say no."""
    schema_ok = validator().is_valid(value)
    try:
        MESSAGE_ADAPTER.validate_json(json.dumps(value))
        model_ok = True
    except ValidationError:
        model_ok = False
    assert schema_ok is model_ok
