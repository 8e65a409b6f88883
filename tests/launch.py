"""`make test`: start throwaway PostgreSQL and Redis, run the suite, stop them.

Two passes, because Django reads its database and broker once per process:
1. everything except `embedded` tests, on PostgreSQL + Redis (the production shape);
2. the `embedded` tests, on SQLite + kombu's filesystem broker (what `make run` uses).
Extra arguments go to both pytest runs (e.g. `python -m tests.launch -k health`).
Exit status: non-zero if either pass failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from tests.services import ServiceError, postgres_server, redis_server

ROOT = Path(__file__).resolve().parent.parent


def _pytest(args: list[str], env: dict[str, str], *, filtered: bool) -> int:
    cmd = [sys.executable, "-m", "pytest", *args]
    print("+", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    # pytest's 5 means "no tests collected": fine when the caller narrowed the run
    # (a path or -k), an error for the whole suite.
    return 0 if code == 5 and filtered else code


def main(argv: list[str]) -> int:
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_URL"))
    }
    base_env.update({"PYTHONUNBUFFERED": "1", "STYLELEDGER_ENV": "development"})
    (ROOT / "test-output").mkdir(exist_ok=True)
    with ExitStack() as stack:
        try:
            database_url = stack.enter_context(postgres_server())
            redis_url = stack.enter_context(redis_server())
        except ServiceError as exc:
            print(f"cannot start test services: {exc}", file=sys.stderr)
            return 3
        print(f"PostgreSQL: {database_url}\nRedis:      {redis_url}", flush=True)
        var_pg = stack.enter_context(tempfile.TemporaryDirectory(prefix="styleledger-var-pg-"))
        var_lite = stack.enter_context(tempfile.TemporaryDirectory(prefix="styleledger-var-lite-"))
        env_pg = dict(
            base_env,
            DATABASE_URL=database_url,
            CELERY_BROKER_URL=redis_url,
            REDIS_URL=redis_url,
            STYLELEDGER_VAR_DIR=var_pg,
            STYLELEDGER_TEST_PASS="postgres",
        )
        env_lite = dict(
            base_env,
            DATABASE_URL=f"sqlite:///{var_lite}/db.sqlite3",
            STYLELEDGER_VAR_DIR=var_lite,
            STYLELEDGER_TEST_PASS="embedded",
            REDIS_URL=redis_url,
            STYLELEDGER_TEST_POSTGRES_URL=database_url,
        )
        filtered = bool(argv)
        first = _pytest(["-m", "not embedded", *argv], env_pg, filtered=filtered)
        second = _pytest(["-m", "embedded", *argv], env_lite, filtered=filtered)
    print(
        f"test passes: postgres+redis exit {first}, embedded sqlite+filesystem exit {second}",
        flush=True,
    )
    return first or second


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
