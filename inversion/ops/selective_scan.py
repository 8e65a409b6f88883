"""Mamba's selective scan (S6), exact and fast on CPU, with the CUDA kernel when present.

The recurrence, per batch b, channel d and state n (``A`` real, negative)::

    deltaA_t = exp(delta_t * A)                  # decay in (0, 1]
    x_t      = deltaA_t * x_{t-1} + delta_t * B_t * u_t
    y_t      = <C_t, x_t> + D * u_t,   then  y_t *= silu(z_t)

:func:`selective_scan` has the signature and semantics of mamba_ssm's
``selective_scan_fn`` (grouped ``B``/``C`` included) plus a ``backend`` argument.

Why a two-level scan and not the usual chunked "quadratic" form
----------------------------------------------------------------
The per-step reference loop (mamba_ssm's ``selective_scan_ref``) costs L Python
iterations of a few tiny ops; at L = 4096 that is dispatch overhead, not arithmetic.
The Mamba-2 style chunked form (decay matrix ``exp(cum_t - cum_s)`` inside a chunk,
then matmuls) is only cheap when the decay is a scalar per head; here it depends on
(d, n), so the masked decay tensor has D*L*T*N entries -- T times the work of the scan
itself (64x for T = 64), which measured slower than the reference on CPU. What we do
instead keeps the work linear in D*L*N and the Python step count near 2*sqrt(L):

1. split L into ``n_chunks`` chunks of ``T`` steps and lay the tensors out as
   (T, b, chunk, d, n), so a time step of *every* chunk is one contiguous slice;
2. run the recurrence inside all chunks at once (T vectorised steps, zero initial
   state) and, alongside, the running product of decays (stable: products of numbers
   in (0, 1], no divisions, no ``exp`` of positive numbers);
3. carry the true state across chunks (``n_chunks`` steps on (b, d, n) tensors);
4. add each chunk's incoming state times its decay product, contract with C by matmul.

Channels are processed in blocks of a few MB so that the working set stays in cache and
big temporaries are not page-faulted in on every call (a fresh 100+ MB tensor costs
more than the arithmetic). Without autograd the steps run in place in two reusable
buffers; with autograd the same algorithm runs out of place so gradients flow through
plain torch ops. Float64 inputs are computed in float64 (the tests compare against the
per-step loop in float64); half precision is computed in float32.

Backends
--------
``"torch"`` (this file), ``"cuda"`` (``mamba_ssm``'s kernel, imported lazily, only for
CUDA tensors), ``"cpu_fused"`` (the numba kernel of :mod:`inversion.ops.selective_scan_cpu`:
CPU tensors, forward only) and ``"auto"``: cuda when the inputs are on CUDA and mamba_ssm
imports; on CPU, cpu_fused when numba imports and no gradient is needed (grad mode off or
no input requires grad); else torch, which is also the one that serves autograd. Force one
with ``backend=`` or the ``STYLELEDGER_SCAN_BACKEND`` variable; :func:`scan_backend_report`
says which one would run and why.

Contract with mamba_ssm's ``selective_scan_fn``
-----------------------------------------------
B and C may each be input-dependent, (b, n, L) or grouped (b, g, n, L), or constant,
(d, n). y comes back in u's dtype; the last state in the compute dtype (float32 for
float32, float16 and bfloat16 inputs -- as mamba_ssm returns it -- float64 for float64).
Gradients through ``last_state`` differ: mamba_ssm's CUDA autograd function ignores the
gradient of the last state in its backward (its docstring says so; ``backward(ctx, dout,
*args)`` drops it), so a loss on the last state alone gives no gradient there. The torch
backend here builds the last state from ordinary differentiable ops, so its gradient
flows into u, delta, A, B, C and delta_bias. The cpu_fused backend has no backward at all.

One gap in mamba_ssm's kernel is corrected here: with a constant (d, n) ``B`` its forward
kernel scans ``delta * u`` and applies ``B`` only at the output (``csrc/selective_scan/
selective_scan_fwd_kernel.cuh``, ``!kIsVariableB ? delta_u : B * delta_u``), so the last
state it returns lacks the factor ``B`` -- on an H200 (mamba-ssm 2.3.2.post1, 2026-11-29,
``make gpu-check``) its last state differed from the torch and CPU scans by 104 % (max
relative) while y and every gradient agreed to 1.5e-6. The ``"cuda"`` backend multiplies
it back (:func:`constant_b_last_state`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "ScanBackendUnavailable",
    "constant_b_last_state",
    "resolve_backend",
    "scan_backend_report",
    "selective_scan",
    "selective_scan_torch",
]

ENV_VAR = "STYLELEDGER_SCAN_BACKEND"
BACKENDS = ("auto", "torch", "cuda", "cpu_fused")

# Elements of one (T, b, chunk, d_block, n) work buffer: ~2M floats = 8 MB in float32.
_BLOCK_ELEMENTS = 1 << 21
_MAX_CHUNK = 64


class ScanBackendUnavailable(RuntimeError):
    """The requested scan backend cannot run here (e.g. "cuda" without mamba_ssm)."""


# ---------------------------------------------------------------------------------------
# backend selection


def _cuda_kernel() -> tuple[Any | None, str]:
    """(mamba_ssm's selective_scan_fn or None, why not)."""
    if not torch.cuda.is_available():
        return None, "CUDA is not available"
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception as exc:  # ImportError, or a build that fails to load its .so
        kind = (
            "not installed" if isinstance(exc, ModuleNotFoundError) else f"failed to import: {exc}"
        )
        return None, f"mamba_ssm {kind}"
    return selective_scan_fn, "mamba_ssm kernel"


def _requested(backend: str | None) -> str:
    name = (backend or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown scan backend {name!r}; choose one of {list(BACKENDS)}")
    return name


def resolve_backend(
    backend: str | None = None,
    device: torch.device | str | None = None,
    needs_grad: bool = False,
) -> tuple[str, str]:
    """Return (backend that runs, reason) for inputs on ``device`` (default: CUDA if present).

    ``needs_grad``: a gradient will be asked for (rules out cpu_fused). Raises
    :class:`ScanBackendUnavailable` when "cuda" or "cpu_fused" is forced but cannot run.
    """
    name = _requested(backend)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = torch.device(device).type == "cuda"
    source = "argument" if backend else (f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "auto")
    if name == "torch":
        return "torch", f"torch (forced by {source})"
    if name == "cpu_fused" or (name == "auto" and not on_cuda):
        return _resolve_cpu(name, source, device, needs_grad)
    kernel, why = _cuda_kernel()
    if name == "cuda":
        if not on_cuda:
            raise ScanBackendUnavailable(
                f"scan backend 'cuda' forced by {source}, but inputs are on {device}"
            )
        if kernel is None:
            raise ScanBackendUnavailable(f"scan backend 'cuda' forced by {source}, but {why}")
        return "cuda", f"cuda (forced by {source}: {why})"
    if kernel is None:
        return "torch", f"torch ({why})"
    if not on_cuda:
        return "torch", f"torch (inputs on {device}; {why} is for CUDA tensors)"
    return "cuda", f"cuda ({why})"


def _resolve_cpu(name: str, source: str, device: Any, needs_grad: bool) -> tuple[str, str]:
    """cpu_fused (forced, or auto on CPU) when it can run, else torch or an error if forced."""
    from inversion.ops.selective_scan_cpu import available

    ok, why = available()
    if name == "cpu_fused":
        if torch.device(device).type != "cpu":
            raise ScanBackendUnavailable(
                f"scan backend 'cpu_fused' forced by {source}, but inputs are on {device}"
            )
        if not ok:
            raise ScanBackendUnavailable(f"scan backend 'cpu_fused' forced by {source}, but {why}")
        if needs_grad:
            raise ScanBackendUnavailable(
                f"scan backend 'cpu_fused' forced by {source} has no backward, but a gradient "
                "is needed (use 'torch' or 'auto', or run under torch.no_grad())"
            )
        return "cpu_fused", f"cpu_fused (forced by {source}: {why})"
    if not ok:
        return "torch", f"torch ({why})"
    if needs_grad:
        return "torch", "torch (a gradient is needed; the fused CPU kernel is forward only)"
    return "cpu_fused", f"cpu_fused ({why})"


def scan_backend_report(
    backend: str | None = None,
    device: torch.device | str | None = None,
    needs_grad: bool = False,
) -> str:
    """One line naming the backend that would run and why, e.g. "cpu_fused (numba kernel)".

    Never raises for an unavailable forced backend: the report says so instead.
    """
    try:
        return resolve_backend(backend, device, needs_grad)[1]
    except ScanBackendUnavailable as exc:
        return f"unavailable: {exc}"


# ---------------------------------------------------------------------------------------
# public entry point


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    backend: str | None = None,
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective scan with mamba_ssm's ``selective_scan_fn`` contract.

    Shapes: u, delta, z (b, d, L); A (d, n); B, C (b, n, L), grouped (b, g, n, L) with
    d divisible by g (channel c uses group c // (d // g)), or constant (d, n); D,
    delta_bias (d,). Returns y (b, d, L) in u's dtype, and the final state (b, d, n) in
    the compute dtype (float32 for half precision) when ``return_last_state``.
    ``chunk_size`` overrides the torch backend's chunk length.
    """
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, D, z, delta_bias)
    )
    name, _ = resolve_backend(backend, u.device, needs_grad)
    if name == "cpu_fused":
        from inversion.ops.selective_scan_cpu import selective_scan_cpu

        return selective_scan_cpu(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
        )
    if name == "cuda":
        kernel, _ = _cuda_kernel()
        assert kernel is not None
        out = kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
        if return_last_state and B.dim() == 2:
            y, last = out
            return y, constant_b_last_state(last, B)
        return out
    return selective_scan_torch(
        u,
        delta,
        A,
        B,
        C,
        D,
        z,
        delta_bias,
        delta_softplus,
        return_last_state,
        chunk_size=chunk_size,
    )


def constant_b_last_state(kernel_last: Tensor, B: Tensor) -> Tensor:
    """The true last state from mamba_ssm's kernel's for a constant (d, n) ``B``.

    The state is linear in ``B`` and, ``B`` being the same at every step, it factors out:
    x_L = B * (the state of the same scan with B = 1), which is what the kernel returns.
    """
    return kernel_last * B.to(kernel_last.dtype)


# ---------------------------------------------------------------------------------------
# torch backend


def selective_scan_torch(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Pure-PyTorch selective scan (two-level chunked scan, see the module docstring)."""
    if A.is_complex():
        raise NotImplementedError("complex A is not supported by the torch scan")
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be (b, d, L); got {tuple(u.shape)}, {tuple(delta.shape)}"
        )
    b, d, L = u.shape
    n = A.shape[1]
    if A.shape != (d, n):
        raise ValueError(f"A must be (d={d}, n); got {tuple(A.shape)}")
    const_B, const_C = B.dim() == 2, C.dim() == 2  # constant (d, n), as mamba_ssm allows
    Bg = _check_bc("B", B, b, d, n, L)  # (b, g, n, L), or (d, n) when constant
    Cg = _check_bc("C", C, b, d, n, L)

    out_dtype = u.dtype
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    u_, delta_ = u.to(dtype), delta.to(dtype)
    if delta_bias is not None:
        delta_ = delta_ + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta_ = F.softplus(delta_)
    A_ = A.to(dtype)
    Bg, Cg = Bg.to(dtype), Cg.to(dtype)

    T = chunk_size or min(_MAX_CHUNK, max(1, round(math.sqrt(L))))
    T = max(1, min(T, L))
    n_chunks = -(-L // T)
    pad = n_chunks * T - L
    du = delta_ * u_
    if pad:
        # delta = 0 on the padding: decay exp(0) = 1 and no input, so outputs before it and
        # the final state are unchanged.
        delta_ = F.pad(delta_, (0, pad))
        du = F.pad(du, (0, pad))
        Bg = Bg if const_B else F.pad(Bg, (0, pad))
        Cg = Cg if const_C else F.pad(Cg, (0, pad))

    # (b, d, chunk*T) -> (T, b, chunk, d): one time step of every chunk is one slice
    dl = delta_.view(b, d, n_chunks, T).permute(3, 0, 2, 1).contiguous()
    dut = du.view(b, d, n_chunks, T).permute(3, 0, 2, 1).contiguous()
    # channels per B / C group (a constant B or C constrains no block)
    per_B = d if const_B else d // Bg.shape[1]
    per_C = d if const_C else d // Cg.shape[1]
    Bt = Bg if const_B else _time_major(Bg, n_chunks, T)  # T b c g n, or d n
    Ct = Cg if const_C else _time_major(Cg, n_chunks, T)

    inplace = not (
        torch.is_grad_enabled()
        and any(t is not None and t.requires_grad for t in (u, delta, A, B, C, delta_bias))
    )
    # channel blocks never straddle a B or C group
    group = math.gcd(per_B, per_C)
    block = max(1, min(group, _BLOCK_ELEMENTS // max(1, T * b * n_chunks * n)))
    while group % block:
        block -= 1

    ys: list[Tensor] = []
    states: list[Tensor] = []
    buffers = None
    if inplace:
        shape = (T, b, n_chunks, block, n)
        buffers = (u_.new_empty(shape), u_.new_empty(shape))
    for i in range(0, d, block):
        j = i + block
        B_blk = Bt[i:j] if const_B else Bt[:, :, :, i // per_B]
        C_blk = Ct[i:j] if const_C else Ct[:, :, :, i // per_C]
        y_blk, h_blk = _scan_block(dl[..., i:j], dut[..., i:j], A_[i:j], B_blk, C_blk, buffers)
        ys.append(y_blk)
        states.append(h_blk)
    y = torch.cat(ys, dim=-1) if len(ys) > 1 else ys[0]  # T b c d
    y = y.permute(1, 3, 2, 0).reshape(b, d, n_chunks * T)[..., :L]
    if D is not None:
        y = y + D.to(dtype)[:, None] * u_
    if z is not None:
        y = y * F.silu(z.to(dtype))
    y = y.to(out_dtype)
    if return_last_state:
        last = torch.cat(states, dim=1) if len(states) > 1 else states[0]
        return y, last  # compute dtype: float32 for half inputs, as mamba_ssm
    return y


def _check_bc(name: str, M: Tensor, b: int, d: int, n: int, L: int) -> Tensor:
    """B or C as (b, g, n, L) (input-dependent) or (d, n) (constant); refuse other shapes."""
    if M.dim() == 2:
        if M.shape != (d, n):
            raise ValueError(f"constant {name} must be (d={d}, n={n}); got {tuple(M.shape)}")
        return M
    G = M if M.dim() == 4 else M.unsqueeze(1)
    if G.dim() != 4 or G.shape[0] != b or G.shape[2] != n or G.shape[3] != L or d % G.shape[1]:
        raise ValueError(
            f"{name} must be (d, n), (b, n, L) or (b, g, n, L) with g | d; got {tuple(M.shape)}"
        )
    return G


def _time_major(G: Tensor, n_chunks: int, T: int) -> Tensor:
    """(b, g, n, n_chunks*T) -> (T, b, n_chunks, g, n), contiguous."""
    b, g, n, _ = G.shape
    return G.reshape(b, g, n, n_chunks, T).permute(4, 0, 3, 1, 2).contiguous()


def _scan_block(
    dl: Tensor, du: Tensor, A: Tensor, B: Tensor, C: Tensor, buffers: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, Tensor]:
    """Scan one channel block. dl, du (T, b, c, d); A (d, n); B, C (T, b, c, n) or
    constant (d, n).

    Returns y (T, b, c, d) and the final state (b, d, n). With ``buffers`` (no autograd)
    everything runs in place in them; otherwise out of place.
    """
    T, b, nc, d = dl.shape
    n = A.shape[1]
    if buffers is not None:
        a = buffers[0][..., :d, :]
        x = buffers[1][..., :d, :]
        torch.mul(dl.unsqueeze(-1), A, out=a).exp_()  # decays, (T, b, c, d, n)
        torch.mul(du.unsqueeze(-1), _bc(B), out=x)  # inputs delta*B*u
        for t in range(1, T):
            x[t].addcmul_(a[t], x[t - 1])  # states within the chunk, zero start
            a[t].mul_(a[t - 1])  # decay products since the chunk start
        P = a
    else:
        a = torch.exp(dl.unsqueeze(-1) * A)
        x0 = du.unsqueeze(-1) * _bc(B)
        xs, ps = [x0[0]], [a[0]]
        for t in range(1, T):
            xs.append(torch.addcmul(x0[t], a[t], xs[-1]))
            ps.append(ps[-1] * a[t])
        x, P = torch.stack(xs), torch.stack(ps)

    # carry the true state across chunks: h_c enters chunk c
    h = dl.new_zeros(b, d, n)
    incoming = []
    for c in range(nc):
        incoming.append(h)
        h = torch.addcmul(x[T - 1, :, c], P[T - 1, :, c], h)
    H = torch.stack(incoming, dim=1)  # b c d n
    if buffers is not None:
        x.addcmul_(P, H)
    else:
        x = torch.addcmul(x, P, H)
    if C.dim() == 2:  # constant (d, n)
        y = (x * C).sum(-1)
    else:
        y = torch.matmul(x, C.unsqueeze(-1)).squeeze(-1)  # T b c d
    return y, h


def _bc(M: Tensor) -> Tensor:
    """B for broadcasting against (T, b, c, d, n): (T, b, c, 1, n), or a constant (d, n)."""
    return M if M.dim() == 2 else M.unsqueeze(3)
