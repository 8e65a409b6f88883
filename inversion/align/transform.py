"""One alignment transform for every method: a square crop of the photo, stored as a quad.

Every aligner (``ffhq`` for faces, ``object`` for product photos, ``center`` for the old
centre crop) decides *where* the model's square input lies in the user's photo and
returns an :class:`AlignmentTransform`. The crop (forward) and the paste-back (inverse)
both derive from it, so the two can never disagree, and the job stores it as an
artifact (``to_dict`` / ``to_json``) next to the latent.

Coordinates are *continuous* pixel coordinates: pixel ``(i, j)`` covers
``[i, i + 1] x [j, j + 1]`` and its centre is ``(i + 0.5, j + 0.5)`` -- the convention of
Pillow's geometric transforms (the FFHQ script adds 0.5 to its integer landmarks for the
same reason). The quad's corners are, in order, the crop's top-left, bottom-left,
bottom-right and top-right corners in the photo (Pillow's ``QUAD`` order). The quad is a
parallelogram (in practice a rotated square), so crop <-> photo is an affine map:

    photo = TL + (u / S) * (TR - TL) + (v / S) * (BL - TL)      (u, v) in [0, S]^2

with ``S`` the output size. Where the quad leaves the photo the crop is padded: by
reflection blended to a blur and the median colour (the FFHQ recipe, for faces) or by a
constant colour (the background, for product photos).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageFilter

from inversion.align.errors import TransformError

__all__ = ["AlignmentTransform", "PadMode", "center_square", "square_quad"]

PadMode = Literal["reflect", "constant"]
FORMAT = "styleledger.alignment/1"


def square_quad(center: Sequence[float], x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Corners TL, BL, BR, TR of the rectangle ``center +- x +- y`` (x: half-width vector)."""
    c, xv, yv = (np.asarray(a, dtype=np.float64) for a in (center, x, y))
    return np.stack([c - xv - yv, c - xv + yv, c + xv + yv, c + xv - yv])


@dataclass(frozen=True)
class AlignmentTransform:
    """Where the model's square input lies in the photo (see the module docstring).

    ``quad``: 4 corners (TL, BL, BR, TR) in continuous photo coordinates;
    ``output_size``: side of the crop in pixels (the model's input resolution);
    ``source_size``: (width, height) of the photo the quad refers to;
    ``method``: which aligner made it; ``pad_mode`` / ``fill``: how area outside the photo
    is filled; ``meta``: JSON-safe details of the method (landmarks, face index, bbox...).
    """

    quad: tuple[tuple[float, float], ...]
    output_size: int
    source_size: tuple[int, int]
    method: str
    pad_mode: PadMode = "reflect"
    fill: tuple[int, int, int] = (0, 0, 0)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            q = np.asarray(self.quad, dtype=np.float64)
        except (TypeError, ValueError):
            raise TransformError("quad must be 4 (x, y) points") from None
        if q.shape != (4, 2) or not np.isfinite(q).all():
            raise TransformError(f"quad must be 4 finite (x, y) points, got shape {q.shape}")
        side_x = np.hypot(*(q[3] - q[0]))
        side_y = np.hypot(*(q[1] - q[0]))
        if side_x < 1e-6 or side_y < 1e-6:
            raise TransformError("quad is degenerate (a side has zero length)")
        # a parallelogram: TL + BR == BL + TR (tolerance relative to the quad's size)
        if np.hypot(*(q[0] + q[2] - q[1] - q[3])) > 1e-6 * max(side_x, side_y, 1.0):
            raise TransformError("quad is not a parallelogram (TL + BR != BL + TR)")
        if not isinstance(self.output_size, int | np.integer) or self.output_size < 1:
            raise TransformError(f"output_size must be a positive int, got {self.output_size!r}")
        w, h = self.source_size
        if int(w) < 1 or int(h) < 1:
            raise TransformError(f"source_size must be positive, got {self.source_size!r}")
        if self.pad_mode not in ("reflect", "constant"):
            raise TransformError(f"pad_mode must be 'reflect' or 'constant', got {self.pad_mode!r}")
        object.__setattr__(self, "quad", tuple((float(a), float(b)) for a, b in q))
        object.__setattr__(self, "output_size", int(self.output_size))
        object.__setattr__(self, "source_size", (int(w), int(h)))
        object.__setattr__(self, "fill", tuple(int(c) for c in self.fill))

    # -- geometry ----------------------------------------------------------------------

    @property
    def quad_array(self) -> np.ndarray:
        return np.asarray(self.quad, dtype=np.float64)

    @property
    def quad_size(self) -> float:
        """Side of the quad in photo pixels (the larger side for a non-square one)."""
        q = self.quad_array
        return float(max(np.hypot(*(q[3] - q[0])), np.hypot(*(q[1] - q[0]))))

    @property
    def scale(self) -> float:
        """Photo pixels per crop pixel."""
        return self.quad_size / self.output_size

    @property
    def angle_degrees(self) -> float:
        """Rotation of the crop's x axis in the photo (0 = upright, clockwise positive)."""
        q = self.quad_array
        dx, dy = q[3] - q[0]
        return math.degrees(math.atan2(dy, dx))

    def crop_to_source_matrix(self) -> np.ndarray:
        """3x3 affine matrix: homogeneous crop coordinates -> photo coordinates."""
        q = self.quad_array
        s = float(self.output_size)
        ex, ey = (q[3] - q[0]) / s, (q[1] - q[0]) / s
        return np.array([[ex[0], ey[0], q[0, 0]], [ex[1], ey[1], q[0, 1]], [0.0, 0.0, 1.0]])

    def source_to_crop_matrix(self) -> np.ndarray:
        """3x3 affine matrix: homogeneous photo coordinates -> crop coordinates."""
        return np.linalg.inv(self.crop_to_source_matrix())

    def to_source(self, points: Any) -> np.ndarray:
        """Crop coordinates (N, 2) -> photo coordinates (N, 2)."""
        return _apply(self.crop_to_source_matrix(), points)

    def to_crop(self, points: Any) -> np.ndarray:
        """Photo coordinates (N, 2) -> crop coordinates (N, 2)."""
        return _apply(self.source_to_crop_matrix(), points)

    def source_bounds(self) -> tuple[int, int, int, int]:
        """Integer box (left, top, right, bottom) of photo pixels the quad touches, clipped."""
        q = self.quad_array
        w, h = self.source_size
        left = max(int(math.floor(q[:, 0].min())), 0)
        top = max(int(math.floor(q[:, 1].min())), 0)
        right = min(int(math.ceil(q[:, 0].max())), w)
        bottom = min(int(math.ceil(q[:, 1].max())), h)
        return left, top, max(right, left), max(bottom, top)

    def with_output_size(self, output_size: int) -> AlignmentTransform:
        """The same quad rendered at another resolution."""
        return AlignmentTransform(
            self.quad,
            output_size,
            self.source_size,
            self.method,
            self.pad_mode,
            self.fill,
            dict(self.meta),
        )

    # -- forward mapping ---------------------------------------------------------------

    def crop(self, image: Image.Image) -> Image.Image:
        """The aligned crop (RGB, output_size x output_size) of ``image``.

        Follows the FFHQ recipe: shrink by an integer factor first when the quad is more
        than twice the output size (box filter, no aliasing), cut the region with a
        border, pad where the quad leaves the photo, then resample the quad (bilinear at
        twice the output size and Lanczos down when shrinking, bicubic when enlarging).
        """
        if image.size != self.source_size:
            raise TransformError(
                f"transform was made for a {self.source_size[0]}x{self.source_size[1]} photo, "
                f"got {image.size[0]}x{image.size[1]}"
            )
        img = image if image.mode == "RGB" else image.convert("RGB")
        quad = self.quad_array.copy()
        qsize = self.quad_size
        size = self.output_size

        shrink = int(math.floor(qsize / size * 0.5))
        if shrink > 1:
            img = img.reduce(shrink)
            quad /= shrink
            qsize /= shrink

        border = max(int(round(qsize * 0.1)), 3)
        left = max(int(math.floor(quad[:, 0].min())) - border, 0)
        top = max(int(math.floor(quad[:, 1].min())) - border, 0)
        right = min(int(math.ceil(quad[:, 0].max())) + border, img.size[0])
        bottom = min(int(math.ceil(quad[:, 1].max())) + border, img.size[1])
        if right <= left or bottom <= top:  # the quad lies wholly outside the photo
            left, top = 0, 0
            right, bottom = img.size
        if (left, top, right, bottom) != (0, 0, *img.size):
            img = img.crop((left, top, right, bottom))
            quad -= (left, top)

        pad = (
            max(-int(math.floor(quad[:, 0].min())) + border, 0),
            max(-int(math.floor(quad[:, 1].min())) + border, 0),
            max(int(math.ceil(quad[:, 0].max())) - img.size[0] + border, 0),
            max(int(math.ceil(quad[:, 1].max())) - img.size[1] + border, 0),
        )
        if max(pad) > border - 3:  # the quad (with a little margin) leaves the photo
            img, offset = self._pad(img, pad, qsize)
            quad += offset

        supersample = 2 if qsize > size else 1
        t = size * supersample
        resample = Image.Resampling.BILINEAR if supersample > 1 else Image.Resampling.BICUBIC
        out = img.transform((t, t), Image.Transform.QUAD, tuple(quad.flatten()), resample)
        if t != size:
            out = out.resize((size, size), Image.Resampling.LANCZOS)
        return out

    def _pad(
        self, img: Image.Image, pad: tuple[int, int, int, int], qsize: float
    ) -> tuple[Image.Image, tuple[int, int]]:
        if self.pad_mode == "constant":
            pl, pt, pr, pb = pad
            canvas = Image.new("RGB", (img.size[0] + pl + pr, img.size[1] + pt + pb), self.fill)
            canvas.paste(img, (pl, pt))
            return canvas, (pl, pt)
        # FFHQ: reflect generously, then fade the reflection into a blur and the median
        pl, pt, pr, pb = (max(p, int(round(qsize * 0.3))) for p in pad)
        arr = np.pad(
            np.asarray(img, dtype=np.float32), ((pt, pb), (pl, pr), (0, 0)), mode="reflect"
        )
        h, w, _ = arr.shape
        yy, xx = np.ogrid[:h, :w]
        mask = np.maximum(
            1.0 - np.minimum(np.float32(xx) / max(pl, 1), np.float32(w - 1 - xx) / max(pr, 1)),
            1.0 - np.minimum(np.float32(yy) / max(pt, 1), np.float32(h - 1 - yy) / max(pb, 1)),
        )[..., None]
        radius = max(qsize * 0.02, 0.5)
        blurred = np.asarray(
            Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255))).filter(
                ImageFilter.GaussianBlur(radius)
            ),
            dtype=np.float32,
        )
        arr += (blurred - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        return Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB"), (pl, pt)

    # -- storage -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method,
            "quad": [list(p) for p in self.quad],
            "output_size": self.output_size,
            "source_size": list(self.source_size),
            "pad_mode": self.pad_mode,
            "fill": list(self.fill),
            "meta": _jsonable(self.meta),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlignmentTransform:
        if not isinstance(data, Mapping):
            raise TransformError("an alignment transform must be a JSON object")
        if data.get("format") != FORMAT:
            raise TransformError(f"unknown alignment transform format {data.get('format')!r}")
        try:
            return cls(
                quad=tuple(tuple(p) for p in data["quad"]),
                output_size=data["output_size"],
                source_size=tuple(data["source_size"]),
                method=str(data["method"]),
                pad_mode=data.get("pad_mode", "reflect"),
                fill=tuple(data.get("fill", (0, 0, 0))),
                meta=dict(data.get("meta") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, TransformError):
                raise
            raise TransformError(f"malformed alignment transform: {exc!r}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> AlignmentTransform:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise TransformError(f"alignment transform is not JSON: {exc}") from None
        return cls.from_dict(data)


def center_square(width: int, height: int, output_size: int) -> AlignmentTransform:
    """The largest centred square, as the platform cropped before alignment existed."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    quad = square_quad((left + side / 2, top + side / 2), (side / 2, 0), (0, side / 2))
    return AlignmentTransform(
        tuple(map(tuple, quad)), output_size, (width, height), "center", pad_mode="constant"
    )


def _apply(matrix: np.ndarray, points: Any) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    single = p.ndim == 1
    p = p.reshape(-1, 2)
    out = p @ matrix[:2, :2].T + matrix[:2, 2]
    return out[0] if single else out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
