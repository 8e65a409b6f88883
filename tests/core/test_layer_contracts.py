"""The import contracts of the Django apps' layers hold, and catch a reversed arrow.

`lint-imports` (import-linter) checks the contracts in pyproject.toml: portal >
approvals > jobs > accounts > core, and the web side of jobs never importing the
worker's task module. The second test plants an upward import in a copy of the code
and shows the same contracts then fail, so a passing run means something.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = ("app-layers", "jobs-web-not-worker")
PACKAGES = ("editplatform", "audit", "inversion")


def lint(root: Path) -> subprocess.CompletedProcess:
    args = [
        str(LINT_IMPORTS),
        "--no-cache",
        "--no-logo",
        *(f"--contract={c}" for c in CONTRACTS),
        str(root / "pyproject.toml"),
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def _not_source(folder: str, names: list[str]) -> list[str]:
    """copytree's ignore: everything but Python files and folders, and no caches."""
    keep = [n for n in names if n.endswith(".py") or (Path(folder) / n).is_dir()]
    return [n for n in names if n not in keep or n == "__pycache__"]


def copy_sources(target: Path) -> None:
    """The project's Python sources and config, without weights, caches or data."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=_not_source)
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")


def test_the_app_layer_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in (
        "layers: pages > approvals > jobs > accounts > audit > core > inversion",
        "the web side of jobs sends tasks by name",
    ):
        assert contract in result.stdout


def test_a_reversed_arrow_breaks_the_contracts(tmp_path):
    copy_sources(tmp_path)
    assert lint(tmp_path).returncode == 0  # the copy is as good as the original
    # core reaching up into jobs, and the job services importing the worker's tasks
    with open(tmp_path / "editplatform" / "core" / "readiness.py", "a") as f:
        f.write("\nfrom editplatform.jobs import engine  # noqa: E402,F401\n")
    with open(tmp_path / "editplatform" / "jobs" / "services.py", "a") as f:
        f.write("\nfrom editplatform.jobs import tasks  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "2 broken" in result.stdout, result.stdout
    assert "editplatform.core.readiness -> editplatform.jobs.engine" in result.stdout, result.stdout
    assert "editplatform.jobs.services -> editplatform.jobs.tasks" in result.stdout, result.stdout
