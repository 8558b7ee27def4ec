"""The peepsy conformance suite: ``python -m peepsy.conformance -- COMMAND [ARGS...]``.

Replays transcripts (conformance/transcripts/*.ndjson) against a worker in any language
and reports, check by check and with the requirement id each one enforces, whether it
speaks the protocol of docs/protocol.md. ``python -m peepsy.conformance record`` is a tap
that records a real master and worker, and :func:`generalize` turns a recording into a
transcript. The user guide is docs/conformance.md; the reference conformance/README.md.
"""

from peepsy.conformance._matchers import MatchContext, Mismatch, match
from peepsy.conformance._record import generalize
from peepsy.conformance._suite import Options, SuiteResult, run_suite
from peepsy.conformance._transcript import Outcome, Transcript, load_transcript

__all__ = [
    "MatchContext",
    "Mismatch",
    "Options",
    "Outcome",
    "SuiteResult",
    "Transcript",
    "generalize",
    "load_transcript",
    "match",
    "run_suite",
]
