"""`python -m inversion train adapt` (issue 16, item 3): a tiny adaptation of the shipped
demo bundle to shifted product photos, built by the tests themselves in a few steps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from inversion.bundle import load_bundle
from inversion.cli import main
from inversion.training.adapt import (
    REFERENCE_GUARD,
    AdaptConfig,
    AdaptTrainer,
    reference_images,
    split_photos,
)
from tests.inversion.conftest import REPO_ROOT

DEMO = REPO_ROOT / "inversion" / "bundles" / "demo"

# small everything: a few steps, a small guard reference and gate
TINY = [
    "--batch",
    "2",
    "--gen-batch",
    "1",
    "--guard-n",
    "10",
    "--guard-every",
    "1",
    "--holdout",
    "0.2",
    "--gate-fit",
    "10",
    "--gate-reference",
    "20",
    "10",
    "--max-forgetting-db",
    "50",
]


@pytest.fixture(scope="module")
def parent_and_photos(tmp_path_factory) -> tuple[Path, Path]:
    from inversion.shifted import write_shifted
    from inversion.training.adapt_demo import declare_reference_gate

    root = tmp_path_factory.mktemp("adapt")
    declare_reference_gate(DEMO, root / "parent", fit_n=30, calib_n=15)
    write_shifted(root / "photos", 0, 10)
    return root / "parent", root / "photos"


@pytest.fixture
def adapt(parent_and_photos):
    """``adapt(*args, photos=DIR, tiny=True)``: run ``python -m inversion train adapt`` on
    the parent bundle (and its photos unless others are given) with the small settings."""
    parent_dir, default_photos = parent_and_photos

    def run(*args: str | Path, photos: Path | None = None, tiny: bool = True) -> int:
        argv = ["train", "adapt", "--bundle", str(parent_dir)]
        argv += ["--photos", str(photos or default_photos), *(TINY if tiny else [])]
        return main([*argv, *(str(a) for a in args)])

    return run


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first_photos(photos: Path, out: Path, n: int) -> Path:
    out.mkdir()
    for p in sorted(photos.glob("*.png"))[:n]:
        (out / p.name).write_bytes(p.read_bytes())
    return out


def test_adapt_writes_a_traceable_bundle_and_resumes_exactly(
    parent_and_photos, adapt, tmp_path, capsys
):
    parent_dir, photos = parent_and_photos
    parent = load_bundle(parent_dir)

    # interrupted after 1 step, then resumed to 2 ...
    run_dir = ["--run-dir", tmp_path / "run"]
    assert adapt("--steps", "1", "--out", tmp_path / "half", *run_dir) == 0
    assert adapt("--steps", "2", "--out", tmp_path / "resumed", *run_dir, "--resume") == 0
    assert "resumed from step 1" in capsys.readouterr().out
    straight = tmp_path / "resumed"
    for name in ("encoder.safetensors", "fuser.safetensors"):
        assert _sha(straight / name) != _sha(parent_dir / name)  # it did train
    assert _sha(straight / "generator.safetensors") == _sha(parent_dir / "generator.safetensors")
    # ... equals the same schedule run without a restart (as the encoder tests check)
    cfg = AdaptConfig(
        bundle=str(parent_dir),
        photos=str(photos),
        steps=1,
        batch=2,
        gen_batch=1,
        guard_n=10,
        guard_every=1,
        holdout=0.2,
        max_forgetting_db=50,
    )
    split = split_photos(photos, parent.domain, 32, 0.2)
    cfg.data_sha256, cfg.parent_version = split.sha256, parent.version
    t = AdaptTrainer(
        cfg, tmp_path / "inproc", parent, split.train, reference_images(REFERENCE_GUARD, 32)[:10]
    )
    t.train(progress=False)
    t.cfg.steps = 2
    t.train(progress=False)
    saved = load_bundle(straight).state_dicts
    for part, module in (("encoder", t.encoder), ("fuser", t.fuser)):
        for k, v in module.state_dict().items():
            assert torch.equal(v, saved[part][k]), (part, k)

    b = load_bundle(straight)
    prov = b.provenance
    assert prov["parent"]["version"] == parent.version
    files = prov["adaptation"]["files_sha256"]
    assert sorted(len(v) for v in files.values()) == [2, 2, 6]
    for split in files.values():
        for name, digest in split.items():
            assert digest == _sha(photos / name)
    assert prov["commands"][0].startswith("python -m inversion train adapt --bundle")
    assert prov["adaptation"]["steps_done"] == 2
    guard = prov["adaptation"]["forgetting_guard"]
    assert [h["step"] for h in guard["history"]] == [1, 2] and guard["stopped"] is None

    fig = b.metrics["poc_adaptation"]
    assert fig["before"]["bundle_version"] == parent.version
    assert fig["held_out_photos"] == sorted(files["holdout"])
    assert fig["before"]["n"] == fig["after"]["n"] == 2
    assert fig["before"]["gate_declared"] and fig["after"]["gate_declared"]
    # the new gate is the adapted encoder's, declared in the manifest like any gate
    assert b.domain_gate is not None and b.domain.align == parent.domain.align
    assert "held-out adaptation photos" in b.domain_gate.thresholds.calibration
    assert b.version != parent.version
    # the recorded after-figures are reproduced by poc on the same held-out photos
    from inversion.poc import measure

    again, _ = measure(straight, [photos / n for n in fig["held_out_photos"]], progress=False)
    assert again["reconstruction"]["psnr"] == pytest.approx(fig["after"]["psnr"], abs=1e-3)
    assert again["domain_gate"]["pass_rate"] == fig["after"]["gate_pass_rate"]

    # a new bundle never overwrites; a checkpoint of other photos is refused
    assert adapt("--steps", "2", "--out", straight) == 1
    assert "already exists" in capsys.readouterr().err
    other = _first_photos(photos, tmp_path / "other_photos", 8)
    out = ["--out", tmp_path / "x"]
    assert adapt("--steps", "2", *out, *run_dir, "--resume", photos=other) == 1
    assert "another data_sha256" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_forgetting_guard_refuses_and_generator_tuning(parent_and_photos, adapt, tmp_path, capsys):
    parent_dir, _photos = parent_and_photos
    # a reckless generator learning rate with no forgetting allowed: refused, nothing written
    reckless = ["--g-lr", "0.05", "--max-forgetting-db", "0", "--out", tmp_path / "reckless"]
    assert adapt("--tune-generator", "--steps", "1", *reckless) == 1
    err = capsys.readouterr().err
    assert "forgetting guard" in err and "nothing written" in err
    assert not (tmp_path / "reckless").exists()

    # a permitted generator fine-tune: the generator changes, the guard's figures recorded
    assert adapt("--tune-generator", "--steps", "1", "--out", tmp_path / "tuned") == 0
    tuned = tmp_path / "tuned"
    assert _sha(tuned / "generator.safetensors") != _sha(parent_dir / "generator.safetensors")
    prov = load_bundle(tuned).provenance["adaptation"]
    assert prov["trained"] == "encoder + fuser + generator synthesis"
    base = prov["forgetting_guard"]["base_psnr"]
    last = prov["forgetting_guard"]["history"][-1]
    assert last["drop_db"] == pytest.approx(base - last["reference_psnr"], abs=1e-3)
    # the mapping network is untouched (the edit directions keep their meaning)
    from safetensors.torch import load_file

    new = load_file(str(tuned / "generator.safetensors"))
    old = load_file(str(parent_dir / "generator.safetensors"))
    style = [k for k in new if k.startswith("style.")]
    assert style and all((new[k] == old[k]).all() for k in style)
    assert json.loads((tuned.parent / "tuned.run" / "summary.json").read_text())["after"]


def test_adapt_bad_inputs(parent_and_photos, adapt, tmp_path, capsys):
    _parent_dir, photos = parent_and_photos
    few = _first_photos(photos, tmp_path / "few", 2)
    assert adapt("--out", tmp_path / "o", photos=few, tiny=False) == 1
    assert "at least 3" in capsys.readouterr().err
    assert adapt("--holdout", "0.7", "--out", tmp_path / "o", tiny=False) == 1
    assert "--holdout" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
