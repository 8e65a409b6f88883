"""The soak commands docs/reliability.md documents parse exactly as written.

The full-size run takes 50 minutes on a machine of its own, so a typo in its documented
command would only show at the end (the report path) or not at all until someone tries.
Each `python -m tests.soak` command in the doc is run here with --dry-run: the harness
checks every argument, prepares the report's folder and prints its plan, starting nothing.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

from tests.conftest import ROOT
from tests.soak.harness import FAULTS

DOC = ROOT / "docs" / "reliability.md"
PREFIX = ["PYTHONPATH=.", ".venv/bin/python", "-m", "tests.soak"]


def documented_commands() -> list[list[str]]:
    """Every shell block line (with its continuations) that runs `python -m tests.soak`."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command)
            if words[: len(PREFIX)] == PREFIX:
                commands.append(words[len(PREFIX) :])
    return commands


def _dry_run(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.soak", *args, "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_the_full_run_command_parses_as_documented():
    full = [c for c in documented_commands() if "var/soak-full.json" in c]
    assert len(full) == 1, documented_commands()
    plan = _dry_run(full[0])
    # 30 minutes of load; the job count is sized to the machine (docs/reliability.md)
    assert plan["jobs"] >= 500 and plan["load_seconds"] == 1800
    assert plan["faults"] == list(FAULTS) and plan["break"] == ""
    assert plan["report"] and plan["report"].endswith(".json")
    # every fault lands inside the load window, after the fault-free baseline
    assert plan["first_fault_at_seconds"] + 6 * (plan["seconds_between_faults"] + 30) < 1800
    assert sum(plan["ops_by_kind"].values()) == plan["jobs"] and all(plan["ops_by_kind"].values())


def test_every_documented_soak_command_parses():
    commands = documented_commands()
    assert len(commands) >= 2, commands
    for args in commands:
        _dry_run(args)


def test_a_wrong_argument_is_refused_before_anything_starts():
    done = subprocess.run(
        [sys.executable, "-m", "tests.soak", "--faults", "sigkill,meteor", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "unknown fault(s) ['meteor']" in done.stderr
