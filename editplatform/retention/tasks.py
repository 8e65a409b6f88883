"""The periodic retention run (beat entry ``retention-run``)."""

from __future__ import annotations

from celery import shared_task

RUN_RETENTION = "retention.run"


@shared_task(name=RUN_RETENTION, ignore_result=True)
def run_retention() -> dict:
    from editplatform.retention import policies

    result = policies.run()
    return {"shredded": len(result["shredded"]), "blocked": len(result["blocked"])}
