"""Run ``manage.py bench_submit`` for one or more source trees, back to back, each on a
fresh database of one throwaway PostgreSQL, with one throwaway Redis as broker.

    python -m tests.jobs.bench_submit --tree before=/tmp/before --tree after=. \\
        [--submits 20 --requests 48 --clients 8 --profile-dir /tmp/prof]

Each tree runs with ``PYTHONPATH`` set to it (its own code, the shared venv) and its own
``STYLELEDGER_VAR_DIR`` (artifact storage, keys) in a temporary folder. A tree without
the command (the branch point) gets this tree's copy of it, which only calls
``services.submit`` and the HTTP API, both present there. Prints one JSON object per tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.jobs.bench_trees import migrated_tree
from tests.services import postgres_server, redis_server

COMMAND = Path(__file__).resolve().parents[2] / (
    "editplatform/jobs/management/commands/bench_submit.py"
)


def run_tree(label: str, tree: Path, admin_url: str, broker: str, opts) -> dict:
    target = tree / "editplatform/jobs/management/commands/bench_submit.py"
    if not target.exists():
        shutil.copy(COMMAND, target)
    env, manage, var = migrated_tree(label, tree, admin_url, broker, "bench-submit")
    cmd = [
        *manage,
        "bench_submit",
        "--json",
        "--submits",
        str(opts.submits),
        "--requests",
        str(opts.requests),
        "--clients",
        str(opts.clients),
    ]
    if opts.profile_dir:
        cmd += ["--profile", str(Path(opts.profile_dir) / f"{label}.prof")]
    if opts.no_http:
        cmd.append("--no-http")
    out = subprocess.run(cmd, env=env, check=True, cwd=tree, capture_output=True, text=True)
    sys.stderr.write(out.stderr)
    shutil.rmtree(var, ignore_errors=True)
    text = out.stdout
    return json.loads(text[text.index("{") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", required=True, help="label=path")
    parser.add_argument("--submits", type=int, default=20)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--profile-dir")
    parser.add_argument("--no-http", action="store_true")
    opts = parser.parse_args()
    with postgres_server() as admin_url, redis_server() as broker:
        for spec in opts.tree:
            label, _, path = spec.partition("=")
            figures = run_tree(label, Path(path).resolve(), admin_url, broker, opts)
            figures["load_average"] = [round(v, 2) for v in os.getloadavg()]
            print(json.dumps({label: figures}, indent=1), flush=True)


if __name__ == "__main__":
    main()
