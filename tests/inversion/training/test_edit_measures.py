"""Edit measurements, trivial baselines and the descriptive catalog fields."""

from __future__ import annotations

import pytest
import torch

from inversion.editing.catalog import EditCatalog, EditSpec
from inversion.errors import EditError
from inversion.evaluate import downsample_upsample, recon_metrics
from inversion.training.classifier import AttributeClassifier, pixel_measures
from inversion.training.edit_measures import MIN_CHANGE, attribute_of, measure_edit


def _clf() -> AttributeClassifier:
    torch.manual_seed(0)
    clf = AttributeClassifier(width=4).eval()
    clf.medians.copy_(torch.tensor([0.5, 0.3]))
    return clf


def test_measured_attribute_success_follows_the_requested_direction(fixed_batch):
    x = fixed_batch[0]
    clf = _clf()
    s0 = clf.attributes(x)

    def brighten_requested(signed):  # does what is asked: +0.2 grey per unit of sign
        grey = (x + 1) / 2
        fg = (grey > 0.1).float()
        return ((grey + 0.2 * signed.sign().view(-1, 1, 1, 1) * fg).clamp(0.11, 1) * fg) * 2 - 1

    effects, _ = measure_edit(brighten_requested, x, clf, "brightness", 1.0, s0)
    # items above the median are darkened, below brightened: both count as success
    assert effects["success"].mean() > 0.8
    assert (effects["change"] >= MIN_CHANGE["brightness"]).float().mean() > 0.8

    effects, _ = measure_edit(lambda signed: x.clone(), x, clf, "brightness", 1.0, s0)
    assert effects["success"].sum() == 0  # nothing moved: no success
    assert effects["class_kept"].mean() == 1 and effects["tone_kept"].mean() == 1


def test_a_declared_min_change_is_the_bar_a_gentle_edit_is_held_to(fixed_batch):
    x = fixed_batch[0]
    clf = _clf()
    s0 = clf.attributes(x)

    def nudge(signed):  # moves item brightness by 0.03 the requested way
        grey = (x + 1) / 2
        fg = (grey > 0.1).float()
        return ((grey + 0.03 * signed.sign().view(-1, 1, 1, 1) * fg).clamp(0.11, 1) * fg) * 2 - 1

    default, _ = measure_edit(nudge, x, clf, "brightness", 1.0, s0)
    gentle, _ = measure_edit(nudge, x, clf, "brightness", 1.0, s0, min_change=0.02)
    assert default["success"].sum() == 0  # 0.03 < the default 0.05
    assert gentle["success"].mean() > 0.8  # but it does what a 0.02 nudge claims
    assert torch.equal(default["change"], gentle["change"])


def test_category_success_is_a_label_flip_and_tone_is_reported(fixed_batch):
    x = fixed_batch[0]
    clf = _clf()
    effects, _ = measure_edit(lambda signed: x.clone(), x, clf, "footwear", 3.0)
    assert effects["success"].sum() == 0 and effects["tone_change"].abs().max() == 0
    darker = lambda signed: (((x + 1) / 2) * 0.5) * 2 - 1  # noqa: E731
    effects, _ = measure_edit(darker, x, clf, "footwear", 3.0)
    m = pixel_measures(x)
    assert torch.allclose(
        effects["tone_change"].abs(),
        (m["brightness"] - pixel_measures(darker(None))["brightness"]).abs(),
    )


def test_downsample_baseline_loses_detail_and_keeps_flat_images():
    flat = torch.full((2, 3, 32, 32), 0.4)
    for mode in ("bilinear", "bicubic"):
        assert torch.allclose(downsample_upsample(flat, 8, mode), flat, atol=1e-5)
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    p16 = recon_metrics(downsample_upsample(noise, 16, "bilinear"), noise)["psnr"].mean()
    p8 = recon_metrics(downsample_upsample(noise, 8, "bilinear"), noise)["psnr"].mean()
    assert p8 < p16 < 40


def test_catalog_descriptive_fields_round_trip_and_stay_optional():
    spec = EditSpec(
        "tone",
        "t",
        "d",
        changes="brightness",
        preserves="class",
        measured={"attribute": "brightness", "class_kept": 0.9},
    )
    plain = EditSpec("other", "o", "d")
    cat = EditCatalog([spec, plain])
    again = EditCatalog.from_json(cat.to_json())
    assert again == cat and again["tone"].measured["class_kept"] == 0.9
    assert "changes" not in plain.to_dict()  # older catalogs serialise as before
    assert attribute_of(again["tone"]) == "brightness"
    assert attribute_of(EditSpec("b", "b", "interfacegan_bulk")) == "bulk"
    with pytest.raises(EditError, match="measured"):
        EditSpec("x", "x", "d", measured=[1, 2])
    with pytest.raises(EditError, match="changes"):
        EditSpec("x", "x", "d", changes=3)
