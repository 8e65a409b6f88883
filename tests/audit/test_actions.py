"""The audit vocabulary is a registry: audit names only its own actions, apps register theirs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from audit import actions
from audit.actions import ActionRegistrationError, ActionRegistry, UnknownActionError

AUDIT_DIR = Path(actions.__file__).resolve().parent
DOMAIN_NAME = re.compile(r"^(job|artifact|user|role|apikey|approval)\.[a-z_]+$")


def test_registry_refuses_unregistered_names_with_a_typed_error():
    registry = ActionRegistry()
    assert registry.register("shop.sold", "an item was sold") == "shop.sold"
    assert registry.validate("shop.sold") == "shop.sold"
    with pytest.raises(
        UnknownActionError, match=r"unknown audit action 'shop\.stolen'.*shop\.sold"
    ):
        registry.validate("shop.stolen")
    assert issubclass(UnknownActionError, ValueError)


def test_registration_is_idempotent_but_a_name_keeps_its_meaning():
    registry = ActionRegistry()
    registry.register("shop.sold", "an item was sold")
    registry.register("shop.sold", "an item was sold")  # a module imported twice
    assert registry.names() == ("shop.sold",)
    with pytest.raises(ActionRegistrationError, match="already registered"):
        registry.register("shop.sold", "something else")


@pytest.mark.parametrize(
    "name", ["", "sold", "Shop.Sold", "shop.", "shop..sold", "shop.sold!", "a." + "b" * 70]
)
def test_malformed_names_are_refused(name):
    with pytest.raises(ActionRegistrationError):
        ActionRegistry().register(name, "x")


def test_the_apps_register_their_own_names_at_startup():
    """After django.setup() (every AppConfig.ready()) the full vocabulary is known."""
    names = set(actions.registry.names())
    assert {"audit.exported", "audit.verified", "audit.checkpoint"} <= names
    assert {"job.submitted", "job.succeeded", "artifact.viewed"} <= names  # jobs
    assert {"job.approved", "job.rejected"} <= names  # approvals
    assert {"user.login", "role.changed", "apikey.created"} <= names  # accounts


def test_audit_itself_names_no_domain_action():
    """No string literal in audit/ is another app's action name."""
    found = []
    for path in sorted(AUDIT_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and DOMAIN_NAME.match(node.value)
            ):
                found.append(f"{path.relative_to(AUDIT_DIR.parent)}:{node.lineno} {node.value!r}")
    assert found == []
    # ... and the names audit registers itself are all its own.
    source = (AUDIT_DIR / "actions.py").read_text(encoding="utf-8")
    own = re.findall(r'^[A-Z_]+ = register\("([^"]+)"', source, re.M)
    assert own and all(name.startswith("audit.") for name in own), own
