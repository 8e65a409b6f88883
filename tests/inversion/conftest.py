"""Shared fixtures for the inversion tests: the shared formats folder, a random bundle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``<repo>/../shared`` unless ``STYLELEDGER_SHARED_DIR`` points elsewhere."""
    override = os.environ.get("STYLELEDGER_SHARED_DIR")
    if override:
        return Path(override)
    return REPO_ROOT / ".." / "shared"


@pytest.fixture(scope="session")
def formats_dir() -> Path:
    path = shared_dir() / "formats"
    if not (path / "stylegan2_keys.json").is_file():
        pytest.fail(f"shared formats folder not found at {path} (set STYLELEDGER_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def random_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random tiny bundle, built once per session (read-only for tests)."""
    from inversion.bundle import build_random_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    build_random_bundle(out, preset="tiny", seed=0)
    return out
