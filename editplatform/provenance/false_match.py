"""False matches: put never-marked images through the check and count what it claims.

Why a module of its own: the figure the issue asks for (< 0.1 % false matches over
10,000 unrelated images) needs the full search on every image — an unmarked image always
pays for the crop search — so the work is spread over worker processes by index
(`unrelated.image(i)` is a pure function of i), bounded in time, and reported with the
exact binomial (Clopper-Pearson) upper bound for the count actually reached.

Per image it records what the platform's check would see (`services._signals`' rule):
the watermark key `watermark.detect` decodes (and from which stage: the plain
candidates or the crop search, each accepting at most one corrected byte), whether that
key is one of the issued ones, how many plain candidates read a word Reed-Solomon would
correct in 2 bytes (what they claimed before the one-correction rule), and per stored
output within NEAR_BITS the PDQ and rotation-tolerant distances, to which
`fingerprint.is_match` is applied (also afterwards, to the saved rows). The crop search
runs with `crop_max_corrected=2`, and the current rule (`CROP_MAX_CORRECTED`, 1) is
applied afterwards: `crop_search`'s chosen window does not depend on the limit, so one
run gives both the rule's figures and what the search would have claimed before it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from editplatform.provenance import fingerprint, unrelated, watermark

_STATE: dict = {}
NEAR_BITS = 64


def default_sources(cache_dir: Path | None, n_pipeline: int = 200, progress=None):
    """scikit-image's data under `cache_dir`/skimage-data (see `unrelated`), and
    `n_pipeline` unmarked pipeline outputs of seed 1 (made once, cached as PNG)."""
    if cache_dir is None:
        return unrelated.Sources()
    cache_dir = Path(cache_dir)
    pipeline_dir = None
    if n_pipeline:
        from editplatform.provenance import corpus

        corpus.pipeline_outputs(n_pipeline, seed=1, cache_dir=cache_dir, progress=progress)
        pipeline_dir = cache_dir / f"pipeline-seed1-n{n_pipeline}"
    return unrelated.Sources(cache_dir / "skimage-data", pipeline_dir)


def _init(state: dict) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is installed with the project
        pass
    _STATE.update(state)


def check_one(index: int) -> dict:
    """What the check sees for unrelated image `index` (uses the worker's `_STATE`)."""
    image = unrelated.image(index, _STATE["sources"], seed=_STATE["corpus_seed"])
    t0 = time.perf_counter()
    detection = watermark.detect(image, seed=_STATE["wm_seed"], crop_max_corrected=2)
    t1 = time.perf_counter()
    prints = fingerprint.compute(image)
    t2 = time.perf_counter()
    corrected = None
    if detection.key is not None:
        corrected = watermark.decode_with_corrections(detection.bits)[1]
    stage = None if detection.key is None else ("crop" if detection.crop else "candidates")
    key = detection.key
    if stage == "crop" and corrected > watermark.CROP_MAX_CORRECTED:
        key = None  # what the platform's rule answers
    stored = _STATE["stored"]
    pairs = [
        (fingerprint.distance(prints.pdq, s.pdq), fingerprint.distance(prints.rot, s.rot))
        for s in stored
    ]
    pdq = min((p for p, _ in pairs), default=256)
    rot = min((r for _, r in pairs), default=256)
    return {
        "index": index,
        "source": unrelated.source_of(index),
        "stage": stage,
        "corrected": corrected,
        "key": key,
        "claim_before_rule": detection.key,
        "resolved": key is not None and key in _STATE["keys"],
        "pdq": pdq,
        "rot": rot,
        # per stored output within NEAR_BITS on either hash: (output, pdq, rot), so the
        # decision rule can be applied (and compared) after the run
        "near": [(j, p, r) for j, (p, r) in enumerate(pairs) if min(p, r) <= NEAR_BITS],
        # the image's own hashes: a run against no stored outputs can be scored later
        "hashes": [prints.pdq.hex(), prints.rot.hex()],
        "candidate_words_2": _candidate_words_at_two(image),
        "quality": prints.quality,
        "detect_s": t1 - t0,
        "fingerprint_s": t2 - t1,
    }


def _candidate_words_at_two(image) -> int:
    """How many of the plain candidates decode with exactly 2 corrected bytes: what the
    candidates claimed before they were held to `watermark.MAX_CORRECTED` (1)."""
    luma = image.convert("L")
    count = 0
    for scale in watermark.SCALES:
        for angle in watermark.ANGLES:
            grid, valid = watermark._candidate_grid(luma, angle, scale)
            bits = (watermark.correlations(grid, valid, _STATE["wm_seed"]) > 0).astype(np.uint8)
            decoded = watermark.decode_with_corrections(bits)
            count += decoded is not None and decoded[1] == 2
    return count


def fingerprint_hit(row: dict, threshold: int) -> bool:
    """`fingerprint.is_match` against any stored output (from the row's near pairs)."""
    rot_limit = min(threshold, fingerprint.ROT_MATCH_DISTANCE)
    return any(
        fingerprint.is_match(p, r, pdq_limit=threshold, rot_limit=rot_limit)
        for _, p, r in row.get("near", ())
    )


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper-Pearson) upper confidence bound on a rate seen k times in n."""
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    if k == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / n)
    from scipy.stats import beta

    return float(beta.ppf(confidence, k + 1, n - k))


def run(
    keys: dict[int, int],
    stored: list,
    n: int,
    sources: unrelated.Sources,
    *,
    workers: int = 1,
    max_seconds: float | None = None,
    threshold: int = 31,
    seed: int = watermark.DEFAULT_SEED,
    corpus_seed: int = 2,
    start: int = 0,
    progress=None,
    only_sources: tuple[str, ...] | None = None,
) -> dict:
    """Check unrelated images start..n-1 (fewer if `max_seconds` runs out: a prefix, in
    order; `start` continues an earlier run that stopped there). `only_sources`: just the
    indices of those sources (`unrelated.source_of`), so a set can be checked in parts
    whose union is the same images (e.g. the pipeline outputs once they are made)."""
    indices = [
        i for i in range(start, n) if only_sources is None or unrelated.source_of(i) in only_sources
    ]
    state = {
        "keys": set(keys),
        "stored": stored,
        "sources": sources,
        "wm_seed": seed,
        "corpus_seed": corpus_seed,
    }
    rows: list[dict] = []
    started = time.perf_counter()
    cpu0 = time.process_time()
    if workers <= 1:
        _init(state)
        for i in indices:
            rows.append(check_one(i))
            if _report_and_stop(rows, started, max_seconds, progress):
                break
    else:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_init, initargs=(state,)) as pool:
            for row in pool.imap(check_one, indices, chunksize=4):
                rows.append(row)
                if _report_and_stop(rows, started, max_seconds, progress):
                    pool.terminate()
                    break
    wall = time.perf_counter() - started
    report = summarise(rows, len(indices), threshold, wall, workers, time.process_time() - cpu0)
    report["start"] = start
    report["rows"] = rows  # per image, for re-summarising chunks together
    return report


def _report_and_stop(rows, started, max_seconds, progress) -> bool:
    elapsed = time.perf_counter() - started
    if progress and len(rows) % 500 == 0:
        claims = sum(r["key"] is not None for r in rows)
        progress(f"unrelated {len(rows)} in {elapsed:.0f} s: watermark claims {claims}")
    return max_seconds is not None and elapsed > max_seconds


def summarise(
    rows: list[dict], asked: int, threshold: int, wall: float, workers: int, cpu: float = 0.0
) -> dict:
    n = len(rows)
    fp_hit = [fingerprint_hit(r, threshold) for r in rows]
    rot_alone_31 = sum(r["pdq"] > threshold and r["rot"] <= threshold for r in rows)
    false = [r["resolved"] or hit for r, hit in zip(rows, fp_hit, strict=True)]
    by_source: dict[str, dict] = {}
    for r, hit, bad in zip(rows, fp_hit, false, strict=True):
        entry = by_source.setdefault(
            r["source"],
            {
                "images": 0,
                "false_matches": 0,
                "fingerprint_matches": 0,
                "watermark_claims": 0,
                "nearest_pdq": 256,
                "nearest_rot": 256,
            },
        )
        entry["images"] += 1
        entry["false_matches"] += bad
        entry["fingerprint_matches"] += hit
        entry["watermark_claims"] += r["key"] is not None
        entry["nearest_pdq"] = min(entry["nearest_pdq"], r["pdq"])
        entry["nearest_rot"] = min(entry["nearest_rot"], r["rot"])
    pdq = np.array([r["pdq"] for r in rows]) if rows else np.array([256])
    rot = np.array([r["rot"] for r in rows]) if rows else np.array([256])
    claims = [r for r in rows if r["key"] is not None]
    before = [r for r in rows if r["claim_before_rule"] is not None]
    k = sum(false)
    detect_s = [r["detect_s"] for r in rows] or [0.0]
    return {
        "asked": asked,
        "checked": n,
        "false_matches": k,
        "false_match_rate": k / n if n else None,
        "upper_95": upper_bound(k, n),
        "fingerprint_matches": sum(fp_hit),
        "fingerprint_upper_95": upper_bound(sum(fp_hit), n),
        "rule": {
            "pdq": threshold,
            "rot": min(threshold, fingerprint.ROT_MATCH_DISTANCE),
            "rot_needs_pdq_within": fingerprint.ROT_PDQ_AGREEMENT,
        },
        "rot_within_threshold_without_pdq": rot_alone_31,
        "candidate_claims_before_rule": sum(r.get("candidate_words_2", 0) > 0 for r in rows),
        "watermark_resolved": sum(r["resolved"] for r in rows),
        "watermark_claims": len(claims),
        "watermark_claims_by_stage": {
            stage: sum(r["stage"] == stage for r in claims) for stage in ("candidates", "crop")
        },
        "watermark_claims_upper_95": upper_bound(len(claims), n),
        "crop_claims_before_rule": sum(r["stage"] == "crop" for r in before),
        "crop_claims_before_rule_by_corrections": {
            str(c): sum(r["stage"] == "crop" and r["corrected"] == c for r in before)
            for c in (0, 1, 2)
        },
        "nearest_pdq": {
            "min": int(pdq.min()),
            "p01": float(np.percentile(pdq, 1)),
            "median": float(np.median(pdq)),
        },
        "nearest_rot": {
            "min": int(rot.min()),
            "p01": float(np.percentile(rot, 1)),
            "median": float(np.median(rot)),
        },
        "within_40_bits": int(((pdq <= 40) | (rot <= 40)).sum()),
        "by_source": by_source,
        "seconds": {
            "wall": round(wall, 1),
            "workers": workers,
            "parent_cpu": round(cpu, 1),
            "detect_mean": round(float(np.mean(detect_s)), 4),
            "detect_p95": round(float(np.percentile(detect_s, 95)), 4),
            "fingerprint_mean": round(float(np.mean([r["fingerprint_s"] for r in rows] or [0])), 4),
            "per_image_wall": round(wall / n, 4) if n else None,
        },
        "examples": [
            {k_: r[k_] for k_ in ("index", "source", "stage", "corrected", "pdq", "rot")}
            for r in sorted(rows, key=lambda r: min(r["pdq"], r["rot"]))[:5]
        ]
        + [
            {k_: r[k_] for k_ in ("index", "source", "stage", "corrected", "pdq", "rot")}
            for r in before
        ][:20],
        "projection": _projection(len(claims), n),
    }


def _projection(claims: int, n: int) -> dict:
    """A decoded key is a false match only if it is one of the N issued keys (random words
    are uniform over 2^32): expected false-match rate ~ claim rate x N / 2^32."""
    rate = upper_bound(claims, n)
    return {f"issued_{issued}": rate * issued / 2**32 for issued in (10**4, 10**6, 10**8)} | {
        "claim_rate_upper_95": rate,
        "note": "upper 95 % claim rate x N / 2^32",
    }


def rescore(rows: list[dict], keys, stored: list) -> list[dict]:
    """`rows` of a run made against other (or no) stored outputs, scored against `keys` and
    `stored`: nothing the detector or the hashes saw depends on them, only the distances
    and whether a claimed key is an issued one."""
    out = []
    for row in rows:
        pdq, rot = (bytes.fromhex(h) for h in row["hashes"])
        pairs = [
            (fingerprint.distance(pdq, s.pdq), fingerprint.distance(rot, s.rot)) for s in stored
        ]
        out.append(
            row
            | {
                "resolved": row["key"] is not None and row["key"] in keys,
                "pdq": min((p for p, _ in pairs), default=256),
                "rot": min((r for _, r in pairs), default=256),
                "near": [(j, p, r) for j, (p, r) in enumerate(pairs) if min(p, r) <= NEAR_BITS],
            }
        )
    return out
