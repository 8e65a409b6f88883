"""Measure watermark and fingerprint robustness without a database.

The lookup table is a dict here, exactly what WatermarkKey and the fingerprint index
answer; `manage.py provenance robustness` prints the figures docs/provenance.md
records. The decision rule is the one `services.analyse` uses: a match is a resolved
watermark key, or a fingerprint match under `fingerprint.is_match`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np

from editplatform.provenance import attacks, corpus, false_match, fingerprint, watermark


@dataclass
class Figures:
    outputs: int = 0
    unrelated: int = 0
    psnr_db: float = 0.0
    found: dict = field(default_factory=dict)  # attack -> outputs traced to the right one
    by_watermark: dict = field(default_factory=dict)
    by_fingerprint: dict = field(default_factory=dict)
    bit_accuracy: dict = field(
        default_factory=dict
    )  # attack -> mean fraction of code bits right (no search)
    bit_accuracy_search: dict = field(
        default_factory=dict
    )  # attack -> the same for the bits the detector settled on (geometry searched)
    source: str = ""
    wrong: dict = field(default_factory=dict)  # attack -> traced to a wrong output
    false_matches: int = 0
    seconds: dict = field(default_factory=dict)
    unrelated_report: dict = field(default_factory=dict)  # false_match.run's figures
    # attack -> per output [key resolved to it, PDQ and rotation-tolerant distance to it]:
    # what a change of the fingerprint rule would find, without re-running the attacks
    per_output: dict = field(default_factory=dict)
    stored: list = field(default_factory=list)  # [key, PDQ hex, rotation-tolerant hex] per output


def _matches(prints, stored, threshold: int) -> set[int]:
    """The stored outputs `fingerprint.is_match` accepts (`threshold`: PDQ's)."""
    return {
        i
        for i, s in enumerate(stored)
        if fingerprint.is_match(
            fingerprint.distance(prints.pdq, s.pdq),
            fingerprint.distance(prints.rot, s.rot),
            pdq_limit=threshold,
            rot_limit=min(threshold, fingerprint.ROT_MATCH_DISTANCE),
        )
    }


def run(
    n_outputs: int,
    n_unrelated: int,
    *,
    strength: float = watermark.DEFAULT_STRENGTH,
    seed: int = watermark.DEFAULT_SEED,
    threshold: int = 31,
    source: str = "pipeline",
    cache_dir=None,
    progress=None,
    with_attacks: bool = True,
    unrelated_set: str = "varied",
    sources=None,
    workers: int = 1,
    max_seconds: float | None = None,
    unrelated_start: int = 0,
    unrelated_sources: tuple[str, ...] | None = None,
) -> Figures:
    """`source`: "pipeline" (job pipeline results, corpus.pipeline_outputs) or "portrait"
    (crops of the shipped portrait, corpus.outputs: the first measurement's set).

    `unrelated_set`: "varied" (`unrelated.image`, checked by `false_match.run` in
    `workers` processes, stopping after `max_seconds` with the count it reached) or
    "basic" (`corpus.unrelated`, the first passes' set, one process)."""
    figures = Figures(outputs=n_outputs, unrelated=n_unrelated, source=source)
    if source == "pipeline":
        originals = corpus.pipeline_outputs(n_outputs, progress=progress, cache_dir=cache_dir)
    elif source == "portrait":
        originals = corpus.outputs(n_outputs)
    else:
        raise ValueError(f"unknown source {source!r} (pipeline or portrait)")
    rng = random.Random(7)
    keys: dict[int, int] = {}
    marked, stored, psnrs = [], [], []
    t0 = time.perf_counter()
    for i, image in enumerate(originals):
        key = rng.getrandbits(32)
        keys[key] = i
        out = watermark.embed(image, key, seed=seed, strength=strength)
        a, b = np.asarray(image, np.float64), np.asarray(out, np.float64)
        psnrs.append(10 * np.log10(255**2 / max(((a - b) ** 2).mean(), 1e-9)))
        marked.append((key, out))
        stored.append(fingerprint.compute(out))
    figures.seconds["embed+fingerprint per output"] = (time.perf_counter() - t0) / max(n_outputs, 1)
    figures.psnr_db = float(np.mean(psnrs)) if psnrs else 0.0
    figures.stored = [
        [key, s.pdq.hex(), s.rot.hex()] for (key, _), s in zip(marked, stored, strict=True)
    ]
    t0 = time.perf_counter()
    for name, attack in attacks.ATTACKS.items() if with_attacks else ():
        found = by_wm = by_fp = wrong = 0
        acc, acc_search = [], []
        for i, (key, out) in enumerate(marked):
            seen = attack(out)
            truth = watermark.encode_key(key)
            acc.append(
                float((watermark.detect(seen, seed=seed, search=False).bits == truth).mean())
            )
            detection = watermark.detect(seen, seed=seed)
            acc_search.append(float((detection.bits == truth).mean()))
            hits = set()
            if detection.key in keys:
                hits.add(keys[detection.key])
                by_wm += keys[detection.key] == i
            prints = fingerprint.compute(seen)
            fp_hits = _matches(prints, stored, threshold)
            figures.per_output.setdefault(name, []).append(
                [
                    detection.key in keys and keys[detection.key] == i,
                    fingerprint.distance(prints.pdq, stored[i].pdq),
                    fingerprint.distance(prints.rot, stored[i].rot),
                ]
            )
            by_fp += i in fp_hits
            hits |= fp_hits
            found += i in hits
            wrong += bool(hits - {i})
        figures.found[name], figures.by_watermark[name], figures.by_fingerprint[name] = (
            found,
            by_wm,
            by_fp,
        )
        figures.wrong[name], figures.bit_accuracy[name] = wrong, float(np.mean(acc)) if acc else 0.0
        figures.bit_accuracy_search[name] = float(np.mean(acc_search)) if acc_search else 0.0
        if progress:
            progress(
                f"{name}: found {found}/{n_outputs} (watermark {by_wm}, fingerprint {by_fp},"
                f" wrong {wrong}) bit accuracy {figures.bit_accuracy[name]:.3f} without search,"
                f" {figures.bit_accuracy_search[name]:.3f} searched"
            )
    if marked and with_attacks:
        per = max(n_outputs * len(attacks.ATTACKS), 1)
        figures.seconds["check per image"] = (time.perf_counter() - t0) / per
    if n_unrelated and unrelated_set == "basic":
        t0 = time.perf_counter()
        for j, image in enumerate(corpus.unrelated(n_unrelated)):
            detection = watermark.detect(image, seed=seed)
            if detection.key in keys or _matches(fingerprint.compute(image), stored, threshold):
                figures.false_matches += 1
            if progress and j and j % 1000 == 0:
                progress(f"unrelated {j}: false matches {figures.false_matches}")
        figures.seconds["check per unrelated image (full search)"] = (
            time.perf_counter() - t0
        ) / max(n_unrelated, 1)
    elif n_unrelated:
        report = false_match.run(
            keys,
            stored,
            n_unrelated,
            sources
            or false_match.default_sources(
                cache_dir,
                n_pipeline=200
                if unrelated_sources is None or "pipeline" in unrelated_sources
                else 0,
                progress=progress,
            ),
            workers=workers,
            max_seconds=max_seconds,
            threshold=threshold,
            seed=seed,
            start=unrelated_start,
            progress=progress,
            only_sources=unrelated_sources,
        )
        figures.false_matches = report["false_matches"]
        figures.unrelated = report["checked"]
        figures.unrelated_report = report
    return figures
