"""The short soak (CI size) and proof that it catches a broken guarantee.

Each test runs the harness (`python -m tests.soak`, tests/soak/harness.py) as a
subprocess: it starts its own PostgreSQL and Redis because it restarts them. The
full-size run is documented in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.soak.harness import FAULTS

GUARANTEES = (
    "every job terminal",
    "no accepted job lost",
    "ran to success at most once",
    "complete event chain",
    "audit verify (exported checkpoints trusted)",
    "no missing or orphan artifacts",
    "harness ran without errors",
)


def _soak(
    tmp_path, *args: str, env: dict | None = None, timeout: int = 420
) -> tuple[int, dict, str]:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.soak", *args, "--report", str(report)],
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout[-6000:] + done.stderr[-3000:]
    if not report.exists():
        pytest.fail(f"the soak wrote no report (exit {done.returncode}):\n{output}")
    return done.returncode, json.loads(report.read_text()), output


def test_short_soak_keeps_every_guarantee_under_every_fault(tmp_path, test_pass):
    if test_pass != "postgres":
        pytest.fail("the soak runs in the PostgreSQL + Redis pass")
    code, report, output = _soak(
        tmp_path,
        "--jobs",
        "50",
        "--clients",
        "4",
        "--workers",
        "3",
        "--load-seconds",
        "70",
        "--drain-seconds",
        "150",
    )
    assert {f["kind"] for f in report["faults"]} == set(FAULTS), output
    for name in GUARANTEES:
        assert report["checks"][name]["ok"], (name, report["checks"][name], output)
    assert report["ok"] and code == 0, output
    assert report["accepted"] >= 40 and sum(report["job_states"].values()) == report["accepted"]
    assert (
        report["job_states"].get("succeeded", 0) > 0
        and report["job_states"].get("cancelled", 0) > 0
    )
    assert report["audit"]["trusted_checked"] > 0


# The small soak: the same jobs, clients, load and drain for the real build and for each
# broken one; only --faults (the fault that exercises the broken guarantee: the real build
# gets both) and --break differ.
SMALL = (
    "--jobs",
    "8",
    "--clients",
    "2",
    "--load-seconds",
    "10",
    "--drain-seconds",
    "60",
    "--progress-delay-ms",
    "500",
)


def test_the_small_soak_passes_with_the_real_build(tmp_path, test_pass):
    """The control for the broken builds below: with the real configuration the same small
    soak, under both faults they use, keeps every guarantee."""
    if test_pass != "postgres":
        pytest.fail("the soak runs in the PostgreSQL + Redis pass")
    code, report, output = _soak(tmp_path, *SMALL, "--faults", "sigkill,sigstop")
    assert report["break"] == "" and {f["kind"] for f in report["faults"]} == {
        "sigkill",
        "sigstop",
    }, output
    failing = {name: c for name, c in report["checks"].items() if not c["ok"]}
    assert code == 0 and report["ok"] and not failing, (failing, output)
    assert report["job_states"].get("succeeded", 0) > 0, output


def test_the_soak_fails_when_the_lease_fence_is_broken(tmp_path, test_pass):
    """--break lease: the test worker app runs every state change unfenced
    (tests/soak/worker_app.py), so the worker resumed after SIGSTOP commits a second run."""
    if test_pass != "postgres":
        pytest.fail("the soak runs in the PostgreSQL + Redis pass")
    code, report, output = _soak(tmp_path, *SMALL, "--faults", "sigstop", "--break", "lease")
    assert report["break"] == "lease", output
    assert code == 1 and not report["ok"], output
    # The resumed run committed although its job was taken over: when another worker
    # re-ran it, a second job.succeeded (or a sensitive job's second job.held: compute,
    # then release); when its client had cancelled it, a run after job.cancelled.
    twice = report["checks"]["ran to success at most once"]
    chain = report["checks"]["complete event chain"]
    problems = " ".join(twice["problems"] + chain["problems"])
    assert re.search(
        r"has [2-9] job\.(succeeded|held) events|ran after it ended cancelled", problems
    ), (twice, chain, output)


def test_the_soak_fails_when_a_killed_workers_job_is_not_redelivered(tmp_path, test_pass):
    """--break redelivery: the edit task is acknowledged on receipt, a dead worker's message is not
    handed back, and no sweeper runs (both defences off), so the SIGKILLed worker's job is
    never run again: the checker must report it lost and not terminal."""
    if test_pass != "postgres":
        pytest.fail("the soak runs in the PostgreSQL + Redis pass")
    code, report, output = _soak(tmp_path, *SMALL, "--faults", "sigkill", "--break", "redelivery")
    assert report["break"] == "redelivery", output
    assert code == 1 and not report["ok"] and not report["drained"], output
    lost = report["checks"]["no accepted job lost"]
    assert not lost["ok"] and re.search(
        r"job [0-9a-f-]+ is abandoned: running", " ".join(lost["problems"])
    ), (lost, output)
    assert not report["checks"]["every job terminal"]["ok"], output
