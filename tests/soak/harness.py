"""The soak: jobs from concurrent API clients through real services while faults are injected.

`python -m tests.soak --jobs N --clients C --workers W --load-seconds S` (docs/reliability.md).
It starts its own PostgreSQL and Redis (tests/soak/services.py: restartable), migrates,
starts gunicorn and W `celery worker` processes (`-A tests.soak.worker_app`), all on
127.0.0.1, then:

* C client threads submit N jobs through POST /api/v1/jobs with an API key, paced over
  the load window: plain edits, sensitive edits (computed, then held; scripted approvers
  in a process of their own, tests/soak/approver.py, approve the held outputs through the
  approvals service, which releases them), submits cancelled right after, duplicate
  submits (same Idempotency-Key, the client's retry) and bad uploads (must answer 400).
  A submit that fails (5xx, connection refused during a fault) is retried with the same
  Idempotency-Key, as a well-behaved client does; a job counts as accepted on 201/200.
* a fault schedule runs after a fault-free baseline (each at least once): SIGKILL a
  worker (a replacement starts); SIGSTOP a worker mid-job past its lease, then SIGCONT;
  restart Redis with persistence and without (queue lost); restart PostgreSQL (fast
  shutdown); artifact storage refuses writes; the audit checkpoint folder unwritable.
* beat's duties run as the deployment runs them (docker/compose.yml): a real `celery beat`
  sends the platform's periodic tasks (the sweeper, held-job expiry, the provenance mark
  sweep, the audit checkpoint with its re-export after the checkpoint folder comes back)
  every 2 s to the `default` queue, where one CPU worker of their own runs them; the edit
  workers take only `gpu`. None of it shares a process (a GIL) with the clients. A duty
  task that raises anything but a fault's error (database, broker, OSError) fails the run.

At the end (every job terminal, or the drain timeout) it stops everything and checks
(tests/soak/checks.py): all terminal, none lost, success at most once, complete event
chains (held -> approved -> released for sensitive jobs), `audit verify` with the
exported checkpoints as trusted, no missing or orphan artifacts; and prints
latency/throughput with and without faults. Exit 1 if a check fails. Bounded: --jobs,
--load-seconds, --drain-seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.soak.breakage import MODES, write_marker
from tests.soak.services import Postgres, Redis

ROOT = Path(__file__).resolve().parents[2]
FAULTS = (
    "sigkill",
    "sigstop",
    "redis_persistent",
    "redis_empty",
    "postgres",
    "storage",
    "checkpoint_dir",
)
LEASE_SECONDS = 6
DUTY_SECONDS = 2  # beat's period for every duty in the soak (production: 30 s to 5 min)
# what a duty task may raise while a fault is on (database, broker, checkpoint folder down)
FAULT_ERRORS = frozenset(
    {
        "OperationalError", "InterfaceError", "DatabaseError", "OSError", "IOError",
        "NotADirectoryError", "FileExistsError", "FileNotFoundError", "IsADirectoryError",
        "PermissionError", "ConnectionError", "ConnectionRefusedError",
        "ConnectionResetError", "BrokenPipeError", "TimeoutError", "RedisError",
        "BusyLoadingError", "RecoverableConnectionError", "ChannelError",
    }
)  # fmt: skip
RECOVERY_TAIL = 5.0  # seconds after a fault still counted as "during faults"


@dataclass
class Op:
    index: int
    kind: str  # plain | sensitive | cancel | duplicate | bad
    key: str
    seed: int
    job_id: str | None = None
    status: int | None = None
    submitted_at: float = 0.0
    latency_ms: float = 0.0
    tries: int = 0
    notes: list[str] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    from editplatform.jobs.management.commands.bench_jobs import _pct as pct

    return pct(values, q) if values else float("nan")


class Soak:
    def __init__(self, args, root: Path, pg: Postgres, redis: Redis):
        self.args, self.root, self.pg, self.redis = args, root, pg, redis
        self.port = None
        self.web: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.duties: dict[str, subprocess.Popen] = {}  # cpu worker, beat, approver
        self.approver_stop = root / "approver-stop"
        self.approver_errors = root / "approver-errors.jsonl"
        self.windows: list[tuple[str, float, float]] = []
        self.log_lines: list[str] = []
        self.storage_flag = root / "storage-refuses-writes"
        self.errors: list[str] = []
        self.harness_errors: list[str] = []
        self.resumed_runs: list[str] = []  # how each run resumed after SIGSTOP ended

    def say(self, text: str) -> None:
        line = f"[soak {time.strftime('%H:%M:%S')}] {text}"
        self.log_lines.append(line)
        print(line, flush=True)

    # --- processes --------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_web(self) -> None:
        from editplatform.jobs.management.commands.bench_jobs import _free_port

        self.port = _free_port()
        self.web = self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "editplatform.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "60",
            ],
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer /healthz")

    def start_worker(self) -> str:
        """An edit worker: the `gpu` queue only, like the deployment's GPU workers."""
        name = f"soak{len(self.workers)}-{uuid.uuid4().hex[:4]}"
        self.workers[name] = self._spawn(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.soak.worker_app",
                "worker",
                "-Q",
                "gpu",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--hostname",
                f"{name}@soak",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        return name

    def start_duties(self) -> None:
        """Beat's duties and the approvers, each in a process of its own (docker/compose.yml's
        `worker-cpu` and `beat`): the CPU worker on `default` runs what beat sends. Under
        ``--break redelivery`` beat's sweeper period is a day: no sweeper in the run."""
        self.duties["cpu"] = self._spawn(
            "cpu",
            [
                sys.executable, "-m", "celery", "-A", "tests.soak.worker_app", "worker",
                "-Q", "default", "--concurrency", "1", "--pool", "prefork",
                "--hostname", "cpu@soak", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle",
            ],
        )  # fmt: skip
        self.wait_worker_ready("cpu")
        sweep_every = "86400" if self.args.break_ == "redelivery" else str(DUTY_SECONDS)
        self.duties["beat"] = self._spawn(
            "beat",
            [
                sys.executable, "-m", "celery", "-A", "tests.soak.worker_app", "beat",
                "--loglevel", "INFO", "--schedule", str(self.root / "celerybeat-schedule"),
            ],
            env={"JOB_SWEEP_INTERVAL_SECONDS": sweep_every},
        )  # fmt: skip
        self.duties["approver"] = self._spawn(
            "approver",
            [
                sys.executable, "-m", "tests.soak.approver",
                "--approvers", ",".join(a.username for a in self.approvers),
                "--stop", str(self.approver_stop), "--errors", str(self.approver_errors),
            ],
        )  # fmt: skip

    def duty_errors(self) -> list[str]:
        """What beat's duties and the approvers raised that no fault explains: a duty task
        the CPU worker logged as raising another exception, an approver error, or a duty
        process that died during the run."""
        found = []
        if self.approver_errors.exists():
            found += [json.loads(line) for line in self.approver_errors.read_text().splitlines()]
        log = self.root / "cpu.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        for match in re.finditer(r"Task (\S+)\[[^\]]+\] raised unexpected: (\w+)\((.*)", text):
            if match.group(2) not in FAULT_ERRORS:
                found.append(f"beat task {match.group(1)}: {match.group(2)}({match.group(3)[:300]}")
        for name, proc in self.duties.items():
            if proc.poll() is not None:
                found.append(f"duty process {name} exited during the run ({proc.returncode})")
        return found

    def wait_worker_ready(self, name: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        log = self.root / f"{name}.log"
        proc = self.workers.get(name) or self.duties[name]
        while time.monotonic() < deadline:
            if log.exists() and "ready." in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                raise RuntimeError(
                    f"worker {name} exited: {log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.3)
        raise RuntimeError(f"worker {name} not ready in {timeout} s")

    def stop_all(self) -> None:
        """Warm shutdown: SIGTERM to each worker's main process only, so a run still in
        progress (e.g. the one resumed after SIGSTOP) finishes and commits, or is refused,
        before the checks; SIGKILL after 60 s."""
        self.approver_stop.touch()
        for proc in [*self.duties.values(), *self.workers.values(), self.web]:
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGCONT)
                if proc is self.web:
                    os.killpg(proc.pid, signal.SIGTERM)
                else:
                    os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass

    # --- HTTP client -------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, data
        finally:
            conn.close()

    def _multipart(self, op: Op) -> tuple[bytes, str]:
        from editplatform.jobs.management.commands.bench_jobs import _photo

        boundary = uuid.uuid4().hex
        edits = self.sensitive_edits if op.kind == "sensitive" else self.plain_edits
        image = b"this is not an image" if op.kind == "bad" else _photo(op.seed)
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in (
                ("edits", json.dumps(edits)),
                ("purpose", f"soak job {op.index}: reliability test"),
                ("consent", "true"),
            )
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + image
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        return b"".join(parts), f"multipart/form-data; boundary={boundary}"

    def _post_until_answered(
        self, path: str, body: bytes, headers: dict, op: Op
    ) -> tuple[int, dict]:
        """POST, retrying 5xx/connection errors (same Idempotency-Key) for up to 90 s."""
        deadline = time.monotonic() + 90
        while True:
            op.tries += 1
            try:
                status, data = self.request("POST", path, body, headers)
                if status < 500:
                    try:
                        return status, json.loads(data or b"{}")
                    except ValueError:
                        return status, {"raw": data[:200].decode(errors="replace")}
            except OSError:
                status = None
            if time.monotonic() > deadline:
                return status or 0, {}
            time.sleep(0.5 + random.random())

    def run_op(self, op: Op) -> None:
        wait = self.t0 + op.index * self.interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        body, ctype = self._multipart(op)
        headers = {
            "Authorization": f"Api-Key {self.api_key}",
            "Content-Type": ctype,
            "Idempotency-Key": op.key,
        }
        op.submitted_at = time.monotonic()
        started = time.perf_counter()
        status, data = self._post_until_answered("/api/v1/jobs", body, headers, op)
        op.latency_ms = (time.perf_counter() - started) * 1000
        op.status = status
        if op.kind == "bad":
            if not 400 <= status < 500 or status in (401, 403, 429):
                op.notes.append(f"bad upload answered {status}: {data}")
            return
        if status not in (200, 201):
            op.notes.append(f"submit answered {status}: {data}")
            return
        op.job_id = data["id"]
        if op.kind == "duplicate":
            status2, data2 = self._post_until_answered("/api/v1/jobs", body, headers, op)
            if status2 != 200 or data2.get("id") != op.job_id:
                op.notes.append(
                    f"duplicate submit answered {status2} {data2.get('id')} (first {op.job_id})"
                )
        if op.kind == "cancel":
            status3, data3 = self._post_until_answered(
                f"/api/v1/jobs/{op.job_id}/cancel",
                b"",
                {"Authorization": f"Api-Key {self.api_key}"},
                op,
            )
            if status3 not in (200, 202, 409):
                op.notes.append(f"cancel answered {status3}: {data3}")

    # --- faults -------------------------------------------------------------------------

    def running_worker(self, timeout: float = 30) -> tuple[str, str | None, str | None]:
        """A live worker in the middle of a job: (worker, job id, lease id); else any live
        worker."""
        from django.db import close_old_connections

        from editplatform.jobs.models import EditJob

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            close_old_connections()
            running = EditJob.objects.filter(state="running").values_list(
                "worker", "pk", "lease_id"
            )
            for host, pk, lease in running:
                name = host.split("@", 1)[0]
                if name in self.workers and self.workers[name].poll() is None:
                    return name, str(pk), str(lease)
            time.sleep(0.1)
        return next(n for n, p in self.workers.items() if p.poll() is None), None, None

    def wait_taken_over(self, job_id: str | None, lease: str | None, cap: float = 90) -> None:
        """Past the lease, and until another worker holds (or finished) the stopped worker's job."""
        from django.db import close_old_connections

        from editplatform.jobs.models import EditJob

        time.sleep(LEASE_SECONDS + 2)
        deadline = time.monotonic() + cap
        while job_id and time.monotonic() < deadline:
            close_old_connections()
            now = EditJob.objects.filter(pk=job_id).values_list("lease_id", "state").first()
            if now is None or str(now[0]) != lease:
                self.say(f"  job {job_id} taken over (now {now[1] if now else '?'})")
                return
            time.sleep(0.5)

    def wait_resumed_run_ends(self, log: Path, offset: int, cap: float = 60) -> str:
        """Until the worker resumed after SIGSTOP has finished the run it was stopped in
        (Celery logs the task's end and return value), so that run has committed or been
        refused before the soak's end; its return value (``'superseded'`` when the lease
        fence refused it) goes into the report."""
        from editplatform.jobs.worker_hooks import RUN_EDIT_JOB

        pattern = re.compile(
            rf"Task {re.escape(RUN_EDIT_JOB)}\[[^\]]+\] "
            r"(succeeded in [^:]*: (.*)|raised .*|retry: .*)"
        )
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            with open(log, "rb") as handle:
                handle.seek(offset)
                found = pattern.search(handle.read().decode(errors="replace"))
            if found:
                return found.group(2) or found.group(1)[:200]
            time.sleep(0.5)
        return f"not within {cap:.0f} s"

    def fault(self, kind: str) -> None:
        start = time.monotonic()
        self.say(f"fault {kind}: begin")
        if kind == "sigkill":
            name, _job, _lease = self.running_worker()
            os.killpg(self.workers[name].pid, signal.SIGKILL)
            self.workers[name].wait()
            self.say(f"  SIGKILL {name}; starting a replacement")
            self.wait_worker_ready(self.start_worker())
        elif kind == "sigstop":
            name, job_id, lease = self.running_worker(timeout=60)
            if job_id is None:
                self.errors.append("sigstop: no worker was running a job to stop mid-job")
            os.killpg(self.workers[name].pid, signal.SIGSTOP)
            self.say(f"  SIGSTOP {name} (running job {job_id}) past its lease ({LEASE_SECONDS} s)")
            self.wait_taken_over(job_id, lease)
            log = self.root / f"{name}.log"
            offset = log.stat().st_size if log.exists() else 0
            os.killpg(self.workers[name].pid, signal.SIGCONT)
            self.resumed_runs.append(self.wait_resumed_run_ends(log, offset))
            self.say(f"  resumed {name}: its run ended {self.resumed_runs[-1]}")
        elif kind in ("redis_persistent", "redis_empty"):
            self.redis.stop(persistent=kind == "redis_persistent")
            time.sleep(3)
            self.redis.start()
        elif kind == "postgres":
            self.pg.stop("fast")
            time.sleep(3)
            self.pg.start()
        elif kind == "storage":
            self.storage_flag.touch()
            time.sleep(8)
            self.storage_flag.unlink()
        elif kind == "checkpoint_dir":
            folder = Path(os.environ["AUDIT_CHECKPOINT_DIR"])
            away = folder.with_name(folder.name + ".away")
            folder.rename(away)
            folder.write_text(
                "the checkpoint folder is unavailable (soak fault)\n"
            )  # a file: nothing can be written
            time.sleep(8)
            folder.unlink()
            away.rename(folder)
        self.windows.append((kind, start, time.monotonic()))
        self.say(f"fault {kind}: end after {time.monotonic() - start:.1f} s")

    def fault_schedule(self, faults: list[str]) -> None:
        time.sleep(self.args.load_seconds * 0.2)  # the baseline: no faults
        gap = fault_gap(self.args.load_seconds, len(faults))
        for kind in faults:
            try:
                self.fault(kind)
            except Exception:
                self.errors.append(
                    f"fault {kind} could not be injected: {traceback.format_exc()[-600:]}"
                )
                self.say(self.errors[-1])
            time.sleep(gap)

    # --- the run --------------------------------------------------------------------------

    def setup_accounts(self) -> None:
        from django.contrib.auth import get_user_model

        from editplatform.accounts.roles import APPROVER, INTEGRATION, ensure_groups
        from editplatform.accounts.services import create_api_key
        from editplatform.approvals.services import required_approvals
        from editplatform.jobs import engine

        groups = ensure_groups()
        users = get_user_model().objects
        client = users.create_user(username=f"soak-client-{uuid.uuid4().hex[:4]}")
        client.groups.add(groups[INTEGRATION.name])
        _key, self.api_key = create_api_key(
            client, name="soak", scopes=["jobs:read", "jobs:write"], jobs_per_hour=1_000_000
        )
        self.approvers = []
        for i in range(required_approvals()):
            approver = users.create_user(username=f"soak-approver-{i}")
            approver.groups.add(groups[APPROVER.name])
            self.approvers.append(approver)
        catalog = engine.get_catalog().catalog
        plain = next(s for s in catalog if not s.sensitive)
        sensitive = next((s for s in catalog if s.sensitive), None)
        self.plain_edits = {plain.name: plain.default_strength or plain.max_strength / 2}
        self.sensitive_edits = (
            {sensitive.name: sensitive.default_strength or sensitive.max_strength / 2}
            if sensitive
            else self.plain_edits
        )

    def plan(self) -> list[Op]:
        return plan_ops(self.args)

    def run(self) -> dict:
        self.setup_accounts()
        self.start_web()
        names = [self.start_worker() for _ in range(self.args.workers)]
        for name in names:
            self.wait_worker_ready(name)
        self.start_duties()
        self.say(f"web on 127.0.0.1:{self.port}, {len(names)} workers, beat and approvers ready")
        self.warm_up()
        ops = self.plan()
        self.interval = self.args.load_seconds / max(1, len(ops))
        self.t0 = time.monotonic()
        faults = [f for f in self.args.faults.split(",") if f]
        injector = threading.Thread(target=self.fault_schedule, args=(faults,), daemon=True)
        injector.start()
        with ThreadPoolExecutor(self.args.clients) as pool:
            list(pool.map(self.run_op, ops))
        self.load_end = time.monotonic()
        injector.join()
        accepted = {op.job_id: {"kind": op.kind} for op in ops if op.job_id}
        drained = self.drain(list(accepted))
        self.harness_errors += self.duty_errors()  # before stop_all ends the duty processes
        self.stop_all()
        return self.verdict(ops, accepted, drained)

    def warm_up(self) -> None:
        """Load every gunicorn worker's code paths before the clock starts."""
        headers = {"Authorization": f"Api-Key {self.api_key}"}
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(lambda _: self.request("GET", "/api/v1/jobs", headers=headers), range(16))
            )

    def drain(self, job_ids: list[str]) -> bool:
        from django.db import close_old_connections

        from editplatform.jobs.models import EditJob
        from editplatform.jobs.states import TERMINAL

        deadline = time.monotonic() + self.args.drain_seconds
        while time.monotonic() < deadline:
            try:
                close_old_connections()
                left = (
                    EditJob.objects.filter(pk__in=job_ids).exclude(state__in=list(TERMINAL)).count()
                )
            except Exception:
                left = -1
            if left == 0:
                self.say("every accepted job is terminal")
                return True
            time.sleep(1)
        self.say("drain timeout: jobs left unfinished")
        return False

    # --- verdict ----------------------------------------------------------------------------

    def during_fault(self, t: float) -> bool:
        return any(start <= t <= end + RECOVERY_TAIL for _, start, end in self.windows)

    def verdict(self, ops: list[Op], accepted: dict, drained: bool) -> dict:
        from django.utils import timezone

        from editplatform.jobs.models import EditJob
        from tests.soak.checks import audit_check, job_checks, storage_check

        # submits that never got an answer (the client gave up during a fault): a job the
        # server stored for them is no duplicate
        unanswered = frozenset(op.key for op in ops if not op.status or op.status >= 500)
        problems, job_counts = job_checks(accepted, unanswered)
        try:  # beat's last round: sign and export the log's final head for the witness
            from audit.tasks import checkpoint

            checkpoint()
        except Exception:
            self.harness_errors.append(f"final checkpoint: {traceback.format_exc()[-1500:]}")
        witnessed = self.root / "witnessed-checkpoints.jsonl"
        export = Path(os.environ["AUDIT_CHECKPOINT_DIR"]) / "checkpoints.jsonl"
        if export.exists():
            shutil.copy(export, witnessed)
        problems["audit verify (exported checkpoints trusted)"], audit = audit_check(witnessed)
        problems["no missing or orphan artifacts"], storage = storage_check()
        client_notes = [f"op {op.index} ({op.kind}): {note}" for op in ops for note in op.notes]
        problems["clients got the answers they should"] = client_notes
        problems["every fault injected"] = list(self.errors)
        problems["harness ran without errors"] = list(self.harness_errors)

        # Figures: wall-clock of this process mapped to the database's clock through t0.
        wall0 = timezone.now().timestamp() - (time.monotonic() - self.t0)
        jobs = {str(j.pk): j for j in EditJob.objects.filter(pk__in=list(accepted))}
        lat = {True: [], False: []}
        q2s = {True: [], False: []}
        for op in ops:
            if op.job_id and op.kind != "bad":
                lat[self.during_fault(op.submitted_at)].append(op.latency_ms)
        finished = {True: 0, False: 0}
        for job in jobs.values():
            if job.queued_at and job.started_at:
                t = job.queued_at.timestamp() - wall0 + self.t0
                q2s[self.during_fault(t)].append(job.queue_to_start_seconds() * 1000)
            if job.finished_at:
                t = job.finished_at.timestamp() - wall0 + self.t0
                if t <= self.load_end:
                    finished[self.during_fault(t)] += 1
        fault_seconds = sum(
            min(end + RECOVERY_TAIL, self.load_end) - start for _, start, end in self.windows
        )
        quiet_seconds = max(1e-9, (self.load_end - self.t0) - fault_seconds)
        figures = {
            "submit_ms": {
                k: {"n": len(v), "p50": _pct(v, 0.5), "p99": _pct(v, 0.99)}
                for k, v in (("faults", lat[True]), ("no_faults", lat[False]))
            },
            "queue_to_start_ms": {
                k: {"n": len(v), "p50": _pct(v, 0.5), "p99": _pct(v, 0.99)}
                for k, v in (("faults", q2s[True]), ("no_faults", q2s[False]))
            },
            "throughput_jobs_per_s": {
                "faults": finished[True] / max(1e-9, fault_seconds),
                "no_faults": finished[False] / quiet_seconds,
            },
            "attempts_mean": statistics.mean([j.attempts for j in jobs.values()]) if jobs else 0,
            # released outputs without their provenance-marked copy (marking is retried by
            # the mark sweep; a figure, not a check of this soak)
            "released_unmarked": sum(
                1
                for j in jobs.values()
                if j.state == "succeeded" and j.edited_id and not j.marked_id
            ),
            "submit_retries": sum(op.tries - 1 for op in ops),
        }
        checks = {
            name: {"ok": not found, "problems": found[:20], "count": len(found)}
            for name, found in problems.items()
        }
        report = {
            "ok": drained and all(c["ok"] for c in checks.values()),
            "drained": drained,
            "jobs_planned": len(ops),
            "ops_by_kind": {
                k: sum(op.kind == k for op in ops)
                for k in ("plain", "sensitive", "cancel", "duplicate", "bad")
            },
            "accepted": len(accepted),
            "job_states": job_counts["states"],
            "failed_by_code": job_counts["failed_by_code"],
            "faults": [{"kind": k, "seconds": round(e - s, 1)} for k, s, e in self.windows],
            "checks": checks,
            "audit": audit,
            "storage": storage,
            "figures": figures,
            "load_seconds": round(self.load_end - self.t0, 1),
            "break": self.args.break_ or "",
            "sigstop_resumed_runs": list(self.resumed_runs),
        }
        return report


def plan_ops(args) -> list[Op]:
    """The N operations, their kinds drawn from the seed (each kind at least once)."""
    rng = random.Random(args.seed)
    kinds = ["plain"] * 60 + ["sensitive"] * 15 + ["cancel"] * 10 + ["duplicate"] * 10 + ["bad"] * 5
    ops = [
        Op(i, rng.choice(kinds), f"soak-{args.seed}-{i}-{uuid.uuid4().hex[:8]}", 1000 + i)
        for i in range(args.jobs)
    ]
    for kind, i in zip(("sensitive", "cancel", "duplicate", "bad"), range(4), strict=True):
        if i < len(ops):
            ops[i].kind = kind  # each kind at least once
    return ops


def fault_gap(load_seconds: float, faults: int) -> float:
    """Seconds between the end of one fault and the start of the next (a fault lasts ~8 s)."""
    return max(2.0, (load_seconds * 0.75) / max(1, faults) - 8)


def dry_run(args) -> dict:
    """What a run with these arguments would do, without starting anything."""
    ops = plan_ops(args)
    faults = [f for f in args.faults.split(",") if f]
    return {
        "jobs": args.jobs,
        "ops_by_kind": {
            k: sum(op.kind == k for op in ops)
            for k in ("plain", "sensitive", "cancel", "duplicate", "bad")
        },
        "clients": args.clients,
        "workers": args.workers,
        "load_seconds": args.load_seconds,
        "submit_every_seconds": round(args.load_seconds / max(1, args.jobs), 3),
        "drain_seconds": args.drain_seconds,
        "faults": faults,
        "first_fault_at_seconds": round(args.load_seconds * 0.2, 1),
        "seconds_between_faults": round(fault_gap(args.load_seconds, len(faults)), 1),
        "progress_delay_ms": args.progress_delay_ms,
        "break": args.break_ or "",
        "report": str(Path(args.report).resolve()) if args.report else None,
    }


def print_report(report: dict) -> None:
    print("\n=== soak report ===")
    print(
        f"jobs planned {report['jobs_planned']} {report['ops_by_kind']}, accepted "
        f"{report['accepted']}, states {report['job_states']}, failed by code "
        f"{report['failed_by_code']}"
    )
    print("faults: " + ", ".join(f"{f['kind']} ({f['seconds']} s)" for f in report["faults"]))
    for name, check in report["checks"].items():
        print(
            f"  [{'PASS' if check['ok'] else 'FAIL'}] {name}"
            + (
                ""
                if check["ok"]
                else f": {check['count']} problem(s), e.g. {check['problems'][:3]}"
            )
        )
    print(f"  audit: {report['audit'].get('summary', '')}")
    f = report["figures"]
    for name in ("submit_ms", "queue_to_start_ms"):
        a, b = f[name]["no_faults"], f[name]["faults"]
        print(
            f"  {name}: no faults p50 {a['p50']:.0f} / p99 {a['p99']:.0f} (n={a['n']}); "
            f"during faults p50 {b['p50']:.0f} / p99 {b['p99']:.0f} (n={b['n']})"
        )
    t = f["throughput_jobs_per_s"]
    print(
        f"  throughput: {t['no_faults']:.2f} jobs/s without faults, {t['faults']:.2f} during "
        f"faults; attempts per job {f['attempts_mean']:.2f}; submit retries {f['submit_retries']}"
    )
    print(
        f"  released outputs not yet marked: {f.get('released_unmarked', 0)}; runs resumed "
        f"after SIGSTOP ended: {report.get('sigstop_resumed_runs', [])}"
    )
    print("RESULT: " + ("PASS" if report["ok"] else "FAIL"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--load-seconds", type=float, default=100, help="submissions are spread over this"
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=180, help="then wait at most this for terminal"
    )
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated, from {','.join(FAULTS)}"
    )
    parser.add_argument(
        "--progress-delay-ms", type=int, default=0, help="slows each job (see worker_app)"
    )
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--break",
        dest="break_",
        choices=sorted(MODES),
        help="TEST ONLY: run a deliberately broken build (tests/soak/breakage.py); the soak "
        "must then FAIL",
    )
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs) afterwards")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the arguments and print the plan (jobs by kind, fault schedule); start nothing",
    )
    args = parser.parse_args(argv)
    unknown = set(args.faults.split(",")) - set(FAULTS) - {""}
    if unknown:
        parser.error(f"unknown fault(s) {sorted(unknown)}")
    for name in ("jobs", "clients", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.load_seconds <= 0 or args.drain_seconds <= 0:
        parser.error("--load-seconds and --drain-seconds must be positive")
    if args.report:
        # fail now, not after a 50-minute run: the report's folder must exist and be writable
        report = Path(args.report).resolve()
        report.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(report.parent, os.W_OK):
            parser.error(f"cannot write the report to {report.parent}")
    if args.dry_run:
        print(json.dumps(dry_run(args), indent=2))
        return 0
    if os.environ.pop("SOAK_BREAK", None) and not args.break_:
        print("[soak] SOAK_BREAK in the environment ignored: only --break breaks a build")
    os.environ.pop("SOAK_BREAK_MARKER", None)

    root = Path(tempfile.mkdtemp(prefix="styleledger-soak-"))
    pg = redis = None
    try:
        pg, redis = Postgres(root), Redis(root)
        os.environ.update(
            {
                "DATABASE_URL": pg.url,
                "CELERY_BROKER_URL": redis.url,
                "REDIS_URL": redis.url,
                "STYLELEDGER_VAR_DIR": str(root / "var"),
                "STORAGE_ROOT": str(root / "storage"),
                "AUDIT_CHECKPOINT_DIR": str(root / "checkpoints"),
                "AUDIT_CHECKPOINT_EVERY": "50",
                "AUDIT_CHECKPOINT_SECONDS": str(DUTY_SECONDS),
                "PROVENANCE_SWEEP_SECONDS": str(DUTY_SECONDS),
                "JOB_SWEEP_INTERVAL_SECONDS": str(DUTY_SECONDS),
                "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
                "JOB_REQUEUE_AFTER_SECONDS": "20",
                "JOB_TORCH_THREADS": "1",
                "DJANGO_SETTINGS_MODULE": "editplatform.settings",
                "TEST_PROGRESS_DELAY_MS": str(args.progress_delay_ms),
                "SOAK_STORAGE_FAULT": str(root / "storage-refuses-writes"),
                "PYTHONUNBUFFERED": "1",
                "STYLELEDGER_ENV": os.environ.get("STYLELEDGER_ENV", "development"),
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
            }
        )
        if args.break_:
            os.environ["SOAK_BREAK"] = args.break_
            os.environ["SOAK_BREAK_MARKER"] = str(write_marker(root, args.break_, pg.url))
            print(f"[soak] DELIBERATELY BROKEN BUILD ({args.break_}): {MODES[args.break_]}")
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if not (Path(settings.MODEL_BUNDLE) / "manifest.json").exists():
            from inversion.bundle import build_random_bundle

            build_random_bundle(Path(settings.MODEL_BUNDLE), preset="tiny", seed=0)
        soak = Soak(args, root, pg, redis)
        try:
            report = soak.run()
        finally:
            soak.stop_all()
        report["run_folder"] = str(root)
        print_report(report)
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
        return 0 if report["ok"] else 1
    finally:
        if "django.db" in sys.modules and os.environ.get("DJANGO_SETTINGS_MODULE"):
            from django.db import connections

            connections.close_all()
        if redis is not None:
            redis.close()
        if pg is not None:
            pg.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
