"""Extend a model's edit catalog: an InterFaceGAN direction fitted from a labelled folder.

Input: a folder with ``positive/`` and ``negative/`` sub-folders of photos (PNG, JPEG,
WebP) that do and do not show the attribute. Every photo is inverted with the model's
own encoder; a logistic-regression boundary on the W codes (mean over W+ layers) is fitted
on a seeded, stratified training share (InterFaceGAN: the boundary's unit normal is the
edit direction). The held-out share measures it:

* ``boundary_accuracy``: held-out codes on the right side of the boundary;
* ``success``: held-out photos moved towards the other side at the default strength and
  rendered (with the Fuser) are labelled the other way by a pixel probe -- a logistic
  regression on the training photos' 16x16 pixels, independent of the encoder -- so the
  figure says the *photo* changed, not only its code;
* ``class_kept`` (only with a classifier): the 10-way class of the result equals the
  photo's, the measure the demo catalog's sensitivity rule is written on.

The direction is scaled by the spread (std) of the codes along it, so strengths are in
standard deviations as in the demo catalog. The default strength is chosen on training
photos (the first of 1, 2, 3, 4, 6, 8 that flips the pixel probe on 80 % of them, else 8)
and the figures are reported on the held-out ones; the range is twice it either way.
Sensitivity, fail-closed:
the edit is sensitive if the caller says so, if ``class_kept`` is below the rule's
threshold, or if no classifier measured preservation at all; the reason is recorded.

The result is a *new* bundle (:func:`inversion.bundle_derive.derive_bundle`): the parent's
weights, its directions plus the new one, its catalog plus the new entry, and provenance
naming the data (every photo's SHA-256), the command and the figures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from inversion.bundle import ModelBundle, load_bundle
from inversion.bundle_derive import derive_bundle
from inversion.editing.catalog import EditCatalog, EditSpec
from inversion.errors import EditError

__all__ = ["CLASS_KEPT_THRESHOLD", "Extension", "LabelledFolderError", "extend_catalog"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
MIN_PER_LABEL = 8
STRENGTHS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)  # in standard deviations of the codes
TARGET_FLIP = 0.8  # the default strength: the first that flips this share of training photos
CLASS_KEPT_THRESHOLD = 0.9  # the demo catalog's rule: sensitive if the class is kept < 90 %
RULE = (
    f"sensitive if the class is kept for < {CLASS_KEPT_THRESHOLD:.0%} of held-out photos at "
    "the default strength, when no classifier measured it, or when marked by the requester"
)


class LabelledFolderError(EditError):
    """The labelled folder cannot be used (layout, too few photos, unreadable files)."""


@dataclass
class Extension:
    """What :func:`extend_catalog` made: the child bundle and the new entry's figures."""

    bundle: ModelBundle
    spec: EditSpec
    report: dict[str, Any] = field(default_factory=dict)


def _read_label(folder: Path, label: str) -> tuple[list[Image.Image], list[str]]:
    directory = folder / label
    if not directory.is_dir():
        raise LabelledFolderError(f"{folder} has no {label}/ sub-folder (positive/ and negative/)")
    images, hashes = [], []
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        data = path.read_bytes()
        try:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
        except OSError as exc:
            raise LabelledFolderError(f"{path}: not a readable image ({exc})") from None
        hashes.append(hashlib.sha256(data).hexdigest())
    if len(images) < MIN_PER_LABEL:
        raise LabelledFolderError(
            f"{directory}: {len(images)} photos; at least {MIN_PER_LABEL} are needed per label"
        )
    return images, hashes


def _split(n: int, holdout: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    order = torch.randperm(n, generator=gen)
    k = max(2, int(round(n * holdout)))
    return order[k:], order[:k]


def _codes(inverter, images: list[Image.Image]) -> Tensor:
    return inverter.invert(images).wplus.mean(1).float().cpu()


def _pixels(x: Tensor) -> Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 256): grey 16x16, what the pixel probe reads."""
    grey = x.float().cpu().mean(1, keepdim=True)
    return torch.nn.functional.interpolate(grey, size=(16, 16), mode="area").flatten(1)


def extend_catalog(
    parent_path: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    *,
    name: str,
    description: str = "",
    strength: float | None = None,
    holdout: float = 0.25,
    seed: int = 0,
    classifier_path: str | Path | None = None,
    mark_sensitive: str = "",
    command: str = "",
) -> Extension:
    """Fit the direction ``name`` from ``folder`` and write the child bundle at ``out_dir``."""
    from inversion.inverter import Inverter
    from inversion.training.directions import fit_boundary

    parent = load_bundle(parent_path)
    if name in parent.catalog or f"interfacegan_{name}" in parent.directions:
        raise LabelledFolderError(f"the catalog already has an edit or direction named {name!r}")
    if not 0.05 <= holdout <= 0.5:
        raise LabelledFolderError("holdout must be between 0.05 and 0.5")
    folder = Path(folder)
    pos, pos_hashes = _read_label(folder, "positive")
    neg, neg_hashes = _read_label(folder, "negative")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    inverter = Inverter(parent, device="cpu")
    with torch.inference_mode():
        w_pos = _codes(inverter, pos)
        w_neg = _codes(inverter, neg)
        px_pos = _pixels(inverter.preprocess(pos))
        px_neg = _pixels(inverter.preprocess(neg))
    tr_p, ho_p = _split(len(pos), holdout, gen)
    tr_n, ho_n = _split(len(neg), holdout, gen)
    w_train = torch.cat([w_pos[tr_p], w_neg[tr_n]])
    y_train = torch.cat([torch.ones(len(tr_p)), torch.zeros(len(tr_n))])
    px_train = torch.cat([px_pos[tr_p], px_neg[tr_n]])
    with torch.enable_grad():
        normal = fit_boundary(w_train, y_train, l2=1e-2)
        px_normal = fit_boundary(px_train, y_train, l2=1e-2)
    proj_train = w_train @ normal
    sigma = float((torch.cat([w_pos, w_neg]) @ normal).std().clamp_min(1e-6))
    threshold = float((proj_train[y_train == 1].mean() + proj_train[y_train == 0].mean()) / 2)
    px_proj = px_train @ px_normal
    px_threshold = float((px_proj[y_train == 1].mean() + px_proj[y_train == 0].mean()) / 2)

    def side(w: Tensor) -> Tensor:
        return (w @ normal) > threshold

    def pixel_side(x: Tensor) -> Tensor:
        return (_pixels(x) @ px_normal) > px_threshold

    held_codes = torch.cat([w_pos[ho_p], w_neg[ho_n]])
    held_labels = torch.cat([torch.ones(len(ho_p)), torch.zeros(len(ho_n))]).bool()
    boundary_accuracy = float((side(held_codes) == held_labels).float().mean())
    direction_name = f"interfacegan_{name}"
    directions = {**parent.directions, direction_name: normal * sigma}

    def spec_for(default: float, sensitive: bool = True, measured=None) -> EditSpec:
        return EditSpec(
            name=name,
            description=description or f"Moves the photo towards (+) or away from (-) {name!r}.",
            direction=direction_name,
            space="w",
            layers=None,
            min_strength=-2 * default,
            max_strength=2 * default,
            default_strength=default,
            sensitive=sensitive,
            measured=measured,
        )

    # Measure on the real model: a candidate child with the new entry, its own Inverter.
    candidate = replace(
        parent,
        directions=directions,
        catalog=EditCatalog(
            [*parent.catalog, spec_for(max(STRENGTHS))], subject_kind=parent.catalog.subject_kind
        ),
    )
    measurer = Inverter(candidate, device="cpu")

    def moved(indices_pos: Tensor, indices_neg: Tensor, s: float) -> tuple[Tensor, Tensor, Tensor]:
        """Photos moved towards the other side by ``s``: (edited, originals, labels)."""
        outs, origs = [], []
        for images, sign in (
            ([pos[i] for i in indices_pos.tolist()], -1.0),
            ([neg[i] for i in indices_neg.tolist()], 1.0),
        ):
            inv = measurer.invert(images)
            outs.append(measurer.edit(inv, {name: sign * s}))
            origs.append(measurer.preprocess(images))
        labels = torch.cat([torch.ones(len(indices_pos)), torch.zeros(len(indices_neg))]).bool()
        return torch.cat(outs), torch.cat(origs), labels

    with torch.inference_mode():
        if strength is None:  # chosen on (up to 8 per label of) the training photos
            pick_p, pick_n = tr_p[:8], tr_n[:8]
            strength = max(STRENGTHS)
            for s in STRENGTHS:
                edited, _, labels = moved(pick_p, pick_n, s)
                if float((pixel_side(edited) != labels).float().mean()) >= TARGET_FLIP:
                    strength = s
                    break
        strength = max(0.5, min(max(STRENGTHS), float(strength)))
        edited, originals, held_labels = moved(ho_p, ho_n, strength)
    success = float((pixel_side(edited) != held_labels).float().mean())
    probe_accuracy = float((pixel_side(originals) == held_labels).float().mean())
    measured: dict[str, Any] = {
        "attribute": name,
        "kind": "interfacegan",
        "data": f"{folder.name}: {len(ho_p)} positive + {len(ho_n)} negative held-out photos",
        "protocol": "each held-out photo moved towards the other side at the default strength "
        "and rendered with the Fuser; success = a pixel probe fitted on the training photos "
        "labels the result the other way",
        "success": round(success, 3),
        "boundary_accuracy": round(boundary_accuracy, 3),
        "probe_accuracy": round(probe_accuracy, 3),
    }
    reasons = []
    if classifier_path is not None:
        from inversion.training.classifier import load_classifier

        clf = load_classifier(classifier_path)
        before = clf.attributes(originals.float().cpu())["class"]
        after = clf.attributes(edited.float().cpu().clamp(-1, 1))["class"]
        class_kept = float((before == after).float().mean())
        measured["class_kept"] = round(class_kept, 3)
        if class_kept < CLASS_KEPT_THRESHOLD:
            reasons.append(f"class kept for {class_kept:.0%} (< {CLASS_KEPT_THRESHOLD:.0%})")
    else:
        reasons.append("no classifier measured what the edit preserves (fail closed)")
    if mark_sensitive:
        reasons.append(f"marked: {mark_sensitive}")
    sensitive = bool(reasons)
    spec = spec_for(strength, sensitive, measured)
    catalog = EditCatalog([*parent.catalog, spec], subject_kind=parent.catalog.subject_kind)
    report = {
        "edit": name,
        "direction": direction_name,
        "sensitive": sensitive,
        "reason": "; ".join(reasons) if reasons else f"class kept >= {CLASS_KEPT_THRESHOLD:.0%}",
        "rule": RULE,
        "measured": measured,
        "default_strength": strength,
        "photos": {"positive": len(pos), "negative": len(neg), "held_out": len(ho_p) + len(ho_n)},
        "seed": seed,
    }
    prov_sensitivity = dict(parent.provenance.get("catalog_sensitivity") or {})
    marked = dict(prov_sensitivity.get("marked") or {})
    marked[name] = report["reason"] if sensitive else f"not sensitive: {report['reason']}"
    child = derive_bundle(
        parent,
        out_dir,
        catalog=catalog,
        directions=directions,
        change={
            "what": f"catalog extended with InterFaceGAN edit {name!r}",
            "command": command,
            "data": folder.name,
            "data_hashes": {"positive": pos_hashes, "negative": neg_hashes},
            "report": report,
        },
        provenance={"catalog_sensitivity": {**prov_sensitivity, "marked": marked}},
    )
    return Extension(child, spec, report)
