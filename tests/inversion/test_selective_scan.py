"""The chunked selective scan against the per-step recurrence, values and gradients."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from inversion.ops import cross_merge, cross_scan
from inversion.ops.selective_scan import (
    ENV_VAR,
    ScanBackendUnavailable,
    resolve_backend,
    scan_backend_report,
    selective_scan,
)


def naive_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The S6 recurrence one step at a time (the definition, not an optimisation)."""
    b, d, L = u.shape
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    B = B.repeat_interleave(d // B.shape[1], dim=1)  # (b, d, n, L)
    C = C.repeat_interleave(d // C.shape[1], dim=1)
    x = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(L):
        x = torch.exp(delta[:, :, t, None] * A) * x + (delta[:, :, t] * u[:, :, t])[..., None] * B[..., t]
        ys.append((x * C[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * F.silu(z)
    return y, x


def make_inputs(b=2, d=6, L=7, n=4, groups=0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    bc_shape = (b, groups, n, L) if groups else (b, n, L)
    return dict(
        u=r(b, d, L),
        delta=r(b, d, L) * 0.5,
        A=-torch.exp(r(d, n)),
        B=r(*bc_shape),
        C=r(*bc_shape),
        D=r(d),
        z=r(b, d, L),
        delta_bias=r(d) * 0.1,
    )


CASES = [
    # (L, n, chunk, options)
    (1, 4, None, {}),
    (7, 4, None, {"D", "z"}),
    (129, 3, None, {"D", "z", "delta_bias", "softplus"}),
    (7, 1, None, {"softplus"}),
    (32, 4, 32, {"D"}),  # L == chunk
    (33, 4, 32, {"z", "softplus"}),  # L == chunk + 1
    (64, 2, 8, {"delta_bias", "softplus"}),  # several full chunks
    (50, 2, 8, {"D", "z", "delta_bias", "softplus"}),  # ragged last chunk
]


def _call(fn, inp, opts, **kw):
    return fn(
        inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"],
        D=inp["D"] if "D" in opts else None,
        z=inp["z"] if "z" in opts else None,
        delta_bias=inp["delta_bias"] if "delta_bias" in opts else None,
        delta_softplus="softplus" in opts,
        **kw,
    )


@pytest.mark.parametrize("L,n,chunk,opts", CASES)
def test_values_match_naive(L, n, chunk, opts):
    inp = make_inputs(L=L, n=n)
    want, want_state = _call(naive_scan, inp, opts)
    with torch.no_grad():  # in-place fast path
        got, state = _call(selective_scan, inp, opts, chunk_size=chunk, return_last_state=True,
                           backend="torch")
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, want_state, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("L,n,chunk,opts", CASES)
def test_gradients_match_naive(L, n, chunk, opts):
    inp = make_inputs(L=L, n=n, b=1, d=3)
    names = ["u", "delta", "A", "B", "C"] + sorted(k for k in ("D", "z", "delta_bias") if k in opts)
    leaves = {k: v.clone().requires_grad_(k in names) for k, v in inp.items()}
    ref_leaves = {k: v.clone().requires_grad_(k in names) for k, v in inp.items()}
    w = torch.randn(1, 3, L, dtype=torch.float64)
    (_call(selective_scan, leaves, opts, chunk_size=chunk, backend="torch") * w).sum().backward()
    (_call(naive_scan, ref_leaves, opts)[0] * w).sum().backward()
    for k in names:
        torch.testing.assert_close(leaves[k].grad, ref_leaves[k].grad, rtol=1e-9, atol=1e-10,
                                   msg=lambda m, k=k: f"grad of {k}: {m}")


def test_grouped_B_C_and_channel_blocks(monkeypatch):
    """Grouped B/C (SS2D's 4 directions) and several channel blocks per group."""
    ss = importlib.import_module("inversion.ops.selective_scan")  # the module, not the function

    monkeypatch.setattr(ss, "_BLOCK_ELEMENTS", 64)  # force tiny channel blocks
    inp = make_inputs(d=8, L=20, n=3, groups=2)
    want, want_state = naive_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], D=inp["D"])
    got, state = selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], D=inp["D"],
                                return_last_state=True, backend="torch", chunk_size=6)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, want_state, rtol=1e-10, atol=1e-10)


def test_float32_long_sequence_close_and_dtype_kept():
    """Float32 at L = 1024 (default chunking) stays close to the float64 recurrence."""
    inp = make_inputs(b=1, d=4, L=1024, n=8, seed=3)
    want, _ = naive_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], delta_softplus=True)
    f32 = {k: v.float() for k, v in inp.items()}
    got = selective_scan(f32["u"], f32["delta"], f32["A"], f32["B"], f32["C"], delta_softplus=True)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_large_decay_stays_finite():
    """Huge delta*|A| (decay underflows to 0) must not produce inf/nan."""
    inp = make_inputs(b=1, d=2, L=40, n=2)
    delta = torch.full_like(inp["u"], 50.0)
    A = torch.full_like(inp["A"], -30.0)
    got = selective_scan(inp["u"], delta, A, inp["B"], inp["C"], chunk_size=8)
    want, _ = naive_scan(inp["u"], delta, A, inp["B"], inp["C"])
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want)


def test_backend_selection(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_backend("torch", "cpu")[0] == "torch"
    assert resolve_backend(None, "cpu")[0] == "torch"  # auto on CPU tensors
    assert scan_backend_report(device="cpu").startswith("torch (")
    with pytest.raises(ScanBackendUnavailable):
        resolve_backend("cuda", "cpu")
    monkeypatch.setenv(ENV_VAR, "cuda")
    inp = make_inputs(L=3)
    with pytest.raises(ScanBackendUnavailable):
        selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"])
    assert "unavailable" in scan_backend_report(device="cpu")
    monkeypatch.setenv(ENV_VAR, "bogus")
    with pytest.raises(ValueError, match="bogus"):
        scan_backend_report()


def test_cross_scan_orders_and_round_trip():
    x = torch.arange(6.0).view(1, 1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    xs = cross_scan(x)
    assert xs.shape == (1, 4, 1, 6)
    assert xs[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]  # row-major
    assert xs[0, 1, 0].tolist() == [0, 3, 1, 4, 2, 5]  # column-major
    assert xs[0, 2, 0].tolist() == [5, 4, 3, 2, 1, 0]  # row-major reversed
    assert xs[0, 3, 0].tolist() == [5, 2, 4, 1, 3, 0]  # column-major reversed
    y = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(cross_merge(cross_scan(y), 4, 5), 4 * y)
    # merge maps each direction back independently (not just the sum)
    only_cols = torch.zeros_like(xs)
    only_cols[:, 1] = xs[:, 1]
    torch.testing.assert_close(cross_merge(only_cols, 2, 3), x)
