"""Bounded lookup benchmark on a throwaway PostgreSQL (docs/benchmarks.md, issue 15).

    nice -n 19 .venv/bin/python -m tests.provenance.bench_lookup \\
        --lock /work/wt/bench.lock -- --rows 1000000 --queries 200

Starts a fresh server (tests.services), migrates and fills it with `manage.py provenance
bench --populate-only` at this process's (low) priority; then, holding `--lock` (flock,
shared with the other timing measurements on the machine), puts the server back to normal
priority and runs `manage.py provenance bench` with the given options on the same rows, at
normal priority, printing `uptime` before and after. Without `--lock` it runs both steps
as before, at this process's priority. The server and its data are removed afterwards.
Not collected by pytest (no test_ prefix): it is a measurement, minutes long.

Why two steps: loading 1,000,000 rows and building 32 covering indexes takes minutes of
CPU that is not the measurement; only the timing needs a quiet, fairly scheduled machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.services import postgres_server


def _postmaster_and_children(url: str) -> list[int]:
    """The server's postmaster (the parent of our backend) and its current children."""
    import psycopg

    with psycopg.connect(url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            pids.append(int(stat.parent.name))
    return pids


def _normal_priority() -> None:
    os.setpriority(os.PRIO_PROCESS, 0, 0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lock", default=None, help="flock this file around the timing step")
    own, bench = parser.parse_known_args(argv)
    bench = [a for a in bench if a != "--"]
    with postgres_server() as url:
        env = {**os.environ, "DATABASE_URL": url}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True)
        if own.lock is None:
            return subprocess.run([*manage, "provenance", "bench", *bench], env=env).returncode
        fill = [*manage, "provenance", "bench", "--populate-only", *bench]
        subprocess.run(fill, env=env, check=True)
        timing = " ".join(shlex.quote(a) for a in [*manage, "provenance", "bench", *bench])
        # Inside the lock: the server back to normal priority (new backends fork from the
        # postmaster), then the timing run, itself at normal priority (preexec_fn).
        server = " ".join(str(p) for p in _postmaster_and_children(url))
        script = f"renice -n 0 -p {server} >/dev/null; uptime; {timing}; rc=$?; uptime; exit $rc"
        return subprocess.run(
            ["flock", own.lock, "sh", "-c", script], env=env, preexec_fn=_normal_priority
        ).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
