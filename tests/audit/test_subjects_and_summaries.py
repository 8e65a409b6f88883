"""Events about several subjects, bare-value subject search and one-line summaries.

An event's extra subjects are in its hashed entry and in the `audit_event_subject`
index (append-only like the rest of the log); the subject filter finds the event under
any of them, and a bare id or hash finds its prefixed subject. Summaries come from the
action's registration and never hide a row.
"""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError, connection, transaction

from audit import actions, subjects, tlog
from audit import log as audit_log
from audit.export import iter_export
from audit.models import AuditEvent, AuditEventSubject
from audit.queries import filter_events
from audit.verify import verify_log
from tests.audit import action_names as names

SHA = "ab" * 32
UUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def _append_about_several():
    with transaction.atomic():
        return audit_log.append_event(
            names.ARTIFACT_VIEWED,
            actor_name="rhea",
            subject=f"job:{UUID}",
            subjects=[f"artifact:{SHA}", f"job:{UUID}", f"artifact:{SHA}"],
            payload={"kind": "edited", "sha256": SHA, "via": "portal view"},
        )


def _check_several_subjects():
    before = audit_log.append_event(
        names.JOB_SUBMITTED, subject=f"job:{UUID}", payload={"edits": {}}
    )
    event = _append_about_several()
    other = audit_log.append_event(names.JOB_SUBMITTED, subject="job:someone-else", payload={})
    data = json.loads(event.entry)
    assert data["subjects"] == [f"artifact:{SHA}"]  # de-duplicated, without the main subject
    assert "subjects" not in json.loads(
        before.entry
    )  # entries without extra subjects are unchanged
    assert bytes(event.leaf_hash) == tlog.hash_leaf(event.entry.encode())  # the leaf covers them
    assert list(
        AuditEventSubject.objects.filter(seq=event.seq).values_list("subject", flat=True)
    ) == [f"artifact:{SHA}"]
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.subjects == [f"job:{UUID}", f"artifact:{SHA}"]
    by_job = set(filter_events(subject=f"job:{UUID}").values_list("seq", flat=True))
    assert by_job == {before.seq, event.seq}
    assert set(filter_events(subject=f"artifact:{SHA}").values_list("seq", flat=True)) == {
        event.seq
    }
    # Bare values: the UUID finds the job's events, the hash finds the artifact's.
    assert set(filter_events(subject=UUID).values_list("seq", flat=True)) == by_job
    assert set(filter_events(subject=SHA).values_list("seq", flat=True)) == {event.seq}
    assert other.seq not in by_job
    # The export (with proofs) selects the same events, by prefixed or bare subject.
    for wanted in (f"artifact:{SHA}", SHA):
        records = [json.loads(line) for line in "".join(iter_export(subject=wanted)).splitlines()]
        assert [r["seq"] for r in records if r["type"] == "event"] == [event.seq]
    exported = [json.loads(line) for line in "".join(iter_export(subject=UUID)).splitlines()]
    assert {r["seq"] for r in exported if r["type"] == "event"} == by_job
    for statement in (
        "UPDATE audit_event_subject SET subject = 'x'",
        "DELETE FROM audit_event_subject",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    result = verify_log()
    assert result.ok, result.problems


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_event_names_several_subjects_and_is_found_under_each_postgres(fresh_log):
    _check_several_subjects()


@pytest.mark.embedded
@pytest.mark.django_db
def test_an_event_names_several_subjects_and_is_found_under_each_sqlite(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "cp"
    _check_several_subjects()


def test_bad_extra_subjects_are_refused_before_anything_is_written():
    with pytest.raises(TypeError, match="list of strings"):
        audit_log._extra_subjects("a", "artifact:x")
    with pytest.raises(ValueError, match="longer than 200"):
        audit_log._extra_subjects("a", ["x" * 201])


def test_bare_values_expand_to_the_registered_prefixes():
    subjects.register_prefix("artifact:")
    assert subjects.expand(f"artifact:{SHA}") == [f"artifact:{SHA}"]
    assert f"artifact:{SHA}" in subjects.expand(SHA) and subjects.expand(SHA)[0] == SHA
    assert f"job:{UUID}" in subjects.expand(UUID)
    assert subjects.expand(f" {UUID}") == [
        f" {UUID}",
        *(p + f" {UUID}" for p in sorted(subjects._PREFIXES)),
    ]


def test_summaries_render_from_the_entry_and_never_hide_a_row():
    registry = actions.ActionRegistry()
    registry.register("shop.item_sold", "an item was sold", "{actor} sold {item} for {price}")
    registry.register(
        "shop.refund", "a refund", lambda entry: f"refund to {entry['payload']['to']}"
    )
    registry.register("shop.broken", "something broke", lambda entry: 1 / 0)
    registry.register("shop.plain", "a plain thing")
    original, actions.registry = actions.registry, registry
    try:
        entry = {
            "actor": "ann",
            "subject": "order:1",
            "payload": {"item": "lamp", "price": 12, "sha": SHA},
        }
        assert actions.summarize({**entry, "action": "shop.item_sold"}) == "ann sold lamp for 12"
        assert (
            actions.summarize({**entry, "action": "shop.item_sold", "payload": {}})
            == "ann sold ? for ?"
        )
        assert (
            actions.summarize({**entry, "action": "shop.refund", "payload": {"to": "bob"}})
            == "refund to bob"
        )
        assert actions.summarize({**entry, "action": "shop.broken"}) == "ann: something broke"
        assert actions.summarize({**entry, "action": "shop.plain"}) == "ann: a plain thing"
        assert actions.summarize({"action": "shop.gone"}) == "system: shop.gone"
    finally:
        actions.registry = original


def test_every_registered_action_of_the_apps_has_a_summary():
    import django.apps

    assert django.apps.apps.ready
    for name in actions.registry.names():
        if name.startswith(("job.", "artifact.", "compliance.")):
            assert actions.registry.get(name).summary is not None, name
