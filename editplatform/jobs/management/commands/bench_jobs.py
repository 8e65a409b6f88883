"""Benchmark edit jobs end to end: HTTP submit latency, queue-to-start, throughput.

Uses the configured database, broker and model bundle (run it on PostgreSQL + Redis
for meaningful figures). It starts its own gunicorn on a free loopback port and its
own `celery worker` processes on the `gpu` queue, so nothing else should consume that
queue meanwhile. Measures:

1. API submit latency (POST /api/v1/jobs, multipart, signed-in session) under C concurrent
   clients, p50/p99; no worker runs, so the submitted jobs pile up in the queue;
2. throughput: those jobs drained by 1 worker process, then a second batch by 2;
3. queue-to-start latency (job entered `queued` -> a worker claimed it) with idle,
   warm workers, one job at a time, p50/p99.

Writes a markdown block to stdout (and --markdown FILE to replace our section).
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from editplatform.accounts.roles import REQUESTER, ensure_groups
from editplatform.jobs import engine
from editplatform.jobs.benchmarking import web
from editplatform.jobs.benchmarking.web import free_port as _free_port  # noqa: F401 - soak uses it
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import TERMINAL, State

SECTION = "## Edit jobs (Redis, real workers)"
PLAINTEXT_SETTINGS = "editplatform.jobs.management.bench_plaintext_settings"
BATCH_SECTION = "## Edit jobs: micro-batching workers (Redis, real workers)"


def _worker_name(log: str) -> str | None:
    """The node name in a celery worker's start banner (``-------------- name v5...``)."""
    for line in log.splitlines():
        if "-------------- " in line and "@" in line:
            return line.split("-------------- ", 1)[1].split()[0]
    return None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def _photo(seed: int) -> bytes:
    """A 256x256 JPEG catalogue photo (a held-out Fashion-MNIST item on a dark canvas):
    what the shipped demo model is for, so a benchmarked job runs the whole pipeline
    (random noise would stop at alignment: no subject)."""
    import io

    import numpy as np

    from inversion.align.synthetic import catalogue_photo
    from inversion.training.data import FASHION_FILES, ensure_fashion_mnist, read_idx

    items = read_idx(ensure_fashion_mnist() / FASHION_FILES["test"][0])
    rng = np.random.default_rng(seed)
    photo = catalogue_photo(items[seed % len(items)], rng, (256, 256), jpeg=False)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


STAGES = (
    "load",
    "align",
    "model",
    "invert",
    "edit",
    "paste_back",
    "domain",
    "encode",
    "store",
    "commit",
    "total",
)


def _stage_means(jobs) -> dict:
    """Mean seconds per job of each pipeline stage in the jobs' ``timings`` (the batched
    model pass, shared by ``batch`` jobs, counts 1/batch per job; likewise the per-batch
    stages a batch runs once). A batched job's ``total`` is the time from its batch's start
    to its own result, not a share of anything: it is left out (the sum of the stages is
    the per-job pipeline figure to compare)."""
    out = {}
    for stage in STAGES:
        values = []
        for j in jobs:
            t = j.timings or {}
            if stage == "total" and t.get("batch", 1) > 1:
                continue
            if stage in t:
                shared = stage in ("model", "store", "commit") and t.get("batch", 1)
                values.append(t[stage] / (shared or 1))
        if values:
            out[stage] = statistics.mean(values)
    return out


class Command(BaseCommand):
    help = "Benchmark job submission, queue-to-start latency and worker throughput."

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=24, help="jobs per throughput batch")
        parser.add_argument("--clients", type=int, default=8, help="concurrent API clients")
        parser.add_argument(
            "--latency-jobs", type=int, default=20, help="single jobs for queue-to-start"
        )
        parser.add_argument(
            "--torch-threads", type=int, default=1, help="torch threads per worker process"
        )
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--batch-sizes",
            default="",
            help="e.g. 1,8: throughput only, one worker per JOB_BATCH_SIZE, then 2 workers at "
            "the first size, all in this run (ratios against the first)",
        )
        parser.add_argument("--runs", type=int, default=1, help="repeat the --batch-sizes runs")
        parser.add_argument("--markdown", help="replace our section of this markdown file")
        parser.add_argument(
            "--plaintext-artifacts",
            action="store_true",
            help="web server and workers store artifacts unencrypted (benchmark baseline "
            "for the cost of encryption; bench_plaintext_settings)",
        )
        parser.add_argument("--json", help="also write the --batch-sizes figures to this file")

    def handle(self, *args, **opts):
        if settings.EMBEDDED_BROKER:
            self.stderr.write(
                "warning: embedded filesystem broker; the figures will not represent Redis"
            )
        if not (Path(settings.MODEL_BUNDLE) / "manifest.json").exists():
            raise CommandError(f"no model bundle at {settings.MODEL_BUNDLE}")
        if opts["plaintext_artifacts"]:  # the children inherit it (this process stores nothing)
            os.environ["DJANGO_SETTINGS_MODULE"] = PLAINTEXT_SETTINGS
        password = secrets.token_urlsafe(16)
        username = f"bench-{uuid.uuid4().hex[:6]}"
        user = get_user_model().objects.create_user(username=username, password=password)
        user.groups.add(ensure_groups()[REQUESTER.name])
        self.username, self.password = username, password
        self._local = threading.local()
        self.children: list[subprocess.Popen] = []
        try:
            self.base = web.start_gunicorn(self._spawn, opts["web_workers"])
            if opts["batch_sizes"]:
                runs = self._run_batches(opts)
                if opts["json"]:
                    Path(opts["json"]).write_text(
                        json.dumps(
                            [{f"{w}w b{b}": v for (w, b), v in row.items()} for row in runs],
                            indent=1,
                        )
                    )
                text = self._markdown_batches(runs, opts)
            else:
                text = self._markdown(self._run(opts), opts)
        finally:
            self._stop_all()
        self.stdout.write(text)
        if opts["markdown"]:
            self._write_section(Path(opts["markdown"]), text)

    # -- phases ----------------------------------------------------------------------

    def _run(self, opts) -> dict:
        n = opts["jobs"]
        self.stdout.write(f"submitting {n} jobs with {opts['clients']} concurrent clients ...")
        self._submit_batch(
            2 * opts["clients"], opts["clients"], seed=50_000
        )  # warm every web worker
        single_ms = [
            self._submit_one(60_000 + i)[0] for i in range(10)
        ]  # one client, for reference
        submit_ms, batch1 = self._submit_batch(n, opts["clients"], seed=1)
        batch1 += self._recent_queued(exclude=batch1)
        one = self._drain(batch1, workers=1, threads=opts["torch_threads"])
        _, batch2 = self._submit_batch(n, opts["clients"], seed=10_000)
        two = self._drain(batch2, workers=2, threads=opts["torch_threads"], keep=True)
        q2s = []
        for i in range(opts["latency_jobs"]):
            job_id = self._submit_one(20_000 + i)[1]
            job = self._wait_done([job_id])[0]
            q2s.append(job.queue_to_start_seconds() * 1000)
        self._stop_workers()
        return {
            "submit_ms": submit_ms,
            "single_ms": single_ms,
            "one": one,
            "two": two,
            "q2s_ms": q2s,
        }

    def _run_batches(self, opts) -> list[dict]:
        """Throughput per configuration, ``--runs`` times: each configuration drains its
        own freshly submitted jobs (no worker runs while they are submitted, so a batching
        worker finds them all queued)."""
        sizes = [int(x) for x in opts["batch_sizes"].split(",") if x.strip()]
        configs = [(1, b) for b in sizes] + [(2, sizes[0])]
        self._submit_batch(2 * opts["clients"], opts["clients"], seed=50_000)  # warm-up
        warm = self._recent_queued(exclude=[])
        self._drain(warm, workers=1, threads=opts["torch_threads"])
        runs = []
        for r in range(opts["runs"]):
            row = {}
            for workers, batch in configs:
                _, ids = self._submit_batch(opts["jobs"], opts["clients"], seed=100_000 * (r + 1))
                row[(workers, batch)] = self._drain(
                    ids, workers=workers, threads=opts["torch_threads"], batch=batch
                )
                got = row[(workers, batch)]
                self.stdout.write(
                    f"run {r + 1}: {workers} worker(s), batch {batch}: "
                    f"{got['jobs_per_s']:.3f} jobs/s ({got['jobs']} jobs in "
                    f"{got['seconds']:.2f} s; load {os.getloadavg()[0]:.1f}); stages s/job: "
                    + ", ".join(f"{k} {v:.4f}" for k, v in got["stages"].items())
                )
            runs.append(row)
        return runs

    def _recent_queued(self, exclude) -> list[str]:
        """Warm-up and single-client jobs: drained with the first batch (not timed apart)."""
        return [
            str(pk)
            for pk in EditJob.objects.filter(requester__username=self.username, state="queued")
            .exclude(pk__in=exclude)
            .values_list("pk", flat=True)
        ]

    def _edits(self) -> dict[str, float]:
        """One edit that needs no approval, at its recommended strength, from the loaded catalog."""
        spec = next((spec for spec in engine.get_catalog().catalog if not spec.sensitive), None)
        if spec is None:
            raise CommandError("the model bundle's catalog has no edit that runs without approval")
        return {spec.name: spec.default_strength or spec.max_strength / 2}

    def _submit_one(self, seed: int) -> tuple[float, str]:
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (
            ("edits", json.dumps(self._edits())),
            ("purpose", "benchmark job: throughput"),
            ("consent", "true"),
        ):
            parts.append(
                (
                    f"--{boundary}\r\n"
                    f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                ).encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + _photo(seed)
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        opener, csrf = self._session()
        request = urllib.request.Request(
            self.base + "/api/v1/jobs",
            data=b"".join(parts),
            method="POST",
            headers={
                "X-CSRFToken": csrf,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        start = time.perf_counter()
        with opener.open(request, timeout=60) as response:
            body = json.loads(response.read())
        return (time.perf_counter() - start) * 1000, body["id"]

    def _session(self):
        """A signed-in session per client thread (session auth, as the portal's JS uses).

        HTTP Basic would re-hash the password (PBKDF2) on every request and measure the
        hasher, not the submit path; API keys (hashed with SHA-256) come later.
        """
        import http.cookiejar
        import urllib.parse

        local = self._local
        if getattr(local, "opener", None) is None:
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            opener.open(self.base + "/login/", timeout=30).read()
            csrf = next(c.value for c in jar if c.name == "csrftoken")
            form = urllib.parse.urlencode(
                {"username": self.username, "password": self.password, "csrfmiddlewaretoken": csrf}
            ).encode()
            opener.open(
                urllib.request.Request(self.base + "/login/", data=form, method="POST"), timeout=30
            ).read()
            local.opener, local.csrf = opener, next(c.value for c in jar if c.name == "csrftoken")
        return local.opener, local.csrf

    def _submit_batch(self, n: int, clients: int, seed: int) -> tuple[list[float], list[str]]:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(self._submit_one, range(seed, seed + n)))
        return [r[0] for r in results], [r[1] for r in results]

    def _drain(
        self, job_ids, workers: int, threads: int, keep: bool = False, batch: int = 1
    ) -> dict:
        self._stop_workers()
        self._start_workers(workers, threads, batch=batch)
        self._release_workers()
        jobs = self._wait_done(job_ids)
        if not keep:
            self._stop_workers()
        # held for approval (the domain gate found the photo out of domain): computed all
        # the same, so it counts; anything else did not run through
        bad = [j for j in jobs if j.state not in ("succeeded", "awaiting_approval")]
        if bad:
            raise CommandError(
                f"{len(bad)} job(s) did not succeed, e.g. {bad[0].pk}: {bad[0].error}"
            )
        ends = [j.finished_at or j.held_at for j in jobs]
        span = (max(ends) - min(j.started_at for j in jobs)).total_seconds()
        runs = [j.timings.get("total", 0.0) for j in jobs]
        return {
            "jobs": len(jobs),
            "seconds": span,
            "jobs_per_s": len(jobs) / span,
            "job_s_p50": statistics.median(runs),
            "attempts": sum(j.attempts for j in jobs),
            "workers": len({j.worker for j in jobs}),  # how many took part
            # a lone job's pipeline span (a batched job's is from its batch's start)
            "pipeline_s_mean": statistics.mean(runs),
            "batches": statistics.mean(j.timings.get("batch", 1) for j in jobs),
            # the pipeline's own per-stage timings, mean per job (a batch's shared model
            # pass is divided by its size), for the per-job overhead profile
            "stages": _stage_means(jobs),
        }

    # -- processes -----------------------------------------------------------------------

    def _spawn(self, cmd, env=None) -> subprocess.Popen:
        log = open(Path(settings.VAR_DIR) / f"bench-{len(self.children)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd,
            env=env or os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_path = log.name
        self.children.append(proc)
        return proc

    def _start_workers(self, count: int, threads: int, batch: int = 1) -> None:
        """Start ``count`` worker processes held on a queue nobody publishes to, for
        :meth:`_release_workers` to move them all to ``gpu`` at once: booting a worker and
        warming its model up takes seconds on two cores, and the one up first would
        otherwise run jobs alone meanwhile, so a drain of a few seconds would measure the
        other's boot, not two workers. (They log at INFO for the release to see them up:
        two lines per job, well under a millisecond.)"""
        self.workers = []
        held_queue = f"bench-held-{uuid.uuid4().hex[:8]}"
        env = dict(
            os.environ,
            JOB_TORCH_THREADS=str(threads),
            JOB_BATCH_SIZE=str(batch),
            JOB_WARM_UP="always",  # held on another queue: `auto` would not warm up
        )
        for i in range(count):
            self.workers.append(
                self._spawn(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "editplatform",
                        "worker",
                        "-Q",
                        held_queue,
                        "--concurrency",
                        "1",
                        "--pool",
                        "prefork",
                        "--hostname",
                        f"bench{i}-{uuid.uuid4().hex[:4]}@%h",
                        "--loglevel",
                        "INFO",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    env=env,
                )
            )

    def _release_workers(self, timeout: float = 120) -> None:
        """Once every held worker is ready and has warmed up its model (its log says so),
        make them all consume ``gpu`` with one broadcast."""
        from editplatform.celery import app

        deadline = time.monotonic() + timeout
        while True:
            logs = [Path(proc.log_path).read_text(errors="replace") for proc in self.workers]
            names = [_worker_name(log) for log in logs]
            failed = [log for log in logs if "warm-up failed" in log or "could not preload" in log]
            if (
                failed
                or time.monotonic() > deadline
                or any(p.poll() is not None for p in self.workers)
            ):
                raise CommandError(f"the workers did not start: see {self.workers[0].log_path}")
            if all(
                name and f"{name} ready." in log and "model warmed up" in log
                for name, log in zip(names, logs, strict=True)
            ):
                break
            time.sleep(0.2)
        replies = app.control.add_consumer("gpu", destination=names, reply=True, timeout=10)
        if len(replies) != len(names):
            raise CommandError(f"only {len(replies)} of {len(names)} workers took the gpu queue")

    def _stop_workers(self) -> None:
        for proc in getattr(self, "workers", []):
            self._stop(proc)
        self.workers = []

    def _stop(self, proc) -> None:
        import signal

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _stop_all(self) -> None:
        for proc in self.children:
            self._stop(proc)

    def _wait_http(self, url: str, timeout: float = 60) -> None:  # kept for subclasses
        web.wait_http(url, timeout)

    def _wait_done(self, job_ids, timeout: float = 1800) -> list[EditJob]:
        """The jobs once none is left running or queued.

        Polls with one indexed EXISTS every 0.2 s and loads the rows once at the end: the
        figures come from the rows' own timestamps, so the poll's period does not enter
        them, but its CPU does (it shares the cores with the workers and PostgreSQL; loading
        every row 20 times a second cost about a tenth of a core).
        """
        done = (*TERMINAL, State.AWAITING_APPROVAL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not EditJob.objects.filter(pk__in=job_ids).exclude(state__in=done).exists():
                return list(EditJob.objects.filter(pk__in=job_ids))
            time.sleep(0.2)
        raise CommandError("jobs did not finish in time")

    # -- report ----------------------------------------------------------------------------

    def _markdown(self, f, opts) -> str:
        import torch
        from django.db import connection
        from django.utils import timezone

        one, two = f["one"], f["two"]
        cpu = platform.processor() or platform.machine()
        try:
            cpu = next(
                line.split(":", 1)[1].strip()
                for line in open("/proc/cpuinfo")
                if line.startswith("model name")
            )
        except (OSError, StopIteration):
            pass
        s, q = f["submit_ms"], f["q2s_ms"]
        lines = [
            SECTION,
            "",
            f"Command: `python manage.py bench_jobs --jobs {opts['jobs']} "
            f"--clients {opts['clients']} "
            f"--latency-jobs {opts['latency_jobs']} --torch-threads {opts['torch_threads']}` "
            f"(database {connection.vendor}, broker {settings.CELERY_BROKER_URL.split(':')[0]}).",
            f"Machine: {os.cpu_count()} CPU cores ({cpu}), no GPU, torch {torch.__version__}, "
            f"{opts['torch_threads']} torch thread(s) per worker process. "
            f"Date: {timezone.now():%Y-%m-%d %H:%M} UTC.",
            f"Model bundle: `{Path(settings.MODEL_BUNDLE).name}` "
            f"version {engine.get_catalog().version[:12]}.",
            "",
            "| figure | value | goal |",
            "|---|---|---|",
            f"| API submit latency p50 / p99 ({opts['clients']} concurrent clients, "
            f"{len(s)} requests) | "
            f"{_pct(s, 0.5):.0f} ms / {_pct(s, 0.99):.0f} ms | p99 < 100 ms |",
            f"| API submit latency p50 / p99 (1 client, {len(f['single_ms'])} requests) | "
            f"{_pct(f['single_ms'], 0.5):.0f} ms / {_pct(f['single_ms'], 0.99):.0f} ms | |",
            f"| queue-to-start p50 / p99 (idle warm workers, {len(q)} jobs) | "
            f"{_pct(q, 0.5):.0f} ms / {_pct(q, 0.99):.0f} ms | p50 < 100 ms |",
            f"| throughput, 1 worker process ({one['jobs']} jobs) | "
            f"{one['jobs_per_s']:.2f} jobs/s "
            f"(model time per job p50 {one['job_s_p50']:.2f} s) | |",
            f"| throughput, 2 worker processes ({two['jobs']} jobs) | "
            f"{two['jobs_per_s']:.2f} jobs/s = "
            f"{two['jobs_per_s'] / one['jobs_per_s']:.2f}x | >= 1.8x |",
            f"| attempts per job (1 = none ran twice) | "
            f"{(one['attempts'] + two['attempts']) / (one['jobs'] + two['jobs']):.2f} | 1 |",
            "",
        ]
        return "\n".join(lines) + "\n"

    def _markdown_batches(self, runs: list[dict], opts) -> str:
        """One table row per run: jobs/s per configuration and the ratios."""
        import torch
        from django.db import connection
        from django.utils import timezone

        configs = list(runs[0])
        base = configs[0]
        head = " | ".join(f"{w} worker(s), batch {b} (jobs/s)" for w, b in configs)
        lines = [
            BATCH_SECTION,
            "",
            f"Command: `python manage.py bench_jobs --batch-sizes "
            f"{opts['batch_sizes']} --runs {opts['runs']} --jobs {opts['jobs']} "
            f"--torch-threads {opts['torch_threads']}` (database {connection.vendor}, broker "
            f"{settings.CELERY_BROKER_URL.split(':')[0]}); {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__}; {timezone.now():%Y-%m-%d %H:%M} UTC; load average "
            f"at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}.",
            "",
            f"| run | {head} | "
            + " | ".join(f"{w}w b{b} / {base[0]}w b{base[1]}" for w, b in configs[1:])
            + " |",
            "|---" * (2 * len(configs)) + "|",
        ]
        for i, row in enumerate(runs, 1):
            rates = [row[c]["jobs_per_s"] for c in configs]
            lines.append(
                f"| {i} | "
                + " | ".join(f"{r:.3f}" for r in rates)
                + " | "
                + " | ".join(f"{r / rates[0]:.2f}x" for r in rates[1:])
                + " |"
            )
        lines += ["", "Per-job time outside the model pipeline (wall per job - pipeline per job):"]
        for c in configs:
            walls = [row[c]["seconds"] / row[c]["jobs"] for row in runs]
            stages = [row[c]["stages"] for row in runs]
            names = [k for k in STAGES if all(k in st for st in stages)]
            means = {k: statistics.mean(st[k] for st in stages) for k in names}
            pipeline = sum(v for k, v in means.items() if k != "total")
            lines.append(
                f"- {c[0]} worker(s), batch {c[1]}: wall {statistics.mean(walls):.3f} s/job, "
                f"pipeline {pipeline:.3f} s/job (the sum of its stages; a batch's model pass "
                f"divided by its jobs), outside it {statistics.mean(walls) - pipeline:.3f} "
                f"s/job, mean batch {statistics.mean(r[c]['batches'] for r in runs):.1f}"
            )
            lines.append("  stages (s/job): " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
        return "\n".join(lines) + "\n"

    def _write_section(self, path: Path, text: str) -> None:
        old = path.read_text() if path.exists() else "# Benchmarks\n"
        section = text.splitlines()[0]
        start = old.find(section + "\n")
        if start < 0:
            new = old.rstrip("\n") + "\n\n" + text
        else:
            end = old.find("\n## ", start + len(section))
            new = old[:start] + text + (old[end + 1 :] if end >= 0 else "")
        path.write_text(new)
