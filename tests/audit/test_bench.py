"""`manage.py audit bench` on a tiny log: its synthetic actions and its reader are the log's own."""

from __future__ import annotations

import pytest

from audit import actions
from audit.bench import BENCH_ACTIONS, run_bench
from audit.models import AuditEvent

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_bench_runs_with_its_own_actions_and_a_permission_holding_reader(fresh_log):
    results = run_bench(appends=20, writers=[1, 2], size=300, page_requests=10)
    assert results["verify_events"] == 300  # 4 x 20 appended, the rest bulk-loaded
    for mode in ("standalone", "transaction"):  # group-committed and one per transaction
        assert results[f"append_{mode}_events_per_s_2_writers"] > 0
    assert results["list_page"]["requests"] == 10
    # besides its own actions, only the account events of creating its page reader
    # (every account change is audited: editplatform/accounts)
    reader_events = {"account.created", "account.permissions_changed"}
    written = set(AuditEvent.objects.values_list("action", flat=True).distinct())
    assert written <= set(BENCH_ACTIONS) | reader_events, written
    assert written & set(BENCH_ACTIONS)
    assert set(BENCH_ACTIONS) <= set(actions.registry.names())
