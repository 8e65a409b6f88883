"""``python -m inversion gpucheck --out gpu-check.json`` (``make gpu-check``): the checks
a CUDA machine must pass before the GPU worker path is trusted, in one JSON file.

No CUDA code path of this project had ever run when this was written, so the check is
prepared to run unattended on the first CUDA machine available:

- ``scan_cpu`` (runs anywhere, also in ``make test``): the torch and fused CPU scans
  against the per-step recurrence, values in float32/float64 and the torch backend's
  gradients, on an SS2D-shaped grouped case and a constant-B/C case;
- ``scan_cuda``: mamba_ssm's kernel (``selective_scan_fn``) against the torch backend
  on CUDA (values and the gradients of every input) and against the fused CPU kernel
  (values), in float32 (grouped, ungrouped, constant B/C) and bfloat16 (values, and
  that the last state comes back in float32);
- ``precision``: bf16 and fp16 inference (models cast as :class:`~inversion.inverter.Inverter`
  does with ``dtype=``) against fp32 for the FFHQ-shaped 256 and 1024 models: PSNR of the
  rendered images and of the W+ codes;
- ``throughput``: images/s of encoder + Fuser + generator at batch 1/8/32 for both sizes.

The models are FFHQ-shaped (``GeneratorConfig.ffhq256`` / ``ffhq1024`` with the full
encoder and Fuser, aligned as :func:`inversion.presets.align_configs` does) with seeded
random weights, built in memory like :func:`inversion.bundle.build_random_bundle` builds
its networks (no bundle is written: the numbers concern kernels and shapes, not
weights). Every figure goes to ``--out``; each check says ``ok`` against its
tolerance. The exit status is 0 only when every check ran and passed. Without CUDA the
GPU checks refuse with :class:`GpuUnavailable` (one line, exit 1) after writing the CPU
part, so the file always says what did and did not run.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.errors import InversionError

__all__ = [
    "GpuUnavailable",
    "add_arguments",
    "build_random_models",
    "check_precision",
    "check_scan_cpu",
    "check_scan_cuda",
    "check_throughput",
    "reference_scan",
    "require_cuda",
    "run",
]

SIZES = (256, 1024)
BATCHES = (1, 8, 32)
HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}
# float32 scan vs scan: max |diff| / max |value|; gradients get more (different orders).
SCAN_TOL = {"values": 1e-4, "grads": 2e-3, "bf16_values": 3e-2}
# half-precision inference: PSNR of the images against fp32 (dB, range [-1, 1]).
MIN_PSNR_DB = 30.0


class GpuUnavailable(InversionError):
    """A GPU check was asked for but cannot run here (no CUDA, or no mamba_ssm kernel)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("gpu-check.json"),
        help="where to write the figures (JSON; default gpu-check.json)",
    )
    parser.add_argument(
        "--cpu-only", action="store_true", help="run only the CPU scan checks (exit 0 without CUDA)"
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="generator sizes for precision/throughput (default 256,1024)",
    )
    parser.add_argument(
        "--batches",
        default=",".join(map(str, BATCHES)),
        help="throughput batch sizes (default 1,8,32)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed batches per point")


def require_cuda() -> torch.device:
    """The CUDA device, or :class:`GpuUnavailable` saying why there is none."""
    if not torch.cuda.is_available():
        built = torch.version.cuda
        why = (
            f"torch {torch.__version__} is built without CUDA"
            if built is None
            else f"torch {torch.__version__} (CUDA {built}) finds no usable GPU"
        )
        raise GpuUnavailable(
            f"the GPU checks need CUDA: {why}. Run `make gpu-check` on a CUDA machine "
            "(with the gpu extra for mamba_ssm), or pass --cpu-only"
        )
    return torch.device("cuda")


# ---------------------------------------------------------------------------------------
# the selective scan


def reference_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,  # type: ignore[no-untyped-def]
    delta_softplus=False,
    return_last_state=False,
):
    """The S6 recurrence one step at a time (the definition), any B/C layout, in the
    inputs' dtype; y, or (y, last state)."""
    b, d, L = u.shape
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)

    def per_channel(M: Tensor) -> Tensor:  # -> (b, d, n, L)
        if M.dim() == 2:
            return M[None, :, :, None].expand(b, d, M.shape[1], L)
        M = M.unsqueeze(1) if M.dim() == 3 else M
        return M.repeat_interleave(d // M.shape[1], dim=1)

    Bc, Cc = per_channel(B), per_channel(C)
    x = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(L):
        x = (
            torch.exp(delta[:, :, t, None] * A) * x
            + (delta[:, :, t] * u[:, :, t])[..., None] * Bc[..., t]
        )
        ys.append((x * Cc[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * F.silu(z)
    return (y, x) if return_last_state else y


# (name, b, d, L, n, B/C layout: groups (0: ungrouped) or "const")
CPU_CASES = (("ss2d_grouped", 1, 16, 64, 4, 4), ("constant_BC", 2, 6, 33, 3, "const"))
CUDA_CASES = (
    ("ss2d_grouped", 2, 512, 1024, 16, 4),
    ("ungrouped", 2, 256, 777, 16, 0),
    ("constant_BC", 2, 128, 512, 8, "const"),
)
INPUTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def scan_inputs(
    b: int,
    d: int,
    L: int,
    n: int,
    layout: int | str,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> dict[str, Tensor]:
    """Seeded inputs shaped like SS2D's (decays in (0, 1) after the softplus)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    bc = (d, n) if layout == "const" else ((b, layout, n, L) if layout else (b, n, L))
    out = {
        "u": r(b, d, L),
        "delta": r(b, d, L) * 0.5 - 2,
        "A": -torch.exp(r(d, n) * 0.5),
        "B": r(*bc),
        "C": r(*bc),
        "D": r(d),
        "z": r(b, d, L),
        "delta_bias": r(d) * 0.1,
    }
    return {k: v.to(device=device, dtype=dtype) for k, v in out.items()}


def _scan(fn: Callable[..., Any], inp: dict[str, Tensor], **kw: Any) -> tuple[Tensor, Tensor]:
    return fn(
        inp["u"],
        inp["delta"],
        inp["A"],
        inp["B"],
        inp["C"],
        D=inp["D"],
        z=inp["z"],
        delta_bias=inp["delta_bias"],
        delta_softplus=True,
        return_last_state=True,
        **kw,
    )


def _rel(got: Tensor, want: Tensor) -> float:
    """max |got - want| / max |want| (0 when both are 0), in float64 on the CPU."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))


def _grads(
    fn: Callable[..., Any], inp: dict[str, Tensor], weight: Tensor, **kw: Any
) -> dict[str, Tensor]:
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inp.items()}
    y, _ = _scan(fn, leaves, **kw)
    (y.float() * weight).sum().backward()  # through y only: mamba's CUDA path drops last_state's
    return {k: leaves[k].grad for k in INPUTS}


def check_scan_cpu() -> dict[str, Any]:
    """torch and fused CPU scans vs the per-step loop: values (f32, f64), torch gradients."""
    from inversion.ops.selective_scan import selective_scan
    from inversion.ops.selective_scan_cpu import available

    fused_ok, fused_why = available()
    cases = []
    for name, b, d, L, n, layout in CPU_CASES:
        ref = scan_inputs(b, d, L, n, layout, dtype=torch.float64)
        want_y, want_last = _scan(reference_scan, ref)
        case: dict[str, Any] = {"case": name, "shape": [b, d, L, n], "layout": str(layout)}
        for backend in ("torch", "cpu_fused") if fused_ok else ("torch",):
            for dtype in (torch.float64, torch.float32):
                with torch.no_grad():
                    y, last = _scan(
                        selective_scan, {k: v.to(dtype) for k, v in ref.items()}, backend=backend
                    )
                case[f"{backend}_{str(dtype)[6:]}_y_rel"] = _rel(y, want_y)
                case[f"{backend}_{str(dtype)[6:]}_last_rel"] = _rel(last, want_last)
        w = torch.randn(b, d, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        got = _grads(selective_scan, ref, w, backend="torch")
        want = _grads(reference_scan, ref, w)
        case["torch_grad_rel"] = {k: _rel(got[k], want[k]) for k in INPUTS}
        worst64 = max(v for k, v in case.items() if k.endswith("_rel") and "float64" in k)
        worst32 = max(v for k, v in case.items() if k.endswith("_rel") and "float32" in k)
        case["ok"] = (
            worst64 < 1e-9
            and worst32 < SCAN_TOL["values"]
            and max(case["torch_grad_rel"].values()) < 1e-9
        )
        cases.append(case)
    return {"fused_cpu": fused_why, "cases": cases, "ok": all(c["ok"] for c in cases)}


def check_scan_cuda(device: torch.device) -> dict[str, Any]:
    """mamba_ssm's kernel vs the torch backend (CUDA) and the fused CPU kernel."""
    from inversion.ops.selective_scan import _cuda_kernel, selective_scan
    from inversion.ops.selective_scan_cpu import available, selective_scan_cpu

    kernel, why = _cuda_kernel()
    if kernel is None:
        raise GpuUnavailable(f"mamba_ssm's kernel cannot run: {why} (install the gpu extra)")
    fused_ok, _ = available()
    cases = []
    for name, b, d, L, n, layout in CUDA_CASES:
        inp = scan_inputs(b, d, L, n, layout, device=device)
        with torch.no_grad():
            yk, lk = _scan(selective_scan, inp, backend="cuda")
            yt, lt = _scan(selective_scan, inp, backend="torch")
        case: dict[str, Any] = {
            "case": name,
            "shape": [b, d, L, n],
            "layout": str(layout),
            "kernel_vs_torch_y_rel": _rel(yk, yt),
            "kernel_vs_torch_last_rel": _rel(lk, lt),
        }
        if fused_ok:
            yc, lc = _scan(selective_scan_cpu, {k: v.cpu() for k, v in inp.items()})
            case["kernel_vs_cpu_fused_y_rel"] = _rel(yk, yc)
            case["kernel_vs_cpu_fused_last_rel"] = _rel(lk, lc)
        w = torch.randn(b, d, L, generator=torch.Generator().manual_seed(1)).to(device)
        gk = _grads(selective_scan, inp, w, backend="cuda")
        gt = _grads(selective_scan, inp, w, backend="torch")
        case["grad_rel_kernel_vs_torch"] = {k: _rel(gk[k], gt[k]) for k in INPUTS}
        value_worst = max(v for k, v in case.items() if k.endswith("_rel"))
        case["ok"] = (
            value_worst < SCAN_TOL["values"]
            and max(case["grad_rel_kernel_vs_torch"].values()) < SCAN_TOL["grads"]
        )
        cases.append(case)
    # bfloat16 inputs: values against torch, and the last state's dtype (float32 in both)
    inp = scan_inputs(2, 256, 1024, 16, 4, dtype=torch.bfloat16, device=device)
    for weight in ("A", "D", "delta_bias"):  # parameters stay float32, as in a Mamba block
        inp[weight] = inp[weight].float()  # (mamba_ssm's kernel refuses a bf16 A)
    with torch.no_grad():
        yk, lk = _scan(selective_scan, inp, backend="cuda")
        yt, lt = _scan(selective_scan, inp, backend="torch")
    bf16 = {
        "case": "bf16_grouped",
        "y_rel": _rel(yk, yt),
        "last_rel": _rel(lk, lt),
        "kernel_last_dtype": str(lk.dtype),
        "torch_last_dtype": str(lt.dtype),
    }
    bf16["ok"] = (
        max(bf16["y_rel"], bf16["last_rel"]) < SCAN_TOL["bf16_values"]
        and lk.dtype == lt.dtype == torch.float32
    )
    cases.append(bf16)
    return {
        "kernel": why,
        "tolerances": SCAN_TOL,
        "cases": cases,
        "ok": all(c["ok"] for c in cases),
    }


# ---------------------------------------------------------------------------------------
# models: precision and throughput


def build_random_models(
    size: int | str, seed: int = 0, device: torch.device | str = "cpu", latent_samples: int = 4096
) -> dict[str, Any]:
    """FFHQ-shaped generator (``size`` 256 or 1024; "tiny" for tests), full encoder and
    Fuser with seeded random weights, in eval mode on ``device``."""
    from inversion.modules.encoder import EncoderConfig, MambaStyleEncoder
    from inversion.modules.fuser import Fuser, FuserConfig
    from inversion.modules.stylegan2 import Generator, GeneratorConfig
    from inversion.presets import align_configs, model_configs

    if size == "tiny":
        gen_cfg, enc_cfg, fus_cfg = model_configs("tiny")
    else:
        gen_cfg = GeneratorConfig.preset(f"ffhq{size}")
        enc_cfg, fus_cfg = align_configs(gen_cfg, EncoderConfig.full(), FuserConfig.full())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g, enc, fus = (
            Generator(gen_cfg).eval(),
            MambaStyleEncoder(enc_cfg).eval(),
            Fuser(fus_cfg).eval(),
        )
    latent_avg = g.mean_latent(latent_samples, generator=torch.Generator().manual_seed(seed))[0]
    return {
        "generator": g.to(device),
        "encoder": enc.to(device),
        "fuser": fus.to(device),
        "latent_avg": latent_avg.to(device),
        "input_size": enc_cfg.input_size,
        "fuser_resolution": fus_cfg.resolution,
        "size": gen_cfg.size,
    }


def _cast(models: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    out = dict(models)
    for k in ("generator", "encoder", "fuser"):
        out[k] = copy.deepcopy(models[k]).to(dtype)
    out["latent_avg"] = models["latent_avg"].to(dtype)
    return out


@torch.inference_mode()
def _forward(models: dict[str, Any], x: Tensor) -> tuple[Tensor, Tensor]:
    """Encoder -> W+ -> Fuser residual (d = 0) -> generator, as Inverter.invert does."""
    out = models["encoder"](x)
    wplus = out.wplus + models["latent_avg"]
    residual = None
    if out.detail is not None:
        residual = {
            models["fuser_resolution"]: models["fuser"](torch.zeros_like(wplus), out.detail)
        }
    image = models["generator"].synthesis(wplus, noise="const", feature_residual=residual)
    return wplus, image


def _psnr(got: Tensor, want: Tensor, data_range: float) -> float:
    mse = float((got.double() - want.double()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def _images(batch: int, size: int, device: torch.device | str, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)


def check_precision(
    models: dict[str, Any],
    dtypes: Sequence[str] = tuple(HALF),
    batch: int = 4,
    device: torch.device | str = "cuda",
) -> dict[str, Any]:
    """PSNR of half-precision images (and W+ codes) against fp32 on the same inputs."""
    x = _images(batch, models["input_size"], device)
    w32, img32 = _forward(models, x)
    w_range = float(w32.max() - w32.min())
    result: dict[str, Any] = {"batch": batch, "size": models["size"], "min_psnr_db": MIN_PSNR_DB}
    for name in dtypes:
        half = _cast(models, HALF[name])
        w, img = _forward(half, x.to(HALF[name]))
        finite = bool(torch.isfinite(img).all())
        psnr = _psnr(img, img32, 2.0) if finite else float("nan")
        result[name] = {
            "image_psnr_db": psnr,
            "wplus_psnr_db": _psnr(w, w32, w_range),
            "finite": finite,
            "ok": finite and psnr >= MIN_PSNR_DB,
        }
        del half
    result["ok"] = all(result[n]["ok"] for n in dtypes)
    return result


def check_throughput(
    models: dict[str, Any],
    batches: Sequence[int],
    dtypes: Sequence[str],
    repeats: int,
    device: torch.device | str = "cuda",
) -> dict[str, Any]:
    """Images/s of the whole forward per batch size and dtype (median of ``repeats``)."""
    on_cuda = torch.device(device).type == "cuda"

    def sync() -> None:
        if on_cuda:
            torch.cuda.synchronize()

    rows = []
    for name in dtypes:
        m = models if name == "float32" else _cast(models, HALF[name])
        for batch in batches:
            row: dict[str, Any] = {"dtype": name, "batch": batch}
            try:
                x = _images(batch, m["input_size"], device).to(
                    torch.float32 if name == "float32" else HALF[name]
                )
                _forward(m, x)  # warm-up (cudnn autotune, allocator)
                sync()
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    _forward(m, x)
                    sync()
                    times.append(time.perf_counter() - t0)
                median = statistics.median(times)
                row.update(latency_s=median, images_per_s=batch / median)
                if on_cuda:
                    row["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
                    torch.cuda.reset_peak_memory_stats()
            except torch.cuda.OutOfMemoryError as exc:
                row["error"] = f"out of memory: {str(exc).splitlines()[0]}"
                torch.cuda.empty_cache()
            rows.append(row)
    return {
        "size": models["size"],
        "repeats": repeats,
        "rows": rows,
        "ok": all("error" not in r for r in rows),
    }


# ---------------------------------------------------------------------------------------
# the command


def _environment() -> dict[str, Any]:
    from inversion.ops.selective_scan import scan_backend_report

    env: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "machine": platform.machine(),
        "scan_backend_cpu": scan_backend_report(device="cpu"),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["scan_backend_cuda"] = scan_backend_report(device="cuda")
    return env


def _section(result: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one check; an error is recorded as that check's result, not a crash."""
    t0 = time.perf_counter()
    try:
        result[name] = fn()
    except GpuUnavailable as exc:
        result[name] = {"ok": False, "error": str(exc)}
    except Exception as exc:  # a GPU run must leave a readable file behind
        result[name] = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    result[name]["seconds"] = round(time.perf_counter() - t0, 2)


def _write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InversionError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise InversionError(f"{what} must be positive integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    """Run the checks, write ``args.out``; 0 only when every check ran and passed."""
    sizes = _ints(args.sizes, "--sizes")
    batches = _ints(args.batches, "--batches")
    if bad := [s for s in sizes if s not in SIZES]:
        raise InversionError(f"--sizes: FFHQ shapes are {list(SIZES)}, got {bad}")
    result: dict[str, Any] = {"environment": _environment()}

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        # written after every check: a run cut off by its time limit still leaves figures
        _section(result, name, fn)
        _write(args.out, result)

    section("scan_cpu", check_scan_cpu)
    checks = ["scan_cpu"]
    if args.cpu_only:
        result["gpu"] = {"skipped": "--cpu-only"}
    else:
        try:
            device = require_cuda()
        except GpuUnavailable as exc:
            result["gpu"] = {"error": str(exc)}
            result["ok"] = False
            _write(args.out, result)
            raise
        section("scan_cuda", lambda: check_scan_cuda(device))
        checks.append("scan_cuda")
        for size in sizes:
            models = build_random_models(size, device=device)
            section(f"precision_{size}", lambda m=models: check_precision(m, device=device))
            section(
                f"throughput_{size}",
                lambda m=models: check_throughput(
                    m, batches, ("float32", "bfloat16"), args.repeats, device=device
                ),
            )
            checks += [f"precision_{size}", f"throughput_{size}"]
            del models
            torch.cuda.empty_cache()
    result["ok"] = all(result[c]["ok"] for c in checks)
    _write(args.out, result)
    print(f"gpu-check: {'passed' if result['ok'] else 'FAILED'}; figures in {args.out}")
    for c in checks:
        print(f"  {c}: {'ok' if result[c]['ok'] else 'FAILED ' + result[c].get('error', '')}")
    return 0 if result["ok"] else 1
