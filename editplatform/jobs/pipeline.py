"""The model work of one job, without any database: original -> latent -> images.

Kept apart from the task so it can be tested and benchmarked on its own and so the
task only deals with bookkeeping. ``report(stage, percent)`` is called as it goes; the
caller turns it into progress rows, heartbeats and cancellation checks (it may raise
to stop the work between steps).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from inversion.latent import read_latent  # noqa: F401  (the one latent reader, for callers)
from inversion.preprocess import load_image_bytes, prepare_image

Report = Callable[[str, int], None]


@dataclass
class PipelineResult:
    reconstruction_png: bytes
    edited_png: bytes
    latent: bytes
    size: int
    model_version: str
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def png_bytes(img: Image.Image) -> bytes:
    """PNG without metadata (a fresh image has an empty info dict)."""
    clean = Image.frombytes("RGB", img.size, img.convert("RGB").tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def image_metrics(original: Image.Image, reconstruction: Image.Image, edited: Image.Image) -> dict:
    """Reconstruction error against the original (at the model's size) and edit size."""
    size = reconstruction.size[0]
    ref = np.asarray(prepare_image(original, size), dtype=np.float64) / 255.0
    rec = np.asarray(reconstruction.convert("RGB"), dtype=np.float64) / 255.0
    edt = np.asarray(edited.convert("RGB"), dtype=np.float64) / 255.0
    mse = float(np.mean((ref - rec) ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)
    return {
        "reconstruction_mse": round(mse, 6),
        "reconstruction_mae": round(float(np.mean(np.abs(ref - rec))), 6),
        "reconstruction_psnr_db": round(psnr, 3) if math.isfinite(psnr) else None,
        "edit_mean_abs_change": round(float(np.mean(np.abs(edt - rec))), 6),
        "resolution": size,
    }


def run(inverter, original_png: bytes, edits: Mapping[str, float], report: Report) -> PipelineResult:
    """Invert the original, apply ``edits``, render; return encoded outputs."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    report("load", 5)
    # Re-validated here too (defence in depth): stored originals are already clean RGB PNGs.
    original = load_image_bytes(original_png, max_pixels=10**9, allowed_formats={"PNG"}).convert("RGB")
    timings["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    inversion = inverter.invert(
        [original], progress=lambda stage, frac: report("invert" if stage != "preprocess" else "preprocess",
                                                       10 + int(45 * frac) if stage != "preprocess" else 8),
    )
    timings["invert"] = time.perf_counter() - t
    report("invert", 55)

    t = time.perf_counter()
    edited = inverter.edit(inversion, dict(edits), progress=lambda stage, frac: report("edit", 55 + int(30 * frac)))
    timings["edit"] = time.perf_counter() - t
    report("edit", 85)

    t = time.perf_counter()
    rec_img = inverter.to_pil(inversion.reconstruction)[0]
    edit_img = inverter.to_pil(edited)[0]
    result = PipelineResult(
        reconstruction_png=png_bytes(rec_img),
        edited_png=png_bytes(edit_img),
        latent=inversion.to_bytes(),  # the one latent format (inversion.latent)
        size=rec_img.size[0],
        model_version=inverter.version,
        metrics=image_metrics(original, rec_img, edit_img),
    )
    timings["encode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result.timings = {k: round(v, 4) for k, v in timings.items()}
    report("store", 90)
    return result
