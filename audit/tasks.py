"""The periodic checkpoint: signs the quiet tail of the log and re-exports anything missing."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="audit.checkpoint", acks_late=True, ignore_result=True)
def checkpoint() -> dict:
    from audit.log import make_checkpoint, sync_export

    made = make_checkpoint()
    return {"size": made.size, "re_exported": sync_export()}
