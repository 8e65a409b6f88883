"""Prometheus metrics, computed at scrape time from the database and the broker.

Nothing is counted in process memory: gunicorn runs several web processes and any of
them may answer a scrape, so every value comes from the shared state (job rows, the
audit log head, the broker's queues, the workers' replies). Counters are monotonic
because the rows they count are never deleted (finished jobs, failures); histograms
are rebuilt from the per-stage timings each finished job stores.
"""

from __future__ import annotations

import logging
import time

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry

logger = logging.getLogger(__name__)

# Seconds; CPU jobs take tens of seconds, GPU jobs well under one.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def _histogram(name: str, doc: str, samples: dict[str, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["stage"])
    for stage, values in sorted(samples.items()):
        cumulative = []
        for bound in BUCKETS:
            cumulative.append((str(bound), sum(1 for v in values if v <= bound)))
        cumulative.append(("+Inf", len(values)))
        total = sum(values)
        family.add_metric([stage], cumulative, total)
    return family


class PlatformCollector:
    """One collector for the whole platform; each part reports its own failure."""

    def collect(self):
        yield from self._safe("broker", self._queues)
        yield from self._safe("jobs", self._jobs)
        yield from self._safe("audit", self._audit)

    def _safe(self, part: str, method):
        up = GaugeMetricFamily(
            "styleledger_scrape_ok", "1 when this part of the scrape worked", labels=["part"]
        )
        try:
            yield from list(method())
            up.add_metric([part], 1)
        except Exception:
            logger.warning("metrics: %s failed", part, exc_info=True)
            up.add_metric([part], 0)
        yield up

    def _queues(self):
        from editplatform.core.readiness import consumers_by_queue, queue_depths

        depth = GaugeMetricFamily(
            "styleledger_queue_depth", "Messages waiting in a queue", labels=["queue"]
        )
        for queue, count in sorted(queue_depths().items()):
            depth.add_metric([queue], count)
        yield depth
        consumers = GaugeMetricFamily(
            "styleledger_queue_consumers", "Live workers consuming a queue", labels=["queue"]
        )
        for queue, count in sorted(consumers_by_queue().items()):
            consumers.add_metric([queue], count)
        yield consumers

    def _jobs(self):
        from editplatform.jobs.models import EditJob
        from editplatform.jobs.states import State

        by_state = dict(
            EditJob.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n")
        )
        jobs = GaugeMetricFamily("styleledger_jobs", "Edit jobs by state", labels=["state"])
        for state in State:
            jobs.add_metric([state.value], by_state.get(state.value, 0))
        yield jobs

        failures = CounterMetricFamily(
            "styleledger_job_failures", "Failed jobs by error code", labels=["error_code"]
        )
        rows = (
            EditJob.objects.filter(state=State.FAILED)
            .values_list("error_code")
            .annotate(n=Count("pk"))
            .values_list("error_code", "n")
        )
        for code, count in sorted(rows):
            failures.add_metric([code or "unknown"], count)
        yield failures

        samples: dict[str, list[float]] = {}
        finished = EditJob.objects.filter(state=State.SUCCEEDED).values_list(
            "timings", "queued_at", "started_at"
        )
        for timings, queued_at, started_at in finished.iterator(chunk_size=2000):
            for stage, seconds in (timings or {}).items():
                if isinstance(seconds, int | float):
                    samples.setdefault(stage, []).append(float(seconds))
            if queued_at and started_at:
                samples.setdefault("queue_wait", []).append(
                    max(0.0, (started_at - queued_at).total_seconds())
                )
        yield _histogram(
            "styleledger_job_stage_seconds",
            "Duration of each pipeline stage of succeeded jobs",
            samples,
        )

    def _audit(self):
        from audit.models import Checkpoint, LogHead

        head = LogHead.objects.filter(pk=1).values("size", "checkpoint_size").first() or {}
        size = GaugeMetricFamily("styleledger_audit_log_size", "Events in the audit log")
        size.add_metric([], head.get("size", 0))
        yield size
        signed = GaugeMetricFamily(
            "styleledger_audit_checkpoint_size", "Tree size of the latest signed checkpoint"
        )
        signed.add_metric([], head.get("checkpoint_size", 0))
        yield signed
        # A quiet log gets no new checkpoint (nothing to sign): alert on age only while
        # events wait for one.
        unsigned = GaugeMetricFamily(
            "styleledger_audit_unsigned_events",
            "Events appended after the latest signed checkpoint",
        )
        unsigned.add_metric([], head.get("size", 0) - head.get("checkpoint_size", 0))
        yield unsigned
        latest = Checkpoint.objects.order_by("-size").values_list("created_at", flat=True).first()
        age = GaugeMetricFamily(
            "styleledger_audit_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint (+Inf: none yet)",
        )
        age.add_metric([], (timezone.now() - latest).total_seconds() if latest else float("inf"))
        yield age


def registry() -> CollectorRegistry:
    """A fresh registry per scrape: nothing process-local leaks into the numbers."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PlatformCollector())
    return reg


def scrape() -> tuple[bytes, float]:
    from prometheus_client import generate_latest

    started = time.perf_counter()
    body = generate_latest(registry())
    return body, time.perf_counter() - started


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}; for tests and the CLI."""
    from prometheus_client.parser import text_string_to_metric_families

    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values
