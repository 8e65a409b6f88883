"""The registry's rules without a worker: verification before anything is stored, who may
register / approve / activate / retire, hash binding, re-verification of the stored copy,
the resolver's answers (fallback, unknown, retired), bootstrap, upload and the pages."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from editplatform.core.errors import DomainError
from editplatform.jobs import model_source
from editplatform.models_registry import resolver, services, store
from editplatform.models_registry.models import ModelVersion
from inversion.bundle import verify_bundle_files
from tests.conftest import mark_two_factor_verified


def portal(user) -> Client:
    client = Client()
    client.force_login(user)
    mark_two_factor_verified(client, user)
    return client


def zipped(directory: Path, folder: str = "bundle") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.iterdir()):
            archive.write(path, f"{folder}/{path.name}")
    return buffer.getvalue()


def tampered_copy(source: Path, out: Path) -> Path:
    shutil.copytree(source, out)
    catalog = out / "catalog.json"
    catalog.write_bytes(catalog.read_bytes().replace(b'"sensitive": true', b'"sensitive": false'))
    return out


@pytest.mark.django_db
def test_an_altered_bundle_is_refused_and_nothing_is_stored(
    registry_people, model_bundle, tmp_path
):
    bad = tampered_copy(Path(model_bundle), tmp_path / "bad")
    before = sorted(p.name for p in store.root().iterdir())
    events = AuditEvent.objects.count()
    with pytest.raises(DomainError) as refused:
        services.register_bundle(source=bad, user=registry_people["admin1"])
    assert refused.value.status == 400 and "catalog.json" in refused.value.message
    assert not ModelVersion.objects.exists()
    assert AuditEvent.objects.count() == events
    assert sorted(p.name for p in store.root().iterdir()) == before


@pytest.mark.django_db
def test_card_carries_the_manifest(registry_people, model_bundle):
    mv = services.register_bundle(source=Path(model_bundle), user=registry_people["admin1"])
    card = mv.card
    manifest = json.loads((Path(model_bundle) / "manifest.json").read_bytes())
    assert card["version"] == mv.version == verify_bundle_files(model_bundle)
    assert card["architecture"]["encoder_arch"] == manifest.get("encoder_arch", "mambastyle")
    assert "Fashion-MNIST" in card["training_data"]["description"]
    assert card["intended_use"] == manifest["provenance"]["notes"]
    names = {e["name"]: e for e in card["edits"]}
    assert set(names) == {
        e["name"] for e in json.loads((Path(model_bundle) / "catalog.json").read_bytes())["edits"]
    }
    sensitive = [e for e in card["edits"] if e["sensitive"]]
    assert sensitive and all("rule:" in e["reason"] for e in sensitive)
    assert {f["name"] for f in card["files"]} == set(manifest["files"])
    assert all(f["licence"] == "not declared" for f in card["files"] if f["weights"])
    assert card["evaluation"]["reconstruction"]
    assert card["parent_version"] == manifest.get("parent_version", "")
    # Registering the same bytes twice is refused.
    with pytest.raises(DomainError) as again:
        services.register_bundle(source=Path(model_bundle), user=registry_people["admin1"])
    assert again.value.status == 409


@pytest.mark.django_db
def test_who_may_decide_and_hash_binding(registry_people, model_bundle):
    p = registry_people
    mv = services.register_bundle(source=Path(model_bundle), user=p["admin1"])
    with pytest.raises(DomainError) as not_approver:
        services.approve(mv, p["admin1"], bundle_sha256=mv.version)
    assert not_approver.value.status == 403
    with pytest.raises(DomainError) as wrong:
        services.approve(mv, p["mapprover"], bundle_sha256="0" * 64)
    assert wrong.value.code == "hash_mismatch"
    with pytest.raises(DomainError) as not_admin:
        services.activate(mv, p["mapprover"], bundle_sha256=mv.version)
    assert not_admin.value.status == 403
    services.approve(mv, p["mapprover"], bundle_sha256=mv.version)
    # The stored copy changes after the approval: activation re-verifies and refuses.
    stored = Path(mv.path) / "catalog.json"
    original = stored.read_bytes()
    stored.write_bytes(original.replace(b'"sensitive": true', b'"sensitive": false'))
    try:
        with pytest.raises(DomainError) as altered:
            services.activate(mv, p["admin1"], bundle_sha256=mv.version)
        assert altered.value.status == 409 and "fails verification" in altered.value.message
    finally:
        stored.write_bytes(original)
    mv = services.activate(mv, p["admin1"], bundle_sha256=mv.version)
    with pytest.raises(DomainError) as active:
        services.retire(mv, p["admin1"], reason="x")
    assert active.value.status == 409


@pytest.mark.django_db
def test_resolver_answers(registry_people, model_bundle, child_bundle):
    # Nothing registered: the configured bundle (pins are checked by hash in the engine).
    assert resolver.resolve(None) is None
    assert model_source.resolve(None).path == Path(settings.MODEL_BUNDLE)
    p = registry_people
    demo = services.register_bundle(source=Path(model_bundle), user=p["admin1"])
    child = services.register_bundle(source=child_bundle, user=p["admin1"])
    with pytest.raises(model_source.UnknownModelVersion, match="not registered"):
        resolver.resolve("f" * 64)
    assert resolver.resolve(child.version).path == Path(child.path)  # registered, not active
    services.retire(child, p["admin1"], reason="test")
    with pytest.raises(model_source.UnknownModelVersion, match="retired"):
        resolver.resolve(child.version)
    services.approve(demo, p["mapprover"], bundle_sha256=demo.version)
    services.activate(demo, p["admin1"], bundle_sha256=demo.version)
    assert resolver.resolve(None).version == demo.version


@pytest.mark.embedded
@pytest.mark.django_db
def test_bootstrap_registers_and_activates_once(model_bundle):
    call_command("models", "bootstrap", stdout=io.StringIO())
    mv = ModelVersion.objects.get()
    assert mv.state == ModelVersion.State.ACTIVE and mv.version == verify_bundle_files(model_bundle)
    event = (
        AuditEvent.objects.filter(action="model.bootstrapped", subject=f"model:{mv.version}")
        .order_by("seq")
        .last()
    )
    assert event.subject == f"model:{mv.version}" and event.actor_name == "system:bootstrap"
    out = io.StringIO()
    call_command("models", "bootstrap", stdout=out)
    assert "nothing to bootstrap" in out.getvalue() and ModelVersion.objects.count() == 1
    assert resolver.resolve(None).version == mv.version


@pytest.mark.django_db
def test_upload_page_and_staff_pages(registry_people, model_bundle, tmp_path):
    p = registry_people
    assert portal(p["req"]).get("/models/register").status_code == 403
    admin = portal(p["admin1"])
    bad = admin.post(
        "/models/register",
        {
            "bundle_zip": SimpleUploadedFile(
                "b.zip", zipped(tampered_copy(Path(model_bundle), tmp_path / "t"))
            )
        },
    )
    assert bad.status_code == 400 and "catalog.json" in bad.content.decode()
    assert not ModelVersion.objects.exists()
    ok = admin.post(
        "/models/register",
        {
            "name": "uploaded demo",
            "bundle_zip": SimpleUploadedFile("b.zip", zipped(Path(model_bundle))),
        },
    )
    assert ok.status_code == 302
    mv = ModelVersion.objects.get()
    assert mv.source == "upload" and mv.name == "uploaded demo"
    requester = portal(p["req"])
    listing = requester.get("/models/").content.decode()
    assert "uploaded demo" in listing and mv.short in listing
    card = requester.get(f"/models/{mv.version}/").content.decode()
    assert mv.version in card and "not declared" in card and "needs approval" in card
    assert 'id="approve-form"' not in card  # a requester cannot approve
    assert (
        'id="approve-form"' in portal(p["mapprover"]).get(f"/models/{mv.version}/").content.decode()
    )
    assert requester.get("/models/history").status_code == 403
    history = portal(p["rev"]).get("/models/history").content.decode()
    assert 'data-action="model.registered"' in history
    assert requester.get(f"/models/{'0' * 64}/").status_code == 404
