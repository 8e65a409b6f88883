"""An invisible spread-spectrum watermark carrying a 32-bit key. No Django here.

Why our own and not `invisible-watermark`: its DWT-DCT methods decode at the pixel
grid they embedded on, so a resize or a 2° rotation destroys them, and rivaGAN needs
onnxruntime at its fixed 256² input. Measured in docs/provenance.md.

Scheme: the 4-byte key gets 4 Reed-Solomon parity bytes (reedsolo, corrects any 2 bad
bytes) -> 64 code bits. Each bit i owns a pseudo-random ±1 pattern on a GRID x GRID
cell grid (fixed by `seed`); the mark is sum_i (±1)·P_i, scaled to `strength` grey
levels and stretched (bilinearly) over the whole image, added to all three channels.
Because the grid is relative to the image, the mark survives any resize; cells of
1/32 of the side are far coarser than JPEG's 8x8 blocks, so recompression leaves them;
a brightness change shifts the mean, which the detector's high-pass removes.

Detection reduces the luma to the grid, high-passes it (subtracting a 3x3 cell mean
removes most image content, little of the white mark), correlates with each pattern
and decodes the bits. Geometry is searched: small rotations and central crops are
undone for each candidate until the Reed-Solomon code accepts a word. A decoded key
is only a claim: the caller resolves it through its lookup table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from reedsolo import ReedSolomonError, RSCodec

GRID = 32
KEY_BYTES = 4
PARITY_BYTES = 4
CODE_BITS = 8 * (KEY_BYTES + PARITY_BYTES)
DEFAULT_SEED = 0x5719E1ED
DEFAULT_STRENGTH = 3.0
SAMPLE = 4  # detector samples per cell side (the grid is read at GRID*SAMPLE pixels)
ANGLES = (0.0, -1.0, 1.0, -2.0, 2.0, -3.0, 3.0)
SCALES = (1.0, 0.9)


@dataclass(frozen=True)
class Detection:
    key: int | None
    bits: np.ndarray
    angle: float = 0.0
    scale: float = 1.0
    margin: float = 0.0  # mean |correlation| / its spread: how clearly the bits read


_RS = RSCodec(PARITY_BYTES)


def encode_key(key: int) -> np.ndarray:
    """The 64 code bits (0/1) for a 32-bit key."""
    if not 0 <= key < 1 << (8 * KEY_BYTES):
        raise ValueError("watermark key must be an unsigned 32-bit integer")
    word = bytes(_RS.encode(key.to_bytes(KEY_BYTES, "big")))
    return np.unpackbits(np.frombuffer(word, dtype=np.uint8))


def decode_bits(bits: np.ndarray) -> int | None:
    word = np.packbits(bits.astype(np.uint8)).tobytes()
    try:
        message, _, _ = _RS.decode(word)
    except ReedSolomonError:
        return None
    return int.from_bytes(bytes(message), "big")


@lru_cache(maxsize=4)
def patterns(seed: int = DEFAULT_SEED) -> np.ndarray:
    """CODE_BITS x GRID x GRID patterns of ±1, fixed by the seed."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(CODE_BITS, GRID, GRID))


def _highpass(grid: np.ndarray) -> np.ndarray:
    padded = np.pad(grid, 1, mode="edge")
    blur = (
        sum(
            padded[dy : dy + grid.shape[0], dx : dx + grid.shape[1]]
            for dy in range(3)
            for dx in range(3)
        )
        / 9.0
    )
    return grid - blur


@lru_cache(maxsize=4)
def _hp_patterns(seed: int) -> np.ndarray:
    return np.stack([_highpass(p) for p in patterns(seed)])


def mark_field(key: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The GRID x GRID mark (unit standard deviation) for `key`."""
    signs = encode_key(key).astype(np.float32) * 2 - 1
    field = np.tensordot(signs, patterns(seed), axes=1)
    return field / field.std()


@lru_cache(maxsize=4)
def _gram_inverse(seed: int) -> np.ndarray:
    hp = _hp_patterns(seed).reshape(CODE_BITS, -1)
    return np.linalg.inv(hp @ hp.T)


def _upsample(field: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(
        Image.fromarray(field.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    )


def embed(
    image: Image.Image,
    key: int,
    *,
    seed: int = DEFAULT_SEED,
    strength: float = DEFAULT_STRENGTH,
    rounds: int = 3,
) -> Image.Image:
    """`image` (RGB) with the key's mark added; same size.

    Informed embedding (improved spread spectrum, Malvar & Florencio 2003): the host
    image's own correlation with each bit's pattern is measured and cancelled where it
    opposes the bit, so every bit reads with margin `strength` before any attack,
    whatever the picture. A few rounds absorb the resampling between grid and pixels.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    size = (rgb.shape[1], rgb.shape[0])
    signs = encode_key(key).astype(np.float32) * 2 - 1
    unit = float(np.mean(np.sum(_hp_patterns(seed) ** 2, axis=(1, 2)))) / np.sqrt(CODE_BITS)
    margin = strength * unit
    weights = np.zeros(CODE_BITS, dtype=np.float64)
    marked = rgb
    for _ in range(rounds):
        grid, valid = _candidate_grid(_luma(_to_image(marked)), 0.0, 1.0)
        corr = correlations(grid, valid, seed)
        target = signs * np.maximum(margin, signs * corr)
        weights = weights + _gram_inverse(seed) @ (target - corr)
        field = np.tensordot(weights.astype(np.float32), patterns(seed), axes=1)
        marked = np.clip(rgb + _upsample(field, size)[..., None], 0, 255)
    return _to_image(marked)


def _to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")


def _luma(image: Image.Image) -> Image.Image:
    return image.convert("L")


def _candidate_grid(luma: Image.Image, angle: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Undo a rotation by `angle` and a central crop to `scale`: the grid and its valid mask."""
    side = GRID * SAMPLE
    inner = max(1, round(side * scale))
    small = luma.resize(
        (inner, inner), Image.Resampling.BOX if inner < luma.width else Image.Resampling.BILINEAR
    )
    canvas = np.zeros((side, side), dtype=np.float32)
    mask = np.zeros((side, side), dtype=np.float32)
    off = (side - inner) // 2
    canvas[off : off + inner, off : off + inner] = np.asarray(small, dtype=np.float32)
    mask[off : off + inner, off : off + inner] = 1.0
    if angle:
        canvas = np.asarray(
            Image.fromarray(canvas, mode="F").rotate(-angle, Image.Resampling.BILINEAR)
        )
        mask = np.asarray(Image.fromarray(mask, mode="F").rotate(-angle, Image.Resampling.BILINEAR))
    grid = canvas.reshape(GRID, SAMPLE, GRID, SAMPLE).mean(axis=(1, 3))
    valid = mask.reshape(GRID, SAMPLE, GRID, SAMPLE).min(axis=(1, 3)) > 0.99
    return grid, valid


def correlations(grid: np.ndarray, valid: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    filled = np.where(valid, grid, grid[valid].mean() if valid.any() else 0.0)
    hp = _highpass(filled) * valid
    return np.tensordot(_hp_patterns(seed), hp, axes=([1, 2], [0, 1]))


def detect(image: Image.Image, *, seed: int = DEFAULT_SEED, search: bool = True) -> Detection:
    """Try the identity first, then small rotations and central crops; first RS-valid word wins."""
    luma = _luma(image)
    candidates = [(a, s) for s in SCALES for a in ANGLES] if search else [(0.0, 1.0)]
    first = None
    for angle, scale in candidates:
        grid, valid = _candidate_grid(luma, angle, scale)
        corr = correlations(grid, valid, seed)
        bits = (corr > 0).astype(np.uint8)
        margin = float(np.abs(corr).mean() / (corr.std() + 1e-9))
        key = decode_bits(bits)
        if first is None:
            first = Detection(None, bits, angle, scale, margin)
        if key is not None:
            return Detection(key, bits, angle, scale, margin)
    return first
