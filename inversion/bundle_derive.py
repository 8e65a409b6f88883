"""Derive a child bundle from a parent: same weights, a changed catalog and/or directions.

A model registry extends a registered model's edit catalog (a new InterFaceGAN direction)
by writing a *new version*, never by editing the registered one: the child holds the
parent's weight files byte for byte, its own ``directions.safetensors`` and
``catalog.json``, and a manifest whose ``parent_version`` names the parent's version
(the SHA-256 of its manifest) and whose provenance records what changed. The result is
checked like any bundle (every hash, every catalog entry against its direction) by
loading it before it is renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors.torch import save as save_safetensors_bytes
from torch import Tensor

from inversion.bundle import (
    CATALOG_FILE,
    DIRECTIONS_FILE,
    MANIFEST_NAME,
    ModelBundle,
    load_bundle,
    sha256_hex,
)
from inversion.editing.catalog import EditCatalog
from inversion.editing.directions import validate_direction
from inversion.errors import BundleError

__all__ = ["derive_bundle"]


def derive_bundle(
    parent: ModelBundle,
    out_dir: str | os.PathLike[str],
    *,
    catalog: EditCatalog | None = None,
    directions: Mapping[str, Tensor] | None = None,
    change: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> ModelBundle:
    """Write the child of ``parent`` at ``out_dir`` (must not exist) and return it loaded.

    ``catalog`` / ``directions`` replace the parent's (None: keep); ``change`` is recorded
    as ``provenance.derived`` (what was done, by which command, on which data);
    ``metrics`` and ``provenance`` are merged (top-level keys) over the parent's.
    """
    out = Path(out_dir)
    if out.exists():
        raise BundleError(f"{str(out)!r} already exists")
    payloads: dict[str, bytes] = {}
    for name in parent.manifest["files"]:
        payloads[name] = (Path(parent.path) / name).read_bytes()
    if directions is not None:
        dirs = {n: validate_direction(d, name=f"direction {n!r}") for n, d in directions.items()}
        payloads[DIRECTIONS_FILE] = save_safetensors_bytes(dirs)
    if catalog is not None:
        payloads[CATALOG_FILE] = catalog.to_json().encode("utf-8")
    manifest = json.loads(json.dumps(parent.manifest))
    manifest["files"] = {
        name: {"sha256": sha256_hex(data), "size": len(data)}
        for name, data in sorted(payloads.items())
    }
    manifest["provenance"].update(json.loads(json.dumps(dict(provenance or {}))))
    manifest["parent_version"] = parent.version
    manifest["provenance"]["parent_version"] = parent.version
    manifest["provenance"]["derived"] = json.loads(json.dumps(dict(change or {})))
    if metrics:
        manifest["metrics"] = {**manifest.get("metrics", {}), **json.loads(json.dumps(metrics))}
    payloads[MANIFEST_NAME] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, data in payloads.items():
            (tmp / name).write_bytes(data)
        load_bundle(tmp)  # every hash, shape and catalog entry, before it gets its name
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(out)
