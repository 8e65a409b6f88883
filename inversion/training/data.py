"""Datasets: Fashion-MNIST (the demo data) and image folders / zips (real users).

All datasets yield ``(image, label)`` with ``image`` a float tensor (3, size, size) in
[-1, 1] and ``label`` an int (-1 when the dataset has no labels).

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist`` (idx files under
/usr/share/datasets/fashion-mnist). Images are 28x28 grey on a black background; they
are zero-padded to 32x32 (2 px each side; no resampling, so no blur) and the grey value
is replicated to RGB. The official 10k test split is used only by evaluation; the 60k
training split is divided deterministically into ``train`` (first 55,000) and ``val``
(last 5,000, for the classifier's held-out accuracy).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "FASHION_CLASSES",
    "FASHION_DIR",
    "DatasetUnavailable",
    "TensorImageDataset",
    "ImageFolderDataset",
    "InfiniteSampler",
    "ensure_fashion_mnist",
    "load_fashion_mnist",
    "make_dataset",
]

FASHION_APT_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_CLASSES = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]
TRAIN_SPLIT = 55_000  # first 55k of the official training split; the rest is `val`
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetUnavailable(RuntimeError):
    """The requested dataset is not on this machine and could not be installed."""


def _fashion_present(root: Path) -> bool:
    return all((root / f).is_file() for pair in FASHION_FILES.values() for f in pair)


def ensure_fashion_mnist(root: Path | None = None, install: bool = True) -> Path:
    """Return the Fashion-MNIST directory, installing the Debian package if missing."""
    root = Path(root) if root is not None else FASHION_DIR
    if _fashion_present(root):
        return root
    hint = f"install it with: apt-get install {FASHION_APT_PACKAGE}"
    if not install:
        raise DatasetUnavailable(f"Fashion-MNIST not found under {root}; {hint}")
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DatasetUnavailable(
            f"Fashion-MNIST not found under {root} and this process cannot install it "
            f"(needs root and apt-get); {hint} (or set FASHION_MNIST_DIR)"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", FASHION_APT_PACKAGE]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 and cmd[1] == "install":
            raise DatasetUnavailable(
                f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr[-500:]}"
            )
    if not _fashion_present(root):
        raise DatasetUnavailable(f"{FASHION_APT_PACKAGE} installed but {root} lacks its files")
    return root


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) idx file (the MNIST container format) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, got {arr.size} values")
    return arr.reshape(dims)


def fashion_to_tensor(images: np.ndarray, size: int = 32) -> Tensor:
    """uint8 (N, 28, 28) -> float (N, 3, size, size) in [-1, 1]; zero-pad, grey->RGB."""
    x = torch.from_numpy(np.array(images, copy=True)).float().div_(127.5).sub_(1.0)
    x = x.unsqueeze(1)
    if size >= 28:
        total = size - 28
        lo = total // 2
        x = torch.nn.functional.pad(x, (lo, total - lo, lo, total - lo), value=-1.0)
    else:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    return x.expand(-1, 3, -1, -1).contiguous()


def load_fashion_mnist(
    split: str = "train", size: int = 32, root: Path | None = None, limit: int | None = None
) -> tuple[Tensor, Tensor]:
    """(images (N, 3, size, size) in [-1, 1], labels (N,) int64) for ``split``.

    ``split``: "train" (55k), "val" (5k, held out of training), "trainval" (all 60k),
    "test" (the official 10k; evaluation only).
    """
    root = ensure_fashion_mnist(root)
    official = "test" if split == "test" else "train"
    if split not in ("train", "val", "trainval", "test"):
        raise ValueError(f"unknown Fashion-MNIST split {split!r}")
    img_file, lbl_file = FASHION_FILES[official]
    images = read_idx(root / img_file)
    labels = read_idx(root / lbl_file).astype(np.int64)
    if split == "train":
        images, labels = images[:TRAIN_SPLIT], labels[:TRAIN_SPLIT]
    elif split == "val":
        images, labels = images[TRAIN_SPLIT:], labels[TRAIN_SPLIT:]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return fashion_to_tensor(images, size), torch.from_numpy(labels.copy())


class TensorImageDataset(Dataset):
    """In-memory images (N, 3, H, W) in [-1, 1] and optional labels."""

    def __init__(self, images: Tensor, labels: Tensor | None = None, name: str = "tensors"):
        self.images = images
        self.labels = labels
        self.name = name

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        label = int(self.labels[index]) if self.labels is not None else -1
        return self.images[index], label

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Fast batched access (no per-item collation)."""
        imgs = self.images[indices]
        if self.labels is None:
            return imgs, torch.full((len(indices),), -1, dtype=torch.long)
        return imgs, self.labels[indices]


def _decode(data: bytes, size: int) -> Tensor:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        img = img.resize((size, size), Image.Resampling.LANCZOS)
        arr = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


class ImageFolderDataset(Dataset):
    """Images from a folder (recursively) or a .zip, centre-cropped and resized.

    An FFHQ-style dataset (e.g. ``images1024x1024/`` or ``ffhq.zip``) works as is.
    Labels are -1 (unlabelled). Files are sorted by path, so order is deterministic.
    """

    def __init__(self, path: str | os.PathLike[str], size: int, max_images: int | None = None):
        self.path = Path(path)
        self.size = size
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            names = sorted(
                str(p.relative_to(self.path))
                for p in self.path.rglob("*")
                if p.suffix.lower() in IMAGE_EXTENSIONS
            )
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as zf:
                names = sorted(
                    n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXTENSIONS
                )
        else:
            raise DatasetUnavailable(f"{self.path}: not an image folder or a .zip of images")
        if not names:
            raise DatasetUnavailable(f"{self.path}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.names = names[:max_images] if max_images else names
        self.name = str(self.path)

    def __len__(self) -> int:
        return len(self.names)

    def _read(self, name: str) -> bytes:
        if self.path.is_dir():
            return (self.path / name).read_bytes()
        if self._zip is None:  # opened lazily: one handle per DataLoader worker
            self._zip = zipfile.ZipFile(self.path)
        return self._zip.read(name)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return _decode(self._read(self.names[index]), self.size), -1

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        imgs = torch.stack([self[int(i)][0] for i in indices])
        return imgs, torch.full((len(indices),), -1, dtype=torch.long)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"] = None
        return state


def make_dataset(spec: str, size: int, limit: int | None = None) -> Dataset:
    """``fashion-mnist[:split]`` (default split ``train``) or a folder / zip path."""
    if spec.startswith("fashion-mnist"):
        split = spec.split(":", 1)[1] if ":" in spec else "train"
        images, labels = load_fashion_mnist(split, size=size, limit=limit)
        return TensorImageDataset(images, labels, name=f"fashion-mnist:{split}")
    return ImageFolderDataset(spec, size, max_images=limit)


class InfiniteSampler:
    """Endless, seeded, resumable stream of index batches (epoch-wise permutations).

    With ``world_size > 1`` each rank takes a disjoint stride of every permutation.
    ``state_dict()`` captures the exact position, so a resumed run sees the same batches.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if n <= 0 or batch_size <= 0:
            raise ValueError("sampler needs n > 0 and batch_size > 0")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.pos = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=g)
        return perm[self.rank :: self.world_size]

    def next(self) -> Tensor:
        out: list[Tensor] = []
        need = self.batch_size
        while need > 0:
            if self.pos >= len(self._perm):
                self.epoch += 1
                self.pos = 0
                self._perm = self._permutation(self.epoch)
            take = self._perm[self.pos : self.pos + need]
            out.append(take)
            self.pos += len(take)
            need -= len(take)
        return torch.cat(out)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.pos = int(state["pos"])
        self._perm = self._permutation(self.epoch)


def batch_from(dataset: Dataset, indices: Tensor) -> tuple[Tensor, Tensor]:
    """A batch from any dataset in this module (fast path for in-memory tensors)."""
    if hasattr(dataset, "batch"):
        return dataset.batch(indices)
    items = [dataset[int(i)] for i in indices]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])
