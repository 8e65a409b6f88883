"""The release hook: what runs once a job's outputs are released, without jobs knowing who.

Jobs sit below provenance, so they cannot import the marking code. The provenance app
registers its marker here from ``AppConfig.ready()``; the jobs layer calls :func:`after_release`
inside the transaction that releases a job (``job.succeeded`` for plain jobs,
``job.released`` for held ones) and the hooks run only after that transaction commits.
A hook that fails is logged and never undoes the release: the job stays succeeded and
the hook's owner retries (provenance sweeps released jobs without a mark).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

ReleaseHook = Callable[[object], None]  # (job) -> None, after the release committed

_hooks: list[ReleaseHook] = []


def register(hook: ReleaseHook) -> None:
    """Add a hook (once: registering the same function again is a no-op)."""
    if hook not in _hooks:
        _hooks.append(hook)


def unregister(hook: ReleaseHook) -> None:
    if hook in _hooks:
        _hooks.remove(hook)


def run(job) -> None:
    """Call every hook with `job`; one failing is logged and does not stop the others."""
    for hook in list(_hooks):
        try:
            hook(job)
        except Exception:  # noqa: BLE001 - a hook must never undo or fail a release
            logger.exception("release hook %r failed for job %s", hook, getattr(job, "pk", job))


def after_release(job) -> None:
    """Schedule :func:`run` for after the current transaction commits (call inside it)."""
    job_id = job.pk
    transaction.on_commit(lambda: _run_fresh(job_id))


def _run_fresh(job_id) -> None:
    from editplatform.jobs.models import EditJob

    job = EditJob.objects.filter(pk=job_id).select_related("original", "edited").first()
    if job is not None:
        run(job)
