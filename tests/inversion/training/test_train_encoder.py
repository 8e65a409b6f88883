from __future__ import annotations

import pytest
import torch

from inversion.baselines.psp import PSPConfig
from inversion.modules.encoder import EncoderConfig
from inversion.modules.fuser import FuserConfig
from inversion.presets import align_configs
from inversion.training.data import TensorImageDataset
from inversion.training.train_encoder import (
    EncoderTrainConfig,
    EncoderTrainer,
    load_encoder_export,
)


def _configs(arch, gen_cfg):
    if arch == "psp":
        p = PSPConfig(
            input_size=32,
            n_latent=gen_cfg.n_latent,
            style_dim=gen_cfg.style_dim,
            body_channels=[8, 8, 16, gen_cfg.style_dim],
            body_units=[1, 1, 1, 1],
            coarse=2,
            middle=4,
        )
        return p.to_dict(), None
    e = EncoderConfig(
        input_size=32,
        stem_channels=8,
        body_channels=[8, 8, 16, 16],
        body_units=[1, 1, 1, 1],
        fpn_channels=[16, 16, 16],
        d_state=4,
        head_pool=1,
        detail_channels=8,
    )
    f = FuserConfig(resolution=16, token_dim=8, seed_size=4, hidden_channels=8, d_state=4)
    e, f = align_configs(gen_cfg, e, f)
    return e.to_dict(), f.to_dict()


def _trainer(arch, tiny_generator, fixed_batch, out, **kw):
    g, avg = tiny_generator
    enc, fus = _configs(arch, g.cfg)
    x, y = fixed_batch
    dirs = {"a": torch.randn(g.style_dim, generator=torch.Generator().manual_seed(1)) * 0.2}
    cfg = EncoderTrainConfig(
        arch=arch,
        encoder=enc,
        fuser=fus,
        batch=4,
        gen_batch=2,
        steps=kw.pop("steps", 10),
        lr=kw.pop("lr", 1e-2),
        log_every=1,
        ckpt_every=0,
        seed=kw.pop("seed", 0),
        **kw,
    )
    return EncoderTrainer(
        cfg,
        out,
        device="cpu",
        dataset=TensorImageDataset(x, y),
        generator=(g, avg),
        directions=dirs,
    )


@pytest.mark.parametrize("arch", ["mambastyle", "psp"])
def test_encoder_loss_falls_on_a_fixed_batch(arch, tiny_generator, fixed_batch, tmp_path):
    t = _trainer(arch, tiny_generator, fixed_batch, tmp_path)
    x = fixed_batch[0][:4]
    torch.manual_seed(0)
    with torch.no_grad():
        t.encoder.eval()
        before = float(torch.nn.functional.mse_loss(t.render(*t.encode(x), None), x))
    for _ in range(8):
        logs = t.train_step(x)
    with torch.no_grad():
        t.encoder.eval()
        after = float(torch.nn.functional.mse_loss(t.render(*t.encode(x), None), x))
    assert after < before * 0.92, (before, after)
    assert {"mse", "multiscale", "wnorm", "gen_mse", "latent", "edit_mse"} <= set(logs)
    if arch == "mambastyle":
        assert "feat" in logs and t.fuser is not None
    else:
        assert t.fuser is None


def test_encoder_checkpoint_resumes_identically(tiny_generator, fixed_batch, tmp_path):
    a = _trainer("mambastyle", tiny_generator, fixed_batch, tmp_path / "a", steps=2)
    a.train(progress=False)
    a.cfg.steps = 3
    a.train(progress=False)
    b = _trainer("mambastyle", tiny_generator, fixed_batch, tmp_path / "b", steps=3, seed=7)
    c = _trainer("mambastyle", tiny_generator, fixed_batch, tmp_path / "c", steps=2)
    c.train(progress=False)
    assert b.resume(tmp_path / "c" / "checkpoint.pt") and b.step == 2
    b.train(progress=False)
    for part in ("encoder", "fuser"):
        sa, sb = a.state_dict()[part], b.state_dict()[part]
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (part, k)
    arch, enc, fus, ecfg, fcfg = load_encoder_export(tmp_path / "a" / "encoder.pt")
    assert arch == "mambastyle" and fus is not None and fcfg.resolution == 16
    for k, v in enc.state_dict().items():
        assert torch.equal(v, a.encoder.state_dict()[k])


def test_pluggable_perceptual_loss_is_used(tiny_generator, fixed_batch, tmp_path):
    class L1(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).abs().mean()

    path = tmp_path / "l1.pt"
    torch.jit.script(L1()).save(str(path))
    t = _trainer(
        "psp", tiny_generator, fixed_batch, tmp_path / "run", perceptual=str(path), w_perceptual=1.0
    )
    logs = t.train_step(fixed_batch[0][:4])
    assert logs["perceptual"] > 0
