"""FFHQ-style face alignment from dlib landmarks (the ``ffhq`` alignment method).

Why: a StyleGAN2 face generator only represents faces cropped, rotated and scaled the
way its training set (FFHQ) was. This module finds the face with dlib's HOG detector,
places landmarks, and reproduces the FFHQ crop/rotate/quad geometry of NVlabs'
``download_ffhq.py`` (``recreate_aligned_images``), returning an
:class:`~inversion.align.transform.AlignmentTransform` (crop forward, paste-back inverse).

The FFHQ geometry, from 68-point landmarks::

    eye_avg      = mean(left-eye centre, right-eye centre)   (eye centre: mean of 6 points)
    eye_to_eye   = right eye centre - left eye centre
    eye_to_mouth = mean(mouth corners 48, 54) - eye_avg
    x = eye_to_eye - rot90(eye_to_mouth);  x *= max(2 |eye_to_eye|, 1.8 |eye_to_mouth|) / |x|
    y = rot90(x);  centre = eye_avg + 0.1 eye_to_mouth;  quad = centre +- x +- y

Landmark models and their licences (facts checked for this module):

* dlib itself (the ``dlib-bin`` wheel) is under the Boost Software License.
* The weights come from the ``face-recognition-models`` package, which repackages
  Davis King's dlib-models. Davis King released those model files into the public
  domain, but a model inherits the terms of its *training data*:
  - ``shape_predictor_5_face_landmarks.dat`` (the default here) was trained on dlib's
    own 5-point face landmark dataset (7,198 faces from public images, annotated by
    Davis King, released CC0): usable commercially.
  - ``shape_predictor_68_face_landmarks.dat`` was trained on iBUG 300-W, whose licence
    excludes commercial use. It is used here only when asked for explicitly
    (``landmarks=68``): to measure how far the 5-point alignment is from the FFHQ
    reference, never by default and never by the platform.
* The package's ``__init__`` imports ``pkg_resources`` (removed in setuptools 81). We
  locate the model files with ``importlib.util.find_spec`` *without importing* the
  package, so no setuptools pin is needed.

The 5-point model gives the two corners of each eye and the bottom of the nose
(subnasale), no mouth. Eye centres are the midpoints of the corners. The mouth is
placed along the eyes-to-nose vector: ``eye_to_mouth = MOUTH_FROM_NOSE * (nose - eye_avg)``
with the ratio measured on the 68-point landmarks of real portraits
(:func:`measure_quad_deviation`; figures and command in docs/quality.md, "Alignment").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from inversion.align.errors import (
    FaceIndexOutOfRange,
    LandmarkModelMissing,
    MultipleFaces,
    NoFaceFound,
)
from inversion.align.transform import AlignmentTransform, square_quad

__all__ = [
    "MOUTH_FROM_NOSE",
    "FaceLandmarks",
    "FaceDetector",
    "align_face",
    "ffhq_quad",
    "quad_from_5",
    "quad_from_68",
    "landmark_model_path",
    "measure_quad_deviation",
]

LandmarkScheme = Literal[5, 68]
MODEL_FILES = {
    5: "shape_predictor_5_face_landmarks.dat",
    68: "shape_predictor_68_face_landmarks.dat",
}

#: |eye_to_mouth| / |nose - eye_avg| for dlib's 5-point nose point (subnasale); measured
#: on the 68-point landmarks of package-shipped portraits, see docs/quality.md.
MOUTH_FROM_NOSE = 1.31

#: the HOG detector runs on a copy no larger than this (a face in a 12 MP photo is large;
#: the landmarks are then placed on the full-resolution photo)
DETECT_MAX_SIDE = 1024


def landmark_model_path(points: LandmarkScheme = 5) -> Path:
    """Path of the packaged dlib shape predictor (``face-recognition-models``)."""
    if points not in MODEL_FILES:
        raise ValueError(f"landmarks must be 5 or 68, got {points!r}")
    spec = importlib.util.find_spec("face_recognition_models")  # no import: no pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkModelMissing(
            "the face landmark models are not installed: pip install face-recognition-models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILES[points]
    if not path.is_file():
        raise LandmarkModelMissing(f"landmark model file missing: {path}")
    return path


@dataclass(frozen=True)
class FaceLandmarks:
    """One detected face: its box (left, top, right, bottom) and landmarks (N, 2).

    Both in continuous photo coordinates (pixel centres at +0.5).
    """

    box: tuple[float, float, float, float]
    points: np.ndarray

    @property
    def scheme(self) -> int:
        return int(self.points.shape[0])


@lru_cache(maxsize=4)
def _dlib_models(points: int) -> tuple[Any, Any]:
    try:
        import dlib
    except ImportError:  # pragma: no cover - dlib-bin is a dependency
        raise LandmarkModelMissing("dlib is not installed: pip install dlib-bin") from None
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path(points)))


class FaceDetector:
    """dlib HOG face detector + shape predictor; faces are returned left to right."""

    def __init__(
        self,
        landmarks: LandmarkScheme = 5,
        upsample: int = 1,
        detect_max_side: int = DETECT_MAX_SIDE,
    ) -> None:
        if landmarks not in MODEL_FILES:
            raise ValueError(f"landmarks must be 5 or 68, got {landmarks!r}")
        self.landmarks = landmarks
        self.upsample = int(upsample)
        self.detect_max_side = int(detect_max_side)

    def detect(self, image: Image.Image) -> list[FaceLandmarks]:
        import dlib

        detector, predictor = _dlib_models(self.landmarks)
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        h, w = rgb.shape[:2]
        factor = max(w, h) / self.detect_max_side
        if factor > 1:
            small = image.convert("RGB").resize(
                (max(1, round(w / factor)), max(1, round(h / factor))), Image.Resampling.BOX
            )
            det_arr = np.asarray(small)
        else:
            factor, det_arr = 1.0, rgb
        faces = []
        for r in detector(det_arr, self.upsample):
            box = (
                r.left() * factor,
                r.top() * factor,
                (r.right() + 1) * factor,
                (r.bottom() + 1) * factor,
            )
            rect = dlib.rectangle(
                int(round(box[0])),
                int(round(box[1])),
                int(round(box[2])) - 1,
                int(round(box[3])) - 1,
            )
            shape = predictor(rgb, rect)
            pts = np.array(
                [(shape.part(i).x + 0.5, shape.part(i).y + 0.5) for i in range(shape.num_parts)],
                dtype=np.float64,
            )
            faces.append(FaceLandmarks(box=tuple(float(b) for b in box), points=pts))
        faces.sort(key=lambda f: (f.box[0] + f.box[2]) / 2)
        return faces


# -- FFHQ geometry ---------------------------------------------------------------------


def ffhq_quad(eye_left: Any, eye_right: Any, mouth_avg: Any) -> np.ndarray:
    """The FFHQ quad (TL, BL, BR, TR) from the eye centres and the mouth centre.

    ``eye_left`` is the eye on the left of the *image*.
    """
    el, er, m = (np.asarray(a, dtype=np.float64) for a in (eye_left, eye_right, mouth_avg))
    eye_avg = (el + er) * 0.5
    eye_to_eye = er - el
    eye_to_mouth = m - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]  # x turned 90 degrees: (x0, x1) -> (-x1, x0)
    return square_quad(eye_avg + eye_to_mouth * 0.1, x, y)


def quad_from_68(points: Any) -> np.ndarray:
    """The reference FFHQ quad from dlib's 68 landmarks (what FFHQ itself used)."""
    lm = np.asarray(points, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    mouth = (lm[48] + lm[54]) * 0.5
    return ffhq_quad(lm[36:42].mean(0), lm[42:48].mean(0), mouth)


def quad_from_5(points: Any, mouth_from_nose: float = MOUTH_FROM_NOSE) -> np.ndarray:
    """The FFHQ quad from dlib's 5 landmarks (eye corners 0-1 and 2-3, nose 4).

    dlib's order: points 0, 1 are the outer and inner corner of the eye on the image's
    right, 2, 3 those of the eye on the image's left, 4 the bottom of the nose. The mouth
    centre is estimated as ``eye_avg + mouth_from_nose * (nose - eye_avg)``.
    """
    lm = np.asarray(points, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f"expected (5, 2) landmarks, got {lm.shape}")
    a, b = lm[0:2].mean(0), lm[2:4].mean(0)
    eye_left, eye_right = (a, b) if a[0] < b[0] else (b, a)
    eye_avg = (eye_left + eye_right) * 0.5
    mouth = eye_avg + mouth_from_nose * (lm[4] - eye_avg)
    return ffhq_quad(eye_left, eye_right, mouth)


def _quad_from(face: FaceLandmarks) -> np.ndarray:
    return quad_from_5(face.points) if face.scheme == 5 else quad_from_68(face.points)


def align_face(
    image: Image.Image,
    output_size: int,
    *,
    face_index: int | None = None,
    detector: FaceDetector | None = None,
) -> AlignmentTransform:
    """The FFHQ alignment transform of the face in ``image``.

    Raises :class:`NoFaceFound` when there is none, :class:`MultipleFaces` when there are
    several and ``face_index`` is None, :class:`FaceIndexOutOfRange` for a bad index.
    Faces are numbered left to right.
    """
    detector = detector or FaceDetector()
    faces = detector.detect(image)
    if not faces:
        raise NoFaceFound()
    if face_index is None:
        if len(faces) > 1:
            raise MultipleFaces(len(faces))
        face_index = 0
    if not 0 <= face_index < len(faces):
        raise FaceIndexOutOfRange(face_index, len(faces))
    face = faces[face_index]
    quad = _quad_from(face)
    return AlignmentTransform(
        quad=tuple(map(tuple, quad)),
        output_size=output_size,
        source_size=image.size,
        method="ffhq",
        pad_mode="reflect",
        meta={
            "landmarks": f"dlib-{face.scheme}",
            "face_index": face_index,
            "faces_found": len(faces),
            "face_box": list(face.box),
            "points": face.points.round(2).tolist(),
            "mouth_from_nose": MOUTH_FROM_NOSE if face.scheme == 5 else None,
        },
    )


# -- measurement: 5-point quad vs the 68-point FFHQ reference ---------------------------


def _variants(image: Image.Image) -> list[tuple[str, Image.Image]]:
    """The portrait and harder copies of it: rotated, smaller, mirrored."""
    out = [("original", image), ("mirrored", image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    for angle in (-12, 12):
        out.append(
            (
                f"rotated {angle:+d} deg",
                image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True),
            )
        )
    w, h = image.size
    out.append(("half size", image.resize((w // 2, h // 2), Image.Resampling.LANCZOS)))
    return out


def measure_quad_deviation(
    images: Sequence[tuple[str, Image.Image]], mouth_from_nose: float = MOUTH_FROM_NOSE
) -> dict[str, Any]:
    """Corner distance between the 5-point quad and the 68-point reference quad.

    For every image and each of its variants (mirrored, rotated +-12 degrees, half
    size), both predictors run on the same face box (the detection with the highest
    detector score, when there are several). Returns per-case rows and
    the mean / max corner deviation in pixels and as a percentage of the reference quad
    size, plus the eyes-to-mouth / eyes-to-nose ratio measured on the 68-point
    landmarks (the figure :data:`MOUTH_FROM_NOSE` comes from).
    """

    det, p5 = _dlib_models(5)
    _, p68 = _dlib_models(68)
    rows = []
    for name, img in images:
        for variant, v in _variants(img.convert("RGB")):
            arr = np.asarray(v)
            rects, scores, _ = det.run(arr, 1, 0.0)
            if not rects:
                rows.append({"image": name, "variant": variant, "faces": 0})
                continue
            r = rects[int(np.argmax(scores))]  # the most face-like detection
            s5 = p5(arr, r)
            s68 = p68(arr, r)
            pts5 = np.array([(s5.part(i).x + 0.5, s5.part(i).y + 0.5) for i in range(5)])
            pts68 = np.array([(s68.part(i).x + 0.5, s68.part(i).y + 0.5) for i in range(68)])
            ref = quad_from_68(pts68)
            got = quad_from_5(pts5, mouth_from_nose)
            qsize = float(np.hypot(*(ref[3] - ref[0])))
            dev = np.hypot(*(got - ref).T)
            eye_avg68 = (pts68[36:42].mean(0) + pts68[42:48].mean(0)) / 2
            eye_avg5 = pts5[:4].mean(0)
            ratio = float(
                np.hypot(*((pts68[48] + pts68[54]) / 2 - eye_avg68))
                / np.hypot(*(pts5[4] - eye_avg5))
            )
            rows.append(
                {
                    "image": name,
                    "variant": variant,
                    "faces": len(rects),
                    "quad_size_px": round(qsize, 1),
                    "mean_corner_px": round(float(dev.mean()), 2),
                    "max_corner_px": round(float(dev.max()), 2),
                    "mean_corner_pct": round(float(dev.mean()) / qsize * 100, 2),
                    "max_corner_pct": round(float(dev.max()) / qsize * 100, 2),
                    "mouth_from_nose": round(ratio, 3),
                }
            )
    ok = [r for r in rows if "quad_size_px" in r]
    summary: dict[str, Any] = {
        "cases": len(rows),
        "measured": len(ok),
        "mouth_from_nose_used": mouth_from_nose,
    }
    if ok:
        summary.update(
            {
                "mean_corner_px": round(float(np.mean([r["mean_corner_px"] for r in ok])), 2),
                "max_corner_px": round(float(np.max([r["max_corner_px"] for r in ok])), 2),
                "mean_corner_pct": round(float(np.mean([r["mean_corner_pct"] for r in ok])), 2),
                "max_corner_pct": round(float(np.max([r["max_corner_pct"] for r in ok])), 2),
                "mouth_from_nose_measured": round(
                    float(np.median([r["mouth_from_nose"] for r in ok])), 3
                ),
            }
        )
    return {"summary": summary, "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inversion.align.ffhq IMAGE...``: print the 5-vs-68-point deviation."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("images", nargs="+", help="portrait photos (one face each)")
    parser.add_argument("--mouth-from-nose", type=float, default=MOUTH_FROM_NOSE)
    args = parser.parse_args(argv)
    images = [(Path(p).name, Image.open(p)) for p in args.images]
    json.dump(measure_quad_deviation(images, args.mouth_from_nose), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
