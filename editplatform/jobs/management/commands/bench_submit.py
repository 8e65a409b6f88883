"""Benchmark the submit path alone with 1-megapixel JPEG photos: CPU, queries, latency.

Uses the configured database and broker (run it on PostgreSQL + Redis for meaningful
figures: ``python -m tests.jobs.bench_submit`` starts throwaway ones). No worker runs:
submitted jobs stay queued. Measures:

1. in process, what the API view calls (``services.submit`` with the uploaded bytes):
   CPU (``time.process_time``) and wall time per submit, median and p90 over
   ``--submits`` distinct photos, and the SQL queries of one submit
   (``CaptureQueriesContext``, i.e. round trips to the database);
2. with ``--profile FILE``: a CPU-time cProfile of those submits, top functions printed;
3. over HTTP: its own gunicorn (``--web-workers`` processes, 4 threads each) and
   ``--clients`` concurrent clients posting ``--requests`` photos to POST /api/v1/jobs
   (multipart, signed-in session), p50/p99 latency.

Every photo is distinct (a smooth gradient with noise, JPEG quality 90), so no submit
is answered by content deduplication.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import statistics
import sys
import threading
import time
import uuid

from django.db import connection
from django.test.utils import CaptureQueriesContext

from editplatform.jobs.benchmarking import web
from editplatform.jobs.management.commands.bench_jobs import Command as JobsBench
from editplatform.jobs.management.commands.bench_jobs import _pct


def photo(seed: int, size: tuple[int, int] = (1152, 864)) -> bytes:
    """A distinct ``size`` JPEG (quality 90) that compresses like a photo (~340 KB at 1 MP)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    ramp = np.outer(np.linspace(0, 1, h), np.linspace(0, 1, w))[..., None]
    colour = rng.integers(60, 200, 3)
    pixels = ramp * colour + rng.integers(0, 40, (h, w, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=90
    )
    return buffer.getvalue()


class Command(JobsBench):
    help = "Benchmark the submit path: CPU and queries per submit, HTTP latency under clients."

    def add_arguments(self, parser):
        parser.add_argument("--submits", type=int, default=20, help="in-process submits")
        parser.add_argument("--requests", type=int, default=48, help="HTTP submits")
        parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--size", default="1152x864", help="photo size WxH")
        parser.add_argument("--profile", help="write a cProfile of the in-process submits here")
        parser.add_argument("--no-http", action="store_true", help="in-process figures only")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")

    def handle(self, *args, **opts):
        from django.contrib.auth import get_user_model

        from editplatform.accounts.roles import REQUESTER, ensure_groups

        self.size = tuple(int(v) for v in opts["size"].lower().split("x"))
        password = uuid.uuid4().hex
        username = f"bench-{uuid.uuid4().hex[:6]}"
        user = get_user_model().objects.create_user(username=username, password=password)
        user.groups.add(ensure_groups()[REQUESTER.name])
        self.username, self.password = username, password
        figures = {"photo": list(self.size), "photo_bytes": len(photo(0, self.size))}
        figures.update(self._in_process(user, opts))
        if not opts["no_http"]:
            figures.update(self._http(opts))
        if opts["json"]:
            self.stdout.write(json.dumps(figures, indent=1))
        else:
            for key, value in figures.items():
                if key != "queries":
                    self.stdout.write(f"{key}: {value}")

    # -- in process --------------------------------------------------------------------

    def _submit_bytes(self, user, data: bytes):
        from editplatform.jobs import services

        return services.submit(
            user=user,
            image=data,
            edits=self.edits,
            purpose="benchmark job: the submit path",
            consent=True,
            source="api",
        )

    def _in_process(self, user, opts) -> dict:
        n = opts["submits"]
        self.edits = self._edits()
        photos = [photo(1000 + i, self.size) for i in range(n + 3)]
        for data in photos[:2]:  # warm: catalog, connections, first audit append
            self._submit_bytes(user, data)
        with CaptureQueriesContext(connection) as queries:
            self._submit_bytes(user, photos[2])
        cpu, wall = [], []
        # CPU time, not wall time: the profile shows where the CPU goes, not the waits.
        profiler = cProfile.Profile(time.process_time) if opts["profile"] else None
        for data in photos[3:]:
            c0, w0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            self._submit_bytes(user, data)
            if profiler:
                profiler.disable()
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        if profiler:
            profiler.dump_stats(opts["profile"])
            out = io.StringIO()
            pstats.Stats(opts["profile"], stream=out).sort_stats("tottime").print_stats(25)
            sys.stderr.write(out.getvalue())
        return {
            "cpu_ms_median": round(statistics.median(cpu), 2),
            "cpu_ms_p90": round(_pct(cpu, 0.9), 2),
            "wall_ms_median": round(statistics.median(wall), 2),
            "queries_per_submit": len(queries.captured_queries),
            "queries": [q["sql"][:160] for q in queries.captured_queries],
        }

    # -- over HTTP ---------------------------------------------------------------------

    def _http(self, opts) -> dict:
        self._local = threading.local()
        self.children = []
        n, clients = opts["requests"], opts["clients"]
        self.photos = {seed: photo(seed, self.size) for seed in range(50_000, 50_000 + n + 26)}
        try:
            self.base = web.start_gunicorn(self._spawn, opts["web_workers"])
            seeds = iter(self.photos)
            self._submit_batch_seeds([next(seeds) for _ in range(2 * clients)], clients)  # warm
            single = [self._submit_one(next(seeds))[0] for _ in range(10)]
            concurrent = self._submit_batch_seeds([next(seeds) for _ in range(n)], clients)
        finally:
            self._stop_all()
        return {
            "http_clients": clients,
            "http_p50_ms": round(_pct(concurrent, 0.5), 1),
            "http_p99_ms": round(_pct(concurrent, 0.99), 1),
            "http_single_p50_ms": round(_pct(single, 0.5), 1),
            "http_single_p99_ms": round(_pct(single, 0.99), 1),
        }

    def _submit_one(self, seed: int) -> tuple[float, str]:
        """POST one pre-made photo (bench_jobs' own makes its 256-px photo per request)."""
        import urllib.request

        boundary = uuid.uuid4().hex
        fields = (
            ("edits", json.dumps(self.edits)),
            ("purpose", "benchmark job: the submit path"),
            ("consent", "true"),
        )
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields
        )
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + self.photos[seed]
            + f"\r\n--{boundary}--\r\n".encode()
        )
        opener, csrf = self._session()
        request = urllib.request.Request(
            self.base + "/api/v1/jobs",
            data=body,
            method="POST",
            headers={
                "X-CSRFToken": csrf,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        start = time.perf_counter()
        with opener.open(request, timeout=60) as response:
            answer = json.loads(response.read())
        return (time.perf_counter() - start) * 1000, answer["id"]

    def _submit_batch_seeds(self, seeds: list[int], clients: int) -> list[float]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(clients) as pool:
            return [r[0] for r in pool.map(self._submit_one, seeds)]
