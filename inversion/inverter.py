"""Inversion and editing of photos with a loaded model bundle — the worker's API.

``invert`` runs preprocess -> encoder -> W+ codes (offsets + latent_avg) and a detail
map -> generator with the Fuser's residual for d = 0 (plain reconstruction).
``edit`` moves the W+ codes along catalog edits, gives the Fuser d = w_edit - w so the
photo's detail follows the edit, and renders. Both steps use the same deterministic
rendering (stored noise by default), so an edit with every strength 0 reproduces the
reconstruction exactly. Work is done in batches, under ``torch.inference_mode``, on
CUDA when available; a ``progress(stage, fraction)`` callback lets a worker report.
An :class:`Inversion` is stored in the one latent format (:mod:`inversion.latent`) by
:meth:`Inversion.to_bytes` / :meth:`Inversion.save` and read back by
:meth:`Inversion.from_bytes` / :meth:`Inversion.load`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from inversion.bundle import ModelBundle, load_bundle
from inversion.errors import EditError, InvalidImage, LatentError, LatentMismatch
from inversion.latent import read_latent, write_latent
from inversion.preprocess import image_to_tensor, tensor_to_images

__all__ = ["Inversion", "Inverter", "ProgressCallback", "resolve_device"]

ProgressCallback = Callable[[str, float], None]
NoiseMode = Literal["const", "random"]
# One seed for a whole call (sample k gets seed + k), or one seed per sample.
Seeds = int | Sequence[int] | None


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` / ``"auto"``: the first CUDA device when there is one, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class Inversion:
    """The result of :meth:`Inverter.invert` for a batch of B images.

    ``wplus`` are absolute W+ codes (latent_avg added), (B, n_latent, style_dim);
    ``detail`` the encoder's detail map (None for encoders without one);
    ``reconstruction`` the rendered images (B, 3, size, size) in about [-1, 1] (None
    when read from a latent file: it is re-rendered from the codes, not stored).
    """

    wplus: Tensor
    detail: Tensor | None
    reconstruction: Tensor | None = None
    bundle_version: str | None = None

    def __len__(self) -> int:
        return int(self.wplus.shape[0])

    def __getitem__(self, index: int | slice) -> Inversion:
        idx = slice(index, index + 1) if isinstance(index, int) else index
        return Inversion(
            wplus=self.wplus[idx],
            detail=self.detail[idx] if self.detail is not None else None,
            reconstruction=self.reconstruction[idx] if self.reconstruction is not None else None,
            bundle_version=self.bundle_version,
        )

    @staticmethod
    def cat(parts: Sequence[Inversion]) -> Inversion:
        if not parts:
            raise ValueError("nothing to concatenate")

        def cat(tensors: list[Tensor | None]) -> Tensor | None:
            return None if any(t is None for t in tensors) else torch.cat(tensors)  # type: ignore[arg-type]

        return Inversion(
            wplus=torch.cat([p.wplus for p in parts]),
            detail=cat([p.detail for p in parts]),
            reconstruction=cat([p.reconstruction for p in parts]),
            bundle_version=parts[0].bundle_version,
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Inversion:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        return replace(
            self,
            wplus=move(self.wplus),
            detail=move(self.detail),
            reconstruction=move(self.reconstruction),
        )

    def to_bytes(self) -> bytes:
        """The latent file (:mod:`inversion.latent`): codes, detail map, model version."""
        return write_latent(self.wplus, self.detail, self.bundle_version)

    @classmethod
    def from_bytes(cls, data: bytes, what: str = "latent") -> Inversion:
        """Read a latent file; LatentFormatError (naming ``what``) when it is not one."""
        tensors, metadata = read_latent(data, what)
        return cls(
            wplus=tensors["wplus"],
            detail=tensors.get("detail"),
            bundle_version=metadata.get("model_version") or None,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "wb") as f:
            f.write(self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Inversion:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise LatentError(f"cannot read latent {str(path)!r}: {exc}") from None
        return cls.from_bytes(data, what=repr(str(path)))


class Inverter:
    """Encoder + Fuser + generator of one bundle, ready to invert and edit."""

    def __init__(
        self,
        bundle: ModelBundle,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        batch_size: int = 8,
        noise: NoiseMode = "const",
        fixed_batch: bool = False,
    ) -> None:
        """``fixed_batch``: run every forward pass at exactly ``batch_size`` samples
        (a short chunk is padded, the padding dropped) with batch-invariant kernels, so a
        sample's outputs are bit for bit the same whatever else shares its batch and
        wherever it sits in it. Batched matrix products are not: a 1-row product (gemv)
        and an n-row one (gemm), or oneDNN's convolutions at different batch positions,
        round differently in the last bits, and a job's latent hash would then depend on
        which other jobs a worker happened to batch it with. Costs a full batch for a
        short one (what a GPU does anyway; on a CPU a lone job pays for ``batch_size``).
        """
        self.bundle = bundle
        self.fixed_batch = fixed_batch
        self.device = resolve_device(device)
        self.dtype = dtype if dtype is not None else torch.float32
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if noise not in ("const", "random"):
            raise ValueError("noise must be 'const' or 'random'")
        self.batch_size = batch_size
        self.noise: NoiseMode = noise
        self.generator, self.encoder, self.fuser = bundle.build_models(self.device, self.dtype)
        self.latent_avg = bundle.latent_avg.to(self.device, self.dtype)
        self.directions = {n: d.to(self.device, self.dtype) for n, d in bundle.directions.items()}
        self.catalog = bundle.catalog
        self.version = bundle.version
        self.input_size = int(bundle.encoder_config.input_size)
        self.fuser_resolution = (
            int(bundle.fuser_config.resolution) if bundle.fuser_config is not None else None
        )

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> Inverter:
        return cls(load_bundle(path), device=device, dtype=dtype, **kwargs)

    @property
    def output_size(self) -> int:
        return self.generator.size

    # -- inputs --------------------------------------------------------------------

    def preprocess(self, images: Sequence[Image.Image] | Image.Image | Tensor) -> Tensor:
        """PIL images or a (B, 3, H, W) tensor in [-1, 1] -> encoder input on device."""
        if isinstance(images, Tensor):
            x = images.unsqueeze(0) if images.ndim == 3 else images
            if x.ndim != 4 or x.shape[1] != 3:
                raise InvalidImage(f"expected (B, 3, H, W) image tensors, got {tuple(x.shape)}")
            if x.shape[-2:] != (self.input_size, self.input_size):
                x = F.interpolate(
                    x.float(),
                    size=(self.input_size, self.input_size),
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
        else:
            x = image_to_tensor(images, self.input_size)
        return x.to(self.device, self.dtype)

    # -- rendering -------------------------------------------------------------------

    def _noise(self, batch: int, seed: Seeds, offset: int) -> NoiseMode | list[Tensor]:
        if self.noise == "const":
            return "const"
        # Per-sample seeds make the noise independent of how samples are chunked. An int
        # seeds sample k with seed + k (its index in the whole call), so the same image
        # gets other noise at another position of the call; a sequence gives every sample
        # its own seed (a worker batching jobs passes one per job, so a job's output does
        # not depend on which batch, or which position in it, the job landed in).
        if isinstance(seed, Sequence):
            seeds = [int(seed[offset + i]) for i in range(batch)]
        else:
            base = 0 if seed is None else seed
            seeds = [base + offset + i for i in range(batch)]
        per_sample = [
            self.generator.make_noise(torch.Generator(device=self.device).manual_seed(s))
            for s in seeds
        ]
        return [torch.cat(maps).to(self.dtype) for maps in zip(*per_sample, strict=True)]

    def _render(
        self,
        wplus: Tensor,
        detail: Tensor | None,
        delta: Tensor | None,
        seed: Seeds,
        offset: int,
    ) -> Tensor:
        n = wplus.shape[0]
        noise = self._noise(n, seed, offset)
        if self.fixed_batch:
            wplus, detail, delta = (self._pad(t) for t in (wplus, detail, delta))
            if not isinstance(noise, str):
                noise = [self._pad(t) for t in noise]
        with self._kernels():
            residual = None
            if self.fuser is not None and detail is not None and delta is not None:
                residual = {self.fuser_resolution: self.fuser(delta, detail)}
            out = self.generator.synthesis(wplus, noise=noise, feature_residual=residual)
        return out[:n]

    def _pad(self, t: Tensor | None) -> Tensor | None:
        """``t`` with zero rows appended up to ``batch_size`` (fixed_batch mode), always in
        contiguous layout: a preprocessed image tensor is a channels-last view, and a
        full chunk would otherwise reach other kernels than a padded (copied) one."""
        if t is None:
            return t
        if t.shape[0] >= self.batch_size:
            return t.contiguous()
        fill = t.new_zeros((self.batch_size - t.shape[0], *t.shape[1:]))
        return torch.cat([t, fill])

    def _kernels(self):
        """Batch-invariant kernels in fixed_batch mode: oneDNN off (its convolutions
        round differently per batch position), cuDNN deterministic, no autotuning."""
        if not self.fixed_batch:
            return contextlib.nullcontext()
        return _batch_invariant_kernels()

    def _chunks(self, n: int, batch_size: int | None) -> list[slice]:
        size = batch_size or self.batch_size
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    # -- public API --------------------------------------------------------------------

    @torch.inference_mode()
    def invert(
        self,
        images: Sequence[Image.Image] | Image.Image | Tensor,
        *,
        batch_size: int | None = None,
        seed: Seeds = None,
        progress: ProgressCallback | None = None,
        quality: Literal["fast", "refine"] = "fast",
        refine_steps: int = 50,
        max_refine_steps: int | None = None,
    ) -> Inversion:
        """Encode images to W+ (+ detail) and render their reconstructions.

        ``quality="refine"`` then optimises the codes against the images for
        ``refine_steps`` (at most ``max_refine_steps``): :meth:`refine`."""
        if quality not in ("fast", "refine"):
            raise ValueError(f"quality must be 'fast' or 'refine', got {quality!r}")
        report = progress or (lambda stage, fraction: None)
        report("preprocess", 0.0)
        x = self.preprocess(images)
        report("preprocess", 1.0)
        parts = []
        chunks = self._chunks(x.shape[0], batch_size)
        for k, sl in enumerate(chunks):
            n = sl.stop - sl.start
            with self._kernels():
                out = self.encoder(self._pad(x[sl]) if self.fixed_batch else x[sl])
            wplus = out.wplus[:n] + self.latent_avg
            detail = out.detail[:n] if out.detail is not None else None
            zeros = torch.zeros_like(wplus) if detail is not None else None
            recon = self._render(wplus, detail, zeros, seed, sl.start)
            parts.append(Inversion(wplus, detail, recon, self.version))
            report("invert", (k + 1) / len(chunks))
        if quality == "refine":
            return self.refine(
                Inversion.cat(parts),
                images,
                refine_steps,
                max_steps=max_refine_steps,
                seed=seed,
                batch_size=batch_size,
                progress=progress,
            )
        return Inversion.cat(parts)

    def refine(
        self,
        inversion: Inversion,
        images: Sequence[Image.Image] | Image.Image | Tensor,
        steps: int,
        *,
        max_steps: int | None = None,
        seed: int | None = None,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Inversion:
        """Quality mode ``refine``: a bounded optimisation of ``inversion``'s W+ codes and
        detail map against ``images`` (:func:`inversion.refine.refine`)."""
        from inversion.refine import refine

        return refine(
            self,
            inversion,
            images,
            steps,
            max_steps=max_steps,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )

    @torch.inference_mode()
    def edit(
        self,
        inversion: Inversion,
        edits: Mapping[str, float] | Sequence[Mapping[str, float]],
        *,
        use_fuser: bool = True,
        batch_size: int | None = None,
        seed: Seeds = None,
        progress: ProgressCallback | None = None,
    ) -> Tensor:
        """Render ``inversion`` with catalog edits ``{name: strength}`` applied.

        ``edits`` is one request for every sample, or a sequence with one request per
        sample (several jobs rendered in one batch); either way each sample's codes are
        edited on their own, so a sample's result does not depend on its neighbours.

        With ``use_fuser`` the Fuser receives d = w_edit - w (exactly 0 for strength 0,
        so the result equals the reconstruction bit for bit when rendered in the same
        batches, and to float rounding otherwise); without it the edit is rendered from
        the W+ codes alone (no detail residual).
        """
        report = progress or (lambda stage, fraction: None)
        n = inversion.wplus.shape[0]
        if isinstance(edits, Mapping):
            requests = [self.catalog.validate_request(edits)] * n
        else:
            requests = [self.catalog.validate_request(e) for e in edits]
            if len(requests) != n:
                raise EditError(f"{len(requests)} edit requests for {n} latents")
        self.check_fits(inversion)
        wplus_all = inversion.wplus.to(self.device, self.dtype)
        detail_all = (
            inversion.detail.to(self.device, self.dtype) if inversion.detail is not None else None
        )
        images = []
        chunks = self._chunks(wplus_all.shape[0], batch_size)
        for k, sl in enumerate(chunks):
            wplus = wplus_all[sl]
            edited = torch.cat(
                [
                    self.catalog.apply(wplus[i : i + 1], requests[sl.start + i], self.directions)
                    for i in range(wplus.shape[0])
                ]
            )
            detail = detail_all[sl] if detail_all is not None and use_fuser else None
            out = self._render(edited, detail, edited - wplus, seed, sl.start)
            out = self._keep(inversion, sl, requests[sl], wplus, edited, detail, out, seed)
            images.append(out)
            report("edit", (k + 1) / len(chunks))
        return torch.cat(images)

    def _keep(
        self,
        inversion: Inversion,
        sl: slice,
        requests: Sequence[Mapping[str, float]],
        wplus: Tensor,
        edited: Tensor,
        detail: Tensor | None,
        out: Tensor,
        seed: Seeds,
    ) -> Tensor:
        """Run each used edit's ``keep`` loop (:mod:`inversion.editing.keep`) on ``out``.

        A sample is corrected by the first edit of its request that declares a ``keep``
        and has a non-zero strength; samples without one are returned as rendered.
        """
        from inversion.editing.keep import restore

        keeps: list[Any] = []
        for request in requests:
            spec = next(
                (
                    self.catalog[name]
                    for name, value in request.items()
                    if value != 0.0 and self.catalog[name].keep is not None
                ),
                None,
            )
            keeps.append(spec.keep if spec is not None else None)
        for keep in dict.fromkeys(k for k in keeps if k is not None):
            idx = torch.tensor([i for i, k in enumerate(keeps) if k == keep], dtype=torch.long)
            target = self._keep_target(keep, inversion, sl, idx, wplus, detail, seed)
            sub_detail = detail[idx] if detail is not None else None

            def render(codes: Tensor, idx: Tensor = idx, sub_detail: Tensor | None = sub_detail):
                return self._render_rows(codes, sub_detail, codes - wplus[idx], seed, sl, idx)

            _, images, _ = restore(
                keep,
                self.directions[keep.direction],
                edited[idx],
                out[idx],
                target,
                render,
            )
            out = out.clone()
            out[idx] = images.to(out.dtype)
        return out

    def _keep_target(
        self,
        keep: Any,
        inversion: Inversion,
        sl: slice,
        idx: Tensor,
        wplus: Tensor,
        detail: Tensor | None,
        seed: Seeds,
    ) -> Tensor:
        """The kept attribute's value before the edit: the reconstruction's (rendered
        with zero edit when the inversion carries none)."""
        from inversion.editing.keep import measure

        if inversion.reconstruction is not None:
            recon = inversion.reconstruction[sl][idx].to(self.device, self.dtype)
        else:
            codes = wplus[idx]
            sub_detail = detail[idx] if detail is not None else None
            recon = self._render_rows(codes, sub_detail, torch.zeros_like(codes), seed, sl, idx)
        return measure(keep, recon)

    def _render_rows(
        self,
        codes: Tensor,
        detail: Tensor | None,
        delta: Tensor,
        seed: Seeds,
        sl: slice,
        idx: Tensor,
    ) -> Tensor:
        """Render rows ``idx`` of chunk ``sl`` with each row's own noise (its index in the
        call), so a subset renders as the same rows would in the full chunk."""
        if len(idx) == sl.stop - sl.start:
            return self._render(codes, detail, delta, seed, sl.start)
        rows = [
            self._render(codes[j : j + 1], _row(detail, j), delta[j : j + 1], seed, sl.start + i)
            for j, i in enumerate(idx.tolist())
        ]
        return torch.cat(rows)

    def check_fits(self, inversion: Inversion) -> None:
        """LatentMismatch unless ``inversion``'s shapes fit this model (e.g. a latent file
        from another bundle); a different model version with the same shapes is allowed
        here (the CLI asks for confirmation, the platform never mixes them)."""
        want = (self.generator.n_latent, self.generator.style_dim)
        got = tuple(inversion.wplus.shape[1:])
        if got != want:
            raise LatentMismatch(
                f"latent W+ codes are {got[0]}x{got[1]} but this model uses {want[0]}x{want[1]}"
            )
        detail_channels = getattr(self.bundle.fuser_config, "detail_channels", None)
        detail = inversion.detail
        if (
            detail is not None
            and detail_channels is not None
            and detail.shape[1] != detail_channels
        ):
            raise LatentMismatch(
                f"latent detail map has {detail.shape[1]} channels but this model's Fuser "
                f"takes {detail_channels}"
            )

    def to_pil(self, images: Tensor, size: int | None = None) -> list[Image.Image]:
        """Generator outputs -> RGB PIL images (native size unless ``size``)."""
        return tensor_to_images(images, size=size)


@contextlib.contextmanager
def _batch_invariant_kernels():
    """oneDNN off, cuDNN deterministic without autotuning; restored afterwards. (The
    backends' ``flags()`` context managers also reset TF32 settings and warn on CPU.)"""
    mkldnn, cudnn = torch.backends.mkldnn, torch.backends.cudnn
    saved = (mkldnn.enabled, cudnn.deterministic, cudnn.benchmark)
    mkldnn.enabled, cudnn.deterministic, cudnn.benchmark = False, True, False
    try:
        yield
    finally:
        mkldnn.enabled, cudnn.deterministic, cudnn.benchmark = saved


def _row(t: Tensor | None, j: int) -> Tensor | None:
    return t[j : j + 1] if t is not None else None
