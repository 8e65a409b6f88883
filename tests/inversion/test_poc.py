"""`python -m inversion poc` and the shifted product-photo generator (issue 16, item 2).

The demo bundle and its classifier are the real, shipped ones; the photos are real
Fashion-MNIST test images written as PNG files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.cli import main
from inversion.training.data import load_fashion_mnist
from tests.inversion.conftest import REPO_ROOT

DEMO = REPO_ROOT / "inversion" / "bundles" / "demo"
CLASSIFIER = REPO_ROOT / "inversion" / "bundles" / "demo_eval" / "classifier.pt"


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, old))
    yield
    torch.set_num_threads(old)


def _write_pngs(images: torch.Tensor, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arr = images.add(1).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(arr):
        Image.fromarray(a, mode="RGB").save(folder / f"img_{i:03d}.png")


def test_poc_figures_agree_with_evaluate(tmp_path, capsys):
    from inversion.evaluate import evaluate

    images, _ = load_fashion_mnist("test", limit=10)
    _write_pngs(images, tmp_path / "photos")
    out = tmp_path / "report"
    argv = [
        "poc",
        "--bundle",
        str(DEMO),
        "--photos",
        str(tmp_path / "photos"),
        "--out",
        str(out),
        "--gpu-hour-price",
        "3.5",
        "--classifier",
        str(CLASSIFIER),
        "--aligned",  # evaluate takes the items as they are; the demo declares `object`
    ]
    assert main(argv) == 0
    rep = json.loads((out / "report.json").read_text())

    ref = evaluate(
        DEMO, CLASSIFIER, None, images=images, opt_n=0, batch=100, progress=False, latency_repeats=1
    )
    ours = ref["methods"]["ours"]
    for key in ("mse", "psnr", "ssim"):
        assert rep["reconstruction"][key] == pytest.approx(ours[key], rel=1e-5, abs=1e-6)
    assert rep["reconstruction"]["n"] == ours["n"] == 10
    assert set(rep["edits"]) == set(ref["edits"]) and rep["edits"]
    for name, row in ref["edits"].items():
        for fuser in ("fuser", "no_fuser"):
            for key in ("success", "class_kept", "tone_kept"):
                assert rep["edits"][name][fuser][key] == pytest.approx(row[fuser][key]), (
                    name,
                    fuser,
                    key,
                )

    # speed and cost follow from each other; the command is recorded
    speed = rep["speed"]
    assert speed["images_per_hour"] == pytest.approx(3600 / speed["job_s_per_image"])
    assert rep["cost"]["per_1000_images"] == pytest.approx(3.5 * 1000 / speed["images_per_hour"])
    assert rep["command"] == "python -m inversion " + " ".join(argv)
    assert len(rep["per_image"]) == 10
    # the demo bundle declares no gate: said, not invented
    gate = rep["domain_gate"]  # the demo bundle declares its domain and gate
    assert gate["declared"] is True and gate["n"] == 10
    assert gate["passed"] == sum(row["in_domain"] for row in rep["per_image"])
    assert gate["pass_rate"] == pytest.approx(gate["passed"] / 10)

    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # grid, PSNR, SSIM and gate histograms
    assert not re.search(r"""(src|href)=['"]?(https?:|//|file:)""", page)  # self-contained
    assert "domain gate pass rate" in page and "3.5 per GPU-hour" in page


def test_poc_gate_pass_rate_is_the_bundles_gate(tmp_path):
    from inversion.bundle import load_bundle
    from inversion.inverter import Inverter
    from inversion.poc import measure
    from inversion.preprocess import image_to_tensor
    from inversion.shifted import write_shifted
    from inversion.training.adapt_demo import declare_reference_gate

    parent = declare_reference_gate(DEMO, tmp_path / "parent", fit_n=60, calib_n=30)
    assert parent.domain_gate is not None and parent.domain.align == "center"
    images, _ = load_fashion_mnist("test", limit=6)
    _write_pngs(images, tmp_path / "photos")
    write_shifted(tmp_path / "photos", 3000, 6)  # a mixed folder: 6 plain, 6 shifted
    result, tensors = measure(tmp_path / "parent", tmp_path / "photos", progress=False)

    paths = sorted((tmp_path / "photos").glob("*.png"))
    x = image_to_tensor([Image.open(p) for p in paths], 32)
    assert torch.equal(tensors["input"], x)
    b = load_bundle(tmp_path / "parent")
    inv = Inverter(b, "cpu").invert(x)
    reports = b.domain_gate.assess(inv.wplus, inv.reconstruction, x)
    g = result["domain_gate"]
    assert g["declared"] is True and g["n"] == 12
    assert g["passed"] == sum(r.in_domain for r in reports)
    assert g["pass_rate"] == pytest.approx(g["passed"] / 12)
    assert [r["in_domain"] for r in result["per_image"]] == [r.in_domain for r in reports]
    # the shifted photos are what the gate flags more often
    plain = [r["in_domain"] for r in result["per_image"] if r["name"].startswith("img_")]
    shifted = [r["in_domain"] for r in result["per_image"] if r["name"].startswith("val_")]
    assert sum(plain) > sum(shifted)
    assert result["cost"] is None  # no price given


def test_poc_bad_inputs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "poc",
                "--bundle",
                str(DEMO),
                "--photos",
                str(tmp_path / "empty"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 1
    )
    assert "holds no photos" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()

    folder = tmp_path / "mixed"
    images, _ = load_fashion_mnist("test", limit=2)
    _write_pngs(images, folder)
    (folder / "broken.png").write_bytes(b"not a png at all")
    assert (
        main(
            [
                "poc",
                "--bundle",
                str(DEMO),
                "--photos",
                str(folder),
                "--out",
                str(tmp_path / "r2"),
                "--gpu-hour-price",
                "1",
            ]
        )
        == 0
    )
    rep = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert rep["photos"]["n_found"] == 3 and rep["photos"]["n_used"] == 2
    assert [s["name"] for s in rep["photos"]["skipped"]] == ["broken.png"]

    assert (
        main(
            [
                "poc",
                "--bundle",
                str(DEMO),
                "--photos",
                str(folder),
                "--out",
                str(tmp_path / "r3"),
                "--gpu-hour-price",
                "-1",
            ]
        )
        == 1
    )
    assert "--gpu-hour-price" in capsys.readouterr().err


def test_shifted_photos_are_deterministic_and_shifted(tmp_path):
    from inversion.shifted import PALETTE, shift_images

    assert main(["shifted-photos", "--out", str(tmp_path / "a"), "--start", "10", "--n", "5"]) == 0
    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert names == [f"val_{i:05d}.png" for i in range(10, 15)]
    main(["shifted-photos", "--out", str(tmp_path / "b"), "--start", "10", "--n", "5"])
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    arr = np.asarray(Image.open(tmp_path / "a" / names[0]))
    assert arr.shape == (32, 32, 3)
    corner = arr[0, 0].astype(float) / 255
    assert 0.09 <= corner.max() <= 0.26  # a dim coloured backdrop, not black
    item = np.zeros((1, 28, 28), np.uint8)
    item[0, 10:18, 10:18] = 255
    out = shift_images(item, seed=3)[0].astype(float) / 255
    assert any(np.allclose(out[16, 16], c, atol=1 / 255) for c in PALETTE)  # tinted item
    with pytest.raises(ValueError):
        shift_images(np.zeros((28, 28), np.uint8))
    assert (
        main(["shifted-photos", "--out", str(tmp_path / "c"), "--start", "4999", "--n", "5"]) == 1
    )
