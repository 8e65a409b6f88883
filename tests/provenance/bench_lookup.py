"""Bounded lookup benchmark on a throwaway PostgreSQL (docs/benchmarks.md, issue 15).

    timeout 2400 nice -n 10 .venv/bin/python -m tests.provenance.bench_lookup \\
        --rows 1000000 --queries 200 --legacy

Starts a fresh server (tests.services), migrates, then runs `manage.py provenance bench`
with the given options; the server and its data are removed afterwards. Not collected by
pytest (no test_ prefix): it is a measurement, minutes long.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.services import postgres_server


def main(argv: list[str]) -> int:
    with postgres_server() as url:
        env = {**os.environ, "DATABASE_URL": url}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True)
        return subprocess.run([*manage, "provenance", "bench", *argv], env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
