"""Typed errors of alignment and paste-back.

A photo that cannot be aligned is bad *input* (the requester can pick another photo or
a face index), so the input errors derive from :class:`~inversion.errors.InvalidImage`
and the platform answers them with a 4xx naming the problem. A malformed stored
transform is a programming or storage fault: :class:`TransformError`.
"""

from __future__ import annotations

from inversion.errors import InvalidImage, InversionError

__all__ = [
    "AlignmentError",
    "NoFaceFound",
    "MultipleFaces",
    "FaceIndexOutOfRange",
    "NoObjectFound",
    "TransformError",
    "LandmarkModelMissing",
]


class AlignmentError(InvalidImage):
    """The photo cannot be aligned to the model's domain. Subclasses say why."""


class NoFaceFound(AlignmentError):
    """The face detector found no face in the photo."""

    def __init__(self, message: str = "no face found in the photo") -> None:
        super().__init__(message)


class MultipleFaces(AlignmentError):
    """Several faces and no face index to choose one of them."""

    def __init__(self, count: int) -> None:
        self.count = int(count)
        super().__init__(
            f"{self.count} faces found in the photo; choose one with a face index "
            f"0..{self.count - 1} (faces are numbered left to right)"
        )


class FaceIndexOutOfRange(AlignmentError):
    """A face index that does not name one of the detected faces."""

    def __init__(self, index: int, count: int) -> None:
        self.index = int(index)
        self.count = int(count)
        super().__init__(
            f"face index {self.index} is out of range: {self.count} face(s) found "
            f"(valid: 0..{max(self.count - 1, 0)}, left to right)"
        )


class NoObjectFound(AlignmentError):
    """No subject stands out from the background of a product photo."""


class TransformError(InversionError, ValueError):
    """A stored alignment transform is malformed, or does not fit the image given."""


class LandmarkModelMissing(InversionError, RuntimeError):
    """dlib or the packaged landmark model file is not installed."""
