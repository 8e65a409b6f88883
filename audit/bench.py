"""`manage.py audit bench`: append throughput, full verification and list-page latency.

Run it against a throwaway PostgreSQL database only: it appends real events (and, to
reach --size quickly, bulk-loads synthetic ones with the same entry format, leaf
hashing and stored subtrees, through COPY). Refused in production.
"""

from __future__ import annotations

import io
import statistics
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection, connections, transaction
from django.test import RequestFactory
from django.utils import timezone

from audit import actions, tlog
from audit import log as audit_log
from audit.models import TreeNode

# Synthetic actions of the bench's own (registered only while it runs), six of them so
# the action filter is as selective as on a real log.
BENCH_ACTIONS = tuple(
    f"audit.bench_{name}" for name in ("submit", "queue", "start", "finish", "view", "login")
)
MODES = {
    "standalone": "plain calls, group-committed",
    "transaction": "one transaction.atomic() per event",
}
PAYLOAD = {
    "original_sha256": "ab" * 32,
    "latent_sha256": "cd" * 32,
    "model_version": "ef" * 32,
    "outputs": {"reconstruction": "12" * 32, "edited": "34" * 32},
    "edits": {"smile": 0.5, "age": -0.25},
}


def _append_run(writers: int, total: int, *, in_transaction: bool) -> float:
    """Events/s for `writers` threads appending `total` events between them.

    in_transaction: each append inside its own `transaction.atomic()` (how a domain change
    appends its event: the head stays locked until that transaction commits); otherwise
    plain calls, which the log group-commits across threads.
    """
    per_writer = max(1, total // writers)
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def append(n: int, i: int) -> None:
        audit_log.append_event(
            BENCH_ACTIONS[3],
            subject=f"bench-{n}-{i % 50}",
            actor_name=f"worker-{n}",
            payload=PAYLOAD,
        )

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                if in_transaction:
                    with transaction.atomic():
                        append(n, i)
                else:
                    append(n, i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return per_writer * writers / elapsed


def _bulk_load(target: int, out) -> None:
    """Grow the log to `target` events with COPY (same entries, hashes and nodes)."""
    with transaction.atomic(), connection.cursor() as cursor:
        head = audit_log._lock_head(cursor, connection.vendor)
        frontier = tlog.Frontier.from_bytes(head.size, head.frontier)
        now = timezone.now()
        actors = [f"user-{i}" for i in range(200)]
        action_list = BENCH_ACTIONS
        raw = cursor.cursor  # psycopg cursor: COPY
        seq = head.size
        while seq < target:
            chunk_end = min(target, seq + 50_000)
            nodes = []
            with raw.copy(
                "COPY audit_event (seq, created_at, actor_name, action, subject, request_id, "
                "entry, leaf_hash) FROM STDIN"
            ) as copy:
                for s in range(seq, chunk_end):
                    actor, action, subject = actors[s % 200], action_list[s % 6], f"job-{s // 7}"
                    entry = audit_log.build_entry(
                        seq=s,
                        time=now,
                        action=action,
                        actor_name=actor,
                        actor_id=None,
                        subject=subject,
                        request_id=f"req-{s // 3}",
                        payload=PAYLOAD,
                    )
                    leaf = tlog.hash_leaf(entry.encode())
                    nodes.extend(frontier.append(leaf))
                    copy.write_row((s, now, actor, action, subject, f"req-{s // 3}", entry, leaf))
            with raw.copy("COPY audit_treenode (key, hash) FROM STDIN") as copy:
                for (level, index), value in nodes:
                    copy.write_row((TreeNode.key_for(level, index), value))
            seq = chunk_end
            out.write(f"  loaded {seq} events\n")
        cursor.execute(
            "UPDATE audit_loghead SET size = %s, frontier = %s, root_hash = %s, last_time = %s "
            "WHERE id = 1",
            [frontier.size, frontier.to_bytes(), frontier.root(), now],
        )
    connection.cursor().execute("ANALYZE audit_event")
    audit_log.make_checkpoint()


def _page_timings(requests: int) -> dict:
    from audit import views
    from audit.access import READ_PERMISSION

    user, _ = get_user_model().objects.get_or_create(username="bench-reviewer")
    app_label, codename = READ_PERMISSION.split(".")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    factory = RequestFactory()
    queries = [
        {},
        {"action": BENCH_ACTIONS[3]},
        {"actor": "user-17"},
        {"subject": "job-4242"},
        {"actor": "user-3", "action": BENCH_ACTIONS[1]},
    ]
    head = audit_log.read_head().size
    timings = []
    for i in range(requests):
        params = dict(queries[i % len(queries)])
        if i % 4 == 3:
            params["before"] = str(head - (i * 7919) % head)  # deep pages too
        request = factory.get("/audit/", params)
        request.user = user
        request.session = {}
        started = time.perf_counter()
        response = views.event_list(request)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 1),
        "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 1),
        "max_ms": round(timings[-1], 1),
        "requests": requests,
    }


def run_bench(
    *,
    appends: int,
    writers: list[int],
    size: int,
    page_requests: int,
    modes: tuple[str, ...] = ("standalone", "transaction"),
    out=None,
) -> dict:
    out = out or io.StringIO()
    if settings.PRODUCTION:
        raise RuntimeError(
            "audit bench writes synthetic events: run it on a throwaway database, not production"
        )
    if connection.vendor != "postgresql":
        raise RuntimeError("the audit bench measures PostgreSQL")
    for name in BENCH_ACTIONS:
        actions.register(name, "a synthetic event appended by `manage.py audit bench`")
    results: dict = {"checkpoint_every": settings.AUDIT_CHECKPOINT_EVERY}
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"unknown append mode {mode!r} (choose from {', '.join(MODES)})")
        for count in writers:
            rate = _append_run(count, appends, in_transaction=mode == "transaction")
            results[f"append_{mode}_events_per_s_{count}_writers"] = round(rate)
            out.write(f"append ({MODES[mode]}), {count} writer(s): {rate:.0f} events/s\n")
    _bulk_load(size, out)
    from audit.verify import verify_log

    connections.close_all()
    result = verify_log()
    if not result.ok:
        raise RuntimeError(f"verification failed: {result.summary()}")
    results["verify_events"] = result.size
    results["verify_seconds"] = round(result.seconds, 2)
    out.write(f"verify: {result.size} events in {result.seconds:.2f} s\n")
    if page_requests:
        results["list_page"] = _page_timings(page_requests)
    return results
