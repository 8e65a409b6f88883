"""Run ``manage.py bench_jobs --batch-sizes`` for one or more source trees, back to back,
each on a fresh database of one throwaway PostgreSQL, with one throwaway Redis as broker
(the micro-batching figures of docs/benchmarks.md).

    python -m tests.jobs.bench_jobs_run --tree before=/tmp/before --tree after=. \\
        [--batch-sizes 1,8 --runs 3 --jobs 16 --json-dir /tmp/bj]

Each tree runs with ``PYTHONPATH`` set to it (its own code, the shared venv) and its own
``STYLELEDGER_VAR_DIR`` in a temporary folder; a tree gets this tree's copy of the
command (which only uses the HTTP API and the job rows, present in both), so both are
measured and profiled alike. Each tree's rows and markdown block go to stdout as they come.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from tests.jobs.bench_trees import migrated_tree
from tests.services import postgres_server, redis_server

COMMAND = Path(__file__).resolve().parents[2] / (
    "editplatform/jobs/management/commands/bench_jobs.py"
)


def run_tree(label: str, tree: Path, admin_url: str, broker: str, opts) -> None:
    target = tree / "editplatform/jobs/management/commands/bench_jobs.py"
    if target.resolve() != COMMAND:
        shutil.copy(COMMAND, target)
    env, manage, var = migrated_tree(
        label, tree, admin_url, broker, "bench-jobs", PYTHONUNBUFFERED="1"
    )
    cmd = [
        *manage,
        "bench_jobs",
        "--batch-sizes",
        opts.batch_sizes,
        "--runs",
        str(opts.runs),
        "--jobs",
        str(opts.jobs),
        "--clients",
        str(opts.clients),
        "--torch-threads",
        "1",
    ]
    if opts.json_dir:
        Path(opts.json_dir).mkdir(parents=True, exist_ok=True)
        cmd += ["--json", str(Path(opts.json_dir) / f"{label}.json")]
    # streamed, not captured: a run cut short by a time limit still shows its rows
    subprocess.run(cmd, env=env, check=True, cwd=tree)
    shutil.rmtree(var, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", required=True, help="label=path")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--json-dir")
    opts = parser.parse_args()
    with postgres_server() as admin_url, redis_server() as broker:
        for spec in opts.tree:
            label, _, path = spec.partition("=")
            print(f"### {label} ({path})", flush=True)
            run_tree(label, Path(path).resolve(), admin_url, broker, opts)


if __name__ == "__main__":
    main()
