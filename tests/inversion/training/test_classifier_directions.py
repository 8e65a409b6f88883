from __future__ import annotations

import torch
import torch.nn.functional as F

from inversion.editing.catalog import EditCatalog
from inversion.training.classifier import (
    ATTRIBUTES,
    AttributeClassifier,
    load_classifier,
    pixel_measures,
    train_classifier,
)
from inversion.training.directions import fit_boundary, fit_directions


def test_pixel_measures():
    img = -torch.ones(2, 3, 32, 32)
    img[0, :, :16] = 1.0  # top half white
    img[1, :, :8, :8] = 0.0  # small grey square
    m = pixel_measures(img)
    assert torch.allclose(m["bulk"], torch.tensor([0.5, 64 / 1024]))
    assert torch.allclose(m["brightness"], torch.tensor([1.0, 0.5]))


def test_classifier_training_lowers_loss_and_round_trips(fixed_batch, tmp_path):
    x, y = fixed_batch
    torch.manual_seed(0)
    model = AttributeClassifier(width=8)
    before = float(F.cross_entropy(model.eval()(x), y))
    summary = train_classifier(
        tmp_path,
        steps=40,
        batch=16,
        lr=1e-2,
        width=8,
        train_data=(x, y),
        val_data=(x, y),
        progress=False,
    )
    clf = load_classifier(tmp_path / "classifier.pt")
    after = float(F.cross_entropy(clf(x), y))
    assert after < before - 0.2, (before, after)
    assert summary["steps"] == 40 and 0 <= summary["val_accuracy"] <= 1
    scores = clf.attributes(x)
    assert set(scores) == {*ATTRIBUTES, "class"}
    assert all(v.shape == (16,) for v in scores.values())
    # footwear score = logit of the summed probabilities of its classes
    p = clf(x).softmax(1)[:, [5, 7, 9]].sum(1)
    assert torch.allclose(scores["footwear"], torch.log(p / (1 - p)), atol=1e-4)


def test_fit_boundary_recovers_a_separating_direction():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2000, 16, generator=g) * torch.linspace(0.5, 2, 16)
    true = torch.zeros(16)
    true[3], true[7] = 1.0, -1.0
    labels = ((w @ true) > 0).float()
    normal = fit_boundary(w, labels)
    assert abs(float(normal.norm()) - 1) < 1e-5
    assert float(normal @ (true / true.norm())) > 0.95


def test_fit_directions_builds_a_catalog(tiny_generator, fixed_batch, tmp_path):
    g, _ = tiny_generator
    x, y = fixed_batch
    train_classifier(
        tmp_path, steps=3, batch=16, width=8, train_data=(x, y), val_data=(x, y), progress=False
    )
    clf = load_classifier(tmp_path / "classifier.pt")
    dirs, catalog, report = fit_directions(
        g,
        clf,
        n_samples=200,
        calib_samples=32,
        max_strength=1.0,
        ganspace_components=2,
        progress=False,
    )
    assert isinstance(catalog, EditCatalog)
    catalog.check_directions(dirs, n_latent=g.n_latent, style_dim=g.style_dim)
    names = set(catalog.names)
    assert {"footwear", "long_sleeves", "brightness", "bulk", "component_0"} <= names
    assert catalog["footwear"].sensitive and catalog["long_sleeves"].sensitive
    assert not catalog["brightness"].sensitive and not catalog["bulk"].sensitive
    for spec in catalog:
        assert spec.description and dirs[spec.direction].shape == (g.style_dim,)
    # supervised directions are scaled to one standard deviation of W along them
    w = g.get_latent(torch.randn(2000, g.style_dim, generator=torch.Generator().manual_seed(9)))
    d = dirs["interfacegan_bulk"]
    sigma = float(((w - w.mean(0)) @ (d / d.norm())).std())
    assert abs(float(d.norm()) / sigma - 1) < 0.2
    assert report["n_samples"] == 200
