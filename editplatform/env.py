"""Typed reading of the environment for settings.

Every setting that an operator may change comes from an environment variable. A
variable that is set but malformed must stop start-up with a message that names it,
instead of falling back silently to a default: a typo in production should be loud.
`ConfigError` subclasses Django's ImproperlyConfigured so management commands and
WSGI start-up report it the usual way.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ImproperlyConfigured):
    """A required environment variable is missing or malformed."""

    def __init__(self, name: str, problem: str):
        self.name = name
        super().__init__(f"environment variable {name}: {problem}")


def get_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ConfigError(name, "is required but not set")
        return default
    return value


def get_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, f"expected a boolean (true/false/1/0), got {value!r}")


def get_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"must be >= {minimum}, got {number}")
    return number


def get_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def get_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def get_database(name: str, default: str) -> dict:
    """Parse a database URL (dj-database-url) and refuse anything malformed."""
    import dj_database_url

    url = os.environ.get(name) or default
    scheme = urlsplit(url).scheme
    if scheme not in _DATABASE_SCHEMES:
        known = "postgres://, postgresql://, sqlite:///"
        raise ConfigError(name, f"unsupported or malformed database URL {url!r} (use {known})")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises ValueError and friends
        raise ConfigError(name, f"malformed database URL: {exc}") from None
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ConfigError(name, f"database URL {url!r} names no database")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {})
        # WAL lets the web process read while the worker writes; the timeout makes
        # writers wait for each other instead of failing with "database is locked".
        config["OPTIONS"].update({"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"})
        # A file-backed test database, so a worker process sees what a test wrote.
        if config["NAME"] != ":memory:":
            config["TEST"] = {
                "NAME": str(Path(config["NAME"]).with_name("test-" + Path(config["NAME"]).name))
            }
    return config


def get_broker_url(name: str, default: str) -> str:
    url = os.environ.get(name) or default
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "filesystem", "memory", "amqp", "sentinel"}:
        raise ConfigError(
            name,
            f"unsupported or malformed broker URL {url!r} (use redis://host:port/db or filesystem://)",
        )
    return url


def dev_secret_key(var_dir: Path) -> str:
    """A key generated once into var/ so dev sessions survive restarts."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
