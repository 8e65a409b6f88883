"""Run docker/compose.yml's services without a container engine.

Containers cannot start on these machines, so each service's real command runs as a
process with what the container would have: its environment from the compose file
(as `docker-compose config` resolves it), its volumes as temporary folders, the
image's programs on PATH (shims for python, celery, gunicorn, weed), its ports moved
to free loopback ports, and the hosts of the compose network (postgres, redis, s3,
web, proxy) pointing at the test run's real servers. The nginx proxy is rendered from
the compose's template the way the nginx image does it. PostgreSQL and Redis are the
test's throwaway servers, not the compose's images.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.services import free_port

COMPOSE_FILE = ROOT / "docker" / "compose.yml"
IMAGE_WORKDIR = "/app"  # where the Dockerfiles copy the repository
NETWORK_HOSTS = ("postgres", "redis", "s3", "web", "proxy")
# Entrypoints of third-party images whose `command` is only the arguments.
ENTRYPOINTS = {"chrislusf/seaweedfs": ["weed"]}


def compose_config(env: dict[str, str], *profiles: str) -> dict:
    """The compose file as docker-compose resolves it (interpolation, anchors)."""
    args = ["docker-compose", "-f", str(COMPOSE_FILE)]
    for profile in profiles:
        args += ["--profile", profile]
    result = subprocess.run(
        [*args, "config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker-compose config failed: {result.stderr}")
    return yaml.safe_load(result.stdout)


def consumed_queues(config: dict) -> dict[str, list[str]]:
    """{queue: [services whose `celery worker -Q ...` consumes it]}."""
    found: dict[str, list[str]] = {}
    for name, service in config["services"].items():
        command = service.get("command") or []
        if "worker" in command and "celery" in command:
            queues = command[command.index("-Q") + 1].split(",") if "-Q" in command else ["default"]
            for queue in queues:
                found.setdefault(queue, []).append(name)
    return found


def check_every_queue_consumed(config: dict, queues: list[str]) -> None:
    """Raise AssertionError naming a queue no compose service consumes."""
    found = consumed_queues(config)
    missing = [queue for queue in queues if not found.get(queue)]
    assert not missing, f"no service in compose.yml consumes queue(s) {missing}"


def check_single_beat(config: dict) -> None:
    beats = [n for n, s in config["services"].items() if "beat" in (s.get("command") or [])]
    assert len(beats) == 1, f"exactly one beat expected, found {beats}"
    replicas = config["services"][beats[0]].get("deploy", {}).get("replicas", 1)
    assert replicas == 1, f"beat {beats[0]} runs {replicas} replicas"


def _seconds(text: str | None, default: float) -> float:
    if not text:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(text))
    if not match:
        return default
    value = float(match[1])
    return value / 1000 if match[2] == "ms" else value * 60 if match[2] == "m" else value


@dataclass
class Running:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass


@dataclass
class Stack:
    """The compose services of one config, mapped onto this machine under `root`."""

    config: dict
    root: Path
    postgres: tuple[str, int]
    redis: tuple[str, int]
    ports: dict[str, dict[int, int]] = field(default_factory=dict)
    running: dict[str, Running] = field(default_factory=dict)

    def __post_init__(self):
        self.ports.setdefault("postgres", {5432: self.postgres[1]})
        self.ports.setdefault("redis", {6379: self.redis[1]})
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        shims = {
            "python": f'exec {python} "$@"',
            "celery": f'exec {python} -m celery "$@"',
            "gunicorn": f'exec {python} -m gunicorn "$@"',
            "weed": f'exec {weed} "$@"',
        }
        for name, body in shims.items():
            path = self.bin / name
            path.write_text(f"#!/bin/sh\n{body}\n")
            path.chmod(0o755)

    # --- mapping ------------------------------------------------------------------
    def port(self, service: str, container_port: int) -> int:
        if container_port == 0:
            return 0
        ports = self.ports.setdefault(service, {})
        if container_port not in ports:
            ports[container_port] = free_port()
        return ports[container_port]

    def host_of(self, service: str) -> str:
        return {"postgres": self.postgres[0], "redis": self.redis[0]}.get(service, "127.0.0.1")

    def mounts(self, service: str) -> list[tuple[str, str]]:
        """(container path, host path) for each volume; named volumes are folders under root."""
        result = []
        for spec in self.config["services"][service].get("volumes") or []:
            if isinstance(spec, dict):
                source, target = spec.get("source", ""), spec["target"]
            else:
                source, target = spec.split(":")[:2]
            if source.startswith("/") or source.startswith("."):
                host = str(Path(source).resolve())
            else:
                host = str(self.root / "volumes" / source)
                Path(host).mkdir(parents=True, exist_ok=True)
            result.append((target, host))
        result.append((IMAGE_WORKDIR, str(ROOT)))
        return sorted(result, key=lambda item: len(item[0]), reverse=True)

    def rewrite(self, value: str, service: str) -> str:
        hosts = "|".join(NETWORK_HOSTS)

        def host_port(match: re.Match) -> str:
            owner = match[1] if match[1] in NETWORK_HOSTS else service  # loopback: this service
            return f"{self.host_of(owner)}:{self.port(owner, int(match[2]))}"

        value = re.sub(
            rf"(?<![\w.])({hosts}|127\.0\.0\.1|0\.0\.0\.0|localhost):(\d+)\b", host_port, value
        )
        value = re.sub(
            r"((?:^|-)[\w.]*port(?:\.grpc)?)=(\d+)$",
            lambda m: f"{m[1]}={self.port(service, int(m[2]))}",
            value,
        )
        value = re.sub(rf"^-ip=({hosts})$", "-ip=127.0.0.1", value)
        value = value.replace("0.0.0.0", "127.0.0.1")
        for target, host in self.mounts(service):
            value = re.sub(rf"(?<![\w.]){re.escape(target)}(?=/|$|[\s:'\"])", host, value)
        return value

    def env(self, service: str) -> dict[str, str]:
        spec = self.config["services"][service]
        env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.root / "home" / service),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            "HOSTNAME": socket.gethostname(),
            # Dockerfile.web / Dockerfile.worker: ENV STYLELEDGER_VAR_DIR
            "STYLELEDGER_VAR_DIR": str(self.root / "var" / service),
        }
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        for key, value in (spec.get("environment") or {}).items():
            env[key] = self.rewrite("" if value is None else str(value), service)
        return env

    def argv(self, service: str, command: list[str] | None = None) -> list[str]:
        if command is None:
            spec = self.config["services"][service]
            image = str(spec.get("image", "")).split(":")[0]
            command = ENTRYPOINTS.get(image, []) + list(spec["command"])
        return [self.rewrite(str(arg), service) for arg in command]

    # --- running ------------------------------------------------------------------
    def run_once(self, service: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A one-shot service (init, migrate): run to completion."""
        return subprocess.run(
            self.argv(service),
            cwd=ROOT,
            env=self.env(service),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, service: str) -> Running:
        if service == "proxy":
            argv = self._nginx_argv(service)
        else:
            argv = self.argv(service)
        log_path = self.root / "logs" / f"{service}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[service] = Running(service, proc, log_path)
        return self.running[service]

    def stop(self, service: str) -> None:
        if service in self.running:
            self.running.pop(service).stop()

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)

    def _nginx_argv(self, service: str) -> list[str]:
        """What the nginx image does: render /etc/nginx/templates/*.template with the
        container's environment (defined variables only), include it in http {}."""
        spec = self.config["services"][service]
        env = {k: str(v) for k, v in (spec.get("environment") or {}).items()}
        work = self.root / "nginx"
        work.mkdir(parents=True, exist_ok=True)
        rendered = []
        for target, host in self.mounts(service):
            if target.startswith("/etc/nginx/templates/") and target.endswith(".template"):
                text = Path(host).read_text()
                text = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m[1], m[0]), text)
                rendered.append(self.rewrite_text(text, service))
        temp = {name: work / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        conf = work / "nginx.conf"
        conf.write_text(
            f"worker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n  include /etc/nginx/mime.types;\n"
            f"  access_log {work}/access.log;\n"
            f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
            f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
            f"  scgi_temp_path {temp['scgi']};\n" + "\n".join(rendered) + "\n}\n"
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [
            nginx,
            "-e",
            str(work / "error.log"),
            "-p",
            str(work),
            "-c",
            str(conf),
            "-g",
            "daemon off;",
        ]

    def rewrite_text(self, text: str, service: str) -> str:
        """Rewrite a config file word by word (hosts, ports, mounted paths)."""
        return re.sub(r"[^\s;{}]+", lambda m: self.rewrite(m[0], service), text)

    def healthcheck(self, service: str, spec: dict | None = None) -> tuple[bool, str]:
        """Run the service's healthcheck the way the engine does: retries x interval."""
        spec = spec or self.config["services"][service]["healthcheck"]
        test = list(spec["test"])
        kind, args = test[0], test[1:]
        if kind == "CMD-SHELL":
            argv = ["/bin/sh", "-c", self.rewrite_text(args[0].replace("$$", "$"), service)]
        elif kind == "CMD":
            argv = self.argv(service, args)
        else:
            raise ValueError(f"unsupported healthcheck {test}")
        timeout = _seconds(spec.get("timeout"), 30)
        retries = int(spec.get("retries", 3))
        interval = min(_seconds(spec.get("interval"), 30), 2.0)
        output = ""
        for _attempt in range(retries + 3):  # + start period
            try:
                result = subprocess.run(
                    argv,
                    cwd=ROOT,
                    env=self.env(service),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
                output = result.stdout + result.stderr
                if result.returncode == 0:
                    return True, output
            except subprocess.TimeoutExpired:
                output = f"timed out after {timeout}s"
            time.sleep(interval)
        return False, output


def without(config: dict, service: str) -> dict:
    """A copy of the config without one service (for the checks' negative cases)."""
    mutated = copy.deepcopy(config)
    del mutated["services"][service]
    return mutated


def wait_port(port: int, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")
