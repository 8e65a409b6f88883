"""Disentangled edits for a trained bundle: chosen on given images, swapped in unchanged."""

from __future__ import annotations

import json
import shutil

import torch

from inversion.bundle import load_bundle
from inversion.editing.directions import save_directions
from inversion.training.classifier import AttributeClassifier
from inversion.training.directions import conditional_direction, fit_bundle_edits
from inversion.training.recipe import rebundle_with_edits

PLANS = {
    "bulk": {
        "attribute": "bulk",
        "kind": "measured",
        "conditions": [("classes", "others")],
        "layers": [(0, 2)],
        "strengths": [0.5, 1.0],
        "description": "d",
        "changes": "area",
        "preserves": "class",
    },
    "footwear": {
        "attribute": "footwear",
        "kind": "category",
        "conditions": [()],
        "layers": [None],
        "strengths": [1.0],
        "description": "f",
        "changes": "category",
        "preserves": "tone",
    },
}


def test_conditional_direction_is_orthogonal_to_what_it_projects_out():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(500, 16, generator=g)
    normals = {
        a: torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
        for a in ("footwear", "long_sleeves", "brightness", "bulk")
    }
    classes = [torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0) for _ in range(3)]
    d = conditional_direction("bulk", normals, classes, ("classes", "others"), w)
    for n in [*classes, normals["brightness"]]:
        assert abs(float(d @ n)) < 1e-4
    sigma = float(((w - w.mean(0)) @ (d / d.norm())).std())
    assert abs(float(d.norm()) / sigma - 1) < 1e-3  # one sigma of W along it
    plain = conditional_direction("bulk", normals, classes, (), w)
    assert torch.allclose(plain / plain.norm(), normals["bulk"], atol=1e-5)


def test_fit_bundle_edits_and_rebundle_keep_the_weights(random_bundle_dir, fixed_batch, tmp_path):
    torch.manual_seed(0)
    clf = AttributeClassifier(width=4).eval()
    dirs, catalog, report = fit_bundle_edits(
        random_bundle_dir,
        clf,
        fixed_batch[0][:8],
        n_samples=64,
        ganspace_components=2,
        plans=PLANS,
        progress=False,
    )
    assert report["val_images"] == 8
    for name in PLANS:
        assert report[name]["tried"] and report[name]["decision"]
    for spec in catalog:
        assert spec.changes and spec.preserves
        if spec.name in PLANS:
            m = spec.measured
            assert m["attribute"] == PLANS[spec.name]["attribute"]
            assert 0 <= m["success"] <= 1 and 0 <= m["class_kept"] <= 1
            assert spec.default_strength in PLANS[spec.name]["strengths"]
            if PLANS[spec.name]["kind"] == "category":
                assert spec.sensitive  # category edits always need an approval
            else:
                assert spec.sensitive == (m["class_kept"] < 0.9)
    assert {"component_0", "component_1"} <= set(catalog.names)

    edits = tmp_path / "edits"
    edits.mkdir()
    save_directions(dirs, edits / "directions.safetensors")
    catalog.save(edits / "catalog.json")
    (edits / "report.json").write_text(json.dumps({**report, "command": "python -m x"}))
    bundle = tmp_path / "bundle"
    shutil.copytree(random_bundle_dir, bundle)
    before = load_bundle(bundle)
    after = rebundle_with_edits(bundle, edits, commands=["python -m y"])
    for name in (
        "generator.safetensors",
        "encoder.safetensors",
        "fuser.safetensors",
        "latent_avg.safetensors",
    ):
        assert after.manifest["files"][name] == before.manifest["files"][name], name
    assert after.catalog == catalog
    assert after.provenance["edits"]["command"] == "python -m x"
    assert after.provenance["commands"][-2:] == ["python -m x", "python -m y"]
    assert "edits" not in after.metrics


def test_a_category_edit_that_loses_the_tone_ships_under_its_fallback_name(
    random_bundle_dir, fixed_batch, monkeypatch
):
    from inversion.training import edit_measures

    monkeypatch.setattr(edit_measures, "TONE_TOLERANCE", -1.0)  # no image keeps its tone
    plan = {
        **PLANS["footwear"],
        "layers": [(0, 1), None],
        "strengths": [0.5, 3.0],
        "keep_tone": True,
        "fallback": {
            "name": "footwear_swap",
            "description": "swap",
            "changes": "the category; the item is replaced",
            "preserves": "the framing only",
        },
    }
    torch.manual_seed(0)
    _, catalog, report = fit_bundle_edits(
        random_bundle_dir,
        AttributeClassifier(width=4).eval(),
        fixed_batch[0][:8],
        n_samples=64,
        ganspace_components=1,
        plans={"footwear": plan},
        progress=False,
    )
    assert "footwear" not in catalog.names
    spec = catalog["footwear_swap"]
    assert spec.changes.startswith("the category") and spec.preserves == "the framing only"
    assert spec.measured["tone_kept"] == 0 and spec.sensitive
    assert report["footwear"]["decision"].startswith("shipped as footwear_swap")
    # the swap ships the candidate that swaps most often, not the best tone-keeping one
    best = max(row["success"] for row in report["footwear"]["tried"])
    assert spec.measured["success"] == best == report["footwear"]["chosen"]["success"]
