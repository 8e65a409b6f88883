"""What a job's domain report leads to, on the worker: release, flag, hold or refuse.

Why apart from :mod:`editplatform.jobs.execution`: the domain gate adds outputs and one
ending to the lease bookkeeping there, each a fenced UPDATE plus its audit events in one
transaction:

* released / flagged / held: :func:`execution.succeed` stores the outputs
  (:func:`store_outputs`) and emits :func:`emit_checked`; ``held`` (out of domain under
  policy ``approve``) holds the outputs for an approver like a sensitive edit does
  (compute, then release);
* refused (policy ``refuse``): :func:`refuse` fails the job with ``out_of_domain``.

The decision itself is :func:`editplatform.jobs.policy.out_of_domain_decision`.
"""

from __future__ import annotations

import logging

from editplatform.jobs import artifacts, endings, events
from editplatform.jobs.states import State

logger = logging.getLogger(__name__)

LATENT_MEDIA_TYPE = "application/vnd.styleledger.latent+safetensors"


def store_outputs(result) -> dict:
    """Store every output of a :class:`~editplatform.jobs.pipeline.PipelineResult`.

    Returns ``{EditJob field name: Artifact}`` (reconstruction, edited, latent and, from
    the photo pipeline, result, aligned, transform). Idempotent (content-addressed). The
    rows go in together (:func:`store_outputs_many`): one INSERT and one SELECT, not a
    transaction per output; each round trip to the database is latency a worker waits
    out, longer when the workers and PostgreSQL share the cores.
    """
    return store_outputs_many([result])[0]


def _outputs(result) -> list[tuple[str, bytes, str, int | None, int | None]]:
    """(field, bytes, media type, width, height) of every output a result has."""
    size = result.size
    out = [
        ("reconstruction", result.reconstruction_png, "image/png", size, size),
        ("edited", result.edited_png, "image/png", size, size),
        ("latent", result.latent, LATENT_MEDIA_TYPE, None, None),
    ]
    if result.result_png:
        w, h = result.result_size
        out.append(("result", result.result_png, "image/png", w, h))
    if result.aligned_png:
        out.append(("aligned", result.aligned_png, "image/png", size, size))
    if result.transform_json:
        out.append(("transform", result.transform_json, "application/json", None, None))
    return out


def store_outputs_many(results) -> list[dict]:
    """:func:`store_outputs` for the results of a worker's batch, the Artifact rows of all
    of them written together (:func:`artifacts.store_many`); one dict per result."""
    plans = [_outputs(result) for result in results]
    flat = [(data, media, w, h) for plan in plans for _, data, media, w, h in plan]
    stored = iter(artifacts.store_many(flat))
    return [{name: next(stored) for name, *_ in plan} for plan in plans]


def emit_checked(job, result, decision: str, stored: dict, *, actor_name: str) -> None:
    """The ``job.domain_checked`` event (inside the caller's transaction)."""
    events.emit(
        events.JOB_DOMAIN_CHECKED,
        subject=events.job_subject(job),
        request_id=job.request_id,
        actor_name=actor_name,
        payload={
            "original_sha256": job.original_id,
            "model_version": result.model_version,
            "decision": decision,
            "report": result.domain,
            "aligned_sha256": stored["aligned"].sha256 if "aligned" in stored else None,
            "outputs": {kind: a.sha256 for kind, a in stored.items()},
        },
    )


_actor = endings.actor


def refuse(run, result) -> bool:
    """Out of domain under policy ``refuse``: the job fails with ``out_of_domain``; no output
    is stored or linked."""
    job = run.job
    message = (
        result.domain.get("explanation") or "the photo is outside what the model can represent"
    )
    return endings.fail_job(
        job,
        "out_of_domain",
        message,
        sources=frozenset({State.RUNNING}),
        fence=run.lease_id,
        details={"attempt": run.attempt},
        before_event=lambda: emit_checked(job, result, "refused", {}, actor_name=_actor(job)),
        domain_report=result.domain,
    )
