"""The registry's own copy of each bundle: copied, verified, then renamed into place.

A registered version must not change under the registry, so registration copies the
bundle's manifest and the files it lists into ``MODEL_REGISTRY_DIR/<version>/`` and
verifies the *copy* with inversion's loader (every hash, size, shape): what was
verified is what workers load. Workers verify it again at load (engine). An uploaded
bundle (a zip of the directory) is unpacked the same way, refusing any member that is
not a plain file at the top level.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings

from editplatform.core.errors import DomainError
from inversion.bundle import MANIFEST_NAME, ModelBundle, load_bundle
from inversion.errors import BundleError

MAX_MEMBERS = 32


class InvalidBundle(DomainError):
    """The bundle cannot be registered (missing, altered, malformed): nothing is stored."""

    def __init__(self, message: str):
        super().__init__(message, "invalid_bundle", status=400)


def root() -> Path:
    path = Path(settings.MODEL_REGISTRY_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_of(version: str) -> Path:
    return root() / version


def _listed_files(source: Path) -> list[str]:
    try:
        manifest = json.loads((source / MANIFEST_NAME).read_bytes())
        return [MANIFEST_NAME, *manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidBundle(f"{source}: not a model bundle ({exc})") from None


def import_directory(source: Path) -> ModelBundle:
    """Copy a bundle directory into the store and return the verified, loaded copy."""
    source = Path(source)
    try:
        load_bundle(source)  # refuse before copying anything
    except BundleError as exc:
        raise InvalidBundle(f"bundle {source}: {exc}") from None
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root()))
    try:
        for name in _listed_files(source):
            shutil.copyfile(source / name, staging / name)
        return _commit(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def import_zip(data: bytes) -> ModelBundle:
    """Unpack an uploaded zip of a bundle directory into the store (flat, files only)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidBundle("the upload is not a zip archive") from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    if not members or len(members) > MAX_MEMBERS:
        raise InvalidBundle(f"the zip must hold 1 to {MAX_MEMBERS} files, not {len(members)}")
    names = [Path(m.filename).name for m in members]
    prefixes = {str(Path(m.filename).parent) for m in members}
    if len(prefixes) != 1 or ".." in next(iter(prefixes)) or next(iter(prefixes)).startswith("/"):
        raise InvalidBundle("the zip must hold the bundle's files in one folder (or at its top)")
    if len(set(names)) != len(names):
        raise InvalidBundle("the zip holds the same file name twice")
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=root()))
    try:
        for member, name in zip(members, names, strict=True):
            (staging / name).write_bytes(archive.read(member))
        return _commit(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit(staging: Path) -> ModelBundle:
    try:
        bundle = load_bundle(staging)
    except BundleError as exc:
        raise InvalidBundle(f"bundle: {exc}") from None
    target = path_of(bundle.version)
    if target.exists():
        try:
            load_bundle(target)  # the same version stored earlier, still intact
        except BundleError:
            shutil.rmtree(target)
    if not target.exists():
        staging.rename(target)
    return load_bundle(target)
