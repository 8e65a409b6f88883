"""Issue 16 item 4: a new InterFaceGAN direction fitted from a labelled folder becomes a new
catalog entry of a NEW version (a child bundle), with its measured success and the
sensitivity rule applied, registered through the registry; the parent is untouched."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import load_file

from audit.models import AuditEvent
from editplatform.models_registry import services
from editplatform.models_registry.models import ModelVersion
from inversion.bundle import load_bundle, verify_bundle_files
from inversion.catalog_extend import CLASS_KEPT_THRESHOLD
from inversion.preprocess import tensor_to_images
from inversion.training.data import load_fashion_mnist

FOOTWEAR = (5, 7, 9)  # sandal, sneaker, ankle boot
PER_LABEL = 16
CLASSIFIER = Path(__file__).resolve().parents[2] / "inversion/bundles/demo_eval/classifier.pt"


def labelled_folder(root: Path) -> Path:
    """Held-out Fashion-MNIST test photos: footwear (positive) and everything else."""
    images, labels = load_fashion_mnist("test", limit=200)
    counts = {"positive": 0, "negative": 0}
    for label in counts:
        (root / label).mkdir(parents=True)
    for image, label in zip(tensor_to_images(images), labels.tolist(), strict=True):
        kind = "positive" if label in FOOTWEAR else "negative"
        if counts[kind] < PER_LABEL:
            image.save(root / kind / f"{counts[kind]:03d}.png")
            counts[kind] += 1
    assert counts == {"positive": PER_LABEL, "negative": PER_LABEL}
    return root


@pytest.mark.django_db
def test_extend_catalog_registers_a_child_version(registry_people, model_bundle, tmp_path):
    torch.set_num_threads(1)
    admin = registry_people["admin1"]
    parent = services.register_bundle(source=Path(model_bundle), user=admin, name="demo")
    folder = labelled_folder(tmp_path / "labelled")

    # A folder without its negative/ half is refused; nothing is registered.
    broken = tmp_path / "broken"
    shutil.copytree(folder / "positive", broken / "positive")
    with pytest.raises(CommandError, match="negative/"):
        call_command(
            "models", "extend-catalog", parent.short, "--folder", str(broken),
            "--name", "footwear_fit", "--by", "admin1",
        )  # fmt: skip
    assert ModelVersion.objects.count() == 1

    out = io.StringIO()
    call_command(
        "models", "extend-catalog", parent.short, "--folder", str(folder),
        "--name", "footwear_fit", "--by", "admin1", "--classifier", str(CLASSIFIER),
        "--seed", "0", stdout=out,
    )  # fmt: skip
    child = ModelVersion.objects.exclude(pk=parent.pk).get()
    assert child.version in out.getvalue()
    assert child.state == ModelVersion.State.REGISTERED  # activation is the usual four-eyes
    assert child.parent_version == parent.version and child.source == "catalog"

    # The child bundle: the parent's edits plus the new one, its direction, its evidence.
    bundle = load_bundle(child.path)
    assert bundle.version == child.version
    parent_bundle = load_bundle(parent.path)
    assert bundle.catalog.names == [*parent_bundle.catalog.names, "footwear_fit"]
    assert "interfacegan_footwear_fit" in load_file(Path(child.path) / "directions.safetensors")
    for name in ("generator.safetensors", "encoder.safetensors", "fuser.safetensors"):
        assert bundle.manifest["files"][name] == parent_bundle.manifest["files"][name]
    spec = bundle.catalog["footwear_fit"]
    measured = spec.measured
    assert 0.0 <= measured["success"] <= 1.0 and 0.0 <= measured["class_kept"] <= 1.0
    assert measured["boundary_accuracy"] > 0.5
    # The sensitivity rule applied to the measured preservation, with its reason on the card.
    assert spec.sensitive == (measured["class_kept"] < CLASS_KEPT_THRESHOLD)
    entry = next(e for e in child.card["edits"] if e["name"] == "footwear_fit")
    assert entry["success"] == measured["success"] and entry["sensitive"] == spec.sensitive
    assert ("class kept" in entry["reason"]) or ("not sensitive" in entry["reason"])
    derived = bundle.provenance["derived"]
    assert len(derived["data_hashes"]["positive"]) == PER_LABEL
    assert "extend-catalog" in derived["command"]

    # Registered through the registry: its event names the parent too; the parent is intact.
    event = (
        AuditEvent.objects.filter(action="model.registered", subject=f"model:{child.version}")
        .order_by("seq")
        .last()
    )
    assert f"model:{parent.version}" in event.subjects
    assert event.payload["parent_version"] == parent.version
    assert verify_bundle_files(parent.path) == parent.version
    assert json.loads((Path(parent.path) / "catalog.json").read_bytes())["edits"][-1]["name"] != (
        "footwear_fit"
    )
