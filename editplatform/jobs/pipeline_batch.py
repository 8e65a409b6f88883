"""The model work of several jobs at once, without any database: one forward pass of
the encoder and one of the generator over the stacked crops of jobs that share a model
version and quality mode (a worker's micro-batch, JOB_BATCH_SIZE).

Why a batch: the per-image cost of a forward pass falls steeply with the batch (a GPU
is idle at batch 1; on a CPU the vector units are). What must not change: every job is
still its own job. So everything that can fail for one job alone runs per job and
fails only that job — loading and aligning its photo, validating its edits, pasting
back, encoding its outputs — and its ``report`` callback (progress,
cancellation, lease loss) may stop it between steps without touching the others. If
the batched model pass itself raises, each job is run again alone, so the one that
caused it fails alone. The domain gate judges the whole batch in one pass too (its SSIM
costs about as much for eight crops as for one); if that pass raises, each job is
judged alone. A job's outputs do not depend on its batch: every sample gets
the seed a lone run uses, and the worker's Inverter runs in ``fixed_batch`` mode
(padded, batch-invariant kernels), so a job alone and the same job at any position of
a full batch give byte-identical latents and images.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from editplatform.jobs.pipeline import (
    PipelineResult,
    Prepared,
    Report,
    bundle_domain,
    domain_checks,
    finish,
    prepare,
)

logger = logging.getLogger(__name__)

SEED = 0  # what a lone run (pipeline.run) seeds its one sample with


@dataclass
class Item:
    """One job of a batch: its inputs, and after :func:`run_batch` its outcome."""

    original_png: bytes
    edits: dict
    report: Report
    face_index: int | None = None
    key: object = None  # the caller's name for it (a job id), for ``report_all``
    outcome: PipelineResult | BaseException | None = None
    prepared: Prepared | None = field(default=None, repr=False)
    result: PipelineResult | None = field(default=None, repr=False)  # before the last report
    timings: dict = field(default_factory=dict, repr=False)

    @property
    def alive(self) -> bool:
        return self.outcome is None


# report_all(items, stage, percent) -> {item.key: exception} for the items that must stop
ReportAll = Callable[[list[Item], str, int], dict]


def run_batch(
    inverter,
    items: Sequence[Item],
    *,
    quality: str = "fast",
    refine_steps: int = 25,
    passthrough: tuple[type[BaseException], ...] = (),
    report_all: ReportAll | None = None,
    domain=None,
) -> list[Item]:
    """Run ``items`` as one batch; each item's ``outcome`` is its result or the exception
    that ended it (an alignment error, a bad edit, :class:`JobCancelled` from its
    report ...). Exceptions in ``passthrough`` (a time limit: the whole task's) end the
    batch and propagate. ``report_all`` reports a stage for every live item at once (one
    database round trip); without it each item's ``report`` is called. ``domain``: the
    bundle's own unless given (the worker's warm-up aligns a face bundle's synthetic
    photo with ``center``)."""
    if quality not in ("fast", "refine"):
        raise ValueError(f"quality must be 'fast' or 'refine', got {quality!r}")
    if domain is None:
        domain = bundle_domain(inverter)
    t0 = time.perf_counter()

    def guard(item: Item, fn):
        try:
            return fn()
        except passthrough:
            raise
        except Exception as exc:  # this job's own failure: it ends alone
            item.outcome = exc
            return None

    def tell(stage: str, percent: int) -> None:
        alive = [item for item in items if item.alive]
        if report_all is None:
            for item in alive:
                guard(item, lambda item=item: item.report(stage, percent))
            return
        try:
            stopped = report_all(alive, stage, percent)
        except passthrough:
            raise
        except Exception as exc:  # the database: every job's (transient) fault
            stopped = {item.key: exc for item in alive}
        for item in alive:
            if item.key in stopped:
                item.outcome = stopped[item.key]

    tell("load", 5)
    for item in items:
        if item.alive:
            item.prepared = guard(
                item,
                lambda item=item: prepare(item.original_png, domain, item.face_index, item.timings),
            )
        if item.alive:
            guard(item, lambda item=item: inverter.catalog.validate_request(item.edits))
    tell("align", 8)

    batch = [item for item in items if item.alive]
    if not batch:
        return list(items)
    t = time.perf_counter()
    try:
        passes = _model(inverter, batch, quality, refine_steps)
    except passthrough:
        raise
    except Exception as exc:
        if len(batch) == 1:
            batch[0].outcome = exc
            passes = [None]
        else:
            logger.warning(
                "batched model pass failed; running its %d jobs alone", len(batch), exc_info=True
            )
            passes = [
                guard(item, lambda item=item: _model(inverter, [item], quality, refine_steps)[0])
                for item in batch
            ]
    model_seconds = time.perf_counter() - t
    for item in batch:
        item.timings.update(model=model_seconds, batch=len(batch))
    tell("invert", 55)
    tell("edit", 80)

    reports = _gate(inverter, batch, passes, domain, passthrough)
    for item, done in zip(batch, passes, strict=True):
        if not item.alive or done is None:
            continue
        encoded, final, edited = done
        result = guard(
            item,
            lambda item=item, encoded=encoded, final=final, edited=edited: finish(
                inverter,
                item.prepared,
                domain,
                final,
                encoded,
                edited,
                quality=quality,
                refine_steps=refine_steps,
                timings=item.timings,
                report=lambda stage, percent: None,  # told below, for all at once
                domain_report=reports.get(id(item)),
            ),
        )
        if result is not None:
            result.timings["total"] = round(time.perf_counter() - t0, 4)
            item.result = result
    tell("paste back", 85)
    tell("store", 90)
    for item in batch:
        if item.alive and item.result is not None:
            item.outcome = item.result
    return list(items)


def _gate(inverter, batch: Sequence[Item], passes, domain, passthrough) -> dict:
    """The domain reports of the batch's live jobs from one pass of the gate,
    ``{id(item): report}``; empty when that pass raised (then each job's ``finish`` runs
    the gate alone, so a job whose gate fails fails alone). A job's report does not
    depend on its batch (:func:`pipeline.domain_checks`)."""
    live = [
        (item, done)
        for item, done in zip(batch, passes, strict=True)
        if item.alive and done is not None
    ]
    if not live:
        return {}
    t = time.perf_counter()
    try:
        reports = domain_checks(
            inverter,
            [done[0] for _, done in live],
            [item.prepared.crop for item, _ in live],
            domain,
            [item.prepared.aligned for item, _ in live],
        )
    except passthrough:
        raise
    except Exception:
        logger.warning("batched domain gate failed; judging its jobs alone", exc_info=True)
        return {}
    share = (time.perf_counter() - t) / len(live)
    for item, _ in live:
        item.timings["domain"] = share  # the job's share of the batch's one pass
    return {id(item): report for (item, _), report in zip(live, reports, strict=True)}


def _model(inverter, batch: Sequence[Item], quality: str, refine_steps: int) -> list[tuple]:
    """Encoder and generator over the stacked crops: ``(encoded, final, edited)`` per job
    (the encoder's latent, the latent after ``refine`` if asked, the edited render)."""
    from inversion.inverter import Inversion

    crops = [item.prepared.crop for item in batch]
    seeds = [SEED] * len(crops)
    encoded = inverter.invert(crops, seed=seeds)
    singles = [encoded[i] for i in range(len(crops))]
    if quality == "refine":
        # per job: the optimisation's step sizes and its loss must not mix jobs
        finals = [
            inverter.refine(one, [crop], refine_steps, max_steps=refine_steps)
            for one, crop in zip(singles, crops, strict=True)
        ]
    else:
        finals = singles
    edited = inverter.edit(Inversion.cat(finals), [item.edits for item in batch], seed=seeds)
    return [(singles[i], finals[i], edited[i : i + 1]) for i in range(len(crops))]
