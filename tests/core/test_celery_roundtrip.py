"""A task round-trips through a real worker process, on Redis and on the embedded broker."""

from __future__ import annotations

import pytest
from django.conf import settings

from editplatform.core.tasks import ping


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ping_round_trips_through_a_worker_on_redis(celery_worker, redisdb):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    result = ping.apply_async(args=["over-redis"], queue="default")
    reply = result.get(timeout=60)
    assert reply["payload"] == "over-redis"
    # The reply came from another process: the worker's pool child.
    assert reply["pid"] in celery_worker.child_pids()
    # The message went through this Redis server (kombu keeps its bindings there).
    assert any(key.startswith(b"_kombu.binding.") for key in redisdb.keys("*"))


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_gpu_queue_is_consumed(celery_worker):
    assert ping.apply_async(args=["gpu"], queue="gpu").get(timeout=60)["payload"] == "gpu"


@pytest.mark.embedded
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ping_round_trips_through_a_worker_on_the_embedded_broker(celery_worker):
    assert settings.EMBEDDED_BROKER and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    result = ping.apply_async(args=["over-files"], queue="gpu")
    reply = result.get(timeout=60)
    assert reply["payload"] == "over-files"
    assert reply["pid"] in celery_worker.child_pids()
