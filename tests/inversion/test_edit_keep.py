"""An edit's ``keep`` loop: footwear_swap restores the item's tone per image.

Real model code throughout: the shipped demo bundle, Fashion-MNIST test images, and the
same brightness measure the evaluation scores ``tone_kept`` with.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from inversion.bundle import load_bundle
from inversion.editing.catalog import EditCatalog, EditSpec, KeepSpec
from inversion.errors import EditError, InvalidDirection
from inversion.inverter import Inverter
from inversion.training.classifier import pixel_measures

DEMO = Path(__file__).resolve().parents[2] / "inversion" / "bundles" / "demo"
KEEP = {
    "attribute": "tone",
    "direction": "conditional_brightness",
    "layers": [5, 8],
    "max_strength": 16.0,
    "tolerance": 0.1,
    "renders": 4,
}


def _entry(**keep: object) -> dict[str, object]:
    return {
        "name": "swap",
        "description": "d",
        "direction": "interfacegan_footwear",
        "min_strength": -8.0,
        "max_strength": 8.0,
        "default_strength": 6.0,
        "keep": {**KEEP, **keep},
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attribute": "hue"}, "keep.attribute"),
        ({"direction": ""}, "keep.direction"),
        ({"layers": [7, 5]}, "keep.layers"),
        ({"layers": "5-8"}, "keep.layers"),
        ({"max_strength": -1}, "keep.max_strength"),
        ({"max_strength": float("inf")}, "keep.max_strength"),
        ({"tolerance": "0.1"}, "keep.tolerance"),
        ({"renders": 0}, "keep.renders"),
        ({"renders": 2.5}, "keep.renders"),
        ({"renders": True}, "keep.renders"),
        ({"strength": 3}, "unknown fields ['strength']"),
    ],
)
def test_malformed_keep_entries_are_refused_naming_the_field(change, field):
    with pytest.raises(EditError, match=field.replace("[", r"\[").replace("]", r"\]")) as exc:
        EditSpec.from_dict(_entry(**change))
    assert "'swap'" in str(exc.value)  # and the edit


def test_keep_must_be_an_object_with_its_required_fields():
    entry = _entry()
    entry["keep"] = [1, 2]
    with pytest.raises(EditError, match="keep must be an object"):
        EditSpec.from_dict(entry)
    entry["keep"] = {"attribute": "tone", "direction": "conditional_brightness"}
    with pytest.raises(EditError, match=r"missing fields \['max_strength', 'tolerance'\]"):
        EditSpec.from_dict(entry)


def test_keep_direction_must_exist_and_fit_the_model():
    bundle = load_bundle(DEMO)
    n, dim = bundle.generator_config.n_latent, bundle.generator_config.style_dim
    spec = EditSpec.from_dict(_entry(direction="no_such_direction"))
    with pytest.raises(InvalidDirection, match="keep.direction 'no_such_direction'"):
        EditCatalog([spec]).check_directions(bundle.directions, n_latent=n, style_dim=dim)
    spec = EditSpec.from_dict(_entry(layers=[5, n + 1]))
    with pytest.raises(EditError, match="keep.layers"):
        EditCatalog([spec]).check_directions(bundle.directions, n_latent=n, style_dim=dim)


def test_keep_round_trips_through_json():
    catalog = EditCatalog([EditSpec.from_dict(_entry())])
    again = EditCatalog.from_json(catalog.to_json())
    assert again == catalog and isinstance(again["swap"].keep, KeepSpec)
    assert again["swap"].keep.layers == (5, 8)


@pytest.fixture(scope="module")
def swapped():
    """12 real test items inverted, swapped plainly and with the shipped keep loop."""
    from inversion.training.data import load_fashion_mnist

    bundle = load_bundle(DEMO)
    assert bundle.catalog["footwear_swap"].keep is not None  # what the demo ships
    images, _ = load_fashion_mnist("test", size=32, limit=12)
    inverter = Inverter(bundle, device="cpu", batch_size=12)
    inv = inverter.invert(images)
    request = {"footwear_swap": 6.0}
    kept = inverter.edit(inv, request)
    again = inverter.edit(inv, request)
    plain_spec = dataclasses.replace(bundle.catalog["footwear_swap"], keep=None)
    inverter.catalog = EditCatalog(
        [plain_spec if s.name == "footwear_swap" else s for s in bundle.catalog]
    )
    plain = inverter.edit(inv, request)
    return inv, plain, kept, again


def test_keep_loop_restores_tone_where_the_plain_swap_does_not(swapped):
    inv, plain, kept, _ = swapped
    tone0 = pixel_measures(inv.reconstruction)["brightness"]
    drift_plain = (pixel_measures(plain)["brightness"] - tone0).abs()
    drift_kept = (pixel_measures(kept)["brightness"] - tone0).abs()
    lost = drift_plain > 0.1
    assert int(lost.sum()) >= 4, drift_plain  # the plain swap loses the tone on these
    # the catalog promises 0.1 for ~90 % of items (docs/quality.md); on these 12 all but
    # one of the items the swap darkened come back within it, and every one moves back
    restored = drift_kept[lost] <= 0.1
    assert float(restored.float().mean()) >= 0.8, (drift_plain, drift_kept)
    assert bool((drift_kept[lost] < drift_plain[lost] / 2).all()), (drift_plain, drift_kept)
    assert bool((drift_kept <= drift_plain + 1e-6).all())  # never worse than the swap
    assert not torch.equal(plain, kept)


def test_keep_loop_is_deterministic(swapped):
    _, _, kept, again = swapped
    assert kept.numpy().tobytes() == again.numpy().tobytes()


def test_strength_zero_runs_no_loop_and_equals_the_reconstruction(swapped):
    inv = swapped[0]
    inverter = Inverter(load_bundle(DEMO), device="cpu", batch_size=12)
    out = inverter.edit(inv, {"footwear_swap": 0.0})
    assert torch.equal(out, inverter.edit(inv, {}))


def test_mixed_requests_keep_only_the_samples_that_use_the_edit(swapped):
    """Per-sample requests (a worker batching jobs): the loop corrects the footwear_swap
    samples as it would alone, and leaves the others as the plain edit renders them."""
    inv, _, kept, _ = swapped
    inverter = Inverter(load_bundle(DEMO), device="cpu", batch_size=12)
    requests = [{"footwear_swap": 6.0} if i % 2 == 0 else {"tone": 1.0} for i in range(12)]
    mixed = inverter.edit(inv, requests)
    torch.testing.assert_close(mixed[0::2], kept[0::2], atol=1e-4, rtol=0)
    tone_only = inverter.edit(inv, {"tone": 1.0})
    torch.testing.assert_close(mixed[1::2], tone_only[1::2], atol=1e-4, rtol=0)
