"""The entry text an append composes is exactly `canonical_text` of the entry object.

`audit/log.py` writes the entry out key by key around the payload's already-rendered
text (issue 18: the second walk over the payload was a tenth of an append's CPU); the
leaf hash commits to these bytes, so they must equal the canonical form for every
field value an event can carry.
"""

from __future__ import annotations

import datetime as dt

import pytest

from audit import log as audit_log
from audit.canonical import CanonicalJSONError, canonical_text, is_canonical

TIME = dt.datetime(2026, 11, 29, 22, 30, 1, 123456, tzinfo=dt.UTC)
CASES = [
    dict(actor_name="", actor_id=None, subject="", request_id="", payload={}, subjects=()),
    dict(
        actor_name="alice",
        actor_id=7,
        subject="job:12",
        request_id="req-1",
        payload={"b": 1, "a": [1.5, None, True, False, "x"], "édit": {"z": -0.0, "y": 1e21}},
        subjects=["artifact:" + "ab" * 32, "job:13"],
    ),
    dict(
        actor_name='quo"te\\back\nline\u2028',
        actor_id=2**53 - 1,
        subject="Ω \U0001f600 \x00\x1f",
        request_id="-r",
        payload={"\U0001f600": "€", "\ufb01": 2**53 - 1, "": ""},
        subjects=["\u00e9", "e\u0301"],
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_composed_entry_is_the_canonical_text_of_the_entry_object(case):
    text = audit_log.build_entry(seq=41, time=TIME, action="job.submitted", **case)
    extra = {"subjects": list(case["subjects"])} if case["subjects"] else {}
    reference = canonical_text(
        {
            **extra,
            "v": audit_log.ENTRY_VERSION,
            "seq": 41,
            "time": audit_log.format_time(TIME),
            "action": "job.submitted",
            "actor": case["actor_name"],
            "actor_id": case["actor_id"],
            "subject": case["subject"],
            "request_id": case["request_id"],
            "payload": case["payload"],
        }
    )
    assert text == reference
    assert is_canonical(text)


@pytest.mark.parametrize(
    "bad",
    [
        dict(seq=2**53),
        dict(seq=True),
        dict(actor_id=2**53),
        dict(actor_id="7"),
        dict(subject="\ud800"),
        dict(payload={"n": float("nan")}),
    ],
)
def test_values_without_a_canonical_form_are_refused(bad):
    fields = dict(
        seq=1,
        time=TIME,
        action="job.submitted",
        actor_name="a",
        actor_id=None,
        subject="s",
        request_id="",
        payload={},
    )
    with pytest.raises(CanonicalJSONError):
        audit_log.build_entry(**{**fields, **bad})
