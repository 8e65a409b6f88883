"""Model bundles: a directory of weights + a manifest that commits to every byte.

Layout (every file except ``manifest.json`` is listed in the manifest with its SHA-256
and size; nothing else may be in the directory)::

    <bundle>/
      manifest.json             format_version, encoder_arch, configs, files, provenance,
                                metrics
      generator.safetensors     StyleGAN2 g_ema state dict, rosinality key names
      encoder.safetensors       the encoder's state dict (MambaStyle or pSp)
      fuser.safetensors         Fuser state dict (only for encoders with a detail map)
      latent_avg.safetensors    {"latent_avg": (style_dim,)}
      directions.safetensors    {direction name: (style_dim,) or (n_latent, style_dim)}
      catalog.json              the edit catalog (names, ranges, sensitivity)

``encoder_arch`` names the encoder in :mod:`inversion.registry` (``"mambastyle"``,
``"psp"``); manifests written before the field existed hold a MambaStyle encoder, so a
missing field reads as ``"mambastyle"`` and their bytes (and versions) stay valid.

The bundle's *version* is the SHA-256 of ``manifest.json``'s bytes. Because the manifest
holds every file's hash, the version identifies the exact weights, directions and
catalog; the audit log records it with every job. Loading reads each file once, hashes
those bytes and parses the same bytes, so what is verified is what is used. Any
mismatch, missing or unlisted file, unknown format or malformed manifest is refused
with a :class:`~inversion.errors.BundleError` naming the file.

Writing goes to a temporary directory beside the target, which is renamed into place
only when complete: a crashed build never leaves a half bundle under the real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import Tensor

from inversion import registry
from inversion.editing.catalog import EditCatalog
from inversion.errors import (
    BundleContentError,
    BundleError,
    BundleFileMissing,
    BundleIntegrityError,
    BundleNotFound,
    CheckpointError,
    ConfigError,
    EditError,
    ManifestError,
    UnexpectedBundleFile,
    UnsupportedBundleVersion,
)
from inversion.modules.stylegan2 import (
    Generator,
    GeneratorConfig,
    generator_from_state_dict,
    read_rosinality_checkpoint,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "REQUIRED_FILES",
    "ModelBundle",
    "required_files",
    "load_bundle",
    "build_bundle",
    "build_random_bundle",
    "sha256_hex",
    "verify_bundle_files",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
GENERATOR_FILE = "generator.safetensors"
ENCODER_FILE = "encoder.safetensors"
FUSER_FILE = "fuser.safetensors"
LATENT_AVG_FILE = "latent_avg.safetensors"
DIRECTIONS_FILE = "directions.safetensors"
CATALOG_FILE = "catalog.json"


def required_files(encoder_arch: str = registry.DEFAULT_ARCH) -> tuple[str, ...]:
    """The files a bundle with this encoder must hold (the Fuser's only if it has one)."""
    fuser = (FUSER_FILE,) if registry.get(encoder_arch).fuser is not None else ()
    return (GENERATOR_FILE, ENCODER_FILE, *fuser, LATENT_AVG_FILE, DIRECTIONS_FILE, CATALOG_FILE)


REQUIRED_FILES = required_files()  # a MambaStyle bundle's
UNTRAINED = "untrained: seeded random weights"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- configs ------------------------------------------------------------------------


def _config(component: registry.Component, d: Any, what: str) -> Any:
    """The config object of ``configs.<what>``; ManifestError naming it when invalid."""
    try:
        return component.config_from_dict(d)
    except ConfigError as exc:
        raise ManifestError(f"{MANIFEST_NAME}: configs.{what} is invalid: {exc}") from None


def _architecture(name: Any) -> registry.Architecture:
    try:
        return registry.get(name)
    except ConfigError as exc:
        raise ManifestError(f"{MANIFEST_NAME}: encoder_arch: {exc}") from None


# --- the loaded bundle --------------------------------------------------------------


@dataclass
class ModelBundle:
    """A verified bundle in memory: configs, CPU state dicts, directions, catalog."""

    path: Path
    version: str
    manifest: dict[str, Any]
    encoder_arch: str
    generator_config: GeneratorConfig
    encoder_config: Any
    fuser_config: Any | None
    latent_avg: Tensor
    directions: dict[str, Tensor]
    catalog: EditCatalog
    state_dicts: dict[str, dict[str, Tensor]] = field(repr=False)
    # What the model can represent (inversion.bundle_domain); the default for bundles
    # that declare none is centre alignment with no gate.
    domain: Any = None
    domain_gate: Any = field(default=None, repr=False)

    @property
    def provenance(self) -> dict[str, Any]:
        return self.manifest.get("provenance", {})

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    @property
    def n_latent(self) -> int:
        return self.generator_config.n_latent

    def summary(self) -> dict[str, Any]:
        """What the platform shows and records about the model (JSON-serialisable)."""
        return {
            "version": self.version,
            "path": str(self.path),
            "format_version": self.manifest["format_version"],
            "encoder_arch": self.encoder_arch,
            "configs": self.manifest["configs"],
            "provenance": self.provenance,
            "metrics": self.metrics,
            "edits": self.catalog.to_dict()["edits"],
            "domain": self.domain.to_dict() if self.domain is not None else None,
        }

    def build_generator(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Generator:
        g = generator_from_state_dict(self.state_dicts["generator"], self.generator_config)
        return g.to(device=device, dtype=dtype).eval()

    @property
    def architecture(self) -> registry.Architecture:
        return registry.get(self.encoder_arch)

    def build_encoder(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> nn.Module:
        return _build_strict(
            self.architecture,
            self.encoder_config,
            self.state_dicts["encoder"],
            ENCODER_FILE,
            device,
            dtype,
        )

    def build_fuser(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> nn.Module | None:
        """The Fuser, or None for an encoder without a detail map (e.g. pSp)."""
        fuser = self.architecture.fuser
        if fuser is None:
            return None
        return _build_strict(
            fuser, self.fuser_config, self.state_dicts["fuser"], FUSER_FILE, device, dtype
        )

    def build_models(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Generator, nn.Module, nn.Module | None]:
        """(generator, encoder, fuser or None) in eval mode, weights loaded strictly."""
        return (
            self.build_generator(device, dtype),
            self.build_encoder(device, dtype),
            self.build_fuser(device, dtype),
        )


def _build_strict(
    component: registry.Component,
    cfg: Any,
    state: Mapping[str, Tensor],
    filename: str,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> nn.Module:
    target = torch.device(device) if device is not None else torch.device("cpu")
    with torch.device(target):
        model = component.build(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BundleContentError(f"{filename}: weights do not fit the config: {exc}") from None
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model.eval()


# --- loading ------------------------------------------------------------------------


def _read_manifest(root: Path) -> tuple[bytes, dict[str, Any]]:
    if not root.is_dir():
        raise BundleNotFound(f"model bundle {str(root)!r} does not exist or is not a directory")
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleNotFound(f"{str(root)!r} has no {MANIFEST_NAME}; not a model bundle")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_NAME} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{MANIFEST_NAME} must hold a JSON object")
    version = manifest.get("format_version")
    if version is None:
        raise ManifestError(f"{MANIFEST_NAME} has no format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise UnsupportedBundleVersion(
            f"{MANIFEST_NAME}: format_version {version!r} is not supported "
            f"(this code reads {FORMAT_VERSION})"
        )
    _check_manifest_shape(manifest)
    return raw, manifest


def _check_manifest_shape(manifest: Mapping[str, Any]) -> None:
    for key in ("configs", "files", "provenance", "metrics"):
        if not isinstance(manifest.get(key), dict):
            raise ManifestError(f"{MANIFEST_NAME}: '{key}' must be an object")
    arch = _architecture(manifest.get("encoder_arch", registry.DEFAULT_ARCH))
    configs = manifest["configs"]
    for key in ("generator", "encoder", *(("fuser",) if arch.fuser else ())):
        if not isinstance(configs.get(key), dict):
            raise ManifestError(f"{MANIFEST_NAME}: configs.{key} must be an object")
    if arch.fuser is None and configs.get("fuser") is not None:
        raise ManifestError(f"{MANIFEST_NAME}: a {arch.name} encoder has no Fuser config")
    files = manifest["files"]
    for name, entry in files.items():
        if not _SAFE_NAME.match(name) or name == MANIFEST_NAME or name in (".", ".."):
            raise ManifestError(f"{MANIFEST_NAME}: file name {name!r} is not allowed")
        if not isinstance(entry, dict):
            raise ManifestError(f"{MANIFEST_NAME}: files.{name} must be an object")
        digest, size = entry.get("sha256"), entry.get("size")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ManifestError(f"{MANIFEST_NAME}: files.{name}.sha256 is not a SHA-256 hex")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{MANIFEST_NAME}: files.{name}.size is not a byte count")
    missing = [n for n in required_files(arch.name) if n not in files]
    if missing:
        raise ManifestError(f"{MANIFEST_NAME} does not list required files: {missing}")


def _read_verified(root: Path, manifest: Mapping[str, Any]) -> dict[str, bytes]:
    files: dict[str, Any] = manifest["files"]
    present = {p.name for p in root.iterdir()}
    unexpected = sorted(present - set(files) - {MANIFEST_NAME})
    if unexpected:
        raise UnexpectedBundleFile(
            f"bundle {str(root)!r} contains files the manifest does not list: {unexpected}"
        )
    contents: dict[str, bytes] = {}
    for name, entry in files.items():
        path = root / name
        if not path.is_file():
            raise BundleFileMissing(
                f"{name}: listed in {MANIFEST_NAME} but missing from the bundle"
            )
        data = path.read_bytes()
        if len(data) != entry["size"]:
            raise BundleIntegrityError(
                f"{name}: size {len(data)} bytes differs from the manifest's {entry['size']}"
            )
        digest = sha256_hex(data)
        if digest != entry["sha256"]:
            raise BundleIntegrityError(
                f"{name}: SHA-256 {digest} differs from the manifest's {entry['sha256']}"
            )
        contents[name] = data
    return contents


def verify_bundle_files(path: str | os.PathLike[str]) -> str:
    """Check the manifest and every file's size and SHA-256; return the version.

    The cheap half of :func:`load_bundle` (nothing is parsed or built), for readiness
    probes. Raises the same :class:`BundleError` subclasses.
    """
    root = Path(path)
    raw, manifest = _read_manifest(root)
    _read_verified(root, manifest)
    return sha256_hex(raw)


def _parse_tensors(name: str, data: bytes) -> dict[str, Tensor]:
    try:
        return load_safetensors_bytes(data)
    except Exception as exc:
        raise BundleContentError(f"{name}: not a readable safetensors file: {exc}") from None


def load_bundle(path: str | os.PathLike[str]) -> ModelBundle:
    """Verify and load a bundle directory. Raises a :class:`BundleError` subclass."""
    root = Path(path)
    raw, manifest = _read_manifest(root)
    contents = _read_verified(root, manifest)
    configs = manifest["configs"]
    arch = _architecture(manifest.get("encoder_arch", registry.DEFAULT_ARCH))
    gen_cfg = _config(_GENERATOR, configs["generator"], "generator")
    enc_cfg = _config(arch, configs["encoder"], "encoder")
    fus_cfg = _config(arch.fuser, configs["fuser"], "fuser") if arch.fuser else None

    generator_state = _parse_tensors(GENERATOR_FILE, contents[GENERATOR_FILE])
    encoder_state = _parse_tensors(ENCODER_FILE, contents[ENCODER_FILE])
    state_dicts = {"generator": generator_state, "encoder": encoder_state}
    _check_state_shapes(ENCODER_FILE, encoder_state, _expected_shapes(arch, enc_cfg))
    if arch.fuser is not None:
        state_dicts["fuser"] = _parse_tensors(FUSER_FILE, contents[FUSER_FILE])
        _check_state_shapes(FUSER_FILE, state_dicts["fuser"], _expected_shapes(arch.fuser, fus_cfg))
    latent = _parse_tensors(LATENT_AVG_FILE, contents[LATENT_AVG_FILE])
    directions = _parse_tensors(DIRECTIONS_FILE, contents[DIRECTIONS_FILE])
    try:
        catalog = EditCatalog.from_json(contents[CATALOG_FILE])
    except EditError as exc:
        raise BundleContentError(f"{CATALOG_FILE}: {exc}") from None

    latent_avg = _check_contents(
        gen_cfg, enc_cfg, fus_cfg, generator_state, latent, directions, catalog
    )
    from inversion.bundle_domain import read_domain

    domain, gate = read_domain(manifest, contents, gen_cfg.size)
    return ModelBundle(
        path=root,
        version=sha256_hex(raw),
        manifest=manifest,
        encoder_arch=arch.name,
        generator_config=gen_cfg,
        encoder_config=enc_cfg,
        fuser_config=fus_cfg,
        latent_avg=latent_avg,
        directions=directions,
        catalog=catalog,
        state_dicts=state_dicts,
        domain=domain,
        domain_gate=gate,
    )


_GENERATOR = registry.Component(
    "inversion.modules.stylegan2:GeneratorConfig", "inversion.modules.stylegan2:Generator"
)


def _expected_shapes(component: registry.Component, cfg: Any) -> dict[str, tuple[int, ...]] | None:
    """Parameter/buffer shapes of the module for ``cfg``, built on the meta device."""
    try:
        with torch.device("meta"):
            model = component.build(cfg)
    except Exception:  # a module that cannot be built on meta: checked at build time
        return None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_state_shapes(
    filename: str, state: Mapping[str, Tensor], expected: dict[str, tuple[int, ...]] | None
) -> None:
    if expected is None:
        return
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got == expected:
        return
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    raise BundleContentError(
        f"{filename}: state dict does not match its config (missing {missing[:3]}, "
        f"unexpected {extra[:3]}, wrong shape {wrong[:3]})"
    )


def _check_contents(
    gen_cfg: GeneratorConfig,
    enc_cfg: Any,
    fus_cfg: Any,
    generator_state: Mapping[str, Tensor],
    latent: Mapping[str, Tensor],
    directions: Mapping[str, Tensor],
    catalog: EditCatalog,
) -> Tensor:
    """Cross-checks that hashes cannot catch: the files fit the configs and each other."""
    with torch.device("meta"):
        expected = Generator(gen_cfg).state_dict()
    got = {k: tuple(v.shape) for k, v in generator_state.items()}
    want = {k: tuple(v.shape) for k, v in expected.items()}
    if got != want:
        diff = sorted(set(got) ^ set(want)) or sorted(k for k in want if got[k] != want[k])
        raise BundleContentError(
            f"{GENERATOR_FILE}: state dict does not match configs.generator (e.g. {diff[:5]})"
        )
    if set(latent) != {"latent_avg"} or tuple(latent["latent_avg"].shape) != (gen_cfg.style_dim,):
        raise BundleContentError(
            f"{LATENT_AVG_FILE}: expected one tensor 'latent_avg' of shape ({gen_cfg.style_dim},)"
        )
    latent_avg = latent["latent_avg"].float()
    if not torch.isfinite(latent_avg).all():
        raise BundleContentError(f"{LATENT_AVG_FILE}: latent_avg has NaN or infinite values")

    for what, cfg in (("encoder", enc_cfg), ("fuser", fus_cfg)):
        for attr, value in (("n_latent", gen_cfg.n_latent), ("style_dim", gen_cfg.style_dim)):
            have = getattr(cfg, attr, value)
            if have != value:
                raise ManifestError(
                    f"{MANIFEST_NAME}: configs.{what}.{attr} = {have} but the generator has {value}"
                )
    res = getattr(fus_cfg, "resolution", None)
    if res is not None:
        if res not in gen_cfg.resolutions:
            raise ManifestError(
                f"{MANIFEST_NAME}: configs.fuser.resolution {res} is not a generator block"
            )
        out_ch = getattr(fus_cfg, "out_channels", gen_cfg.channel_table[res])
        if out_ch != gen_cfg.channel_table[res]:
            raise ManifestError(
                f"{MANIFEST_NAME}: configs.fuser.out_channels {out_ch} != the generator's "
                f"{gen_cfg.channel_table[res]} channels at {res} px"
            )
    enc_detail = getattr(enc_cfg, "detail_channels", None)
    fus_detail = getattr(fus_cfg, "detail_channels", None)
    if enc_detail is not None and fus_detail is not None and enc_detail != fus_detail:
        raise ManifestError(
            f"{MANIFEST_NAME}: encoder detail_channels {enc_detail} != fuser's {fus_detail}"
        )
    try:
        catalog.check_directions(directions, n_latent=gen_cfg.n_latent, style_dim=gen_cfg.style_dim)
    except EditError as exc:
        raise BundleContentError(f"{CATALOG_FILE} / {DIRECTIONS_FILE}: {exc}") from None
    return latent_avg


# --- building -----------------------------------------------------------------------


def _tensor_dict(state: Mapping[str, Tensor], what: str) -> dict[str, Tensor]:
    out = {}
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, Tensor):
            raise BundleError(f"{what}: expected a mapping of names to tensors")
        out[k] = v.detach().to("cpu").contiguous().clone()
    return out


def _state_from(
    source: Mapping[str, Tensor] | str | os.PathLike[str], what: str
) -> dict[str, Tensor]:
    if isinstance(source, Mapping):
        return _tensor_dict(source, what)
    path = Path(source)
    try:
        if path.suffix == ".safetensors":
            return _parse_tensors(path.name, path.read_bytes())
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise BundleError(f"{what}: cannot read {str(path)!r}: {exc}") from None
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"{what}: cannot read {str(path)!r}: {exc}") from None
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise BundleError(f"{what}: {str(path)!r} does not hold a state dict")
    return _tensor_dict(state, what)


def _generator_from(
    generator_ckpt: Any,
) -> tuple[dict[str, Tensor], Tensor | None]:
    if isinstance(generator_ckpt, Mapping):
        if "g_ema" not in generator_ckpt:
            raise BundleError("generator checkpoint: no 'g_ema' state dict")
        g_ema, latent_avg = generator_ckpt["g_ema"], generator_ckpt.get("latent_avg")
    else:
        try:
            ckpt = read_rosinality_checkpoint(generator_ckpt)
        except CheckpointError as exc:
            raise BundleError(str(exc)) from None
        g_ema, latent_avg = ckpt["g_ema"], ckpt["latent_avg"]
    state = {k: v.float() if torch.is_floating_point(v) else v for k, v in g_ema.items()}
    return _tensor_dict(state, "generator"), latent_avg


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def build_bundle(
    out_dir: str | os.PathLike[str],
    generator_ckpt: str | os.PathLike[str] | Mapping[str, Any],
    encoder_state: Mapping[str, Tensor] | str | os.PathLike[str],
    fuser_state: Mapping[str, Tensor] | str | os.PathLike[str] | None,
    encoder_cfg: Any,
    fuser_cfg: Any | None,
    directions: Mapping[str, Tensor] | str | os.PathLike[str],
    catalog: EditCatalog | Mapping[str, Any] | str | os.PathLike[str],
    provenance: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    *,
    latent_avg: Tensor | None = None,
    overwrite: bool = False,
    encoder_arch: str = registry.DEFAULT_ARCH,
) -> ModelBundle:
    """Validate the parts, write a bundle atomically and return it loaded.

    Args:
        generator_ckpt: a rosinality checkpoint path, or ``{"g_ema": ..., "latent_avg": ...}``.
        encoder_state / fuser_state: state dicts, or ``.safetensors`` / ``.pt`` paths.
        encoder_cfg / fuser_cfg: config objects or their dicts.
            ``fuser_state`` and ``fuser_cfg`` are None for an encoder without a Fuser.
        directions: ``{name: tensor}`` or a file (see ``editing.directions.load_directions``).
        catalog: an :class:`EditCatalog`, its dict, or a ``catalog.json`` path.
        provenance: commands, data, seeds, notes (free-form JSON object).
        latent_avg: overrides (or supplies a missing) checkpoint ``latent_avg``.
        overwrite: replace an existing bundle at ``out_dir``.
        encoder_arch: the encoder's name in :mod:`inversion.registry`.
    """
    from inversion.editing.directions import load_directions, validate_direction

    out = Path(out_dir)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty directory (e.g. made by a deployment) is not a bundle
    if out.exists() and not overwrite:
        raise BundleError(f"{str(out)!r} already exists (pass overwrite=True to replace it)")

    gen_state, ckpt_avg = _generator_from(generator_ckpt)
    try:
        from inversion.modules.stylegan2 import infer_config

        gen_cfg = infer_config(gen_state)
    except CheckpointError as exc:
        raise BundleError(f"generator: {exc}") from None
    avg = latent_avg if latent_avg is not None else ckpt_avg
    if avg is None:
        raise BundleError("the generator checkpoint has no latent_avg; pass latent_avg=")
    avg = avg.detach().float().reshape(-1).cpu().contiguous().clone()

    arch = registry.get(encoder_arch)
    has_fuser_parts = (fuser_state is not None, fuser_cfg is not None)
    if arch.fuser is not None and not all(has_fuser_parts):
        raise BundleError(f"a {arch.name} bundle needs the Fuser's weights and config")
    if arch.fuser is None and any(has_fuser_parts):
        raise BundleError(f"a {arch.name} encoder has no Fuser; pass no Fuser weights or config")
    enc_cfg = _config(arch, encoder_cfg, "encoder")
    states = {ENCODER_FILE: (arch, enc_cfg, _state_from(encoder_state, "encoder"))}
    fus_cfg = None
    if arch.fuser is not None:
        fus_cfg = _config(arch.fuser, fuser_cfg, "fuser")
        states[FUSER_FILE] = (arch.fuser, fus_cfg, _state_from(fuser_state, "fuser"))  # type: ignore[arg-type]

    if isinstance(directions, Mapping):
        dirs = {n: validate_direction(d, name=f"direction {n!r}") for n, d in directions.items()}
    else:
        dirs = load_directions(directions)
    if isinstance(catalog, EditCatalog):
        cat = catalog
    elif isinstance(catalog, Mapping):
        cat = EditCatalog.from_dict(catalog)
    else:
        cat = EditCatalog.load(catalog)

    # Same checks as loading, before anything is written; then strict weight loads.
    _check_contents(gen_cfg, enc_cfg, fus_cfg, gen_state, {"latent_avg": avg}, dirs, cat)
    for name, (component, cfg, state) in states.items():
        model = _build_strict(component, cfg, state, name, None, None)
        # load_state_dict(strict=True) tolerates some absent entries (BatchNorm fills in a
        # missing num_batches_tracked); a bundle must hold exactly what the model has.
        expected = set(model.state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise BundleContentError(
                f"{name}: weights do not fit the config: missing {missing}, unexpected {extra}"
            )

    payloads: dict[str, bytes] = {
        GENERATOR_FILE: save_safetensors_bytes(gen_state),
        **{name: save_safetensors_bytes(state) for name, (_, _, state) in states.items()},
        LATENT_AVG_FILE: save_safetensors_bytes({"latent_avg": avg}),
        DIRECTIONS_FILE: save_safetensors_bytes(dirs),
        CATALOG_FILE: cat.to_json().encode("utf-8"),
    }
    configs = {"generator": gen_cfg.to_dict(), "encoder": enc_cfg.to_dict()}
    if fus_cfg is not None:
        configs["fuser"] = fus_cfg.to_dict()
    manifest = {
        "format_version": FORMAT_VERSION,
        "encoder_arch": arch.name,
        "configs": configs,
        "files": {
            name: {"sha256": sha256_hex(data), "size": len(data)}
            for name, data in sorted(payloads.items())
        },
        "provenance": json.loads(json.dumps(dict(provenance))),
        "metrics": json.loads(json.dumps(dict(metrics or {}))),
    }
    payloads[MANIFEST_NAME] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, data in payloads.items():
            _write_file(tmp / name, data)
        _fsync_dir(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            old.rmdir()
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(out)


def build_random_bundle(
    out_dir: str | os.PathLike[str],
    preset: str = "tiny",
    seed: int = 0,
    *,
    overwrite: bool = False,
    ganspace_samples: int = 4096,
    encoder_arch: str = registry.DEFAULT_ARCH,
) -> ModelBundle:
    """A complete bundle of *untrained* networks with seeded random weights.

    For tests and as the platform's bootstrap model until a trained bundle exists.
    The same (preset, seed) gives byte-identical files and the same version. Its
    directions are GANSpace components of the random generator, and its catalog's
    edit names are placeholders for the real ones (the manifest says so).
    """
    from inversion.editing.catalog import EditSpec
    from inversion.editing.ganspace import compute_ganspace
    from inversion.presets import model_configs

    arch = registry.get(encoder_arch)
    gen_cfg, enc_cfg, fus_cfg = model_configs(preset, arch.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = Generator(gen_cfg).eval()
        encoder = arch.build(enc_cfg)
        fuser = arch.fuser.build(fus_cfg) if arch.fuser is not None else None
    rng = torch.Generator().manual_seed(seed)
    latent_avg = g.mean_latent(ganspace_samples, generator=rng)[0]
    space = compute_ganspace(g, n_samples=ganspace_samples, n_components=4, seed=seed + 1)
    directions = space.directions()
    n = g.n_latent
    wplus_dir = torch.randn(n, g.style_dim, generator=rng)
    directions["random_wplus0"] = (
        wplus_dir / wplus_dir.norm(dim=1, keepdim=True) * float(space.stddevs[0])
    )

    note = "placeholder: a GANSpace component of an untrained generator, no semantic meaning"
    catalog = EditCatalog(
        [
            EditSpec("pose", f"Head pose ({note})", "ganspace_pc0", "w", (0, max(2, n // 4))),
            EditSpec("smile", f"Smile ({note})", "ganspace_pc1", "w", (n // 4, n // 2)),
            EditSpec(
                "age",
                f"Apparent age ({note})",
                "ganspace_pc2",
                "w",
                (n // 4, 3 * n // 4),
                sensitive=True,
            ),
            EditSpec(
                "lighting",
                f"Lighting and colour ({note})",
                "ganspace_pc3",
                "w",
                (n // 2, n),
                min_strength=-2.0,
                max_strength=2.0,
            ),
            EditSpec(
                "texture",
                "Fine texture (placeholder: a random W+ direction)",
                "random_wplus0",
                "wplus",
                (0, n),
                min_strength=-1.0,
                max_strength=1.0,
            ),
        ]
    )
    command = f"python -m inversion bundle random --out DIR --preset {preset} --seed {seed}"
    if arch.name != registry.DEFAULT_ARCH:
        command += f" --arch {arch.name}"
    provenance = {
        "training": UNTRAINED,
        "notes": (
            f"{UNTRAINED}. Generator, encoder (and Fuser) are freshly initialised with "
            f"torch.manual_seed({seed}); outputs are not meaningful images. Directions: "
            f"GANSpace on {ganspace_samples} samples (seed {seed + 1}) plus one random W+ "
            "direction."
        ),
        "preset": preset,
        "seeds": {"weights": seed, "ganspace": seed + 1, "latent_avg": seed},
        "data": None,
        "commands": [command],
    }
    return build_bundle(
        out_dir,
        {"g_ema": g.state_dict(), "latent_avg": latent_avg},
        encoder.state_dict(),
        fuser.state_dict() if fuser is not None else None,
        enc_cfg,
        fus_cfg,
        directions,
        catalog,
        provenance,
        metrics={},
        overwrite=overwrite,
        encoder_arch=arch.name,
    )
