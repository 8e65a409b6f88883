"""The audit log's REST API (/api/v1/audit/) on PostgreSQL: access, filters, keyset
pagination, and proofs that verify with `audit.tlog` against signed checkpoints.

Audit rows persist across tests (append-only tables), so every test filters by
subjects it made up itself and checkpoints the tree it just grew.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from audit import log as audit_log
from audit import signing, tlog
from audit.checkpoint import open_checkpoint
from tests.audit import action_names as actions
from tests.audit.helpers import make_user
from tests.conftest import api_client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ENDPOINTS = (
    "/api/v1/audit/events",
    "/api/v1/audit/events/0",
    "/api/v1/audit/checkpoint",
    "/api/v1/audit/consistency?old=0",
)


def unique_subject() -> str:
    return f"api-test:{uuid.uuid4()}"


def append(n: int, subject: str, **fields) -> list[int]:
    return [
        audit_log.append_event(
            fields.get("action", actions.JOB_QUEUED),
            subject=subject,
            actor_name=fields.get("actor_name", "worker-api"),
            request_id=fields.get("request_id", ""),
            payload={"i": i},
        ).seq
        for i in range(n)
    ]


def key_client(scopes):
    return api_client_for(make_user(f"svc-{uuid.uuid4().hex[:8]}", "integration"), scopes=scopes)


def trusted_checkpoint(note: str):
    """Open a note with the log's key as the test knows it (not as the API states it)."""
    return open_checkpoint(note, signing.get_verifier(), signing.origin())


@pytest.fixture
def some_events():
    subject = unique_subject()
    seqs = append(3, subject)
    audit_log.make_checkpoint()
    return subject, seqs


def test_keys_need_the_audit_read_scope(some_events):
    for scopes in (("jobs:read",), ("jobs:write",), ("jobs:read", "jobs:write")):
        client = key_client(scopes)
        for url in ENDPOINTS:
            response = client.get(url)
            assert response.status_code == 403, (scopes, url, response.content)
            assert "audit:read" in response.json()["detail"]
    client = key_client(("audit:read",))
    for url in ENDPOINTS:
        assert client.get(url).status_code == 200, url


def test_sessions_need_the_reviewer_role(some_events):
    assert (
        api_client_for(make_user(f"rev-{uuid.uuid4().hex[:6]}", "reviewer"))
        .get("/api/v1/audit/events")
        .status_code
        == 200
    )
    for role in ("requester", "approver", "admin", None):
        client = api_client_for(make_user(f"{role}-{uuid.uuid4().hex[:6]}", role))
        for url in ENDPOINTS:
            assert client.get(url).status_code == 403, (role, url)
    assert api_client_for().get("/api/v1/audit/events").status_code == 401  # no credentials at all


def test_reading_the_log_does_not_write_to_it(some_events):
    subject, seqs = some_events
    client = key_client(("audit:read",))
    before = audit_log.read_head().size
    client.get("/api/v1/audit/events", {"subject": subject})
    client.get(f"/api/v1/audit/events/{seqs[0]}")
    client.get("/api/v1/audit/checkpoint")
    assert audit_log.read_head().size == before


def test_filters_are_exact_and_combine():
    subject, other = unique_subject(), unique_subject()
    queued = append(4, subject, actor_name="svc-a", request_id="req-api-1")
    failed = append(
        2, subject, action=actions.JOB_FAILED, actor_name="svc-b", request_id="req-api-2"
    )
    append(3, other, actor_name="svc-a")
    client = key_client(("audit:read",))

    def seqs(**params):
        response = client.get("/api/v1/audit/events", params)
        assert response.status_code == 200, response.content
        return [row["seq"] for row in response.json()["results"]]

    assert seqs(subject=subject) == queued + failed
    assert seqs(subject=subject, action=actions.JOB_FAILED) == failed
    assert seqs(subject=subject, actor="svc-a") == queued
    assert seqs(request_id="req-api-2", subject=subject) == failed
    assert seqs(seq=failed[0]) == [failed[0]]
    assert seqs(subject=subject, order="desc") == list(reversed(queued + failed))
    row = client.get("/api/v1/audit/events", {"seq": failed[1]}).json()["results"][0]
    assert (
        row["action"] == actions.JOB_FAILED
        and row["actor"] == "svc-b"
        and row["payload"] == {"i": 1}
    )
    assert (
        row["subject"] == subject
        and row["request_id"] == "req-api-2"
        and len(row["leaf_hash"]) == 64
    )
    # time bounds: since is inclusive, until exclusive
    times = {
        r["seq"]: r["time"]
        for r in client.get("/api/v1/audit/events", {"subject": subject}).json()["results"]
    }
    assert seqs(subject=subject, since=times[failed[0]]) == [
        s for s in queued + failed if times[s] >= times[failed[0]]
    ]
    assert seqs(subject=subject, until="2000-01-01T00:00:00Z") == []
    assert seqs(subject=subject, since="2000-01-01T00:00:00Z") == queued + failed


@pytest.mark.parametrize(
    "params",
    [
        {"action": "job.nonsense"},
        {"seq": "-1"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"limit": "5000"},
        {"after_seq": "x"},
        {"order": "sideways"},
        {"subject": "a\x00b"},
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(params):
    response = key_client(("audit:read",)).get("/api/v1/audit/events", params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and body["field"] == next(iter(params))


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_keyset_pagination_is_contiguous(order):
    subject = unique_subject()
    seqs = append(23, subject)
    append(2, unique_subject())  # interleaving noise that must not show up
    seqs += append(4, subject)
    client = key_client(("audit:read",))
    seen, url, pages = [], "/api/v1/audit/events", 0
    params = {"subject": subject, "limit": 5, "order": order}
    while url:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) <= 5
        seen += [row["seq"] for row in body["results"]]
        url, params, pages = body["next"], None, pages + 1
    expected = seqs if order == "asc" else list(reversed(seqs))
    assert seen == expected and pages == 6  # 27 events: 5 full pages and one of 2, no empty tail
    assert len(set(seen)) == len(seen)
    # a cursor taken mid-way resumes exactly after it
    cursor = "after_seq" if order == "asc" else "before_seq"
    resumed = client.get(
        "/api/v1/audit/events", {"subject": subject, "order": order, cursor: expected[9]}
    ).json()
    assert [row["seq"] for row in resumed["results"]] == expected[10:]


def test_inclusion_proof_verifies_against_the_signed_checkpoint():
    subject = unique_subject()
    seqs = append(5, subject)
    audit_log.make_checkpoint()
    client = key_client(("audit:read",))

    checkpoint = client.get("/api/v1/audit/checkpoint").json()
    signed = trusted_checkpoint(checkpoint["note"])
    assert checkpoint["verifier_key"] == signing.get_verifier().vkey()
    assert signed.size == checkpoint["size"] and signed.root_hash == base64.b64decode(
        checkpoint["root_hash"]
    )
    assert checkpoint["root_hash_hex"] == signed.root_hash.hex() and checkpoint["size"] > seqs[-1]
    assert checkpoint["log_size"] >= checkpoint["size"]

    for seq in (seqs[0], seqs[3]):
        body = client.get(f"/api/v1/audit/events/{seq}").json()
        inclusion = body["inclusion"]
        assert inclusion["verified"] is True and inclusion["reason"] == ""
        assert (
            inclusion["checkpoint"] == checkpoint["note"] and inclusion["tree_size"] == signed.size
        )
        assert body["subject"] == subject and body["seq"] == seq
        leaf = tlog.hash_leaf(body["entry"].encode("utf-8"))
        assert leaf.hex() == body["leaf_hash"] and base64.b64decode(body["leaf_hash_b64"]) == leaf
        proof = [base64.b64decode(h) for h in inclusion["proof"]]
        tlog.verify_inclusion(leaf, seq, signed.size, proof, signed.root_hash)
        # the same proof does not verify a different entry, nor when one hash is altered
        with pytest.raises(tlog.ProofError):
            tlog.verify_inclusion(
                tlog.hash_leaf(body["entry"].replace('"i":', '"j":').encode()),
                seq,
                signed.size,
                proof,
                signed.root_hash,
            )
        if proof:
            bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            with pytest.raises(tlog.ProofError):
                tlog.verify_inclusion(leaf, seq, signed.size, bad, signed.root_hash)


def test_event_after_the_latest_checkpoint_has_no_proof_yet(settings):
    settings.AUDIT_CHECKPOINT_EVERY = 10**9
    settings.AUDIT_CHECKPOINT_SECONDS = 10**9
    audit_log.make_checkpoint()
    [seq] = append(1, unique_subject())
    body = key_client(("audit:read",)).get(f"/api/v1/audit/events/{seq}").json()
    assert (
        body["inclusion"]["verified"] is False and "not yet covered" in body["inclusion"]["reason"]
    )
    assert body["inclusion"]["proof"] == [] and body["inclusion"]["tree_size"] is None


def test_unknown_event_is_404():
    size = audit_log.read_head().size
    response = key_client(("audit:read",)).get(f"/api/v1/audit/events/{size + 1000}")
    assert response.status_code == 404 and response.json()["detail"] == "no such event"


def test_consistency_proof_links_two_signed_checkpoints():
    append(3, unique_subject())
    old = trusted_checkpoint(audit_log.make_checkpoint().note)
    append(7, unique_subject())
    new = trusted_checkpoint(audit_log.make_checkpoint().note)
    client = key_client(("audit:read",))
    body = client.get("/api/v1/audit/consistency", {"old": old.size, "new": new.size}).json()
    assert (body["old"], body["new"]) == (old.size, new.size)
    assert (
        base64.b64decode(body["old_root"]) == old.root_hash
        and base64.b64decode(body["new_root"]) == new.root_hash
    )
    proof = [base64.b64decode(h) for h in body["proof"]]
    tlog.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    with pytest.raises(tlog.ProofError):  # the proof is bound to these roots
        tlog.verify_consistency(old.size, new.size, tlog.hash_leaf(b"forged"), new.root_hash, proof)
    # `new` defaults to the latest checkpoint
    assert client.get("/api/v1/audit/consistency", {"old": old.size}).json()["new"] == new.size


@pytest.mark.parametrize(
    "params", [{"old": 5, "new": 4}, {"old": 0, "new": 10**12}, {}, {"old": -1}]
)
def test_impossible_consistency_requests_are_400(params):
    append(5, unique_subject())
    response = key_client(("audit:read",)).get("/api/v1/audit/consistency", params)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
