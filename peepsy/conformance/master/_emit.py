"""``--emit CHECK``: a case as the harness commands it sends and the child script it
plays, in order, without running anything (for debugging a harness)."""

from __future__ import annotations

import json
from typing import Any

from peepsy.conformance._cli_args import readable_json
from peepsy.conformance.master._case import MasterCase, step_op
from peepsy.conformance.master._hub import stub_argv
from peepsy.conformance.master._run_case import start_command

_SOCKET = "SOCKET"


def emit(case: MasterCase) -> list[str]:
    out = [f"# {case.check} ({case.level}, {case.severity}): {case.description}"]
    out.append("harness> " + json.dumps({**start_command(case.master), "seq": 0}))
    seq = 1
    for number, step in zip(case.step_lines, case.steps, strict=True):
        op = step_op(step)
        command = _command(op, step)
        if command is not None:
            out.append(f"harness> {json.dumps({**command, 'seq': seq})}  # line {number}")
            seq += 1
        elif op == "stop":
            out.append(f'harness> {{"cmd": "stop"}}  # line {number}')
        else:
            out.append(f"{_who(step)}: {readable_json(step)}  # line {number}")
    if not any(step_op(s) == "stop" for s in case.steps):
        out.append('harness> {"cmd": "stop"}  # the end of the case')
    return out


def _who(step: dict[str, Any]) -> str:
    if "child" in step:
        return f"child {step['child']}"
    return "suite"


def _command(op: str, step: dict[str, Any]) -> dict[str, Any] | None:
    if op == "group":
        return {"cmd": "group", **step["group"]}
    if op == "spawn":
        spawn = {"cmd": "spawn", "name": step["spawn"], "argv": stub_argv(_SOCKET, step["spawn"])}
        return spawn | {k: step[k] for k in ("env", "mode", "group", "restart") if k in step}
    if op == "do":
        return dict(step["do"])
    return None
