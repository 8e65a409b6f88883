"""What a model bundle can represent: its *domain*, declared in the manifest.

Why: a generator draws one kind of picture (aligned faces, a catalogue item on black)
at one size. The platform must know it to align a user's photo the way the model was
trained (``ffhq`` for faces, ``object`` for product photos), to paste the edit back the
right way, to tell the requester what the model is for, and to judge each photo with
the bundle's calibrated domain gate (:mod:`inversion.domain`).

The manifest's optional ``domain`` object is a :class:`BundleDomain` (validated with the
project's one config base). The gate's mean and precision live in
``domain_gate.safetensors``, listed and hashed in ``files`` like every other bundle file;
its thresholds are also written into the manifest (``domain.gate``), so the model
version (the manifest's hash) commits to them, and loading refuses a gate file whose
thresholds disagree with the manifest.

A bundle without a ``domain`` keeps loading: it reads as :func:`default_domain`
(``center`` alignment, no gate, ``declared`` false), which is what the platform did
before domains existed.

:func:`apply_domain` adds or replaces the domain of an existing bundle (a new version;
the weights are untouched) and :func:`calibrate_gate` fits a gate on the crops the
pipeline itself would feed the model.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inversion.config import ModelConfig
from inversion.errors import BundleContentError, BundleError, ConfigError, ManifestError

__all__ = [
    "ALIGN_METHODS",
    "COLOUR_MODES",
    "DOMAIN_GATE_FILE",
    "PASTE_MODES",
    "BundleDomain",
    "apply_domain",
    "calibrate_gate",
    "default_domain",
    "pipeline_crop",
    "read_domain",
]

DOMAIN_GATE_FILE = "domain_gate.safetensors"
ALIGN_METHODS = ("ffhq", "object", "center")
COLOUR_MODES = ("rgb", "grey")
PASTE_MODES = ("delta", "replace")


@dataclass
class BundleDomain(ModelConfig):
    """The manifest's ``domain`` object.

    ``subject``: what the model draws ("face", "product", ...); ``align``: how a photo is
    aligned (one of :data:`ALIGN_METHODS`); ``resolution``: the model's output size (must
    equal the generator's); ``colour``: ``rgb`` or ``grey``; ``paste_mode``: ``delta`` or
    ``replace`` (see :mod:`inversion.pasteback`); ``feather``: the paste-back mask's
    feather (fraction of the crop side); ``description``: one plain-language sentence for
    requesters; ``gate``: the domain gate's thresholds (``DomainThresholds.to_dict``) when
    the bundle ships ``domain_gate.safetensors``, else None; ``declared``: false only for
    the default of a bundle that declares nothing (never written to a manifest).
    """

    subject: str
    align: str
    resolution: int
    colour: str = "rgb"
    paste_mode: str = "delta"
    feather: float = 0.1
    description: str = ""
    gate: dict | None = None
    declared: bool = True

    def validate(self) -> None:
        if not self.subject.strip():
            raise ConfigError("BundleDomain.subject must name what the model draws")
        if self.align not in ALIGN_METHODS:
            raise ConfigError(
                f"BundleDomain.align must be one of {ALIGN_METHODS}, got {self.align!r}"
            )
        if self.colour not in COLOUR_MODES:
            raise ConfigError(
                f"BundleDomain.colour must be one of {COLOUR_MODES}, got {self.colour!r}"
            )
        if self.paste_mode not in PASTE_MODES:
            raise ConfigError(
                f"BundleDomain.paste_mode must be one of {PASTE_MODES}, got {self.paste_mode!r}"
            )
        if self.resolution < 4:
            raise ConfigError(f"BundleDomain.resolution must be >= 4, got {self.resolution}")
        if not 0 <= self.feather <= 0.5:
            raise ConfigError(f"BundleDomain.feather must be in [0, 0.5], got {self.feather}")
        if self.gate is not None:
            from inversion.domain import DomainError, DomainThresholds

            if not isinstance(self.gate, dict):
                raise ConfigError("BundleDomain.gate must be an object of thresholds or null")
            try:
                DomainThresholds.from_dict(self.gate)
            except DomainError as exc:
                raise ConfigError(f"BundleDomain.gate: {exc}") from None

    def manifest_dict(self) -> dict[str, Any]:
        """What the manifest stores (``declared`` is implied by being there)."""
        d = self.to_dict()
        d.pop("declared")
        return d

    def summary(self) -> str:
        """One line for the new-job form: what goes in, what comes out."""
        what = self.description or f"{self.subject} photos"
        colour = "greyscale" if self.colour == "grey" else "colour"
        return (
            f"{what}; aligned by '{self.align}', edited at {self.resolution}x{self.resolution} "
            f"px ({colour}) and pasted back into the photo at its own size"
        )


def default_domain(resolution: int) -> BundleDomain:
    """A bundle that declares no domain: centre crop, no gate (the pre-domain behaviour)."""
    return BundleDomain(
        subject="unspecified",
        align="center",
        resolution=int(resolution),
        description="",
        gate=None,
        declared=False,
    )


def pipeline_crop(photo, domain: BundleDomain, **options: Any):
    """The crop the model sees for ``photo``: the domain's alignment, then its colour mode.

    The one place a job (``editplatform.jobs.pipeline``) and the gate's calibration
    (:func:`calibrate_gate`) prepare a photo, so the gate is calibrated on exactly what
    it judges. ``options`` go to the alignment (``face_index`` for ``ffhq``). Returns
    ``(transform, crop, aligned)``: ``crop`` is what the model gets, ``aligned`` the crop
    before the colour mode (the gate's colour check needs it; the same image for
    ``rgb``). Alignment failures raise :mod:`inversion.align`'s errors.
    """
    from inversion.align import align

    transform = align(photo, domain.align, domain.resolution, **options)
    aligned = transform.crop(photo)
    crop = aligned.convert("L").convert("RGB") if domain.colour == "grey" else aligned
    return transform, crop, aligned


# --- reading ----------------------------------------------------------------------


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (the header is 8-byte length + JSON)."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
    except (struct.error, ValueError) as exc:
        raise BundleContentError(f"{DOMAIN_GATE_FILE}: not a safetensors file: {exc}") from None
    return header.get("__metadata__") or {}


def gate_from_bytes(data: bytes):
    """The :class:`~inversion.domain.DomainGate` stored in ``domain_gate.safetensors`` bytes."""
    from safetensors.torch import load as load_tensors

    from inversion.domain import DomainError, DomainGate

    try:
        meta = json.loads(_safetensors_metadata(data)["domain_gate"])
        tensors = load_tensors(data)
        return DomainGate.from_parts(tensors["mean"], tensors["precision"], meta)
    except (KeyError, ValueError, DomainError, RuntimeError) as exc:
        raise BundleContentError(f"{DOMAIN_GATE_FILE}: not a domain gate: {exc}") from None


def gate_to_bytes(gate) -> bytes:
    from safetensors.torch import save

    return save(
        {
            "mean": gate.model.mean.float().contiguous(),
            "precision": gate.model.precision.float().contiguous(),
        },
        metadata={"domain_gate": json.dumps(gate.metadata(), sort_keys=True)},
    )


def read_domain(manifest: Mapping[str, Any], contents: Mapping[str, bytes], resolution: int):
    """(BundleDomain, DomainGate or None) of a verified bundle; ManifestError when invalid."""
    raw = manifest.get("domain")
    if raw is None:
        if DOMAIN_GATE_FILE in contents:
            raise ManifestError(f"manifest.json lists {DOMAIN_GATE_FILE} but declares no domain")
        return default_domain(resolution), None
    if not isinstance(raw, Mapping) or "declared" in raw:
        raise ManifestError("manifest.json: 'domain' must be an object of BundleDomain fields")
    try:
        domain = BundleDomain.from_dict(raw)
    except ConfigError as exc:
        raise ManifestError(f"manifest.json: domain is invalid: {exc}") from None
    if domain.resolution != resolution:
        raise ManifestError(
            f"manifest.json: domain.resolution {domain.resolution} differs from "
            f"the generator's output size {resolution}"
        )
    if domain.gate is None:
        if DOMAIN_GATE_FILE in contents:
            raise ManifestError(f"manifest.json lists {DOMAIN_GATE_FILE} but domain.gate is null")
        return domain, None
    if DOMAIN_GATE_FILE not in contents:
        raise ManifestError(
            f"manifest.json: domain.gate is set but {DOMAIN_GATE_FILE} is not listed"
        )
    gate = gate_from_bytes(contents[DOMAIN_GATE_FILE])
    if gate.thresholds.to_dict() != domain.gate:
        raise ManifestError(
            f"manifest.json: domain.gate differs from the thresholds stored in {DOMAIN_GATE_FILE}"
        )
    return domain, gate


# --- writing ----------------------------------------------------------------------


def apply_domain(
    path: str | os.PathLike[str], domain: BundleDomain, gate=None, command: str | None = None
):
    """Declare ``domain`` (and ``gate``, a DomainGate or None) on the bundle at ``path``.

    Every file is verified first; the weights are copied unchanged; the manifest gets
    the domain, the gate file's hash and ``command`` in its provenance; the result
    replaces the bundle atomically (a new version). Returns the loaded bundle.
    """
    from inversion.bundle import MANIFEST_NAME, _fsync_dir, _write_file, load_bundle, sha256_hex

    root = Path(path)
    current = load_bundle(root)  # verifies every hash before anything changes
    if domain.resolution != current.generator_config.size:
        raise BundleError(
            f"domain resolution {domain.resolution} differs from the generator's "
            f"{current.generator_config.size}"
        )
    manifest = json.loads((root / MANIFEST_NAME).read_bytes())
    files = dict(manifest["files"])
    files.pop(DOMAIN_GATE_FILE, None)
    payloads: dict[str, bytes] = {}
    declared = BundleDomain.from_dict(
        {**domain.manifest_dict(), "gate": gate.thresholds.to_dict() if gate else None}
    )
    if gate is not None:
        data = gate_to_bytes(gate)
        payloads[DOMAIN_GATE_FILE] = data
        files[DOMAIN_GATE_FILE] = {"sha256": sha256_hex(data), "size": len(data)}
    manifest["files"] = dict(sorted(files.items()))
    manifest["domain"] = declared.manifest_dict()
    if command:
        provenance = manifest.setdefault("provenance", {})
        commands = provenance.get("commands")
        provenance["commands"] = [*(commands if isinstance(commands, list) else []), command]
    payloads[MANIFEST_NAME] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()

    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        for name in files:
            if name not in payloads:
                shutil.copy2(root / name, tmp / name)
        for name, data in payloads.items():
            _write_file(tmp / name, data)
        _fsync_dir(tmp)
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".old", dir=root.parent))
        old.rmdir()
        os.rename(root, old)
        os.rename(tmp, root)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(root.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(root)


# --- calibration ------------------------------------------------------------------


@dataclass
class CalibrationSet:
    """In-domain photos: ``fit`` for the Gaussian, held-out ``calib`` for the thresholds."""

    fit: Sequence[Any]
    calib: Sequence[Any]
    name: str
    notes: dict = field(default_factory=dict)


def fashion_mnist_canvases(
    n: int, split: str = "val", seed: int = 0, size: int = 192, offset: int = 0
) -> list[Any]:
    """Catalogue-style photos: Fashion-MNIST items placed on a dark ``size`` canvas at a
    random position and scale (the demo's product-photo domain; see tests/inversion).

    The canvas is small by default: the aligned crop is resampled to the model's size
    (32 px for the demo) either way, and finding the subject costs time per pixel.
    """
    import numpy as np
    from PIL import Image

    from inversion.training.data import load_fashion_mnist

    items, _ = load_fashion_mnist(split, limit=offset + n)
    items = items[offset:]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(items.shape[0]):
        item = ((items[i, 0].numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        scale = int(rng.integers(max(2, size // 96), max(3, size // 48) + 1))
        big = np.asarray(
            Image.fromarray(item).resize(
                (item.shape[1] * scale, item.shape[0] * scale), Image.Resampling.BICUBIC
            ),
            dtype=np.float64,
        )
        canvas = np.full((size, size), float(rng.integers(0, 12)))
        x0, y0 = (int(rng.uniform(0.05, 0.95) * (size - s)) for s in big.shape[::-1])
        region = canvas[y0 : y0 + big.shape[0], x0 : x0 + big.shape[1]]
        canvas[y0 : y0 + big.shape[0], x0 : x0 + big.shape[1]] = np.maximum(region, big)
        canvas += rng.normal(0, 1.5, canvas.shape)
        grey = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(np.repeat(grey[..., None], 3, 2)))
    return out


def calibration_set(source: str, fit: int, calib: int, seed: int = 0) -> CalibrationSet:
    """Named in-domain sets: ``fashion-mnist`` -- catalogue photos of validation items
    (:func:`inversion.domain_eval.in_domain_canvases`, ``mixed``: 512x512 canvases and
    photos of random size, every background tone, noise level and JPEG the demo's
    catalogue photos come with); fit and calibration items are disjoint.

    Why not bare 32-px items: the gate judges the *aligned crop of a photo*, and crops of
    real canvases differ from bare items in background tone and noise; a gate calibrated
    on bare items flagged about half of the in-domain canvases (docs/quality.md).
    """
    if source == "fashion-mnist":
        from inversion.domain_eval import in_domain_canvases

        return CalibrationSet(
            fit=in_domain_canvases(fit, "val", seed),
            calib=in_domain_canvases(calib, "val", seed + 1, offset=fit),
            name=f"fashion-mnist:val[0:{fit}] fit, val[{fit}:{fit + calib}] calibration, "
            f"as catalogue photos (512x512 canvases and random sizes, seed {seed})",
        )
    raise BundleError(f"unknown calibration source {source!r} (known: fashion-mnist)")


def calibrate_gate(
    inverter,
    domain: BundleDomain,
    images: CalibrationSet,
    quantile: float = 0.99,
    pooling: str = "flat",
    batch: int = 64,
):
    """A :class:`~inversion.domain.DomainGate` fitted on the crops the pipeline would make.

    Each photo is aligned with the domain's method (as a job does), inverted, and its W+
    code (and for the held-out half its reconstruction) used for the fit / thresholds.
    """
    from inversion.domain import DomainGate

    t = calibration_tensors(inverter, domain, images, batch)
    return DomainGate.calibrate(
        t["fit_wplus"],
        t["calib_wplus"],
        calib_reconstruction=t["calib_reconstruction"],
        calib_target=t["calib_target"],
        calib_crops=t["calib_crops"],
        check_colour=domain.colour == "grey",
        quantile=quantile,
        pooling=pooling,
        domain=domain.description or domain.subject,
        calibration=images.name,
    )


def calibration_tensors(inverter, domain: BundleDomain, images: CalibrationSet, batch: int = 64):
    """What :func:`calibrate_gate` fits on: the fit photos' W+ codes and, for the held-out
    calibration photos, W+ codes, reconstructions, targets (the crops the model got) and
    the crops before the colour mode (kept apart so one encoding serves several
    quantiles, as ``python -m inversion.domain_eval --other-quantiles`` does). Photos the
    alignment refuses are left out: a job fails them before the gate."""

    from inversion.align import AlignmentError

    def prepare(photo):
        try:
            return pipeline_crop(photo, domain)
        except AlignmentError:
            return None  # a job would fail this photo (no_subject): it never reaches the gate

    def invert(photos: Sequence[Any]):
        prepared = [p for p in map(prepare, photos) if p is not None]
        if len(prepared) < 2:
            raise BundleError("fewer than 2 calibration photos could be aligned")
        c = [crop for _, crop, _ in prepared]
        parts = [inverter.invert(c[i : i + batch]) for i in range(0, len(c), batch)]
        wplus = torch.cat([p.wplus for p in parts])
        rec = torch.cat([p.reconstruction for p in parts])
        aligned = _targets(inverter, [a for _, _, a in prepared])
        return wplus, rec, _targets(inverter, c), aligned

    fit_w, _, _, _ = invert(images.fit)
    cal_w, cal_rec, cal_target, cal_aligned = invert(images.calib)
    return {
        "fit_wplus": fit_w,
        "calib_wplus": cal_w,
        "calib_reconstruction": cal_rec,
        "calib_target": cal_target,
        "calib_crops": cal_aligned,
    }


def _targets(inverter, crops: Sequence[Any]):
    """The crops as (B, 3, R, R) tensors in [-1, 1] at the model's output size."""
    from inversion.preprocess import image_to_tensor

    return image_to_tensor(list(crops), inverter.output_size)
