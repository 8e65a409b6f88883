from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.training import data


def _write_idx(path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_read_idx_roundtrip_and_padding(tmp_path):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    _write_idx(tmp_path / "x.gz", arr)
    back = data.read_idx(tmp_path / "x.gz")
    assert back.shape == (2, 28, 28) and (back == arr).all()
    t = data.fashion_to_tensor(back, 32)
    assert t.shape == (2, 3, 32, 32)
    # 2 px black border (= -1), content unresampled, grey replicated to RGB
    assert (t[:, :, :2] == -1).all() and (t[:, :, :, -2:] == -1).all()
    assert torch.allclose(t[0, 0, 2:30, 2:30], torch.from_numpy(arr[0]).float() / 127.5 - 1)
    assert torch.equal(t[:, 0], t[:, 2])


def test_read_idx_rejects_garbage(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError):
        data.read_idx(tmp_path / "bad")


def test_missing_dataset_names_the_apt_package(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match="dataset-fashion-mnist"):
        data.ensure_fashion_mnist(tmp_path, install=False)


def test_fashion_splits_are_disjoint_and_sized():
    x, y = data.load_fashion_mnist("val", limit=None)
    assert x.shape == (5000, 3, 32, 32) and y.shape == (5000,)
    xt, _ = data.load_fashion_mnist("train", limit=10)
    raw = data.read_idx(data.FASHION_DIR / data.FASHION_FILES["train"][0])
    # val is the tail of the official training split, train its head
    assert torch.equal(
        x[0, 0, 2:30, 2:30], torch.from_numpy(raw[data.TRAIN_SPLIT].copy()).float() / 127.5 - 1
    )
    assert torch.equal(xt[0, 0, 2:30, 2:30], torch.from_numpy(raw[0].copy()).float() / 127.5 - 1)


def test_sampler_is_deterministic_and_resumable():
    a = data.InfiniteSampler(10, 4, seed=3)
    first = [a.next() for _ in range(3)]
    state = a.state_dict()
    rest = [a.next() for _ in range(5)]
    b = data.InfiniteSampler(10, 4, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(first, [b.next() for _ in range(3)], strict=True))
    c = data.InfiniteSampler(10, 4, seed=99)
    c.load_state_dict(state)
    assert all(torch.equal(p, q) for p, q in zip(rest, [c.next() for _ in range(5)], strict=True))
    # one epoch covers every index exactly once
    d = data.InfiniteSampler(8, 4, seed=0)
    assert sorted(torch.cat([d.next(), d.next()]).tolist()) == list(range(8))


def test_image_folder_and_zip(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        for i in range(3):
            img = Image.new("RGB", (40 + i, 30), (255, 0, 0) if i == 0 else (0, 0, 255))
            img.save(folder / f"{i}.png")
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            zf.writestr(f"sub/{i}.png", buf.getvalue())
    for src in (folder, tmp_path / "imgs.zip"):
        ds = data.make_dataset(str(src), 16)
        assert len(ds) == 3
        x, y = ds[0]
        assert x.shape == (3, 16, 16) and y == -1
        assert x[0].mean() > 0.9 and x[2].mean() < -0.9  # red
        xb, yb = data.batch_from(ds, torch.tensor([1, 2]))
        assert xb.shape == (2, 3, 16, 16) and (yb == -1).all()
    with pytest.raises(data.DatasetUnavailable):
        data.ImageFolderDataset(tmp_path / "nothing-here", 16)
