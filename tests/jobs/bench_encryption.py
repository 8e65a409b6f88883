"""The job benchmark with and without artifact encryption, alternating (issue 17).

    flock /work/wt/bench.lock python -m tests.jobs.bench_encryption [--pairs 2 --jobs 8]

One throwaway PostgreSQL + Redis (``tests.services``), one migrated template database,
then ``manage.py bench_jobs --batch-sizes 1`` run ``--pairs`` times as A (encrypted, the
shipped path) then B (``--plaintext-artifacts``), so drift in machine load falls on both
sides alike; then ``manage.py bench_artifact_crypto`` for the per-artifact cost. Prints
each run's figures and, per configuration, the ratio encrypted / plaintext.

Every run gets a fresh copy of the migrated database, its own var folder (storage, key,
exported checkpoints: a fresh log must not meet an older log's checkpoints) and an
empty broker: bench_jobs submits the same photos each time, and content addressing would
turn a later run's stores into "already there" (no encryption at all) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import redis

from tests.services import postgres_server, redis_server

ROOT = Path(__file__).resolve().parents[2]
RATE = re.compile(r"run \d+: (\d) worker\(s\), batch (\d+): ([0-9.]+) jobs/s")


def _uptime() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _stored(storage: Path) -> dict[str, int]:
    """Files in a run's storage by layout (a check that each variant stored what it says)."""
    files = [p for p in storage.rglob("*") if p.is_file()]
    sealed = sum(1 for p in files if p.name.endswith(".sealed"))
    return {"sealed": sealed, "plaintext": len(files) - sealed}


def bench_once(env: dict, opts, plaintext: bool) -> dict:
    cmd = [sys.executable, str(ROOT / "manage.py"), "bench_jobs", "--batch-sizes", "1"]
    cmd += ["--runs", "1", "--jobs", str(opts.jobs), "--clients", str(opts.clients)]
    if plaintext:
        cmd.append("--plaintext-artifacts")
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"bench_jobs failed ({'plaintext' if plaintext else 'encrypted'})")
    rates = {f"{w} worker(s)": float(r) for w, _, r in RATE.findall(out.stdout)}
    walls = re.findall(
        r"- (\d) worker\(s\), batch 1: wall ([0-9.]+) s/job, pipeline ([0-9.]+)", out.stdout
    )
    return {
        "variant": "plaintext" if plaintext else "encrypted",
        "jobs_per_s": rates,
        "wall_s_per_job": {f"{w} worker(s)": float(x) for w, x, _ in walls},
        "pipeline_s_per_job": {f"{w} worker(s)": float(p) for w, _, p in walls},
        "load": _uptime(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--crypto-repeat", type=int, default=11)
    opts = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-encryption-"))
    print(f"load at start: {_uptime()}", flush=True)
    try:
        with postgres_server() as db, redis_server() as broker:
            env = dict(
                os.environ,
                PYTHONPATH=str(ROOT),
                DATABASE_URL=db,
                CELERY_BROKER_URL=broker,
                STYLELEDGER_VAR_DIR=str(var),
                OMP_NUM_THREADS="1",
            )
            env.pop("DJANGO_SETTINGS_MODULE", None)
            manage = [sys.executable, str(ROOT / "manage.py")]
            subprocess.run([*manage, "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
            admin = db.rsplit("/", 1)[0] + "/postgres"
            runs = []
            for pair in range(opts.pairs):
                for plaintext in (False, True):
                    name = f"bench_{pair}_{'plain' if plaintext else 'sealed'}"
                    with psycopg.connect(admin, autocommit=True) as conn:
                        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "styleledger"')
                    redis.Redis.from_url(broker).flushall()
                    run_var = var / name  # its own storage, KEK and exported checkpoints
                    storage = run_var / "storage"
                    run_env = dict(
                        env,
                        DATABASE_URL=db.rsplit("/", 1)[0] + f"/{name}",
                        STYLELEDGER_VAR_DIR=str(run_var),
                    )
                    runs.append(bench_once(run_env, opts, plaintext))
                    runs[-1]["new_files"] = _stored(storage)
                    print(json.dumps(runs[-1]), flush=True)
            for config in runs[0]["wall_s_per_job"]:
                # throughput = 1 / wall per job (printed with more digits than jobs/s)
                ratios = [
                    b["wall_s_per_job"][config] / a["wall_s_per_job"][config]
                    for a, b in zip(runs[0::2], runs[1::2], strict=True)
                ]
                print(
                    f"{config}: encrypted / plaintext throughput per pair "
                    f"{', '.join(f'{r:.3f}' for r in ratios)}; mean {statistics.mean(ratios):.3f}",
                    flush=True,
                )
            crypto = subprocess.run(
                [*manage, "bench_artifact_crypto", "--repeat", str(opts.crypto_repeat)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            print(crypto.stdout, flush=True)
    finally:
        shutil.rmtree(var, ignore_errors=True)
        print(f"load at end: {_uptime()}", flush=True)


if __name__ == "__main__":
    main()
