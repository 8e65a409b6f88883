"""The numba code behind :mod:`inversion.ops.selective_scan_cpu` (imports numba at import).

Kept apart so that importing the package never needs numba: the wrapper imports this
module only when the fused backend is asked for. Why numba and why an own exp: see the
wrapper's docstring. Compiled functions are cached on disk when a cache directory is
writable (``__pycache__`` next to this file, else numba's user-wide one), so only the
first process on a machine pays the ~3 s compile per dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

__all__ = ["KERNELS", "fexp", "scan"]


@intrinsic
def _pow2_f32(typingctx: Any, k: Any) -> Any:
    """2.0**k as float32 from its exponent bits, for int32 k in [-126, 127]."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        e = builder.add(args[0], ir.Constant(ir.IntType(32), 127))
        return builder.bitcast(builder.shl(e, ir.Constant(ir.IntType(32), 23)), ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _pow2_f64(typingctx: Any, k: Any) -> Any:
    """2.0**k as float64 from its exponent bits, for int64 k in [-1022, 1023]."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        e = builder.add(args[0], ir.Constant(ir.IntType(64), 1023))
        return builder.bitcast(builder.shl(e, ir.Constant(ir.IntType(64), 52)), ir.DoubleType())

    return types.float64(types.int64), codegen


# float32 constants must be numpy float32: a Python float literal would promote to float64.
_f32 = np.float32
_LO32, _HI32 = _f32(-87.33654), _f32(88.37626)  # exp stays a normal float32
_LOG2E32, _HALF32, _ONE32 = _f32(1.44269504088896341), _f32(0.5), _f32(1.0)
_C1_32, _C2_32 = _f32(0.693359375), _f32(-2.12194440e-4)  # ln 2 = C1 + C2 (Cody-Waite)
_P0, _P1, _P2, _P3, _P4, _P5 = (
    _f32(1.9875691500e-4),
    _f32(1.3981999507e-3),
    _f32(8.3334519073e-3),
    _f32(4.1665795894e-2),
    _f32(1.6666665459e-1),
    _f32(5.0000001201e-1),
)


def fexp(x):  # type: ignore[no-untyped-def]  # (no annotations: numba compares them)
    """exp(x); in compiled code the vectorisable float32/float64 versions below."""
    return math.exp(x)


def _exp32(x):  # type: ignore[no-untyped-def]  # Cephes expf: ~1 ulp
    x = min(max(x, _LO32), _HI32)
    k = np.floor(x * _LOG2E32 + _HALF32)
    r = x - k * _C1_32 - k * _C2_32
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + _ONE32
    return p * _pow2_f32(np.int32(k))


def _exp64(x):  # type: ignore[no-untyped-def]  # Cephes exp (Pade form): ~1 ulp
    x = min(max(x, -708.3964185322641), 709.782712893384)
    k = np.floor(x * 1.4426950408889634 + 0.5)
    r = x - k * 6.93145751953125e-1 - k * 1.42860682030941723212e-6
    rr = r * r
    px = r * (
        (1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
        + 9.99999999999999999910e-1
    )
    qx = (
        (3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
        + 2.27265548208155028766e-1
    ) * rr + 2.00000000000000000009e0
    return (1.0 + 2.0 * px / (qx - px)) * _pow2_f64(np.int64(k))


@overload(fexp, inline="always")
def _fexp_overload(x):  # type: ignore[no-untyped-def]  # same parameters as fexp
    if isinstance(x, types.Float):
        return _exp32 if x.bitwidth == 32 else _exp64
    return None


def _jit(**options: Any) -> Any:
    """njit with an on-disk cache when numba finds a writable place for it."""

    def wrap(fn: Any) -> Any:
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(**options)(fn)

    return wrap


# Time steps whose decays are computed together, ahead of the recurrence: that loop has
# no dependency between steps and vectorises fully (~30 % faster than interleaving).
TIME_BLOCK = 32


@_jit(parallel=True, fastmath={"reassoc", "contract"}, nogil=True)
def scan(u, delta, A, B, C, D, z, bias, flags, y, last):  # type: ignore[no-untyped-def]
    """The fused scan, one (batch, channel) pair per parallel iteration.

    u, delta, z (b, d, L); A (d, n); B, C (bB, g, LB, n): variable ones with time before
    state, a constant one as (1, d, 1, n); D, bias (d,); flags = (has_D, has_z, has_bias,
    softplus). Writes y (b, d, L) and last (b, d, n). Everything in u's dtype. Per pair
    the working set is the state (n), and TIME_BLOCK deltas and decays: a few KB.
    """
    nb, nd, L = u.shape
    n = A.shape[1]
    has_D, has_z, has_bias, softplus = flags[0], flags[1], flags[2], flags[3]
    hB, hC = nd // B.shape[1], nd // C.shape[1]  # channels per group
    tB = 1 if B.shape[2] > 1 else 0  # 0: constant over time
    tC = 1 if C.shape[2] > 1 else 0
    zero = np.zeros(1, dtype=u.dtype)[0]  # literals would be float64
    one = np.ones(1, dtype=u.dtype)[0]
    twenty = one * 20  # torch's softplus threshold
    for p in prange(nb * nd):
        bi, di = p // nd, p % nd
        bb, bc = min(bi, B.shape[0] - 1), min(bi, C.shape[0] - 1)
        gb, gc = di // hB, di // hC
        a_row = A[di]
        h = np.zeros(n, dtype=u.dtype)  # the state: n numbers, never D*L*N
        dts = np.empty(TIME_BLOCK, dtype=u.dtype)
        decay = np.empty((TIME_BLOCK, n), dtype=u.dtype)
        for t0 in range(0, L, TIME_BLOCK):
            steps = min(TIME_BLOCK, L - t0)
            for s in range(steps):
                dt = delta[bi, di, t0 + s]
                if has_bias:
                    dt = dt + bias[di]
                if softplus and dt <= twenty:
                    dt = math.log1p(fexp(dt))
                dts[s] = dt
            for s in range(steps):
                for k in range(n):
                    decay[s, k] = fexp(dts[s] * a_row[k])
            for s in range(steps):
                t = t0 + s
                ut = u[bi, di, t]
                du = dts[s] * ut
                b_row = B[bb, gb, t * tB]
                c_row = C[bc, gc, t * tC]
                acc = zero
                for k in range(n):
                    hk = decay[s, k] * h[k] + du * b_row[k]
                    h[k] = hk
                    acc += hk * c_row[k]
                if has_D:
                    acc += D[di] * ut
                if has_z:
                    zt = z[bi, di, t]
                    acc = acc * (zt / (one + fexp(-zt)))
                y[bi, di, t] = acc
        for k in range(n):
            last[bi, di, k] = h[k]


@_jit()
def _fexp_compiled(x):  # type: ignore[no-untyped-def]
    return fexp(x)


KERNELS: dict[str, Any] = {"scan": scan, "fexp": _fexp_compiled}
