"""The model work of one job, without any database: photo -> aligned crop -> latent ->
edited crop -> edited photo at full resolution.

Kept apart from the task so it can be tested and benchmarked on its own and so the
task only deals with bookkeeping. ``report(stage, percent)`` is called as it goes; the
caller turns it into progress rows, heartbeats and cancellation checks (it may raise
to stop the work between steps).
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from editplatform.jobs.normalise import decode_original
from inversion.latent import read_latent  # noqa: F401  (the one latent reader, for callers)
from inversion.preprocess import prepare_image

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
    result_png: bytes = b""  # the full-resolution photo with the edit pasted back
    result_size: tuple[int, int] = (0, 0)
    aligned_png: bytes = b""  # the aligned crop the model saw
    transform_json: bytes = b""  # inversion.align.AlignmentTransform.to_json()
    domain: dict = field(default_factory=dict)  # the domain report (see domain_check)

    @property
    def out_of_domain(self) -> bool:
        return bool(self.domain) and not self.domain.get("in_domain", True)


def png_bytes(img: Image.Image) -> bytes:
    """PNG without metadata (a fresh image has an empty info dict)."""
    clean = Image.frombytes("RGB", img.size, img.convert("RGB").tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def image_metrics(original: Image.Image, reconstruction: Image.Image, edited: Image.Image) -> dict:
    """Reconstruction error against the original (the aligned crop, at the model's size)
    and edit size."""
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


def run(
    inverter,
    original_png: bytes,
    edits: Mapping[str, float],
    report: Report,
    *,
    face_index: int | None = None,
    quality: str = "fast",
    refine_steps: int = 25,
) -> PipelineResult:
    """Align, invert the aligned crop, edit, paste back at the photo's resolution.

    The bundle's domain (``inverter.bundle.domain``) says how: the alignment method, the
    colour mode, the paste-back mode and feather, and the domain gate that judges the
    crop. Alignment failures raise the typed errors of :mod:`inversion.align` (bad input).
    ``quality="refine"`` optimises the encoder's latent against the crop for
    ``refine_steps`` (the caller passes its cap, REFINE_MAX_STEPS) before editing; the
    domain gate judges the *encoder's* latent and reconstruction either way, because that
    is what its thresholds were calibrated on (refining would hide how far the photo is
    from the domain).
    """
    if quality not in ("fast", "refine"):
        raise ValueError(f"quality must be 'fast' or 'refine', got {quality!r}")

    domain = bundle_domain(inverter)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    report("load", 5)
    prepared = prepare(original_png, domain, face_index, timings)
    report("align", 8)

    crop = prepared.crop
    t = time.perf_counter()
    fine = at_most_every(report, FINE_PROGRESS_SECONDS)
    inversion = inverter.invert(
        [crop],
        progress=lambda stage, frac: fine(
            "invert" if stage != "preprocess" else "preprocess",
            10 + int(45 * frac) if stage != "preprocess" else 9,
        ),
    )
    encoded = inversion
    if quality == "refine":
        inversion = inverter.refine(
            inversion,
            [crop],
            refine_steps,
            max_steps=refine_steps,
            progress=lambda stage, frac: fine("refine", 30 + int(25 * frac)),
        )
    timings["invert"] = time.perf_counter() - t
    report("invert", 55)

    t = time.perf_counter()
    fine = at_most_every(report, FINE_PROGRESS_SECONDS)
    edited = inverter.edit(
        inversion, dict(edits), progress=lambda stage, frac: fine("edit", 55 + int(25 * frac))
    )
    timings["edit"] = time.perf_counter() - t
    report("edit", 80)

    result = finish(
        inverter,
        prepared,
        domain,
        inversion,
        encoded,
        edited,
        quality=quality,
        refine_steps=refine_steps,
        timings=timings,
        report=report,
    )
    result.timings["total"] = round(time.perf_counter() - t0, 4)
    report("store", 90)
    return result


@dataclass
class Prepared:
    """A job's photo, loaded and aligned: what the model pass needs and paste-back uses."""

    original: Image.Image
    transform: object  # inversion.align.AlignmentTransform
    crop: Image.Image  # the aligned crop in the bundle's colour mode (the model's input)
    aligned: Image.Image  # the aligned crop before the colour mode (the gate's statistics)


FINE_PROGRESS_SECONDS = 0.25


def at_most_every(report: Report, seconds: float) -> Report:
    """``report`` for the progress *within* a stage (preprocessing, encoder batches, refine
    steps, edits), passed on at most once per ``seconds`` from now.

    Why: each report is a fenced UPDATE of the job's row, a round trip the worker waits
    out. A demo job's four in-stage reports all fell within a few tens of ms of its stage
    boundaries and showed nothing a progress bar could; a long stage still reports every
    ``seconds``. Stage boundaries are reported unthrottled, so cancellation and a lost
    lease are still noticed at the next step.
    """
    last = time.monotonic()

    def fine(stage: str, percent: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= seconds:
            last = now
            report(stage, percent)

    return fine


def bundle_domain(inverter):
    """The bundle's declared domain (the default one for bundles from before domains)."""
    from inversion.bundle_domain import default_domain

    return getattr(inverter.bundle, "domain", None) or default_domain(inverter.output_size)


def prepare(original_png: bytes, domain, face_index: int | None, timings: dict) -> Prepared:
    """Load the stored original and align it (typed alignment errors: bad input)."""
    from inversion.bundle_domain import pipeline_crop

    t = time.perf_counter()
    # The stored original is the upload as sent (checked on submit, metadata removed):
    # decode and normalise it here (docs/submit-path.md).
    original = decode_original(original_png)
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    options = (
        {"face_index": face_index} if domain.align == "ffhq" and face_index is not None else {}
    )
    transform, crop, aligned = pipeline_crop(original, domain, **options)
    timings["align"] = time.perf_counter() - t
    return Prepared(original, transform, crop, aligned)


def finish(
    inverter,
    prepared: Prepared,
    domain,
    inversion,
    encoded,
    edited,
    *,
    quality: str,
    refine_steps: int,
    timings: dict,
    report: Report,
    domain_report: dict | None = None,
) -> PipelineResult:
    """Paste back, judge the domain and encode the outputs of one job.

    ``inversion`` is the job's final latent (one sample), ``encoded`` the encoder's
    (what the domain gate judges), ``edited`` its rendered edit (1, 3, H, W).
    ``domain_report``: the job's report when the caller judged a whole batch at once
    (:func:`domain_checks`); otherwise the gate runs here for this job alone.
    """
    from inversion.pasteback import paste_back

    original, transform, crop = prepared.original, prepared.transform, prepared.crop
    t = time.perf_counter()
    rec_img = inverter.to_pil(inversion.reconstruction)[0]
    edit_img = inverter.to_pil(edited)[0]
    photo = paste_back(
        original, transform, edit_img, rec_img, mode=domain.paste_mode, feather=domain.feather
    )
    timings["paste_back"] = time.perf_counter() - t
    report("paste back", 85)

    if domain_report is None:
        t = time.perf_counter()
        domain_report = domain_check(inverter, encoded, crop, domain, aligned=prepared.aligned)
        timings["domain"] = time.perf_counter() - t

    t = time.perf_counter()
    size = rec_img.size[0]
    result = PipelineResult(
        reconstruction_png=png_bytes(rec_img),
        edited_png=png_bytes(edit_img),
        latent=inversion.to_bytes(),  # the one latent format (inversion.latent)
        size=size,
        model_version=inverter.version,
        metrics={
            **image_metrics(crop, rec_img, edit_img),
            "photo_size": list(original.size),
            "alignment": transform.method,
            "quality": quality,
            **({"refine_steps": refine_steps} if quality == "refine" else {}),
        },
        result_png=png_bytes(photo),
        result_size=photo.size,
        aligned_png=png_bytes(crop),
        transform_json=transform.to_json().encode("utf-8"),
        domain=domain_report,
    )
    timings["encode"] = time.perf_counter() - t
    result.timings = {k: round(v, 4) for k, v in timings.items()}
    return result


def domain_check(
    inverter, inversion, crop: Image.Image, domain, aligned: Image.Image | None = None
) -> dict:
    """The job's domain report (JSON-safe): the bundle's gate on the aligned crop.

    ``aligned`` is the crop before the bundle's colour mode (its colour and background
    statistics; ``crop`` when None). One job of :func:`domain_checks`.
    """
    return domain_checks(inverter, [inversion], [crop], domain, [aligned])[0]


def domain_checks(
    inverter,
    inversions,
    crops,
    domain,
    aligned=None,
) -> list[dict]:
    """The domain reports (JSON-safe) of several jobs, in one pass of the bundle's gate.

    ``inversions``: each job's encoder latent (one sample each); ``crops`` the aligned
    crops the model saw; ``aligned`` the crops before the colour mode (None entries: the
    crop). Why one pass: the gate's SSIM and statistics cost about as much for eight
    images as for one, and ran once per job of a batch before.

    A job's report must not depend on its batch (a job alone and in a batch get the same
    report, like its outputs): the gate runs with batch-invariant kernels (oneDNN off)
    and, on a worker whose Inverter pads every pass to its batch size (``fixed_batch``),
    on the same padded shape, zero rows appended and their reports dropped.

    Reconstruction fidelity (PSNR, SSIM) is measured against the crop at the model's
    size; the OOD score is the gate's Mahalanobis distance of the W+ code. A bundle with
    no gate gets the fidelity numbers and ``gated: false`` (never called out of domain).
    """
    import torch

    from inversion.preprocess import image_to_tensor

    n = len(inversions)
    aligned = list(aligned) if aligned is not None else [None] * n
    rec = torch.cat([inv.reconstruction.detach().float().cpu() for inv in inversions])
    size = rec.shape[-1]
    target = torch.cat([image_to_tensor(crop, size) for crop in crops])
    before = torch.cat(
        [
            image_to_tensor(a if a is not None else c, size)
            for a, c in zip(aligned, crops, strict=True)
        ]
    )
    wplus = torch.cat([inv.wplus.detach().float().cpu() for inv in inversions])
    step = inverter.batch_size if getattr(inverter, "fixed_batch", False) else n
    gate = getattr(inverter.bundle, "domain_gate", None)
    reports: list[dict] = []
    with _invariant_kernels():
        for start in range(0, n, step):
            part = slice(start, min(start + step, n))
            tensors = [_padded(t[part], step) for t in (wplus, rec, target, before)]
            reports += _judge(gate, *tensors, domain)[: part.stop - part.start]
    return reports


def _padded(t, rows: int):
    """``t`` (contiguous) with zero rows appended up to ``rows``."""
    import torch

    t = t.contiguous()
    if t.shape[0] >= rows:
        return t
    return torch.cat([t, t.new_zeros((rows - t.shape[0], *t.shape[1:]))])


@contextlib.contextmanager
def _invariant_kernels():
    """oneDNN off while the gate runs: its convolutions (the SSIM window) round
    differently with the batch, and are slower on these small images anyway."""
    import torch

    saved = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = saved


def _judge(gate, wplus, rec, target, before, domain) -> list[dict]:
    """One report per row: the gate's, or fidelity only for a bundle without a gate."""
    from inversion.domain import fidelity

    described = domain.description or domain.subject
    if gate is None:
        fid = fidelity(rec, target)
        out = []
        for i in range(rec.shape[0]):
            psnr, ssim = float(fid["psnr"][i]), float(fid["ssim"][i])
            out.append(
                {
                    "gated": False,
                    "in_domain": True,
                    "ood_score": None,
                    "ood_max": None,
                    "psnr": round(psnr, 4),
                    "psnr_min": None,
                    "ssim": round(ssim, 4),
                    "ssim_min": None,
                    "reasons": [],
                    "domain": described,
                    "alignment": domain.align,
                    "explanation": (
                        f"This model declares no domain gate, so the photo was not checked "
                        f"against what the model can represent (reconstruction {psnr:.1f} dB, "
                        f"SSIM {ssim:.2f}). Review the result before use."
                    ),
                }
            )
        return out
    return [
        {"gated": True, **r.to_dict(), "domain": described, "alignment": domain.align}
        for r in gate.assess(wplus, rec, target, before)
    ]
