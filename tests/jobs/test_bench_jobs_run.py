"""The micro-batching benchmark runs as docs/benchmarks.md documents it, at a size a test
affords (`python -m tests.jobs.bench_jobs_run`).

Its figures are only measured by hand (timings are never asserted in tests), but the
command itself must keep working: it starts gunicorn, submits through the HTTP API,
starts workers on a held queue and moves them to ``gpu`` together once each has warmed
up its model (a broken start would hang or fail here, not in someone's benchmark run),
and drains every configuration without a job running twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.postgres
def test_bench_runs_each_configuration_once_per_job(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.jobs.bench_jobs_run",
            "--tree",
            f"here={ROOT}",
            "--batch-sizes",
            "1,2",
            "--runs",
            "1",
            "--jobs",
            "6",
            "--clients",
            "1",
            "--json-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (row,) = json.loads((tmp_path / "here.json").read_text())
    assert set(row) == {"1w b1", "1w b2", "2w b1"}
    for figures in row.values():
        assert figures["jobs"] == 6 and figures["attempts"] == 6  # none ran twice
        assert figures["jobs_per_s"] > 0
    assert row["1w b2"]["batches"] == 2.0  # all six queued first: three batches of two
    assert row["1w b1"]["batches"] == 1.0 and row["1w b1"]["workers"] == 1
    # released together, both workers take part (before, the first one up ran alone)
    assert row["2w b1"]["workers"] == 2
    assert "| run | 1 worker(s), batch 1 (jobs/s)" in done.stdout
