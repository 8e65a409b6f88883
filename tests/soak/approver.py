"""The soak's scripted approvers, in a process of their own.

`python -m tests.soak.approver --approvers soak-approver-0,... --stop FILE --errors FILE`
(started by tests/soak/harness.py with the run's environment). Every second it approves
every held job on the outputs it holds now, as each approver in turn, until FILE exists.

Why a process: in the harness's own process the approver shared the GIL with the 16
client threads, and under load a round took minutes (80 held jobs were never reached in
the first full-size run). A round that meets a fault (database down) is retried next
second; any other exception is a bug in the harness or the platform: it is appended to
the errors file (one JSON string a line), which fails the run's "harness ran without
errors" check.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path


def approve_held(approvers) -> int:
    """Approve every held job bound to the hash of its parameters and of its held outputs,
    as a human would after looking at them. Only held jobs are decided. A 409 "conflict"
    (already decided by this approver, or the job moved on meanwhile) is expected; any
    other refusal is not. Returns how many jobs left the held state."""
    from editplatform.approvals import services as approvals
    from editplatform.core.errors import DomainError
    from editplatform.jobs.models import EditJob
    from editplatform.jobs.states import HELD

    released = 0
    for job in EditJob.objects.filter(state=HELD, held_at__isnull=False):
        for approver in approvers:
            try:
                job = approvals.approve(
                    job,
                    approver,
                    params_sha256=approvals.current_params_sha256(job),
                    outputs_sha256=approvals.current_outputs_sha256(job),
                    comment="soak",
                )
            except DomainError as exc:
                if getattr(exc, "code", None) != "conflict":
                    raise
            if job.state != HELD:
                released += 1
                break
    return released


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.approver")
    parser.add_argument("--approvers", required=True, help="comma-separated usernames")
    parser.add_argument("--stop", required=True, help="stop once this file exists")
    parser.add_argument("--errors", required=True, help="append unexpected errors here")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import Error as DatabaseError
    from django.db import close_old_connections, connection

    names = args.approvers.split(",")
    users = get_user_model().objects
    approvers = sorted(users.filter(username__in=names), key=lambda u: names.index(u.username))
    stop, errors = Path(args.stop), Path(args.errors)
    while not stop.exists():
        try:
            close_old_connections()
            released = approve_held(approvers)
            if released:
                print(f"[approver {time.strftime('%H:%M:%S')}] released {released}", flush=True)
        except (DatabaseError, OSError) as exc:  # a fault: the database is down right now
            print(f"[approver] round failed ({type(exc).__name__}: {str(exc)[:120]})", flush=True)
            connection.close()
        except Exception:
            with errors.open("a") as handle:
                handle.write(json.dumps(f"approver: {traceback.format_exc()[-1500:]}") + "\n")
            connection.close()
        time.sleep(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
