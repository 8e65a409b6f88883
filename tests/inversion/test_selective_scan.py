"""The selective-scan backends (chunked torch, fused CPU) against the per-step recurrence:
values in float64 and float32, gradients (torch), mamba_ssm's contract, backend choice."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from inversion.gpucheck import reference_scan
from inversion.ops import cross_merge, cross_scan, selective_scan_cpu
from inversion.ops.selective_scan import (
    ENV_VAR,
    ScanBackendUnavailable,
    constant_b_last_state,
    resolve_backend,
    scan_backend_report,
    selective_scan,
)

# The backends that compute on CPU here (the "cuda" one is checked by `make gpu-check`).
CPU_BACKENDS = ["torch", "cpu_fused"]


def naive_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The S6 recurrence one step at a time: the one reference loop, shared with
    `make gpu-check` (inversion.gpucheck.reference_scan); (y, last state)."""
    return reference_scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state=True
    )


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
        inp["u"],
        inp["delta"],
        inp["A"],
        inp["B"],
        inp["C"],
        D=inp["D"] if "D" in opts else None,
        z=inp["z"] if "z" in opts else None,
        delta_bias=inp["delta_bias"] if "delta_bias" in opts else None,
        delta_softplus="softplus" in opts,
        **kw,
    )


# float64 is compared at 1e-10; float32 against the float64 recurrence at 2e-5.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("L,n,chunk,opts", CASES)
def test_values_match_naive(L, n, chunk, opts, backend, dtype):
    inp = make_inputs(L=L, n=n)
    want, want_state = _call(naive_scan, inp, opts)
    low = {k: v.to(dtype) for k, v in inp.items()}
    kw = {"chunk_size": chunk} if backend == "torch" else {}
    with torch.no_grad():  # the torch backend's in-place path; the fused one needs it
        got, state = _call(selective_scan, low, opts, return_last_state=True, backend=backend, **kw)
    assert got.dtype == dtype and state.dtype == dtype
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    torch.testing.assert_close(state.double(), want_state, rtol=tol, atol=tol)


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
        torch.testing.assert_close(
            leaves[k].grad,
            ref_leaves[k].grad,
            rtol=1e-9,
            atol=1e-10,
            msg=lambda m, k=k: f"grad of {k}: {m}",
        )


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_grouped_B_C_and_channel_blocks(monkeypatch, backend):
    """Grouped B/C (SS2D's 4 directions) and several channel blocks per group."""
    ss = importlib.import_module("inversion.ops.selective_scan")  # the module, not the function

    monkeypatch.setattr(ss, "_BLOCK_ELEMENTS", 64)  # force tiny channel blocks
    inp = make_inputs(d=8, L=20, n=3, groups=2)
    want, want_state = naive_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], D=inp["D"])
    kw = {"chunk_size": 6} if backend == "torch" else {}
    with torch.no_grad():
        got, state = selective_scan(
            inp["u"],
            inp["delta"],
            inp["A"],
            inp["B"],
            inp["C"],
            D=inp["D"],
            return_last_state=True,
            backend=backend,
            **kw,
        )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, want_state, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("const", ["B", "C", "BC"])
def test_constant_B_or_C_accepted(backend, const):
    """mamba_ssm accepts a constant (d, n) B or C (not input-dependent); so do we."""
    d, n = 6, 4
    inp = make_inputs(d=d, L=33, n=n, groups=2, seed=5)
    g = torch.Generator().manual_seed(9)
    for name in const:
        inp[name] = torch.randn(d, n, generator=g, dtype=torch.float64)
    opts = {"D", "z", "delta_bias", "softplus"}
    want, want_state = _call(naive_scan, inp, opts)
    kw = {"chunk_size": 8} if backend == "torch" else {}
    with torch.no_grad():
        got, state = _call(selective_scan, inp, opts, return_last_state=True, backend=backend, **kw)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, want_state, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match=r"constant B must be \(d=6, n=4\)"):
        selective_scan(
            inp["u"],
            inp["delta"],
            inp["A"],
            torch.zeros(d, n + 1, dtype=torch.float64),
            inp["C"],
            backend=backend,
        )


def test_constant_b_kernel_state_correction():
    """mamba_ssm's kernel returns, for a constant B, the state of the scan run with B = 1
    (it applies B at the output: seen on an H200, see the module docstring). The "cuda"
    backend multiplies B back; that this gives the true state is checked here against
    the per-step loop, and the uncorrected state is shown to be wrong."""
    d, n = 6, 4
    inp = make_inputs(d=d, L=21, n=n, seed=3)
    inp["B"] = torch.randn(d, n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    opts = {"D", "z", "delta_bias", "softplus"}
    _, want_state = _call(naive_scan, inp, opts)
    as_kernel = {**inp, "B": torch.ones(d, n, dtype=torch.float64)}
    _, kernel_state = _call(naive_scan, as_kernel, opts)
    assert not torch.allclose(kernel_state, want_state)
    torch.testing.assert_close(
        constant_b_last_state(kernel_state, inp["B"]), want_state, rtol=1e-12, atol=1e-12
    )


def test_constant_B_gradients_match_naive():
    """The torch backend differentiates through a constant B and C too."""
    inp = make_inputs(b=1, d=3, L=20, n=2, seed=2)
    g = torch.Generator().manual_seed(4)
    inp["B"], inp["C"] = (torch.randn(3, 2, generator=g, dtype=torch.float64) for _ in range(2))
    names = ["u", "delta", "A", "B", "C"]
    leaves = {k: v.clone().requires_grad_(k in names) for k, v in inp.items()}
    ref = {k: v.clone().requires_grad_(k in names) for k, v in inp.items()}
    _call(selective_scan, leaves, {"softplus"}, chunk_size=6).sum().backward()
    _call(naive_scan, ref, {"softplus"})[0].sum().backward()
    for k in names:
        torch.testing.assert_close(leaves[k].grad, ref[k].grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_returns_float32_last_state(backend, half):
    """As mamba_ssm: y in the input's dtype, the last state in float32 (computed in float32)."""
    inp = make_inputs(L=16, n=4, seed=1)
    opts = {"D", "softplus"}  # decays < 1: values stay in fp16's range
    want, want_state = _call(naive_scan, {k: v.to(half).double() for k, v in inp.items()}, opts)
    low = {k: v.to(half) for k, v in inp.items()}
    with torch.no_grad():
        got, state = _call(selective_scan, low, opts, return_last_state=True, backend=backend)
    assert got.dtype == half and state.dtype == torch.float32
    torch.testing.assert_close(state.double(), want_state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.double(), want, rtol=2e-2, atol=2e-2)  # y rounded to half


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float32_long_sequence_close_and_dtype_kept(backend):
    """Float32 at L = 1024 (default chunking) stays close to the float64 recurrence."""
    inp = make_inputs(b=1, d=4, L=1024, n=8, seed=3)
    want, _ = naive_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], delta_softplus=True)
    f32 = {k: v.float() for k, v in inp.items()}
    with torch.no_grad():
        got = selective_scan(
            f32["u"],
            f32["delta"],
            f32["A"],
            f32["B"],
            f32["C"],
            delta_softplus=True,
            backend=backend,
        )
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_large_decay_stays_finite(backend):
    """Huge delta*|A| (decay underflows to 0) must not produce inf/nan."""
    inp = make_inputs(b=1, d=2, L=40, n=2)
    delta = torch.full_like(inp["u"], 50.0)
    A = torch.full_like(inp["A"], -30.0)
    kw = {"chunk_size": 8} if backend == "torch" else {}
    with torch.no_grad():
        got = selective_scan(inp["u"], delta, A, inp["B"], inp["C"], backend=backend, **kw)
    want, _ = naive_scan(inp["u"], delta, A, inp["B"], inp["C"])
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want)


def test_backend_selection(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_backend("torch", "cpu")[0] == "torch"
    assert resolve_backend(None, "cpu")[0] == "cpu_fused"  # auto, CPU tensors, no gradient
    assert resolve_backend(None, "cpu", needs_grad=True)[0] == "torch"
    assert scan_backend_report(device="cpu") == "cpu_fused (numba kernel)"
    with pytest.raises(ScanBackendUnavailable, match="no backward"):
        resolve_backend("cpu_fused", "cpu", needs_grad=True)
    with pytest.raises(ScanBackendUnavailable, match="cpu_fused"):
        resolve_backend("cpu_fused", "cuda")
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


def test_auto_picks_fused_without_grad_and_torch_for_autograd(monkeypatch):
    """auto: the fused kernel under no_grad (same values), torch when a gradient is needed;
    forcing cpu_fused while a gradient is needed is refused, not silently detached."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    inp = make_inputs(L=9, n=3)
    want, _ = _call(naive_scan, inp, {"D", "z"})
    with torch.no_grad():
        torch.testing.assert_close(_call(selective_scan, inp, {"D", "z"}), want)
    leaf = {k: v.clone().requires_grad_(k == "u") for k, v in inp.items()}
    y = _call(selective_scan, leaf, {"D", "z"})  # auto -> torch: differentiable
    assert y.grad_fn is not None
    y.sum().backward()
    assert leaf["u"].grad is not None and torch.isfinite(leaf["u"].grad).all()
    monkeypatch.setenv(ENV_VAR, "cpu_fused")
    with pytest.raises(ScanBackendUnavailable, match="gradient is needed"):
        _call(selective_scan, leaf, {"D", "z"})
    with torch.no_grad():  # the env var reaches the fused kernel
        torch.testing.assert_close(_call(selective_scan, leaf, {"D", "z"}), want)


def test_without_numba_auto_falls_back_to_torch(monkeypatch):
    """numba is optional at import: when it cannot be imported, auto runs the torch scan
    and forcing cpu_fused names the reason."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    selective_scan_cpu._numba.cache_clear()
    try:
        assert selective_scan_cpu.available() == (False, "numba not installed")
        assert scan_backend_report(device="cpu") == "torch (numba not installed)"
        with pytest.raises(ScanBackendUnavailable, match="numba not installed"):
            resolve_backend("cpu_fused", "cpu")
        inp = make_inputs(L=5, n=2)
        want, _ = _call(naive_scan, inp, {"D"})
        with torch.no_grad():
            torch.testing.assert_close(_call(selective_scan, inp, {"D"}), want)
    finally:
        monkeypatch.undo()  # numba importable again
        selective_scan_cpu._numba.cache_clear()
    assert selective_scan_cpu.available() == (True, "numba kernel")


def test_last_state_gradient_flows_in_torch_backend():
    """Documented difference from mamba_ssm's CUDA function (which drops the last state's
    gradient): here a loss on the last state alone reaches the inputs, as in the loop."""
    inp = make_inputs(b=1, d=2, L=12, n=3)
    leaf = {k: v.clone().requires_grad_(k in ("u", "B")) for k, v in inp.items()}
    ref = {k: v.clone().requires_grad_(k in ("u", "B")) for k, v in inp.items()}
    _, state = _call(selective_scan, leaf, set(), return_last_state=True, chunk_size=5)
    state.sum().backward()
    _call(naive_scan, ref, set())[1].sum().backward()
    for k in ("u", "B"):
        torch.testing.assert_close(leaf[k].grad, ref[k].grad, rtol=1e-9, atol=1e-10)
