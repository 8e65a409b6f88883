"""Model bundles: build, load, and refusal of anything that does not match the manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from inversion.bundle import (
    FUSER_FILE,
    MANIFEST_NAME,
    REQUIRED_FILES,
    UNTRAINED,
    build_bundle,
    build_random_bundle,
    load_bundle,
    required_files,
    verify_bundle_files,
)
from inversion.errors import (
    BundleContentError,
    BundleError,
    BundleFileMissing,
    BundleIntegrityError,
    BundleNotFound,
    ManifestError,
    UnexpectedBundleFile,
    UnsupportedBundleVersion,
)


@pytest.fixture()
def bundle_copy(random_bundle_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(random_bundle_dir, dst)
    return dst


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text())


def _write_manifest(path: Path, manifest: dict) -> None:
    (path / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_random_bundle_layout_and_contents(random_bundle_dir: Path) -> None:
    b = load_bundle(random_bundle_dir)
    assert sorted(p.name for p in random_bundle_dir.iterdir()) == sorted(
        [MANIFEST_NAME, *REQUIRED_FILES]
    )
    raw = (random_bundle_dir / MANIFEST_NAME).read_bytes()
    assert b.version == hashlib.sha256(raw).hexdigest()
    m = b.manifest
    assert m["format_version"] == 1
    for name in REQUIRED_FILES:
        data = (random_bundle_dir / name).read_bytes()
        assert m["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert UNTRAINED in m["provenance"]["training"] and m["provenance"]["seeds"]["weights"] == 0
    assert set(m["configs"]) == {"generator", "encoder", "fuser"}
    assert m["encoder_arch"] == b.encoder_arch == "mambastyle"
    assert len(b.catalog) >= 3 and any(s.sensitive for s in b.catalog)
    assert b.latent_avg.shape == (b.generator_config.style_dim,)
    b.catalog.check_directions(
        b.directions, n_latent=b.n_latent, style_dim=b.generator_config.style_dim
    )
    json.dumps(b.summary())  # serialisable for the platform


def test_build_models_loads_weights_strictly(random_bundle_dir: Path) -> None:
    b = load_bundle(random_bundle_dir)
    g, enc, fus = b.build_models("cpu")
    for model, key in ((g, "generator"), (enc, "encoder"), (fus, "fuser")):
        assert not model.training
        state = model.state_dict()
        assert state.keys() == b.state_dicts[key].keys()
        assert all(torch.equal(state[k], b.state_dicts[key][k]) for k in state)
    assert next(g.parameters()).dtype == torch.float32


def test_random_bundle_is_reproducible(random_bundle_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "same").mkdir()  # an empty directory may be the target
    same = build_random_bundle(tmp_path / "same", seed=0)
    other = build_random_bundle(tmp_path / "other", seed=1)
    assert same.version == load_bundle(random_bundle_dir).version
    assert other.version != same.version


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_flipped_byte_is_refused(bundle_copy: Path, name: str) -> None:
    assert verify_bundle_files(bundle_copy) == load_bundle(bundle_copy).version
    path = bundle_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=rf"{name}: SHA-256"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleIntegrityError, match=name):
        verify_bundle_files(bundle_copy)


def test_tampered_manifest_hash_is_refused(bundle_copy: Path) -> None:
    m = _manifest(bundle_copy)
    m["files"]["encoder.safetensors"]["sha256"] = "0" * 64
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleIntegrityError, match="encoder.safetensors"):
        load_bundle(bundle_copy)


def test_consistent_rehash_changes_the_version(bundle_copy: Path, random_bundle_dir: Path) -> None:
    # Someone who swaps a file *and* fixes its hash gets a bundle with another version:
    # the version (what the audit log records) commits to every file's content.
    cat = json.loads((bundle_copy / "catalog.json").read_text())
    cat["edits"][0]["max_strength"] = 2.5
    data = (json.dumps(cat, indent=2) + "\n").encode()
    (bundle_copy / "catalog.json").write_bytes(data)
    m = _manifest(bundle_copy)
    m["files"]["catalog.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    _write_manifest(bundle_copy, m)
    b = load_bundle(bundle_copy)
    assert b.version != load_bundle(random_bundle_dir).version
    assert b.catalog[cat["edits"][0]["name"]].max_strength == 2.5


def test_unknown_format_version_is_refused(bundle_copy: Path) -> None:
    m = _manifest(bundle_copy)
    m["format_version"] = 2
    _write_manifest(bundle_copy, m)
    with pytest.raises(UnsupportedBundleVersion, match="format_version 2"):
        load_bundle(bundle_copy)


def test_malformed_manifests_are_refused(bundle_copy: Path) -> None:
    original = _manifest(bundle_copy)
    (bundle_copy / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_bundle(bundle_copy)

    for mutate, message in (
        (lambda m: m.pop("format_version"), "no format_version"),
        (lambda m: m["files"].pop("fuser.safetensors"), "required files"),
        (lambda m: m.__setitem__("configs", []), "'configs' must be an object"),
        (lambda m: m["files"].__setitem__("../evil", m["files"]["catalog.json"]), "not allowed"),
        (lambda m: m["files"]["catalog.json"].__setitem__("size", "12"), "byte count"),
        (lambda m: m["configs"]["generator"].__setitem__("bogus", 1), "configs.generator"),
    ):
        m = json.loads(json.dumps(original))
        mutate(m)
        _write_manifest(bundle_copy, m)
        with pytest.raises(ManifestError, match=message):
            load_bundle(bundle_copy)


def test_missing_and_unlisted_files_are_refused(bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / "notes.txt").write_text("hello")
    with pytest.raises(UnexpectedBundleFile, match="notes.txt"):
        load_bundle(bundle_copy)
    (bundle_copy / "notes.txt").unlink()
    (bundle_copy / "fuser.safetensors").unlink()
    with pytest.raises(BundleFileMissing, match="fuser.safetensors"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleNotFound):
        load_bundle(tmp_path / "nowhere")
    (bundle_copy / MANIFEST_NAME).unlink()
    with pytest.raises(BundleNotFound, match="manifest.json"):
        load_bundle(bundle_copy)


def test_content_that_does_not_fit_the_config_is_refused(bundle_copy: Path) -> None:
    # a hash-consistent bundle whose generator config claims another size
    m = _manifest(bundle_copy)
    m["configs"]["generator"]["size"] = 64
    m["configs"]["generator"]["channels"]["64"] = 16
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleContentError, match="generator.safetensors"):
        load_bundle(bundle_copy)


def test_weights_that_do_not_fit_their_config_are_refused(bundle_copy: Path) -> None:
    # hash-consistent, but the fuser file holds the encoder's weights
    m = _manifest(bundle_copy)
    shutil.copy(bundle_copy / "encoder.safetensors", bundle_copy / "fuser.safetensors")
    m["files"]["fuser.safetensors"] = m["files"]["encoder.safetensors"]
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleContentError, match="fuser.safetensors: state dict does not match"):
        load_bundle(bundle_copy)


def test_build_refuses_inconsistent_parts_and_leaves_nothing(
    random_bundle_dir: Path, tmp_path: Path
) -> None:
    b = load_bundle(random_bundle_dir)
    parts = dict(
        generator_ckpt={"g_ema": b.state_dicts["generator"], "latent_avg": b.latent_avg},
        encoder_state=b.state_dicts["encoder"],
        fuser_state=b.state_dicts["fuser"],
        encoder_cfg=b.encoder_config,
        fuser_cfg=b.fuser_config,
        directions=b.directions,
        catalog=b.catalog,
        provenance={"notes": "test"},
    )
    out = tmp_path / "out"
    bad_dirs = {
        k: v for k, v in b.directions.items() if k != b.catalog[b.catalog.names[0]].direction
    }
    with pytest.raises(BundleError, match="refers to direction"):
        build_bundle(out, **{**parts, "directions": bad_dirs})
    bad_enc = dict(b.state_dicts["encoder"])
    bad_enc.pop(next(iter(bad_enc)))
    with pytest.raises(BundleContentError, match="encoder.safetensors"):
        build_bundle(out, **{**parts, "encoder_state": bad_enc})
    assert list(tmp_path.iterdir()) == []  # no bundle, no temporary directory

    built = build_bundle(out, **parts)
    assert built.version == load_bundle(out).version
    for name in ("generator.safetensors", "encoder.safetensors", "fuser.safetensors"):
        assert (out / name).read_bytes() == (random_bundle_dir / name).read_bytes()
    with pytest.raises(BundleError, match="already exists"):
        build_bundle(out, **parts)
    again = build_bundle(out, **{**parts, "provenance": {"notes": "v2"}}, overwrite=True)
    assert again.version != built.version and again.provenance["notes"] == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- encoder architectures ------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[2] / "inversion" / "bundles" / "demo"


def test_manifests_without_encoder_arch_load_as_mambastyle(bundle_copy: Path) -> None:
    # the shipped demo bundle loads as MambaStyle, its version the hash of its manifest
    # (since issue 20 it is rebuilt with the field; the copy below is stripped of it)
    raw = (DEMO / MANIFEST_NAME).read_bytes()
    demo = load_bundle(DEMO)
    assert demo.encoder_arch == "mambastyle" and demo.version == hashlib.sha256(raw).hexdigest()
    assert demo.summary()["encoder_arch"] == "mambastyle"
    m = _manifest(bundle_copy)
    del m["encoder_arch"]
    _write_manifest(bundle_copy, m)
    assert load_bundle(bundle_copy).encoder_arch == "mambastyle"


def test_unknown_or_inconsistent_architectures_are_refused(bundle_copy: Path) -> None:
    original = _manifest(bundle_copy)
    for mutate, message in (
        (lambda m: m.__setitem__("encoder_arch", "e4e"), "unknown encoder architecture 'e4e'"),
        (lambda m: m.__setitem__("encoder_arch", 1), "unknown encoder architecture 1"),
        # a pSp manifest over MambaStyle files: the fuser config has no place in it
        (lambda m: m.__setitem__("encoder_arch", "psp"), "a psp encoder has no Fuser config"),
        (
            lambda m: m["configs"]["encoder"].__setitem__("typo", 1),
            r"configs.encoder is invalid: unknown EncoderConfig keys: \['typo'\]",
        ),
    ):
        m = json.loads(json.dumps(original))
        mutate(m)
        _write_manifest(bundle_copy, m)
        with pytest.raises(ManifestError, match=message):
            load_bundle(bundle_copy)


@pytest.fixture(scope="module")
def psp_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("psp") / "bundle"
    build_random_bundle(out, preset="tiny", seed=0, encoder_arch="psp", ganspace_samples=512)
    return out


def test_a_psp_bundle_builds_loads_and_inverts(psp_bundle_dir: Path) -> None:
    from inversion.baselines.psp import GradualStyleEncoder, PSPConfig
    from inversion.inverter import Inverter

    b = load_bundle(psp_bundle_dir)
    assert b.manifest["encoder_arch"] == b.encoder_arch == "psp"
    assert FUSER_FILE not in b.manifest["files"] and "fuser" not in b.manifest["configs"]
    assert sorted(p.name for p in psp_bundle_dir.iterdir()) == sorted(
        [MANIFEST_NAME, *required_files("psp")]
    )
    assert isinstance(b.encoder_config, PSPConfig) and b.fuser_config is None
    g, enc, fus = b.build_models("cpu")
    assert isinstance(enc, GradualStyleEncoder) and fus is None
    inverter = Inverter(b, device="cpu")
    inv = inverter.invert(torch.rand(2, 3, 48, 40) * 2 - 1)
    assert inv.wplus.shape == (2, b.n_latent, b.generator_config.style_dim) and inv.detail is None
    # no Fuser: zero-strength edits are the reconstruction, and rendering is W+ only
    assert torch.equal(inverter.edit(inv, {}), inv.reconstruction)
    with torch.inference_mode():
        assert torch.equal(inv.reconstruction, g.synthesis(inv.wplus))
    edited = inverter.edit(inv, {b.catalog.names[0]: 2.0})
    assert not torch.allclose(edited, inv.reconstruction)
    # a flipped byte is refused like in any bundle
    verify_bundle_files(psp_bundle_dir)


def test_psp_bundle_refuses_fuser_parts(psp_bundle_dir: Path, tmp_path: Path) -> None:
    b = load_bundle(psp_bundle_dir)
    parts = dict(
        generator_ckpt={"g_ema": b.state_dicts["generator"], "latent_avg": b.latent_avg},
        encoder_state=b.state_dicts["encoder"],
        fuser_state=None,
        encoder_cfg=b.encoder_config,
        fuser_cfg=None,
        directions=b.directions,
        catalog=b.catalog,
        provenance={"notes": "test"},
    )
    with pytest.raises(BundleError, match="a psp encoder has no Fuser"):
        build_bundle(
            tmp_path / "x", **{**parts, "fuser_cfg": {"resolution": 16}}, encoder_arch="psp"
        )
    with pytest.raises(BundleError, match="needs the Fuser"):
        build_bundle(tmp_path / "x", **parts)  # default architecture: MambaStyle
    with pytest.raises(ManifestError, match="configs.encoder is invalid"):
        build_bundle(
            tmp_path / "x", **{**parts, "encoder_cfg": {"input_size": "64"}}, encoder_arch="psp"
        )
    assert list(tmp_path.iterdir()) == []
    again = build_bundle(tmp_path / "x", **parts, encoder_arch="psp")
    assert (tmp_path / "x" / "encoder.safetensors").read_bytes() == (
        psp_bundle_dir / "encoder.safetensors"
    ).read_bytes()
    assert again.encoder_arch == "psp"


def test_the_trained_demo_psp_bundles_with_the_demo_generator(tmp_path: Path) -> None:
    """The recipe's trained pSp baseline (demo_eval) + the demo bundle's generator,
    directions and catalog make a working pSp bundle that reconstructs real images."""
    from inversion.inverter import Inverter
    from inversion.training.train_encoder import load_encoder_export

    demo = load_bundle(DEMO)
    arch, enc, fus, ecfg, fcfg = load_encoder_export(DEMO.parent / "demo_eval" / "psp_encoder.pt")
    assert arch == "psp" and fus is None and fcfg is None
    b = build_bundle(
        tmp_path / "psp",
        {"g_ema": demo.state_dicts["generator"], "latent_avg": demo.latent_avg},
        enc.state_dict(),
        None,
        ecfg,
        None,
        demo.directions,
        demo.catalog,
        {"notes": "demo pSp baseline"},
        encoder_arch="psp",
    )
    loaded = load_bundle(tmp_path / "psp")
    assert loaded.version == b.version and loaded.encoder_arch == "psp"
    # the generator renders product-like images; inverting them with the trained pSp
    # must land much closer than the mean latent does
    g = loaded.build_generator()
    with torch.no_grad():
        w = g.get_latent(torch.randn(8, g.style_dim, generator=torch.Generator().manual_seed(0)))
        images = g.synthesis(w.unsqueeze(1).repeat(1, g.n_latent, 1))
        mean = g.synthesis(loaded.latent_avg.expand(1, g.n_latent, -1))
    rec = Inverter(loaded, device="cpu").invert(images).reconstruction
    err = float(((rec - images) ** 2).mean())
    assert err < 0.5 * float(((mean - images) ** 2).mean()), err
