"""The staged fidelity recipe: perceptual network, stage presets, warm start, resume, swap."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch

from inversion import cli
from inversion.bundle import load_bundle
from inversion.training.perceptual import FeatureNet, PerceptualDistance, train_perceptual
from inversion.training.train_encoder import (
    EncoderTrainConfig,
    EncoderTrainer,
    PluggableLoss,
    add_arguments,
    config_from_args,
)


def test_perceptual_distance_is_zero_on_equal_images_and_grows_with_the_difference():
    torch.manual_seed(0)
    dist = PerceptualDistance(FeatureNet(width=8)).eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert torch.allclose(dist(x, x), torch.zeros(4), atol=1e-6)
    near = dist(x, (x + 0.05 * torch.randn_like(x)).clamp(-1, 1))
    far = dist(x, (x + 0.5 * torch.randn_like(x)).clamp(-1, 1))
    assert (near > 0).all() and (far > near).all()


def test_train_perceptual_writes_a_torchscript_loss_the_encoder_trainer_loads(tmp_path):
    summary = train_perceptual(tmp_path, steps=3, batch=8, width=4, progress=False, data_limit=32)
    assert summary["steps"] == 3 and 0 <= summary["val_accuracy"] <= 1
    loss = PluggableLoss(tmp_path / "perceptual.pt", "perceptual")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(x, -x)) > 0
    assert json.loads((tmp_path / "summary.json").read_text())["width"] == 4


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(["--generator", "g.pt", "--out", "o", *argv])


def test_stage_presets_set_the_losses_and_explicit_options_win():
    recon = config_from_args(_parse("--stage", "recon", "--perceptual", "p.pt"))
    assert recon.gen_batch == 0 and recon.w_perceptual > 0 and recon.stage == "recon"
    joint = config_from_args(_parse("--stage", "joint", "--lr", "0.01", "--batch", "3"))
    assert joint.gen_batch > 0 and joint.w_feat > 0 and joint.lr == 0.01 and joint.batch == 3
    assert joint.w_perceptual == 0.0  # no network given: no perceptual term
    plain = config_from_args(_parse())
    assert (plain.batch, plain.gen_batch, plain.lr) == (16, 8, 1e-3)


def test_init_from_a_bundle_starts_from_its_weights(random_bundle_dir, tmp_path):
    cfg = EncoderTrainConfig(
        generator=str(random_bundle_dir),
        init_from=str(random_bundle_dir),
        data="fashion-mnist:train",
        data_limit=8,
        batch=2,
        gen_batch=0,
        steps=1,
    )
    from inversion.training.train_encoder import _load_generator

    trainer = EncoderTrainer(cfg, tmp_path, generator=_load_generator(random_bundle_dir, "cpu"))
    shipped = load_bundle(random_bundle_dir).state_dicts
    for name, module in (("encoder", trainer.encoder), ("fuser", trainer.fuser)):
        for k, v in module.state_dict().items():
            assert torch.equal(v, shipped[name][k]), (name, k)


def test_stage_cli_checkpoints_every_n_steps_and_resumes(random_bundle_dir, tmp_path, capsys):
    out = tmp_path / "recon"
    argv = [
        "train",
        "encoder",
        "--stage",
        "recon",
        "--generator",
        str(random_bundle_dir),
        "--init-from",
        str(random_bundle_dir),
        "--out",
        str(out),
        "--batch",
        "2",
        "--data-limit",
        "8",
        "--ckpt-every",
        "1",
        "--log-every",
        "1",
        "--resume",
    ]
    assert cli.main([*argv, "--steps", "2"]) == 0
    first = torch.load(out / "checkpoint.pt", weights_only=False)
    assert first["step"] == 2 and first["config"]["stage"] == "recon"
    capsys.readouterr()
    assert cli.main([*argv, "--steps", "3"]) == 0
    assert "resumed from step 2" in capsys.readouterr().out
    export = torch.load(out / "encoder.pt", weights_only=False)
    assert export["train"]["step"] == 3 and export["train"]["stage"] == "recon"
    assert (out / "log.csv").read_text().count("\n") >= 3


def test_swap_encoder_refuses_a_worse_export_and_records_a_forced_swap(random_bundle_dir, tmp_path):
    from inversion.training.recipe import swap_encoder
    from inversion.training.train_encoder import _load_generator

    bundle = tmp_path / "bundle"
    shutil.copytree(random_bundle_dir, bundle)
    before = load_bundle(bundle)
    cfg = EncoderTrainConfig(
        generator=str(bundle), init_from=str(bundle), data_limit=8, batch=2, steps=0
    )
    trainer = EncoderTrainer(cfg, tmp_path / "run", generator=_load_generator(bundle, "cpu"))
    same = trainer.export(tmp_path / "same.pt")  # the shipped weights: not better
    with pytest.raises(SystemExit, match="not better"):
        swap_encoder(bundle, same, ["python -m x"], n=16)
    assert load_bundle(bundle).version == before.version  # untouched
    with torch.no_grad():
        for p in trainer.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    export = trainer.export(tmp_path / "other.pt")
    after, cmp = swap_encoder(bundle, export, ["python -m x"], force=True, n=16)
    assert cmp["n"] == 16 and cmp["shipped_version"] == before.version
    for name in ("generator.safetensors", "latent_avg.safetensors", "catalog.json"):
        assert after.manifest["files"][name] == before.manifest["files"][name], name
    assert (
        after.manifest["files"]["encoder.safetensors"]
        != before.manifest["files"]["encoder.safetensors"]
    )
    record = after.provenance["encoder_retraining"][-1]
    assert record["forced"] and record["val_comparison"]["n"] == 16
    assert after.provenance["commands"][-1] == "python -m x"
