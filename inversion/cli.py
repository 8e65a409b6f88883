"""Command line: ``python -m inversion COMMAND ...``.

Commands come from a registry: each entry names a module that provides
``add_arguments(parser)`` and ``run(args) -> int`` (the built-in ones live here under
other function names). Only the chosen command's module is imported, so
``python -m inversion --help`` is instant and a command whose module cannot be
imported fails with a clear message instead of breaking the others. Errors the package
raises on purpose (:class:`InversionError`) print one line and exit 1; usage errors
exit 2.

Latents (``invert``'s output, ``edit``'s input, a job's latent downloaded from the
platform) are files in the one latent format, :mod:`inversion.latent`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inversion import registry
from inversion.errors import InversionError, LatentMismatch
from inversion.latent import SUFFIX as LATENT_SUFFIX
from inversion.latent import looks_like_latent

__all__ = ["Command", "COMMANDS", "register", "build_parser", "main"]

DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


@dataclass(frozen=True)
class Command:
    """A subcommand: ``module`` defines ``add`` (argparse setup) and ``run``."""

    name: str
    help: str
    module: str
    add: str = "add_arguments"
    run: str = "run"


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> None:
    """Add (or replace) a subcommand of ``python -m inversion``."""
    COMMANDS[command.name] = command


for _command in (
    Command(
        "invert",
        "invert images: reconstructions and W+ latents",
        __name__,
        "add_invert_arguments",
        "run_invert",
    ),
    Command(
        "edit",
        "invert one image and render catalog edits of it",
        __name__,
        "add_edit_arguments",
        "run_edit",
    ),
    Command(
        "directions",
        "compute edit directions (GANSpace)",
        __name__,
        "add_directions_arguments",
        "run_directions",
    ),
    Command(
        "bundle",
        "build, create (random) or verify model bundles",
        __name__,
        "add_bundle_arguments",
        "run_bundle",
    ),
    Command("bench", "benchmark encoders (speed, parameters)", "inversion.bench"),
    Command(
        "gpucheck",
        "CUDA checks: mamba-ssm scan, half precision, throughput (JSON)",
        "inversion.gpucheck",
    ),
    Command(
        "train", "train the generator, classifier, directions, encoders", "inversion.training.cli"
    ),
    Command(
        "evaluate", "evaluate a bundle (reconstruction and edit quality)", "inversion.evaluate"
    ),
    Command(
        "poc",
        "proof-of-concept report of a bundle on a folder of your own photos (HTML + JSON)",
        "inversion.poc",
    ),
    Command(
        "shifted-photos",
        "write a shifted product-photo folder (the domain-adaptation demo's data)",
        "inversion.shifted",
    ),
    Command(
        "evaluate-refine",
        "measure quality mode refine vs fast and the ceiling",
        "inversion.evaluate_refine",
    ),
):
    register(_command)


class CommandUnavailable(InversionError):
    """The command's module is not part of this installation (yet)."""


def _load(
    command: Command,
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[Any], int]]:
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            command.module == exc.name or command.module.startswith(exc.name + ".")
        ):
            raise CommandUnavailable(
                f"'{command.name}' is not available: module {command.module} is not "
                "installed in this checkout"
            ) from None
        raise
    try:
        return getattr(module, command.add), getattr(module, command.run)
    except AttributeError:
        raise CommandUnavailable(
            f"'{command.name}' is not available: {command.module} has no "
            f"{command.add}()/{command.run}()"
        ) from None


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``selected``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m inversion",
        description="MambaStyle inversion and editing on StyleGAN2 (StyleLedger).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        sp = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name == selected:
            add, run = _load(command)
            add(sp)
            sp.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = args_list[0] if args_list and args_list[0] in COMMANDS else None
    try:
        parser = build_parser(selected)
    except CommandUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    args._argv = args_list  # recorded in provenance by commands that write artifacts
    try:
        return int(args._run(args) or 0)
    except InversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# --- shared options -----------------------------------------------------------------


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=sorted(DTYPES),
        help="compute dtype (half precision only makes sense on GPU)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="seed for random noise, if used")
    parser.add_argument("--noise", choices=("const", "random"), default="const")


def _inverter(args: argparse.Namespace) -> Any:
    import torch

    from inversion.inverter import Inverter

    dtype = getattr(torch, DTYPES[args.dtype])
    return Inverter.from_path(
        args.bundle,
        device=args.device,
        dtype=dtype,
        batch_size=args.batch_size,
        noise=args.noise,
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InversionError(f"cannot read {str(path)!r}: {exc}") from None


def _open_image(path: Path, data: bytes | None = None) -> Any:
    from inversion.preprocess import load_image_bytes

    return load_image_bytes(_read_bytes(path) if data is None else data)


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=None, file=sys.stderr)


# --- invert -------------------------------------------------------------------------


def add_invert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, type=Path, help="model bundle directory")
    parser.add_argument("images", nargs="+", type=Path, help="JPEG / PNG / WEBP files")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output directory: NAME.png (reconstruction) and NAME"
        f"{LATENT_SUFFIX} (the latent) per image",
    )
    parser.add_argument("--size", type=int, default=None, help="output image size (px)")
    parser.add_argument(
        "--quality",
        choices=("fast", "refine"),
        default="fast",
        help="fast: encoder only; refine: then optimise W+ and the detail map",
    )
    parser.add_argument(
        "--refine-steps",
        type=int,
        default=50,
        help="optimisation steps of --quality refine (default 50)",
    )
    _add_runtime(parser)


def run_invert(args: argparse.Namespace) -> int:
    inverter = _inverter(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stems = [p.stem for p in args.images]
    if len(set(stems)) != len(stems):
        raise InversionError("input images must have distinct file names (outputs use them)")
    with _progress_bar(len(args.images), "invert") as bar:
        for start in range(0, len(args.images), args.batch_size):
            paths = args.images[start : start + args.batch_size]
            images = [_open_image(p) for p in paths]
            inv = inverter.invert(
                images, seed=args.seed + start, quality=args.quality, refine_steps=args.refine_steps
            )
            for i, (path, pil) in enumerate(
                zip(paths, inverter.to_pil(inv.reconstruction, size=args.size), strict=True)
            ):
                pil.save(args.out / f"{path.stem}.png")
                inv[i].save(args.out / f"{path.stem}{LATENT_SUFFIX}")
            bar.update(len(paths))
    print(f"bundle {inverter.version}: {len(args.images)} image(s) -> {args.out}")
    return 0


# --- edit ---------------------------------------------------------------------------


def _parse_edit(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=STRENGTH, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"strength of {name!r} is not a number: {value!r}"
        ) from None


def add_edit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, type=Path, help="model bundle directory")
    parser.add_argument(
        "image", type=Path, help="a photo, or a latent file (from `invert` or a platform job)"
    )
    parser.add_argument(
        "--edit",
        action="append",
        type=_parse_edit,
        default=[],
        metavar="NAME=STRENGTH",
        help="a catalog edit; repeatable",
    )
    parser.add_argument("--out", required=True, type=Path, help="output image file")
    parser.add_argument(
        "--no-fuser",
        action="store_true",
        help="render from the edited W+ codes only (no detail residual)",
    )
    parser.add_argument("--size", type=int, default=None, help="output image size (px)")
    parser.add_argument("--list", action="store_true", help="print the catalog and exit")
    parser.add_argument(
        "--allow-other-model",
        action="store_true",
        help="edit a latent made by another bundle version (same shapes)",
    )
    _add_runtime(parser)


def run_edit(args: argparse.Namespace) -> int:
    from inversion.inverter import Inversion

    inverter = _inverter(args)
    if args.list:
        print(json.dumps(inverter.catalog.to_dict()["edits"], indent=2))
        return 0
    request = dict(args.edit)
    inverter.catalog.validate_request(request)
    data = _read_bytes(args.image)
    if looks_like_latent(data):
        inv = Inversion.from_bytes(data, what=repr(str(args.image)))
        if inv.bundle_version != inverter.version and not args.allow_other_model:
            raise LatentMismatch(
                f"{str(args.image)!r} was made by model {inv.bundle_version or 'unknown'}, "
                f"not by this bundle ({inverter.version}); pass --allow-other-model to edit "
                "it anyway"
            )
    else:
        inv = inverter.invert([_open_image(args.image, data)], seed=args.seed)
    out = inverter.edit(inv, request, use_fuser=not args.no_fuser, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    inverter.to_pil(out, size=args.size)[0].save(args.out)
    print(f"bundle {inverter.version}: {request or 'no edits'} -> {args.out}")
    return 0


# --- directions ---------------------------------------------------------------------


def add_directions_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    gs = sub.add_parser("ganspace", help="PCA of mapped W samples (Härkönen et al. 2020)")
    src = gs.add_mutually_exclusive_group(required=True)
    src.add_argument("--generator", type=Path, help="rosinality StyleGAN2 checkpoint (.pt)")
    src.add_argument("--bundle", type=Path, help="take the generator from a model bundle")
    gs.add_argument("--components", type=int, default=16)
    gs.add_argument("--samples", type=int, default=10_000)
    gs.add_argument("--seed", type=int, default=0)
    gs.add_argument("--prefix", default="ganspace_pc", help="direction name prefix")
    gs.add_argument(
        "--unit",
        action="store_true",
        help="store unit vectors (default: scaled to one standard deviation)",
    )
    gs.add_argument("--out", required=True, type=Path, help="output .pt or .safetensors")


def run_directions(args: argparse.Namespace) -> int:
    from inversion.editing.directions import save_directions
    from inversion.editing.ganspace import compute_ganspace

    if args.generator is not None:
        from inversion.modules.stylegan2 import load_rosinality_checkpoint

        generator, _ = load_rosinality_checkpoint(args.generator)
    else:
        from inversion.bundle import load_bundle

        generator = load_bundle(args.bundle).build_generator()
    space = compute_ganspace(generator, args.samples, args.components, args.seed)
    directions = space.directions(prefix=args.prefix, unit=args.unit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_directions(directions, args.out)
    ratios = ", ".join(f"{float(r):.3f}" for r in space.explained_variance_ratio[:8])
    print(f"{len(directions)} directions -> {args.out} (explained variance: {ratios} ...)")
    return 0


# --- bundle -------------------------------------------------------------------------


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="assemble a bundle from trained parts")
    b.add_argument(
        "--arch",
        default=registry.DEFAULT_ARCH,
        choices=registry.names(),
        help="the encoder's architecture (default: %(default)s)",
    )
    b.add_argument("--generator", required=True, type=Path, help="rosinality checkpoint (.pt)")
    b.add_argument("--encoder", required=True, type=Path, help="encoder state (.safetensors)")
    b.add_argument("--fuser", type=Path, help="fuser state (.safetensors; encoders with one)")
    b.add_argument("--encoder-config", required=True, type=Path, help="JSON file")
    b.add_argument("--fuser-config", type=Path, help="JSON file (encoders with a Fuser)")
    b.add_argument("--directions", required=True, type=Path, help=".pt / .safetensors / .npz")
    b.add_argument("--catalog", required=True, type=Path, help="catalog.json")
    b.add_argument("--provenance", type=Path, help="JSON file: commands, data, seeds, notes")
    b.add_argument("--metrics", type=Path, help="JSON file of evaluation metrics")
    b.add_argument("--note", action="append", default=[], help="provenance note; repeatable")
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--overwrite", action="store_true")

    r = sub.add_parser("random", help="a bundle of untrained, seeded random networks")
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--preset", default="tiny", help="tiny or full")
    r.add_argument("--arch", default=registry.DEFAULT_ARCH, choices=registry.names())
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--overwrite", action="store_true")

    v = sub.add_parser("verify", help="verify every hash; print the bundle version")
    v.add_argument("path", type=Path)
    v.add_argument("--json", action="store_true", help="print the bundle summary as JSON")

    d = sub.add_parser(
        "domain",
        help="declare (or refresh) what a bundle can represent, and "
        "calibrate its domain gate; writes a new version, weights unchanged",
    )
    d.add_argument("--bundle", required=True, type=Path)
    d.add_argument("--subject", required=True, help='what the model draws, e.g. "face", "product"')
    d.add_argument("--align", required=True, choices=("ffhq", "object", "center"))
    d.add_argument("--colour", default="rgb", choices=("rgb", "grey"))
    d.add_argument("--paste-mode", default="delta", choices=("delta", "replace"))
    d.add_argument("--feather", type=float, default=0.1)
    d.add_argument("--description", default="", help="one sentence for requesters")
    d.add_argument(
        "--calibrate-from",
        help="in-domain photos for the gate (fashion-mnist); "
        "without it the bundle declares no gate",
    )
    d.add_argument(
        "--gate-from",
        type=Path,
        help="a gate already calibrated for this bundle's weights (safetensors, as "
        "`python -m inversion.domain_eval --save` writes it) instead of --calibrate-from",
    )
    d.add_argument("--fit", type=int, default=2000, help="photos the Gaussian is fitted on")
    d.add_argument("--calib", type=int, default=1000, help="held-out photos for the thresholds")
    d.add_argument("--quantile", type=float, default=0.99)
    d.add_argument("--pooling", default="flat", choices=("flat", "layer_mean"))
    d.add_argument("--seed", type=int, default=0)


def _read_json(path: Path | None, what: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InversionError(f"{what} {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise InversionError(f"{what} {str(path)!r} must hold a JSON object")
    return data


def _run_bundle_domain(args: argparse.Namespace) -> int:
    from inversion import bundle_domain
    from inversion.bundle import load_bundle

    current = load_bundle(args.bundle)
    domain = bundle_domain.BundleDomain(
        subject=args.subject,
        align=args.align,
        resolution=current.generator_config.size,
        colour=args.colour,
        paste_mode=args.paste_mode,
        feather=args.feather,
        description=args.description,
    )
    gate = None
    if args.gate_from and args.calibrate_from:
        raise InversionError("use --gate-from or --calibrate-from, not both")
    if args.gate_from:
        from inversion.domain import DomainGate

        gate = DomainGate.load(args.gate_from)
        cfg = current.encoder_config
        expected = (getattr(cfg, "n_latent", None), getattr(cfg, "style_dim", None))
        if None not in expected and tuple(gate.model.latent_shape) not in ((0, 0), expected):
            raise InversionError(
                f"{args.gate_from}: the gate was fitted on W+ codes of shape "
                f"{gate.model.latent_shape}, this bundle's are {expected}"
            )
    if args.calibrate_from:
        from inversion.inverter import Inverter

        images = bundle_domain.calibration_set(args.calibrate_from, args.fit, args.calib, args.seed)
        gate = bundle_domain.calibrate_gate(
            Inverter(current, "cpu", batch_size=64),
            domain,
            images,
            quantile=args.quantile,
            pooling=args.pooling,
        )
    b = bundle_domain.apply_domain(
        args.bundle, domain, gate, command="python -m inversion " + shlex.join(args._argv)
    )
    print(f"{b.version}  {args.bundle}  domain: {domain.summary()}")
    if gate is not None:
        print(json.dumps(gate.thresholds.to_dict(), sort_keys=True))
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from inversion import bundle as bundles

    if args.action == "verify":
        b = bundles.load_bundle(args.path)
        if args.json:
            print(json.dumps(b.summary(), indent=2))
        else:
            print(b.version)
        return 0
    if args.action == "domain":
        return _run_bundle_domain(args)
    if args.action == "random":
        b = bundles.build_random_bundle(
            args.out,
            preset=args.preset,
            seed=args.seed,
            overwrite=args.overwrite,
            encoder_arch=args.arch,
        )
        print(f"{b.version}  {args.out}  ({bundles.UNTRAINED})")
        return 0

    provenance = _read_json(args.provenance, "provenance")
    provenance.setdefault("commands", []).append("python -m inversion " + shlex.join(args._argv))
    if args.note:
        provenance.setdefault("notes", [])
        if isinstance(provenance["notes"], str):
            provenance["notes"] = [provenance["notes"]]
        provenance["notes"].extend(args.note)
    b = bundles.build_bundle(
        args.out,
        generator_ckpt=args.generator,
        encoder_state=args.encoder,
        fuser_state=args.fuser,
        encoder_cfg=_read_json(args.encoder_config, "encoder config"),
        fuser_cfg=_read_json(args.fuser_config, "fuser config") if args.fuser_config else None,
        directions=args.directions,
        catalog=args.catalog,
        provenance=provenance,
        metrics=_read_json(args.metrics, "metrics"),
        overwrite=args.overwrite,
        encoder_arch=args.arch,
    )
    print(f"{b.version}  {args.out}")
    return 0
