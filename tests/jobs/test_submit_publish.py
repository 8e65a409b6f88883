"""The submit path's publish (issue 18 item 4): after commit, over a pooled connection.

A submit must not pay a broker connection set-up: Celery's producer pool keeps the
connection of the web process, so many submits open one TCP connection to Redis, not one
each. Counted by the broker itself (``INFO stats``), on a private Redis so nothing else
connects meanwhile; every job is still recorded as sent (``enqueued_at``), after commit.
"""

from __future__ import annotations

import pytest
import redis

from editplatform.jobs import services
from editplatform.jobs.models import EditJob
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import celery_publishing_to
from tests.services import free_port, redis_server


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_submits_publish_after_commit_over_one_pooled_connection(requester):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with redis_server(port=port), celery_publishing_to(url):
        broker = redis.Redis.from_url(url)
        before = broker.info("stats")["total_connections_received"]
        jobs = [
            services.submit(
                user=requester,
                image=images.jpeg((120, 90), seed=seed),
                edits=catalog.request(),
                purpose="pooled publish test",
                consent=True,
                source="api",
            )[0]
            for seed in range(6)
        ]
        opened = broker.info("stats")["total_connections_received"] - before - 1  # ours
        queued = broker.llen("gpu")
        broker.close()
    assert opened <= 1, f"{opened} broker connections for 6 submits"
    assert queued == 6
    rows = EditJob.objects.filter(pk__in=[job.pk for job in jobs])
    assert all(row.enqueued_at is not None and row.enqueue_count == 1 for row in rows)
