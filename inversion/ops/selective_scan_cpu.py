"""A fused CPU selective-scan kernel for inference (the ``"cpu_fused"`` backend).

Same signature and semantics as :func:`inversion.ops.selective_scan.selective_scan_torch`
(D skip, z gate, delta bias, delta softplus, grouped or constant B/C, last state), but
forward only: there is no backward, so :mod:`inversion.ops.selective_scan` picks it only
when no gradient is needed and keeps the torch scan for autograd and as the fallback.

Why a fused kernel
------------------
The recurrence ``x_t = exp(delta_t * A) * x_{t-1} + delta_t * B_t * u_t`` is cheap
arithmetic -- one exp and two multiply-adds per (b, d, t, n) -- and every torch
formulation pays for it in memory instead: it materialises exp(delta*A) and the states
(D*L*N entries, 33.5 M at the encoder's 64^2 scan) and makes several passes over them.
This kernel keeps the N-vector state of one (batch, channel) pair in a local array, walks
the sequence once, and writes only y (b, d, L) and the last state: nothing of size
D*L*N ever exists. (batch, channel) pairs are independent and run in parallel.

Why numba
---------
numba is a maintained (NumFOCUS, Anaconda), widely used JIT compiler with wheels for
every CPython/numpy combination we support; it needs no C++ toolchain at install or run
time, unlike ``torch.utils.cpp_extension`` (a compiler on every worker, ABI tied to the
exact torch build) or a hand-written CPython extension (a build matrix we would have to
keep). It compiles the loop (in :mod:`inversion.ops._scan_numba`) to vectorised machine
code for the host CPU on first use and caches it on disk (``cache=True``), and
``prange`` gives a parallel loop with no OpenMP plumbing. It is a main dependency (CPU
users get it), but imported lazily: without it :func:`available` says why and the torch
scan runs instead.

The exp
-------
numba lowers ``math.exp`` to a scalar libm call unless Intel's SVML is installed, which
stops LLVM from vectorising the loop over N -- and the exp is most of the work. So the
kernel uses its own exp (Cephes' range reduction ``x = k ln 2 + r``, a polynomial in r
for float32 and the Pade form for float64, ``2^k`` built from its exponent bits): pure
arithmetic that vectorises, within a few ulp of libm (the tests compare against the
per-step loop in float64 at 1e-10). Arguments are clamped to the normal range, so a
decay that underflows gives the smallest normal number instead of 0 (invisible next
to any state the scan keeps). The decays of 32 steps are computed ahead of their
recurrence steps, so that loop has no dependency and vectorises fully.

Threads: as many as torch uses (``torch.set_num_threads``), one for small scans (under
~1 M state updates), where waking the pool costs more than the work. Precision: float64
inputs are computed in float64; float32 and half precision in float32 (y comes back in
the input's dtype, the last state in float32 as with mamba_ssm).
Calls are serialised by a lock: numba's default ``workqueue`` threading layer must not
be entered from two threads at once (each call already uses every core).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

__all__ = ["available", "selective_scan_cpu"]

_LOCK = threading.Lock()
# Below this many state updates (b*d*L*n, ~1 ms on one core) the scan runs on one thread:
# waking a second one costs more, and on a loaded machine it can wait tens of ms for a core.
_PARALLEL_MIN_WORK = 1 << 20


@lru_cache(maxsize=1)
def _numba() -> tuple[Any | None, str]:
    """(the compiled kernel module's namespace or None, why not)."""
    try:
        import numba  # noqa: F401
    except Exception as exc:  # ImportError, or a numba/numpy mismatch at import
        kind = (
            "not installed" if isinstance(exc, ModuleNotFoundError) else f"failed to import: {exc}"
        )
        return None, f"numba {kind}"
    from inversion.ops import _scan_numba

    return _scan_numba.KERNELS, "numba kernel"


def available() -> tuple[bool, str]:
    """(whether the fused CPU kernel can run here, why not / what it is)."""
    kernels, why = _numba()
    return kernels is not None, why


def _as_blocks(M: Tensor, b: int, d: int, n: int, L: int, name: str, dtype: torch.dtype) -> Tensor:
    """B or C as a contiguous (bB, g, LB, n) array: input-dependent ones with time moved
    before state, a constant (d, n) one as (1, d, 1, n) (one group per channel)."""
    from inversion.ops.selective_scan import _check_bc  # the one shape rule for both backends

    G = _check_bc(name, M, b, d, n, L).to(dtype)
    return G.reshape(1, d, 1, n).contiguous() if G.dim() == 2 else G.transpose(2, 3).contiguous()


def selective_scan_cpu(
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
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan on CPU tensors, forward only (inputs are read, never tracked).

    Shapes as :func:`inversion.ops.selective_scan.selective_scan`. Raises
    ``ScanBackendUnavailable`` when numba is missing (check :func:`available` first) and
    ``ValueError`` / ``NotImplementedError`` for inputs the scan does not define.
    """
    kernels, why = _numba()
    if kernels is None:
        from inversion.ops.selective_scan import ScanBackendUnavailable

        raise ScanBackendUnavailable(f"the fused CPU scan cannot run: {why}")
    if A.is_complex():
        raise NotImplementedError("complex A is not supported by the CPU scan")
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be (b, d, L); got {tuple(u.shape)}, {tuple(delta.shape)}"
        )
    for name, t in (
        ("u", u),
        ("delta", delta),
        ("A", A),
        ("B", B),
        ("C", C),
        ("D", D),
        ("z", z),
        ("delta_bias", delta_bias),
    ):
        if t is not None and t.device.type != "cpu":
            raise ValueError(f"the fused CPU scan needs CPU tensors; {name} is on {t.device}")
    b, d, L = u.shape
    n = A.shape[-1]
    if A.shape != (d, n):
        raise ValueError(f"A must be (d={d}, n); got {tuple(A.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must be (b, d, L) like u; got {tuple(z.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (d,):
            raise ValueError(f"{name} must be (d={d},); got {tuple(t.shape)}")

    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        Bb = _as_blocks(B, b, d, n, L, "B", dtype)
        Cb = _as_blocks(C, b, d, n, L, "C", dtype)

        def arr(t: Tensor | None, shape: tuple[int, ...]) -> Any:
            if t is None:
                return torch.zeros(shape, dtype=dtype).numpy()
            return t.detach().to(dtype).contiguous().numpy()

        import numpy as np

        y = torch.empty(b, d, L, dtype=dtype)
        last = torch.empty(b, d, n, dtype=dtype)
        flags = np.array(
            [D is not None, z is not None, delta_bias is not None, bool(delta_softplus)]
        )
        with _LOCK:
            _set_threads(b * d * L * n)
            kernels["scan"](
                arr(u, (0,)),
                arr(delta, (0,)),
                arr(A, (0,)),
                Bb.numpy(),
                Cb.numpy(),
                arr(D, (1,)),
                arr(z, (1, 1, 1)),
                arr(delta_bias, (1,)),
                flags,
                y.numpy(),
                last.numpy(),
            )
    y = y.to(u.dtype)
    return (y, last) if return_last_state else y


def _set_threads(work: int) -> None:
    """As many threads as torch would use (``--threads`` / torch.set_num_threads apply),
    one for small scans (see ``_PARALLEL_MIN_WORK``)."""
    import numba

    threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(1 if work < _PARALLEL_MIN_WORK else max(1, threads))
