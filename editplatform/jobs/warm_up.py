"""Warm a worker's model before its first job: one throw-away run at batch 1 and at
JOB_BATCH_SIZE on a synthetic photo.

Why: loading a bundle is not the whole start-up. The first pass at each batch shape pays
one-off costs (torch's kernel and oneDNN primitive set-up for that shape, the first
alignment's imports and allocations): measured on the demo bundle in a fresh CPU worker,
the first batch of eight took 0.50 s in the model against 0.08 s for the next ones, and
the first alignment 158 ms against 10 ms. Without a warm-up the first real job (or
batch) after every worker start or restart pays it, on the requester's clock.

Nothing is stored and no database is touched: this is the database-free pipeline
(:mod:`editplatform.jobs.pipeline_batch`) on a photo made here. For a face bundle
(``ffhq`` alignment needs a real face) the alignment is the plain ``center`` one; the
model passes are the same.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time

import numpy as np

from editplatform.jobs import pipeline_batch
from editplatform.jobs.pipeline import bundle_domain

logger = logging.getLogger(__name__)


def _photo_png() -> bytes:
    """A light block on a dark canvas, 256 px: what the ``object`` alignment frames."""
    from inversion.align.synthetic import catalogue_photo

    item = np.zeros((28, 28), dtype=np.uint8)
    item[4:24, 7:21] = 200
    photo = catalogue_photo(item, np.random.default_rng(0), (256, 256), jpeg=False)
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    return buffer.getvalue()


def _edits(inverter) -> dict:
    """The catalog's first edit at strength 0 (runs the edit path, moves nothing)."""
    spec = next(iter(inverter.catalog), None)
    return {spec.name: 0.0} if spec is not None else {}


def warm_up(inverter, batch_size: int) -> float | None:
    """Run the pipeline once at batch 1 and once at ``batch_size``; the seconds it took.

    Never raises: a warm-up that fails is logged (None) and the worker starts cold (its
    first job then pays the one-off costs, as before)."""
    t = time.perf_counter()
    try:
        png = _photo_png()
        edits = _edits(inverter)
        domain = bundle_domain(inverter)
        if domain.align == "ffhq":  # the synthetic photo has no face to align
            domain = dataclasses.replace(domain, align="center")
        for size in sorted({1, max(1, batch_size)}):
            items = [
                pipeline_batch.Item(
                    original_png=png, edits=edits, report=lambda stage, pct: None, key=i
                )
                for i in range(size)
            ]
            pipeline_batch.run_batch(
                inverter, items, report_all=lambda items, stage, pct: {}, domain=domain
            )
            failed = [item.outcome for item in items if isinstance(item.outcome, Exception)]
            if failed:
                raise failed[0]
    except Exception:  # noqa: BLE001 - a cold start is slower, not wrong
        logger.warning("model warm-up failed; the first job will pay for it", exc_info=True)
        return None
    seconds = time.perf_counter() - t
    logger.info("model warmed up at batch sizes 1 and %d in %.2f s", batch_size, seconds)
    return seconds
