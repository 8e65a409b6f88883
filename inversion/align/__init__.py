"""Alignment: where the model's square input lies in a user's photo.

``ffhq`` (faces, dlib landmarks), ``object`` (an item on a plain background) and
``center`` (the largest centred square) each return an :class:`AlignmentTransform`;
its ``crop`` gives the model input and :func:`inversion.pasteback.paste_back` uses its
inverse to put an edit back into the photo. ``align(image, method, output_size)`` picks
the method by name, as a bundle's manifest declares it. dlib is imported only when
``ffhq`` is used.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from inversion.align.errors import (
    AlignmentError,
    FaceIndexOutOfRange,
    LandmarkModelMissing,
    MultipleFaces,
    NoFaceFound,
    NoObjectFound,
    TransformError,
)
from inversion.align.transform import AlignmentTransform, center_square

__all__ = [
    "ALIGNMENT_METHODS",
    "AlignmentError",
    "AlignmentTransform",
    "FaceIndexOutOfRange",
    "LandmarkModelMissing",
    "MultipleFaces",
    "NoFaceFound",
    "NoObjectFound",
    "TransformError",
    "align",
    "center_square",
]

ALIGNMENT_METHODS = ("ffhq", "object", "center")


def align(image: Image.Image, method: str, output_size: int, **options: Any) -> AlignmentTransform:
    """The alignment transform of ``image`` by ``method`` (one of ALIGNMENT_METHODS).

    ``options`` go to the method: ``face_index`` / ``detector`` for ``ffhq``, ``margin``
    and the detection parameters of :func:`~inversion.align.object.find_subject` for
    ``object``; ``center`` takes none.
    """
    if method == "ffhq":
        from inversion.align.ffhq import align_face

        return align_face(image, output_size, **options)
    if method == "object":
        from inversion.align.object import align_object

        return align_object(image, output_size, **options)
    if method == "center":
        if options:
            raise TypeError(f"'center' alignment takes no options, got {sorted(options)}")
        return center_square(image.size[0], image.size[1], output_size)
    raise ValueError(f"unknown alignment method {method!r}; known: {', '.join(ALIGNMENT_METHODS)}")
