"""Directions, GANSpace and the edit catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inversion.editing.catalog import EditCatalog, EditSpec
from inversion.editing.directions import (
    apply_direction,
    load_direction,
    load_directions,
    save_directions,
    validate_direction,
)
from inversion.editing.ganspace import compute_ganspace
from inversion.errors import EditError, InvalidDirection, StrengthOutOfRange, UnknownEdit
from inversion.modules.stylegan2 import Generator, GeneratorConfig

N, D = 8, 64


def test_apply_w_direction_on_layer_range() -> None:
    wplus = torch.randn(2, N, D)
    d = torch.randn(D)
    out = apply_direction(wplus, d, 2.0, (2, 5))
    assert torch.equal(out[:, :2], wplus[:, :2]) and torch.equal(out[:, 5:], wplus[:, 5:])
    torch.testing.assert_close(out[:, 2:5], wplus[:, 2:5] + 2.0 * d)
    # strength 0 is the identity, exactly
    assert torch.equal(apply_direction(wplus, d, 0.0, (0, N)), wplus)
    # per-sample strengths
    out = apply_direction(wplus, d, torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(out[1], wplus[1] - d)
    with pytest.raises(ValueError, match="layer range"):
        apply_direction(wplus, d, 1.0, (3, 9))


def test_apply_wplus_direction() -> None:
    wplus = torch.randn(1, N, D)
    d = torch.randn(N, D)
    out = apply_direction(wplus, d, 0.5, (4, 8))
    torch.testing.assert_close(out[0, 4:], wplus[0, 4:] + 0.5 * d[4:])
    assert torch.equal(out[0, :4], wplus[0, :4])
    with pytest.raises(InvalidDirection):
        apply_direction(wplus, torch.randn(N + 1, D), 1.0)


def test_direction_files_are_validated(tmp_path: Path) -> None:
    np.save(tmp_path / "smile.npy", np.ones(D, np.float32))
    assert torch.equal(load_direction(tmp_path / "smile.npy", style_dim=D), torch.ones(D))
    torch.save(torch.zeros(N, D), tmp_path / "wp.pt")
    assert load_direction(tmp_path / "wp.pt", style_dim=D, n_latent=N).shape == (N, D)

    np.save(tmp_path / "int.npy", np.ones(D, np.int64))
    with pytest.raises(InvalidDirection, match="not floating point"):
        load_direction(tmp_path / "int.npy")
    bad = np.ones(D, np.float32)
    bad[3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InvalidDirection, match="NaN"):
        load_direction(tmp_path / "nan.npy")
    with pytest.raises(InvalidDirection, match="style_dim 512"):
        load_direction(tmp_path / "smile.npy", style_dim=512)
    with pytest.raises(InvalidDirection, match="n_latent 18"):
        load_direction(tmp_path / "wp.pt", n_latent=18)
    torch.save(torch.zeros(2, N, D), tmp_path / "3d.pt")
    with pytest.raises(InvalidDirection, match="shape"):
        load_direction(tmp_path / "3d.pt")
    with pytest.raises(InvalidDirection, match="does not exist"):
        load_direction(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(InvalidDirection, match="unsupported"):
        load_direction(tmp_path / "x.txt")
    with pytest.raises(InvalidDirection, match="declared"):
        validate_direction(torch.zeros(D), space="wplus")


def test_named_directions_round_trip(tmp_path: Path) -> None:
    dirs = {"a": torch.randn(D), "b": torch.randn(N, D)}
    for suffix in (".pt", ".safetensors"):
        save_directions(dirs, tmp_path / f"d{suffix}")
        back = load_directions(tmp_path / f"d{suffix}", style_dim=D)
        assert back.keys() == dirs.keys()
        assert all(torch.equal(back[k], dirs[k]) for k in dirs)


def test_ganspace_components() -> None:
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.tiny())
    a = compute_ganspace(g, n_samples=1500, n_components=5, seed=3)
    b = compute_ganspace(g, n_samples=1500, n_components=5, seed=3)
    assert a.components.shape == (5, D) and a.stddevs.shape == (5,)
    assert torch.equal(a.components, b.components)  # deterministic for a seed
    torch.testing.assert_close(a.components @ a.components.T, torch.eye(5), atol=1e-5, rtol=0)
    assert torch.all(a.stddevs[:-1] >= a.stddevs[1:])  # sorted by variance
    # the first component captures the largest variance of the projected samples
    with torch.no_grad():
        w = g.get_latent(torch.randn(2000, D, generator=torch.Generator().manual_seed(9)))
    proj = (w - a.mean) @ a.components.T
    stds = proj.std(0)
    assert stds[0] == stds.max()
    torch.testing.assert_close(stds, a.stddevs, rtol=0.15, atol=0)
    named = a.directions()
    torch.testing.assert_close(named["ganspace_pc0"].norm(), a.stddevs[0])
    assert torch.allclose(a.directions(unit=True)["ganspace_pc1"].norm(), torch.tensor(1.0))


def _catalog() -> EditCatalog:
    return EditCatalog(
        [
            EditSpec("smile", "Smile", "dir_smile", "w", (2, 6), -2.0, 2.0, 0.0),
            EditSpec("age", "Apparent age", "dir_age", "wplus", (0, N), -3.0, 3.0, 0.0, True),
        ]
    )


def test_catalog_validation_messages() -> None:
    cat = _catalog()
    assert cat.validate_request({"smile": 1, "age": -2.5}) == {"smile": 1.0, "age": -2.5}
    with pytest.raises(UnknownEdit, match=r"unknown edit 'beard'; available edits: smile, age"):
        cat.validate_request({"beard": 1.0})
    with pytest.raises(StrengthOutOfRange, match=r"'smile'.*allowed: -2 to 2") as info:
        cat.validate_request({"smile": 2.5})
    assert (info.value.low, info.value.high) == (-2.0, 2.0)
    for bad in (float("nan"), float("inf"), "1", True, None):
        with pytest.raises(StrengthOutOfRange):
            cat.validate_request({"smile": bad})
    # both are EditErrors, so the platform can catch one class for a 400
    assert issubclass(UnknownEdit, EditError) and issubclass(StrengthOutOfRange, EditError)
    assert cat.sensitive_edits({"smile": 1.0, "age": 0.5}) == ["age"]
    assert not cat.sensitive_edits({"smile": 1.0, "age": 0.0})
    assert cat.sensitive_edits({"age": 1.0}) == ["age"]


def test_catalog_json_round_trip_and_rejects_bad_specs() -> None:
    cat = _catalog()
    text = cat.to_json()
    assert EditCatalog.from_json(text) == cat
    data = json.loads(text)
    assert data["format_version"] == 1 and data["edits"][1]["sensitive"] is True
    data["edits"][0]["colour"] = "red"
    with pytest.raises(EditError, match="unknown fields"):
        EditCatalog.from_dict(data)
    with pytest.raises(EditError, match="duplicate"):
        EditCatalog([cat["smile"], cat["smile"]])
    with pytest.raises(EditError, match="default_strength"):
        EditSpec("x", "x", "d", min_strength=0, max_strength=1, default_strength=2)
    with pytest.raises(EditError, match="name"):
        EditSpec("Bad Name", "x", "d")
    with pytest.raises(EditError, match="layer range"):
        EditSpec("x", "x", "d", layers=(4, 4))
    with pytest.raises(EditError, match="not valid JSON"):
        EditCatalog.from_json("{")


def test_catalog_apply_and_direction_checks() -> None:
    cat = _catalog()
    dirs = {"dir_smile": torch.randn(D), "dir_age": torch.randn(N, D)}
    cat.check_directions(dirs, n_latent=N, style_dim=D)
    wplus = torch.randn(3, N, D)
    out = cat.apply(wplus, {"smile": 1.0, "age": 0.5}, dirs)
    expected = apply_direction(
        apply_direction(wplus, dirs["dir_smile"], 1.0, (2, 6)), dirs["dir_age"], 0.5, (0, N)
    )
    torch.testing.assert_close(out, expected)
    assert torch.equal(cat.apply(wplus, {"smile": 0.0, "age": 0.0}, dirs), wplus)
    with pytest.raises(StrengthOutOfRange):
        cat.apply(wplus, {"smile": 9.0}, dirs)
    with pytest.raises(InvalidDirection, match="dir_age"):
        cat.check_directions({"dir_smile": dirs["dir_smile"]}, n_latent=N, style_dim=D)
    with pytest.raises(InvalidDirection, match="declared"):
        cat.check_directions({**dirs, "dir_age": torch.randn(D)}, n_latent=N, style_dim=D)
    with pytest.raises(EditError, match="exceeds"):
        cat.check_directions(
            {"dir_smile": torch.randn(D), "dir_age": torch.randn(4, D)}, n_latent=4, style_dim=D
        )
