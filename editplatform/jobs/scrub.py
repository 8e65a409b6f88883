"""Remove an upload's metadata without re-encoding it: the stored original's bytes.

A photo's metadata (EXIF with GPS position, camera serial numbers and owner names;
XMP; IPTC; comments; text chunks; trailing data such as a phone's second image) must
not reach storage, but re-encoding the pixels to drop it was most of a submit's CPU.
Metadata lives in segments or chunks of its own, apart from the compressed pixels, so
it can be dropped by walking the file's structure: the compressed pixel data and the
segments needed to decode it are copied byte for byte, so the result decodes to exactly
the upload's pixels. Cost: a walk over the segment headers (and, for JPEG, a
byte search for markers in the compressed data), well under a millisecond per
megapixel.

Kept because decoding needs them: JPEG tables, frame and scan headers, JFIF (APP0),
Adobe (APP14, the colour transform) and ICC profiles (APP2); PNG's critical chunks and
its colour chunks (tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, cICP); WebP's image, alpha and
ICC chunks. Anything else is dropped: allow-lists, not deny-lists. EXIF orientation is
the one piece of EXIF that changes how pixels are shown: when the upload had one other
than 1, a minimal EXIF block holding only that tag takes the place of the original one.

Pure bytes, no Django: inputs were already checked by
:func:`inversion.preprocess.check_image_bytes`; a structure this walk cannot follow
raises :class:`ScrubError` (the caller answers 400).
"""

from __future__ import annotations

import re
import zlib

__all__ = ["ScrubError", "scrub", "orientation_exif"]


class ScrubError(ValueError):
    """The file's structure cannot be walked (it is damaged where the decoder did not look)."""


ORIENTATION_TAG = 0x0112


def orientation_exif(orientation: int) -> bytes:
    """A TIFF-structured EXIF block holding only the Orientation tag (big-endian)."""
    return (
        b"MM\x00\x2a"
        + (8).to_bytes(4, "big")  # offset of IFD0
        + (1).to_bytes(2, "big")  # one entry
        + ORIENTATION_TAG.to_bytes(2, "big")
        + (3).to_bytes(2, "big")  # SHORT
        + (1).to_bytes(4, "big")  # count
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
        + (0).to_bytes(4, "big")  # no next IFD
    )


def scrub(data: bytes, fmt: str, orientation: int = 1) -> bytes:
    """``data`` (a JPEG, PNG or WEBP file) without its metadata; see the module docstring.

    ``orientation``: the upload's EXIF orientation (1-8) as the decoder read it.
    """
    if fmt == "JPEG":
        return _jpeg(data, orientation)
    if fmt == "PNG":
        return _png(data, orientation)
    if fmt == "WEBP":
        return _webp(data, orientation)
    raise ScrubError(f"no metadata walk for format {fmt}")


# --- JPEG --------------------------------------------------------------------------

_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
_APP0, _APP1, _APP2, _APP14 = 0xE0, 0xE1, 0xE2, 0xEE
_SOS, _EOI = 0xDA, 0xD9
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte), RST0-7 or fill 0xFF;
# any other byte after 0xFF is a marker.
_NEXT_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _keep_jpeg_segment(marker: int, segment: bytes) -> bool:
    if 0xE0 <= marker <= 0xEF:  # APPn: only what decoding needs
        if marker == _APP0:
            return segment[4:9] == b"JFIF\x00"  # not JFXX (a thumbnail)
        if marker == _APP2:
            return segment[4:16] == b"ICC_PROFILE\x00"
        return marker == _APP14 and segment[4:9] == b"Adobe"
    return marker != 0xFE  # COM


def _jpeg(data: bytes, orientation: int) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise ScrubError("a JPEG starts with SOI")
    exif = b""
    if orientation != 1:
        body = b"Exif\x00\x00" + orientation_exif(orientation)
        exif = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    out = [b"\xff\xd8"]
    pos, size, in_scan = 2, len(data), False
    while pos < size:
        if in_scan:  # compressed data up to the next marker, verbatim
            found = _NEXT_MARKER.search(data, pos)
            end = found.start() if found else size
            out.append(data[pos:end])
            pos = end
            if not found:
                break  # no EOI: the decoder accepted it; nothing follows to drop
        if data[pos] != 0xFF or pos + 1 >= size:
            raise ScrubError(f"expected a JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        if marker == _EOI:
            out.append(b"\xff\xd9")
            break  # trailing data (a second image, a vendor trailer) is dropped
        if pos + 4 > size:
            raise ScrubError("the JPEG ends inside a segment header")
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > size or end < pos + 4:
            raise ScrubError(f"a JPEG segment at byte {pos} overruns the file")
        segment = data[pos:end]
        if exif and marker != _APP0:  # after SOI and JFIF, before anything else
            out.append(exif)
            exif = b""
        if _keep_jpeg_segment(marker, segment):
            out.append(segment)
        in_scan = in_scan or marker == _SOS  # from the first scan on, search for markers
        pos = end
    return b"".join(out)


# --- PNG ---------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT"}
    | {b"cICP"}
)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")


def _png(data: bytes, orientation: int) -> bytes:
    if data[:8] != _PNG_SIGNATURE:
        raise ScrubError("a PNG starts with its signature")
    out, pos, size = [_PNG_SIGNATURE], 8, len(data)
    while pos < size:
        if pos + 12 > size:
            raise ScrubError("the PNG ends inside a chunk header")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + int.from_bytes(data[pos : pos + 4], "big")
        if end > size:
            raise ScrubError(f"the PNG chunk {kind!r} overruns the file")
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        if kind == b"IHDR" and orientation != 1:
            out.append(_png_chunk(b"eXIf", orientation_exif(orientation)))
        pos = end
        if kind == b"IEND":
            break  # trailing data is dropped
    return b"".join(out)


# --- WebP --------------------------------------------------------------------------

_WEBP_KEEP = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ICCP", b"ANIM", b"ANMF"})
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _webp(data: bytes, orientation: int) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ScrubError("a WebP file is a RIFF WEBP container")
    end_of_riff = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    chunks, pos = [], 12
    while pos < end_of_riff:
        if pos + 8 > end_of_riff:
            raise ScrubError("the WebP file ends inside a chunk header")
        kind = data[pos : pos + 4]
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > end_of_riff:
            raise ScrubError(f"the WebP chunk {kind!r} overruns the file")
        if kind in _WEBP_KEEP:
            chunks.append(bytearray(data[pos:end]))
        pos = end
    extended = bool(chunks) and chunks[0][:4] == b"VP8X"
    if extended:
        chunks[0][8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
        if orientation != 1:
            chunks[0][8] |= _VP8X_EXIF
            body = orientation_exif(orientation)
            chunks.append(bytearray(b"EXIF" + len(body).to_bytes(4, "little") + body))
    payload = b"WEBP" + b"".join(bytes(c) for c in chunks)
    return b"RIFF" + len(payload).to_bytes(4, "little") + payload
