"""Perceptual fingerprints: PDQ plus a rotation-tolerant secondary hash. No Django here.

PDQ (Meta's 256-bit DCT hash, via `pdqhash`) survives recompression, resizing and
brightness changes well; small rotations move it further. The secondary hash is a
256-bit pHash (`imagehash`, 16x16 DCT signs) of the image's central disc after a
strong blur: the disc is the same region whatever the rotation angle, and the blur
makes a 2° turn of the content a small change. Both are 32 bytes, compared by
Hamming distance; `chunks` splits one into the multi-index hashing keys (index.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageFilter

BITS = 256
CHUNK_BITS = 16
CHUNKS = BITS // CHUNK_BITS
WORDS = BITS // 64
DISC_SIDE = 128


@dataclass(frozen=True)
class Fingerprints:
    pdq: bytes
    rot: bytes
    quality: int

    def as_dict(self) -> dict:
        return {"pdq": self.pdq.hex(), "rot": self.rot.hex(), "quality": self.quality}


def _pack(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8).ravel()).tobytes()


def pdq(image: Image.Image) -> tuple[bytes, int]:
    vector, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image.convert("RGB"))))
    return _pack(vector), int(quality)


def rotation_tolerant(image: Image.Image) -> bytes:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = (
        image.convert("L")
        .crop((left, top, left + side, top + side))
        .resize((DISC_SIDE, DISC_SIDE), Image.Resampling.BOX)
    )
    mask = Image.new("L", square.size, 0)
    inset = DISC_SIDE * 0.12
    ImageDraw.Draw(mask).ellipse((inset, inset, DISC_SIDE - inset, DISC_SIDE - inset), fill=255)
    grey = Image.new("L", square.size, int(np.asarray(square).mean()))
    disc = Image.composite(square, grey, mask).filter(ImageFilter.GaussianBlur(3))
    return _pack(imagehash.phash(disc, hash_size=16).hash)


def compute(image: Image.Image) -> Fingerprints:
    value, quality = pdq(image)
    return Fingerprints(value, rotation_tolerant(image), quality)


def distance(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big").__xor__(int.from_bytes(b, "big")).bit_count()


def chunks(value: bytes) -> list[int]:
    """CHUNKS unsigned 16-bit integers (stored as signed smallints by the index)."""
    return [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2)]


def words(value: bytes) -> list[int]:
    """WORDS signed 64-bit integers (a bigint each)."""
    return [int.from_bytes(value[i : i + 8], "big", signed=True) for i in range(0, len(value), 8)]
