"""The soak's breakage switch cannot break a worker outside a soak run that asked for it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.soak.breakage import MODES, BreakRefused, authorised_break, write_marker

DB = "postgres://styleledger@127.0.0.1:5999/soak"


def test_no_break_without_soak_break():
    assert authorised_break({"DATABASE_URL": DB}) is None


def test_a_soak_run_that_asked_for_the_break_gets_it(tmp_path):
    marker = write_marker(tmp_path, "redelivery", DB)
    env = {"SOAK_BREAK": "redelivery", "SOAK_BREAK_MARKER": str(marker), "DATABASE_URL": DB}
    assert authorised_break(env) == "redelivery"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"SOAK_BREAK_MARKER": ""}, "no soak run asked for it"),
        ({"DATABASE_URL": "postgres://app@db.internal/styleledger"}, "another database"),
        ({"SOAK_BREAK": "lease"}, "another break"),
        ({"SOAK_BREAK": "everything"}, "is not a soak break"),
        ({"STYLELEDGER_ENV": "production"}, "production"),
    ],
)
def test_the_break_is_refused_anywhere_else(tmp_path, change, message):
    marker = write_marker(tmp_path, "redelivery", DB)
    env = {
        "SOAK_BREAK": "redelivery",
        "SOAK_BREAK_MARKER": str(marker),
        "DATABASE_URL": DB,
        **change,
    }
    with pytest.raises(BreakRefused, match=message):
        authorised_break(env)


def test_a_soak_worker_with_a_stray_soak_break_does_not_start():
    """The worker app itself refuses at import: SOAK_BREAK copied into an environment stops
    the worker loudly."""
    done = subprocess.run(
        [sys.executable, "-c", "import tests.soak.worker_app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SOAK_BREAK": "lease"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "BreakRefused" in done.stderr, done.stderr[-2000:]


def test_only_the_soak_reads_soak_break():
    """No production module (outside tests/) names SOAK_BREAK: the production worker app
    (editplatform.celery) and settings cannot be switched into a broken build."""
    files = subprocess.run(
        ["git", "grep", "-l", "SOAK_BREAK", "--", ".", ":!tests/", ":!docs/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert files == [], files
    assert set(MODES) == {"lease", "acks", "redelivery"}


def test_the_images_do_not_ship_the_soak():
    """The production images copy the platform's packages only, never tests/ (where the
    soak's worker app and its breakage switch live)."""
    dockerfiles = sorted((ROOT / "docker").glob("Dockerfile*"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        copies = [
            line.split()[1:-1]
            for line in dockerfile.read_text().splitlines()
            if line.strip().upper().startswith("COPY") and "--from=" not in line
        ]
        sources = {source.rstrip("/") for args in copies for source in args}
        assert "tests" not in sources and "." not in sources, (dockerfile.name, sources)
