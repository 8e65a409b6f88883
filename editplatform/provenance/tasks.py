"""The provenance sweep task: mark released jobs whose marking failed (beat, default queue)."""

from __future__ import annotations

from celery import shared_task

from editplatform.provenance.release import sweep

MARK_SWEEP = "provenance.mark_sweep"


@shared_task(name=MARK_SWEEP, ignore_result=True)
def mark_sweep() -> int:
    return sweep()
