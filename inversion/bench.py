"""``python -m inversion bench``: the lean MambaStyle encoder + Fuser against pSp, the
encoder + Fuser with the torch scan against the fused CPU scan, and the scan backends
against the per-step loop, side by side in one run.

What each column measures
-------------------------
- params: ``sum(p.numel())``.
- GMACs: :class:`torch.utils.flop_counter.FlopCounterMode` FLOPs / 2 for one forward at
  batch 1. It counts matmul/conv-like ops (conv, mm, bmm, addmm, einsum via bmm), not
  elementwise ops -- so the selective scan's recurrence, exps and norms are not in it.
- latency: median wall time of ``--repeats`` forwards (batch 1, fp32,
  ``torch.inference_mode``) after warm-ups, with ``--threads`` intra-op threads.
- peak RSS: each model is measured in a fresh subprocess; ``ru_maxrss`` (peak resident
  set of that process) minus its value right after importing torch, i.e. weights +
  activations + allocator slack at the process's high-water mark. Honest but coarse:
  it includes the FLOP-counting pass, which runs the same forward.

The MambaStyle row runs with the scan backend ``auto`` picks for inference (the fused
CPU kernel when numba imports); it is measured a second time with the torch scan forced
(``STYLELEDGER_SCAN_BACKEND=torch`` in its worker), so the end-to-end gain of the fused
kernel is a ratio of two rows of the same run.

The scan rows time the same inputs (L = 4096 = 64x64 tokens, D = 512, N = 16, the
encoder's 64^2 VSS scan: 4 directions x d_inner 128) through mamba_ssm's reference loop
(``selective_scan_ref``: exps precomputed, one Python step per token), the chunked torch
backend and the fused CPU backend of :func:`inversion.ops.selective_scan.selective_scan`,
and report each one's speed-up over the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inversion import registry

__all__ = ["add_arguments", "main", "naive_selective_scan", "run"]

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mambastyle", "psp")  # names in inversion.registry
LABELS = {name: registry.get(name).label for name in MODELS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed forwards per model (default 10, --quick 2)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed forwards first (default 2)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's default)",
    )
    parser.add_argument(
        "--json", metavar="OUT", default=None, help="also write the results as JSON"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny configs and a short scan (for tests), not a benchmark",
    )
    parser.add_argument("--worker", choices=MODELS, default=None, help=argparse.SUPPRESS)


# ---------------------------------------------------------------------------------------
# the per-step reference


def naive_selective_scan(u, delta, A, B, C):  # type: ignore[no-untyped-def]
    """mamba_ssm's ``selective_scan_ref`` core (real A, ungrouped B/C): one step per token."""
    import torch

    deltaA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    deltaB_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    x = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i]))
    return torch.stack(ys, dim=2)


# ---------------------------------------------------------------------------------------
# measurements


def _median_seconds(fn: Callable[[], Any], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _build(name: str, quick: bool) -> tuple[list[Any], Callable[[Any], Any], int]:
    """(modules, forward(x), input size) for a model name."""
    import torch

    arch, preset = registry.get(name), "tiny" if quick else "full"
    ecfg = arch.preset(preset)
    enc = arch.build(ecfg).eval()
    if arch.fuser is None:
        return [enc], lambda x: enc(x).wplus, ecfg.input_size

    fcfg = arch.fuser.preset(preset)
    fus = arch.fuser.build(fcfg).eval()
    direction = torch.randn(
        1, fcfg.n_latent, fcfg.style_dim, generator=torch.Generator().manual_seed(0)
    )

    def forward(x: Any) -> Any:
        out = enc(x)
        return out.wplus, fus(0.1 * direction, out.detail)

    return [enc, fus], forward, ecfg.input_size


def _worker(name: str, quick: bool, warmup: int, repeats: int) -> dict[str, Any]:
    """Measure one model in this (fresh) process."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inversion.ops.selective_scan import scan_backend_report

    base_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(0)
    modules, forward, size = _build(name, quick)
    x = torch.rand(1, 3, size, size) * 2 - 1
    params = sum(p.numel() for m in modules for p in m.parameters())
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            forward(x)
        flops = counter.get_total_flops()
        latency = _median_seconds(lambda: forward(x), warmup, repeats)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "model": name,
        "label": LABELS[name],
        "input": size,
        "params": params,
        "gmacs": flops / 2 / 1e9,
        "latency_s": latency,
        "peak_rss_mb": (peak_kb - base_rss_kb) / 1024,
        "threads": torch.get_num_threads(),
        "scan_backend": scan_backend_report(device="cpu"),  # inference: no gradient
    }


def _measure_in_subprocess(
    name: str, args: argparse.Namespace, warmup: int, repeats: int, scan_backend: str | None = None
) -> dict[str, Any]:
    from inversion.ops.selective_scan import ENV_VAR

    cmd = [
        sys.executable,
        "-m",
        "inversion.bench",
        "--worker",
        name,
        "--warmup",
        str(warmup),
        "--repeats",
        str(repeats),
    ]
    if args.quick:
        cmd.append("--quick")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    if scan_backend:
        env[ENV_VAR] = scan_backend
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for {name} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _scan_comparison(quick: bool, repeats: int) -> dict[str, Any]:
    import torch

    from inversion.ops.selective_scan import selective_scan
    from inversion.ops.selective_scan_cpu import available

    b, d, L, n = (1, 32, 256, 8) if quick else (1, 512, 4096, 16)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, L, generator=g)
    delta = torch.nn.functional.softplus(torch.randn(b, d, L, generator=g) - 4)  # ~dt init
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)
    Bm = torch.randn(b, n, L, generator=g)
    Cm = torch.randn(b, n, L, generator=g)

    def rel_err(got: Any) -> float:
        return (got - want).abs().max().item() / max(1e-12, want.abs().max().item())

    def timed(backend: str) -> float:
        return _median_seconds(
            lambda: selective_scan(u, delta, A, Bm, Cm, backend=backend), 2, max(3, repeats)
        )

    fused, why = available()
    with torch.inference_mode():
        want = naive_selective_scan(u, delta, A, Bm, Cm)
        err = rel_err(selective_scan(u, delta, A, Bm, Cm, backend="torch"))
        naive_s = _median_seconds(
            lambda: naive_selective_scan(u, delta, A, Bm, Cm), 1, max(1, min(repeats, 5))
        )
        fast_s = timed("torch")
        result = {
            "shape": {"batch": b, "d": d, "L": L, "n": n},
            "naive_s": naive_s,
            "chunked_s": fast_s,
            "speedup": naive_s / fast_s,
            "max_rel_err": err,
            "fused": why,
        }
        if fused:  # the first call compiles (or loads numba's cache): outside the timing
            result["fused_max_rel_err"] = rel_err(
                selective_scan(u, delta, A, Bm, Cm, backend="cpu_fused")
            )
            fused_s = timed("cpu_fused")
            result.update(
                fused_s=fused_s,
                fused_speedup=naive_s / fused_s,
                fused_over_chunked=fast_s / fused_s,
            )
    return result


# ---------------------------------------------------------------------------------------
# report


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described in the module docstring; print it; 0 on success."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 10)
    if args.worker:  # internal: one model, fresh process, JSON on stdout
        print(json.dumps(_worker(args.worker, args.quick, warmup, repeats)))
        return 0

    from inversion.ops.selective_scan import scan_backend_report

    models = {name: _measure_in_subprocess(name, args, warmup, repeats) for name in MODELS}
    # the same encoder + Fuser with the torch scan forced: the fused kernel's end-to-end gain
    ms_torch = _measure_in_subprocess("mambastyle", args, warmup, repeats, scan_backend="torch")
    scan = _scan_comparison(args.quick, repeats)
    ms, psp = models["mambastyle"], models["psp"]
    backends = {
        "auto": ms,
        "torch": ms_torch,
        "gain_latency_torch_over_auto": ms_torch["latency_s"] / ms["latency_s"],
    }
    ratios = {
        "params": ms["params"] / psp["params"],
        "gmacs": ms["gmacs"] / psp["gmacs"] if psp["gmacs"] else float("nan"),
        "latency": ms["latency_s"] / psp["latency_s"],
        "peak_rss": ms["peak_rss_mb"] / psp["peak_rss_mb"]
        if psp["peak_rss_mb"] > 0
        else float("nan"),
    }
    result = {
        "quick": bool(args.quick),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "scan_backend": scan_backend_report(device="cpu"),
        "models": models,
        "ratios_mambastyle_over_psp": ratios,
        "mambastyle_scan_backends": backends,
        "scan": scan,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }

    mode = "quick (tiny configs)" if args.quick else "full configs, 256x256"
    print(
        f"inversion bench: {mode}, batch 1, fp32, {result['threads']} threads, torch "
        f"{torch.__version__}"
    )
    print(f"scan backend: {result['scan_backend']}")
    rows = [["model", "params (M)", "GMACs", "latency (ms, median)", "peak RSS (MB)"]]
    for m in (ms, psp):
        rows.append(
            [
                m["label"],
                f"{m['params'] / 1e6:.2f}",
                f"{m['gmacs']:.2f}",
                f"{m['latency_s'] * 1e3:.1f}",
                f"{m['peak_rss_mb']:.0f}",
            ]
        )
    rows.append(
        [
            "ratio MambaStyle / pSp",
            f"{ratios['params']:.3f}",
            f"{ratios['gmacs']:.3f}",
            f"{ratios['latency']:.3f}",
            f"{ratios['peak_rss']:.3f}",
        ]
    )
    print(_table(rows))
    print(f"\n{LABELS['mambastyle']}, by scan backend (same run):")
    print(
        _table(
            [
                ["scan backend", "latency (ms, median)", "peak RSS (MB)"],
                [
                    ms_torch["scan_backend"],
                    f"{ms_torch['latency_s'] * 1e3:.1f}",
                    f"{ms_torch['peak_rss_mb']:.0f}",
                ],
                [ms["scan_backend"], f"{ms['latency_s'] * 1e3:.1f}", f"{ms['peak_rss_mb']:.0f}"],
                ["gain (torch / auto)", f"{backends['gain_latency_torch_over_auto']:.2f}x", ""],
            ]
        )
    )
    s = scan["shape"]
    print(f"\nselective scan, b={s['batch']} D={s['d']} L={s['L']} N={s['n']} (float32):")
    scan_rows = [
        ["implementation", "median (ms)", "speed-up vs loop", "max rel. diff"],
        [
            "per-step loop (mamba_ssm selective_scan_ref)",
            f"{scan['naive_s'] * 1e3:.1f}",
            "1.0x",
            "-",
        ],
        [
            "chunked two-level scan (torch backend)",
            f"{scan['chunked_s'] * 1e3:.1f}",
            f"{scan['speedup']:.1f}x",
            f"{scan['max_rel_err']:.1e}",
        ],
    ]
    if "fused_s" in scan:
        scan_rows.append(
            [
                "fused CPU kernel (cpu_fused backend)",
                f"{scan['fused_s'] * 1e3:.1f}",
                f"{scan['fused_speedup']:.1f}x",
                f"{scan['fused_max_rel_err']:.1e}",
            ]
        )
    else:
        scan_rows.append(["fused CPU kernel (cpu_fused backend)", "unavailable", scan["fused"], ""])
    print(_table(scan_rows))
    if "fused_s" in scan:
        print(f"fused / chunked: {scan['fused_over_chunked']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inversion.bench", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
