"""Shared set-up of the per-tree bench runners (`bench_submit`, `bench_jobs_run`): one source
tree gets its own database on the throwaway PostgreSQL, its own var folder and the broker,
migrated, so trees are measured alike."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.services import create_database


def migrated_tree(label: str, tree: Path, admin_url: str, broker: str, prefix: str, **extra):
    """(env, manage command, var folder) for ``tree``, its database migrated; ``extra``
    adds environment variables. The caller removes the var folder."""
    var = Path(tempfile.mkdtemp(prefix=f"{prefix}-{label}-"))
    env = dict(
        os.environ,
        PYTHONPATH=str(tree),
        DATABASE_URL=create_database(admin_url, f"bench_{label}"),
        CELERY_BROKER_URL=broker,
        STYLELEDGER_VAR_DIR=str(var),
        OMP_NUM_THREADS="1",
        **extra,
    )
    manage = [sys.executable, str(tree / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=tree)
    return env, manage, var
