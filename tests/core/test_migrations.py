"""Migrations apply from scratch on PostgreSQL and on SQLite, and none are missing."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT
from tests.services import create_database


def manage(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_all_applied(**env):
    migrate = manage("migrate", "--noinput", **env)
    assert migrate.returncode == 0, migrate.stderr
    shown = manage("showmigrations", "--plan", **env)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("[X]") for line in lines), shown.stdout
    # The role table's grants hold after the very first migrate (audit's permissions
    # exist before accounts' post_migrate hands them out).
    granted = manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group; print(sorted("
        "Group.objects.get(name='reviewer').permissions.values_list('codename', flat=True)))",
        **env,
    )
    assert granted.returncode == 0, granted.stderr
    assert "view_auditevent" in granted.stdout, granted.stdout


def test_no_model_change_lacks_a_migration():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_apply_on_a_fresh_postgresql_database():
    url = os.environ.get("DATABASE_URL", "") or os.environ.get("STYLELEDGER_TEST_POSTGRES_URL", "")
    if not url.startswith("postgres"):
        url = os.environ.get("STYLELEDGER_TEST_POSTGRES_URL", "")
    assert url.startswith("postgres"), "run through make test: no PostgreSQL server URL"
    fresh = create_database(url, f"migr_{uuid.uuid4().hex[:10]}")
    assert_all_applied(DATABASE_URL=fresh)


@pytest.mark.embedded
def test_migrations_apply_on_a_fresh_sqlite_file(tmp_path):
    assert_all_applied(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite3")


# --- migrations are frozen: they import no code that later changes ----------------------

PROJECT_PACKAGES = ("audit", "editplatform", "inversion", "tests")
# Django serialises field validators by import path; they check form input and never
# change the schema, so a migration may name them -- and only them.
REFERENCE_KEYWORDS = frozenset({"validators"})


def migration_files() -> list:
    return sorted(p for p in ROOT.glob("**/migrations/0*.py") if ".venv" not in p.parts)


def project_imports_outside_references(source: str) -> list[str]:
    """Project modules a migration imports, except names used only as field validators."""
    tree = ast.parse(source)
    problems, imported = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PROJECT_PACKAGES:
                problems.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.level:
            problems.append(f"line {node.lineno}: relative import")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PROJECT_PACKAGES:
                    imported[alias.asname or alias.name.split(".")[0]] = node.lineno
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in REFERENCE_KEYWORDS:
            allowed.update(id(n) for n in ast.walk(node.value) if isinstance(n, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in imported and id(node) not in allowed:
            problems.append(f"line {node.lineno}: uses {node.id} outside a field's validators")
    return problems


def test_migrations_import_no_changing_project_code():
    files = migration_files()
    assert any(p.parent.parent.name == "audit" for p in files), (
        files
    )  # the audit app's are checked too
    found = {
        str(p.relative_to(ROOT)): project_imports_outside_references(p.read_text(encoding="utf-8"))
        for p in files
    }
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_the_frozen_migration_check_catches_an_import_of_live_code():
    """What 0001 of audit used to do: run DDL imported from a module that keeps changing."""
    live = (
        "from django.db import migrations\nfrom audit import schema\n\n"
        "def create(apps, editor):\n    schema.create(editor)\n"
    )
    assert project_imports_outside_references(live) == ["line 2: from audit import ..."]
    aliased = "import audit.schema\n\nops = [audit.schema.create]\n"
    assert project_imports_outside_references(aliased) == [
        "line 3: uses audit outside a field's validators"
    ]
    validator = (
        "import editplatform.accounts.models\nf = "
        "models.JSONField(validators=[editplatform.accounts.models.v])\n"
    )
    assert project_imports_outside_references(validator) == []
