"""The public surface is small, curated and pinned: a reader learns it from ``__all__``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import peepsy
import peepsy.protocol

PUBLIC = [
    "PROTOCOL_VERSION",
    "Action",
    "AutoRestartEvent",
    "Child",
    "EncodeError",
    "ErrorEvent",
    "ExitEvent",
    "GroupStats",
    "HandlerError",
    "HeartbeatMissedEvent",
    "LocalProtocolError",
    "Master",
    "PeepsyCancelledError",
    "PeepsyError",
    "PeepsyNotFoundError",
    "PeepsyProcessError",
    "PeepsyShutdownError",
    "PeepsySshError",
    "PeepsyTimeoutError",
    "PeepsyValidationError",
    "ProcessStats",
    "ProtocolError",
    "RearmEvent",
    "RecoveredEvent",
    "RemoteError",
    "RemoteProtocolError",
    "RemoteTraceback",
    "ReplacedEvent",
    "Reply",
    "RequestContext",
    "RestartFailedEvent",
    "SpawnEvent",
    "SshHost",
    "StalledEvent",
    "StuckEvent",
    "__version__",
    "current_request",
    "error_from_wire",
    "error_to_wire",
]


def test_all_is_pinned() -> None:
    assert peepsy.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(peepsy, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = peepsy.Nope  # type: ignore[attr-defined]


def test_dir_lists_the_public_names() -> None:
    assert set(PUBLIC) <= set(dir(peepsy))


def test_every_error_has_a_stable_code() -> None:
    codes = {
        name: getattr(peepsy, name).code
        for name in PUBLIC
        if isinstance(getattr(peepsy, name), type)
        and issubclass(getattr(peepsy, name), Exception)
        # Never raised: only the __cause__ that carries a remote stack.
        and name != "RemoteTraceback"
    }
    assert codes == {
        "EncodeError": "PEEPSY_ENCODE",
        "HandlerError": "HANDLER_ERROR",
        "LocalProtocolError": "PEEPSY_LOCAL_PROTOCOL",
        "PeepsyCancelledError": "PEEPSY_CANCELLED",
        "PeepsyError": "PEEPSY_ERROR",
        "PeepsyNotFoundError": "PEEPSY_NOT_FOUND",
        "PeepsyProcessError": "PEEPSY_PROCESS",
        "PeepsyShutdownError": "PEEPSY_SHUTTING_DOWN",
        "PeepsySshError": "PEEPSY_SSH",
        "PeepsyTimeoutError": "PEEPSY_TIMEOUT",
        "PeepsyValidationError": "PEEPSY_VALIDATION",
        "ProtocolError": "PEEPSY_PROTOCOL",
        "RemoteError": "PEEPSY_REMOTE",
        "RemoteProtocolError": "PEEPSY_REMOTE_PROTOCOL",
    }
    assert all(issubclass(getattr(peepsy, n), peepsy.PeepsyError) for n in codes)


def test_protocol_all_names_resolve() -> None:
    for name in peepsy.protocol.__all__:
        assert hasattr(peepsy.protocol, name), name


def test_processing_mode_is_the_one_generated_alias() -> None:
    # Generated once from schema/common.json (issue 9); master and child type their
    # mode with it instead of spelling the literal again.
    from typing import Literal, get_args

    from pydantic import TypeAdapter, ValidationError

    from peepsy.protocol import _generated

    assert "ProcessingMode" in peepsy.protocol.__all__
    assert peepsy.protocol.ProcessingMode is _generated.ProcessingMode
    literal, *_ = get_args(peepsy.protocol.ProcessingMode.__value__)
    assert literal == Literal["sequential", "concurrent"]
    mode: peepsy.protocol.ProcessingMode = "concurrent"  # mypy: a Literal, not a str
    adapter: TypeAdapter[peepsy.protocol.ProcessingMode] = TypeAdapter(
        peepsy.protocol.ProcessingMode
    )
    assert adapter.validate_python(mode) == "concurrent"
    with pytest.raises(ValidationError):
        adapter.validate_python("parallel")


def test_package_ships_py_typed() -> None:
    from importlib.resources import files

    assert files("peepsy").joinpath("py.typed").is_file()


def test_import_peepsy_is_light() -> None:
    code = "import sys, peepsy; print('asyncio' in sys.modules, 'subprocess' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
