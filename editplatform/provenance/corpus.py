"""Images for robustness measurements, made offline: package-shipped photos and generated ones.

`outputs(n)`: stand-ins for released full-resolution outputs — crops of matplotlib's
shipped portrait (grace_hopper.jpg) at varied positions, scales and sizes (256-512 px),
each lightly re-coloured so no two are the same picture.
`pipeline_outputs(n)`: the real thing — full-resolution results of the job pipeline
(`editplatform.jobs.pipeline.run`: object alignment -> inversion with the shipped demo
bundle -> a catalogue edit at its default strength -> paste-back into the 512x512
photo), on catalogue photos of held-out Fashion-MNIST test items
(`inversion.align.synthetic.random_canvas`, the photos the pipeline is built for).
`unrelated(n)`: images that were never marked — matplotlib's other shipped pictures and
data sets rendered through colour maps, and generated scenes (smooth random fields,
gradients, shapes, noise), all seeded.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _sample_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


@lru_cache(maxsize=1)
def _portrait() -> Image.Image:
    return Image.open(_sample_dir() / "grace_hopper.jpg").convert("RGB")


def outputs(n: int, seed: int = 0) -> list[Image.Image]:
    base = _portrait()
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        side = int(rng.integers(300, 500))
        x0 = int(rng.integers(0, base.width - side))
        y0 = int(rng.integers(0, base.height - side))
        out = int(rng.choice([256, 320, 384, 448, 512]))
        crop = base.crop((x0, y0, x0 + side, y0 + side)).resize(
            (out, out), Image.Resampling.LANCZOS
        )
        tint = 1 + rng.normal(0, 0.04, 3)
        arr = np.clip(np.asarray(crop, dtype=np.float32) * tint, 0, 255).astype(np.uint8)
        images.append(Image.fromarray(arr, "RGB"))
    return images


def pipeline_outputs(
    n: int, seed: int = 0, bundle=None, progress=None, cache_dir: Path | None = None
) -> list[Image.Image]:
    """`n` released-output stand-ins made by the job pipeline itself (see the module doc).

    The edit cycles through the bundle's catalogue at each edit's default strength.
    About 1-2 s per output on one CPU core; `cache_dir` keeps them as PNG for reruns."""
    import io

    if cache_dir is not None:
        cache = Path(cache_dir) / f"pipeline-seed{seed}-n{n}"
        files = sorted(cache.glob("*.png")) if cache.is_dir() else []
        if len(files) == n:
            return [Image.open(f).convert("RGB") for f in files]
        images = pipeline_outputs(n, seed, bundle, progress)
        cache.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            image.save(cache / f"{i:04d}.png")
        return images

    from editplatform.jobs import pipeline
    from inversion.align.synthetic import random_canvas
    from inversion.inverter import Inverter
    from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx

    if bundle is None:
        from django.conf import settings

        bundle = settings.MODEL_BUNDLE
    inverter = Inverter.from_path(bundle, device="cpu")
    names = list(inverter.catalog.names)
    raw = read_idx(ensure_fashion_mnist() / FASHION_FILES["test"][0])
    rng = np.random.default_rng(seed)
    pick = rng.permutation(raw.shape[0])[:n]
    images = []
    for i, item in enumerate(pick):
        photo, _, _ = random_canvas(raw[item], rng)
        buffer = io.BytesIO()
        photo.save(buffer, format="PNG")
        name = names[i % len(names)]
        edit = {name: inverter.catalog[name].default_strength}
        result = pipeline.run(inverter, buffer.getvalue(), edit, lambda stage, percent: None)
        images.append(Image.open(io.BytesIO(result.result_png)).convert("RGB"))
        if progress and (i + 1) % 10 == 0:
            progress(f"pipeline outputs: {i + 1}/{n}")
    return images


def _colormapped(field: np.ndarray, cmap: str) -> Image.Image:
    from matplotlib import colormaps

    span = np.ptp(field) or 1.0
    rgba = colormaps[cmap]((field - field.min()) / span)
    return Image.fromarray((rgba[..., :3] * 255).astype(np.uint8), "RGB")


@lru_cache(maxsize=1)
def _shipped() -> list[Image.Image]:
    d = _sample_dir()
    images = [
        Image.open(d / "Minduka_Present_Blue_Pack.png").convert("RGB"),
        Image.open(d / "logo2.png").convert("RGB"),
    ]
    for name, key in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
        with np.load(d / name) as data:
            field = np.asarray(data[key], dtype=np.float32)
        images += [_colormapped(field, cmap) for cmap in ("viridis", "gist_earth", "gray")]
    return images


def _generated(rng: np.random.Generator, size: int) -> Image.Image:
    kind = int(rng.integers(0, 4))
    if kind == 0:  # smooth random field
        small = rng.normal(0, 1, (int(rng.integers(3, 12)),) * 2 + (3,))
        arr = np.asarray(
            Image.fromarray(
                ((small - small.min()) / np.ptp(small) * 255).astype(np.uint8), "RGB"
            ).resize((size, size), Image.Resampling.BICUBIC)
        )
        return Image.fromarray(arr, "RGB")
    if kind == 1:  # gradient plus noise
        y, x = np.mgrid[0:size, 0:size] / size
        a, b, c = rng.uniform(-1, 1, 3)
        base = np.stack([a * x + b * y, b * x - c * y, c * x + a * y], axis=-1)
        arr = (base - base.min()) / (np.ptp(base) or 1) * 200 + rng.normal(0, 10, base.shape)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if kind == 2:  # shapes
        img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 25))):
            x0, y0 = (int(v) for v in rng.integers(0, size, 2))
            w, h = (int(v) for v in rng.integers(10, size // 2, 2))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(
                (x0, y0, x0 + w, y0 + h), fill=fill
            )
        return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3))))
    noise = rng.integers(0, 255, (size // 4, size // 4, 3), dtype=np.uint8)  # blocky texture
    return Image.fromarray(noise, "RGB").resize((size, size), Image.Resampling.NEAREST)


def unrelated(n: int, seed: int = 1) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    shipped = _shipped()
    images = []
    for i in range(n):
        if i < 4 * len(shipped):  # shipped pictures, and crops of them
            src = shipped[i % len(shipped)]
            if i >= len(shipped):
                w, h = src.size
                side = int(min(w, h) * rng.uniform(0.4, 0.9))
                x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                src = src.crop((x0, y0, x0 + side, y0 + side))
            images.append(src.resize((256, 256), Image.Resampling.LANCZOS))
        else:
            images.append(_generated(rng, int(rng.choice([256, 320, 384]))))
    return images
