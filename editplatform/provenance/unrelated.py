"""A varied set of never-marked images for the false-match measurement, made offline.

Why not `corpus.unrelated` alone: its generated half (smooth fields, gradients, shapes,
blocky noise) looks nothing like what people upload, and a false-match figure is only as
good as the images it was measured on. Here every image is drawn from one of seven
sources, all seeded, all local (no downloads):

- `photo`: scikit-image's and matplotlib's shipped photographs (astronaut, coffee, cat,
  rocket, motorcycle, retina, Hubble field, textures, ...) — random crops (35-100 % of
  the side), flips, rescaled to 192-640 px, recoloured (gain, gamma, saturation,
  sometimes grey), sometimes re-saved as JPEG;
- `face`: the 100 LFW faces scikit-image ships (25x25 grey), upscaled, tinted, noised;
- `catalogue`: catalogue photos of Fashion-MNIST *training* items
  (`inversion.align.synthetic.random_canvas`, the pipeline's kind of input; the
  marked outputs come from test items), half on the demo's dark background, half on
  the other catalogue tones;
- `pipeline`: unmarked results of the job pipeline itself (another seed's outputs, as
  `corpus.pipeline_outputs` makes them) and recoloured, cropped, flipped copies;
- `scene`: procedural landscapes (sky gradient, clouds, fractal mountain ridges with
  aerial perspective, textured ground or water, a sun), sensor noise;
- `texture`: fractal (fBm) noise through colour maps and the old generated kinds;
- `shipped`: `corpus.unrelated`'s matplotlib pictures and data sets, cropped.

`image(i)` is a pure function of (seed, i), so workers can share the work by index.
scikit-image is not a dependency: its data folder is read from an installed `skimage`,
else from `photo_dir` (`unzip -j scikit_image-*.whl 'skimage/data/*' -d DIR`); without
either, the photo and face sources fall back to matplotlib's portrait and the scenes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from editplatform.provenance import corpus

# source per index modulo 20: 5 photo, 2 face, 3 catalogue, 2 pipeline, 4 scene,
# 2 texture, 2 shipped
SCHEDULE = (
    ["photo"] * 5
    + ["face"] * 2
    + ["catalogue"] * 3
    + ["pipeline"] * 2
    + ["scene"] * 4
    + ["texture"] * 2
    + ["shipped"] * 2
)
SKIP_PHOTOS = {"chessboard_GRAY.png", "chessboard_RGB.png", "microaneurysms.png"}


@dataclass(frozen=True)
class Sources:
    photo_dir: Path | None = None
    pipeline_dir: Path | None = None  # PNGs of unmarked pipeline outputs


def _skimage_dir(photo_dir: Path | None) -> Path | None:
    try:
        import skimage.data

        return Path(skimage.data.__file__).parent
    except ImportError:
        pass
    if photo_dir is not None and Path(photo_dir).is_dir():
        return Path(photo_dir)
    return None


@lru_cache(maxsize=2)
def _photos(photo_dir: Path | None) -> tuple[Image.Image, ...]:
    found = []
    folder = _skimage_dir(photo_dir)
    if folder is not None:
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() in (".png", ".jpg") and path.name not in SKIP_PHOTOS:
                image = Image.open(path)
                if image.mode in ("RGBA", "LA", "P"):
                    background = Image.new("RGB", image.size, (255, 255, 255))
                    background.paste(image.convert("RGBA"), mask=image.convert("RGBA").split()[3])
                    image = background
                found.append(image.convert("RGB"))
    found.append(corpus._portrait())
    return tuple(found)


@lru_cache(maxsize=2)
def _faces(photo_dir: Path | None) -> np.ndarray | None:
    folder = _skimage_dir(photo_dir)
    if folder is None or not (folder / "lfw_subset.npy").is_file():
        return None
    return np.load(folder / "lfw_subset.npy")[:100]  # the first 100 are faces, then non-faces


@lru_cache(maxsize=1)
def _fashion_train() -> np.ndarray:
    from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx

    return read_idx(ensure_fashion_mnist(install=False) / FASHION_FILES["train"][0])


@lru_cache(maxsize=2)
def _pipeline_files(pipeline_dir: Path | None) -> tuple[Path, ...]:
    if pipeline_dir is None or not Path(pipeline_dir).is_dir():
        return ()
    return tuple(sorted(Path(pipeline_dir).glob("*.png")))


def _recolour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if rng.random() < 0.15:
        arr = np.repeat(arr.mean(axis=2, keepdims=True), 3, axis=2)
    else:
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + (arr - grey) * rng.uniform(0.6, 1.4)  # saturation
    arr = arr * rng.uniform(0.85, 1.15, 3)  # white balance
    arr = np.clip(arr, 0, 1) ** rng.uniform(0.7, 1.4)  # gamma
    arr = arr * rng.uniform(0.8, 1.1) + rng.uniform(-0.05, 0.05)  # exposure
    return Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8), "RGB")


def _crop(image: Image.Image, rng: np.random.Generator, low: float) -> Image.Image:
    w, h = image.size
    cw, ch = int(w * rng.uniform(low, 1.0)), int(h * rng.uniform(low, 1.0))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = image.crop((x0, y0, x0 + cw, y0 + ch))
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def _rescale(image: Image.Image, rng: np.random.Generator, low: int, high: int) -> Image.Image:
    side = int(rng.integers(low, high + 1))
    scale = side / max(image.size)
    size = (max(64, round(image.width * scale)), max(64, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _maybe_jpeg(image: Image.Image, rng: np.random.Generator, p: float) -> Image.Image:
    if rng.random() >= p:
        return image
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(60, 96)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _fbm(rng: np.random.Generator, shape: tuple[int, int], octaves: int, persistence: float):
    """Fractal noise: bicubic-upsampled Gaussian lattices, each octave finer and weaker."""
    h, w = shape
    field = np.zeros(shape, dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        cells = 2 ** (octave + 1) + 1
        small = rng.normal(0, 1, (cells, cells)).astype(np.float32)
        field += amplitude * np.asarray(
            Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BICUBIC)
        )
        amplitude *= persistence
    return (field - field.min()) / (np.ptp(field) or 1.0)


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> np.ndarray:
    return rng.integers(low, high, 3).astype(np.float32)


def _scene(rng: np.random.Generator) -> Image.Image:
    w = int(rng.integers(256, 641))
    h = int(w * rng.uniform(0.6, 1.0))
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    horizon = rng.uniform(0.35, 0.7)
    top, low = _colour(rng, 20, 140) * [0.6, 0.8, 1.2], _colour(rng, 150, 256)
    sky = top + (low - top) * np.clip(y / horizon, 0, 1) ** rng.uniform(0.5, 1.5)
    img = np.broadcast_to(sky, (h, w, 3)).copy()
    clouds = _fbm(rng, (h, w), 6, 0.55)
    cover = rng.uniform(0.45, 0.8)
    alpha = np.clip((clouds - cover) * 4, 0, 1)[..., None] * (y < horizon)
    img = img * (1 - alpha) + alpha * rng.uniform(200, 255)
    if rng.random() < 0.5:  # sun
        sx, sy, r = rng.uniform(0.1, 0.9) * w, rng.uniform(0.05, horizon) * h, w * 0.04
        yy, xx = np.mgrid[0:h, 0:w]
        glow = np.exp(-(((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * (3 * r) ** 2)))[..., None]
        img = img * (1 - glow) + glow * np.array([255, 240, 200])
    layers = int(rng.integers(1, 4))
    cols = np.arange(w)
    for layer in range(layers):  # far ridges pale, near ones dark (aerial perspective)
        ridge = _fbm(rng, (1, w), 7, 0.5)[0]
        base = horizon - 0.25 * (layers - layer) / layers
        height = (base + ridge * rng.uniform(0.1, 0.3)) * h
        colour = _colour(rng, 30, 140) * (0.6 + 0.4 * (layers - layer) / layers)
        texture = _fbm(rng, (h, w), 6, 0.6)[..., None]
        mask = (np.arange(h)[:, None] >= height[cols][None, :])[..., None]
        img = np.where(mask, colour * (0.7 + 0.5 * texture), img)
    ground_y = int(horizon * h)
    ground = _fbm(rng, (h - ground_y, w), 7, 0.65)[..., None]
    if rng.random() < 0.3:  # water: the sky's colour, rippled
        colour = low * 0.6 + ground * 40
    else:
        colour = _colour(rng, 40, 180) * [0.8, 1.0, 0.6] * (0.6 + 0.6 * ground)
    img[ground_y:] = colour
    img = img + rng.normal(0, rng.uniform(1, 6), img.shape)  # sensor noise
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))


def _texture(rng: np.random.Generator) -> Image.Image:
    from matplotlib import colormaps

    size = int(rng.integers(192, 513))
    if rng.random() < 0.5:
        return corpus._generated(rng, size)
    field = _fbm(rng, (size, size), int(rng.integers(3, 8)), float(rng.uniform(0.4, 0.75)))
    if rng.random() < 0.3:  # marble / wood: a sine over the noise
        field = 0.5 + 0.5 * np.sin(field * rng.uniform(8, 30) + np.arange(size)[None, :] * 0.02)
    name = ["viridis", "terrain", "copper", "bone", "pink", "cividis", "gist_earth", "YlOrBr"][
        int(rng.integers(8))
    ]
    rgba = colormaps[name](field)
    image = Image.fromarray((rgba[..., :3] * 255).astype(np.uint8), "RGB")
    if rng.random() < 0.5:  # objects on the texture
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 8))):
            x0, y0 = (int(v) for v in rng.integers(0, size, 2))
            r = int(rng.integers(8, size // 4))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=fill)
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    return image


def _face(rng: np.random.Generator, sources: Sources) -> Image.Image:
    faces = _faces(sources.photo_dir)
    if faces is None:
        return _scene(rng)
    face = faces[int(rng.integers(len(faces)))]
    grey = Image.fromarray((face * 255).astype(np.uint8), "L")
    side = int(rng.integers(192, 513))
    big = grey.resize((side, side), Image.Resampling.BICUBIC).convert("RGB")
    tinted = _recolour(big, rng)
    arr = np.asarray(tinted, np.float32) + rng.normal(0, rng.uniform(1, 5), (side, side, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _catalogue(rng: np.random.Generator) -> Image.Image:
    from inversion.align.synthetic import random_canvas

    items = _fashion_train()
    item = items[int(rng.integers(len(items)))]
    photo, _, _ = random_canvas(item, rng, dark=bool(rng.random() < 0.5))
    return _maybe_jpeg(photo.convert("RGB"), rng, 0.5)


def _pipeline(rng: np.random.Generator, index: int, sources: Sources) -> Image.Image:
    files = _pipeline_files(sources.pipeline_dir)
    if not files:
        return _catalogue(rng)
    slot = index // 20 * 2 + (index % 20 == SCHEDULE.index("pipeline") + 1)
    image = Image.open(files[slot % len(files)]).convert("RGB")
    if slot < len(files):  # first round: the outputs as the pipeline wrote them
        return image
    return _maybe_jpeg(_recolour(_crop(image, rng, 0.6), rng), rng, 0.5)


def _photo(rng: np.random.Generator, sources: Sources) -> Image.Image:
    photos = _photos(sources.photo_dir)
    src = photos[int(rng.integers(len(photos)))]
    out = _rescale(_crop(src, rng, 0.35), rng, 192, 640)
    return _maybe_jpeg(_recolour(out, rng), rng, 0.4)


def _shipped(rng: np.random.Generator) -> Image.Image:
    shipped = corpus._shipped()
    src = shipped[int(rng.integers(len(shipped)))]
    return _rescale(_recolour(_crop(src, rng, 0.4), rng), rng, 192, 512)


def source_of(index: int) -> str:
    return SCHEDULE[index % len(SCHEDULE)]


def image(index: int, sources: Sources, seed: int = 2) -> Image.Image:
    """The `index`-th unrelated image (RGB): a pure function of (seed, index)."""
    rng = np.random.default_rng([seed, index])
    kind = source_of(index)
    if kind == "photo":
        return _photo(rng, sources)
    if kind == "face":
        return _face(rng, sources)
    if kind == "catalogue":
        return _catalogue(rng)
    if kind == "pipeline":
        return _pipeline(rng, index, sources)
    if kind == "scene":
        return _scene(rng)
    if kind == "texture":
        return _texture(rng)
    return _shipped(rng)
