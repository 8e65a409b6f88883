"""``python -m inversion``: the subcommands, run in-process through ``main(argv)``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.bundle import load_bundle
from inversion.cli import COMMANDS, Command, main
from inversion.errors import LatentFormatError
from inversion.inverter import Inversion
from inversion.latent import LATENT_FORMAT, read_latent, write_latent
from inversion.modules.stylegan2 import Generator, GeneratorConfig

REPO = Path(__file__).resolve().parents[2]


def _photo(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_help_is_light_and_lists_commands() -> None:
    code = (
        "import sys; from inversion.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    rc = e.code\n"
        "print('TORCH', 'torch' in sys.modules, rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert "TORCH False 0" in out.stdout
    for name in (
        "invert",
        "edit",
        "directions",
        "bundle",
        "bench",
        "train",
        "evaluate",
        "gpucheck",
    ):
        assert name in out.stdout


def test_package_import_is_light_and_exports_resolve() -> None:
    code = (
        "import sys, inversion\n"
        "light = 'torch' not in sys.modules\n"
        "names = [getattr(inversion, n) for n in inversion.__all__]\n"
        "print('LIGHT', light, inversion.Inverter.__name__, inversion.UnknownEdit.__name__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert "LIGHT True Inverter UnknownEdit" in out.stdout, out.stderr


def test_python_dash_m_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "inversion", "bundle", "verify", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 1 and "has no manifest.json" in out.stderr


def test_bundle_random_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    assert main(["bundle", "random", "--out", str(out), "--seed", "3"]) == 0
    assert "untrained" in capsys.readouterr().out
    assert main(["bundle", "verify", str(out)]) == 0
    assert capsys.readouterr().out.strip() == load_bundle(out).version
    assert main(["bundle", "verify", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["provenance"]["seeds"]["weights"] == 3
    # a flipped byte: one-line error naming the file, exit status 1
    path = out / "generator.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["bundle", "verify", str(out)]) == 1
    assert "generator.safetensors" in capsys.readouterr().err


def test_invert_and_edit(
    random_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _photo(tmp_path / "a.png", 1), _photo(tmp_path / "b.jpg", 2, (30, 60))
    out = tmp_path / "out"
    rc = main(
        [
            "invert",
            "--bundle",
            str(random_bundle_dir),
            str(a),
            str(b),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--batch-size",
            "1",
        ]
    )
    assert rc == 0
    bundle = load_bundle(random_bundle_dir)
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "a.safetensors",
        "b.png",
        "b.safetensors",
    ]
    # the one latent format: safetensors with metadata, no pickle
    tensors, metadata = read_latent((out / "a.safetensors").read_bytes())
    assert tensors["wplus"].shape == (1, bundle.n_latent, bundle.generator_config.style_dim)
    assert metadata["format"] == LATENT_FORMAT and metadata["model_version"] == bundle.version
    assert metadata["wplus_shape"] == f"1,{bundle.n_latent},{bundle.generator_config.style_dim}"
    assert tuple(tensors["detail"].shape) == tuple(
        int(n) for n in metadata["detail_shape"].split(",")
    )
    assert Image.open(out / "a.png").size == (bundle.generator_config.size,) * 2

    name = bundle.catalog.names[0]
    edited = tmp_path / "edited.png"
    rc = main(
        [
            "edit",
            "--bundle",
            str(random_bundle_dir),
            str(a),
            "--edit",
            f"{name}=1.5",
            "--out",
            str(edited),
            "--device",
            "cpu",
            "--size",
            "64",
        ]
    )
    assert rc == 0 and Image.open(edited).size == (64, 64)
    # editing from a saved latent with no edits gives back the reconstruction
    same = tmp_path / "same.png"
    assert (
        main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(out / "a.safetensors"),
                "--out",
                str(same),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(same)), np.asarray(Image.open(out / "a.png")))
    # ... and with an edit, the same image as editing the photo itself
    from_latent = tmp_path / "from_latent.png"
    assert (
        main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(out / "a.safetensors"),
                "--edit",
                f"{name}=1.5",
                "--out",
                str(from_latent),
                "--device",
                "cpu",
                "--size",
                "64",
            ]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(from_latent)), np.asarray(Image.open(edited)))
    capsys.readouterr()

    assert (
        main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(a),
                "--edit",
                "beard=1",
                "--out",
                str(edited),
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    assert "unknown edit 'beard'" in capsys.readouterr().err
    assert (
        main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(a),
                "--edit",
                f"{name}=99",
                "--out",
                str(edited),
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    assert "out of range" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert (
        main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(tmp_path / "bad.png"),
                "--out",
                str(edited),
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    assert "not a recognised image" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(a),
                "--edit",
                "smile",
                "--out",
                str(edited),
            ]
        )


def test_edit_refuses_old_and_foreign_latents(
    random_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = load_bundle(random_bundle_dir)
    wplus = torch.zeros(1, bundle.n_latent, bundle.generator_config.style_dim)
    edited = tmp_path / "edited.png"

    def edit(latent: Path, *extra: str) -> int:
        return main(
            [
                "edit",
                "--bundle",
                str(random_bundle_dir),
                str(latent),
                "--out",
                str(edited),
                "--device",
                "cpu",
                *extra,
            ]
        )

    # the first CLI's torch.save latents: refused (never unpickled), the format named
    old = tmp_path / "old.pt"
    torch.save({"wplus": wplus, "detail": None, "bundle_version": bundle.version}, old)
    assert edit(old) == 1
    err = capsys.readouterr().err
    assert "torch.save (pickle) file" in err and LATENT_FORMAT in err and not edited.exists()
    with pytest.raises(LatentFormatError, match="torch.save"):
        Inversion.load(old)
    # a latent of another model version: refused unless asked for
    other = tmp_path / "other.safetensors"
    other.write_bytes(write_latent(wplus, None, "f" * 64))
    assert edit(other) == 1
    assert "--allow-other-model" in capsys.readouterr().err and not edited.exists()
    assert edit(other, "--allow-other-model") == 0 and edited.exists()
    # shapes that do not fit this model: a typed error naming them
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(write_latent(torch.zeros(1, 3, 7), None, bundle.version))
    assert edit(wrong) == 1
    assert "latent W+ codes are 3x7" in capsys.readouterr().err
    # a safetensors file that is not a latent
    from safetensors.torch import save

    (tmp_path / "weights.safetensors").write_bytes(save({"w": torch.zeros(2)}))
    assert edit(tmp_path / "weights.safetensors") == 1
    assert f"is not '{LATENT_FORMAT}'" in capsys.readouterr().err


def test_directions_ganspace(random_bundle_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dirs.pt"
    assert (
        main(
            [
                "directions",
                "ganspace",
                "--bundle",
                str(random_bundle_dir),
                "--components",
                "3",
                "--samples",
                "500",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    dirs = torch.load(out, weights_only=True)
    assert sorted(dirs) == ["ganspace_pc0", "ganspace_pc1", "ganspace_pc2"]
    assert dirs["ganspace_pc0"].shape == (64,)

    # from a rosinality checkpoint file
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.tiny())
    ckpt = tmp_path / "g.pt"
    torch.save({"g_ema": g.state_dict(), "latent_avg": torch.zeros(64)}, ckpt)
    out2 = tmp_path / "dirs.safetensors"
    assert (
        main(
            [
                "directions",
                "ganspace",
                "--generator",
                str(ckpt),
                "--components",
                "2",
                "--samples",
                "300",
                "--unit",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    from safetensors.torch import load_file

    unit = load_file(out2)
    torch.testing.assert_close(unit["ganspace_pc1"].norm(), torch.tensor(1.0))


def test_bundle_build_from_parts(
    random_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = load_bundle(random_bundle_dir)
    ckpt = tmp_path / "g.pt"
    torch.save(
        {"g_ema": src.state_dicts["generator"], "latent_avg": src.latent_avg, "args": {"size": 32}},
        ckpt,
    )
    (tmp_path / "enc.json").write_text(json.dumps(src.manifest["configs"]["encoder"]))
    (tmp_path / "fus.json").write_text(json.dumps(src.manifest["configs"]["fuser"]))
    (tmp_path / "prov.json").write_text(json.dumps({"data": "none", "seeds": {"x": 1}}))
    out = tmp_path / "built"
    argv = [
        "bundle",
        "build",
        "--generator",
        str(ckpt),
        "--encoder",
        str(random_bundle_dir / "encoder.safetensors"),
        "--fuser",
        str(random_bundle_dir / "fuser.safetensors"),
        "--encoder-config",
        str(tmp_path / "enc.json"),
        "--fuser-config",
        str(tmp_path / "fus.json"),
        "--directions",
        str(random_bundle_dir / "directions.safetensors"),
        "--catalog",
        str(random_bundle_dir / "catalog.json"),
        "--provenance",
        str(tmp_path / "prov.json"),
        "--note",
        "rebuilt in a test",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    built = load_bundle(out)
    assert capsys.readouterr().out.split()[0] == built.version
    for name in src.manifest["files"]:  # same bytes in, same bytes out
        assert built.manifest["files"][name] == src.manifest["files"][name]
    assert built.provenance["data"] == "none" and "rebuilt in a test" in built.provenance["notes"]
    assert any("bundle" in c for c in built.provenance["commands"])
    # an existing bundle is not replaced without --overwrite
    assert main(argv) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_missing_command_module_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(COMMANDS, "later", Command("later", "not yet", "inversion._not_yet"))
    assert main(["later", "--x"]) == 2
    assert "module inversion._not_yet is not installed" in capsys.readouterr().err


def test_bundle_random_and_build_for_psp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "random"
    assert main(["bundle", "random", "--out", str(src), "--arch", "psp"]) == 0
    b = load_bundle(src)
    assert b.encoder_arch == "psp" and "--arch psp" in b.provenance["commands"][0]
    ckpt = tmp_path / "g.pt"
    torch.save({"g_ema": b.state_dicts["generator"], "latent_avg": b.latent_avg}, ckpt)
    (tmp_path / "enc.json").write_text(json.dumps(b.manifest["configs"]["encoder"]))
    argv = [
        "bundle",
        "build",
        "--arch",
        "psp",
        "--generator",
        str(ckpt),
        "--encoder",
        str(src / "encoder.safetensors"),
        "--encoder-config",
        str(tmp_path / "enc.json"),
        "--directions",
        str(src / "directions.safetensors"),
        "--catalog",
        str(src / "catalog.json"),
        "--out",
        str(tmp_path / "built"),
    ]
    capsys.readouterr()
    assert main(argv) == 0
    built = load_bundle(tmp_path / "built")
    assert built.encoder_arch == "psp" and capsys.readouterr().out.split()[0] == built.version
    # a MambaStyle build without the Fuser's parts is a one-line error
    assert main([*argv[:2], *argv[4:-1], str(tmp_path / "other")]) == 1
    assert "needs the Fuser's weights and config" in capsys.readouterr().err


def test_bench_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench --quick``: both registered encoders in fresh processes, JSON out."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pSp GradualStyleEncoder" in printed and "speed-up" in printed
    result = json.loads(out.read_text())
    assert set(result["models"]) == {"mambastyle", "psp"}
    for m in result["models"].values():
        assert m["params"] > 0 and m["gmacs"] > 0 and m["latency_s"] > 0
    assert result["ratios_mambastyle_over_psp"]["params"] < 1
    assert result["scan"]["max_rel_err"] < 1e-4
    assert result["scan_backend"].startswith("cpu_fused")  # auto, inference, numba present
    assert result["scan"]["fused_max_rel_err"] < 1e-4 and result["scan"]["fused_speedup"] > 0
    by_backend = result["mambastyle_scan_backends"]
    assert by_backend["torch"]["scan_backend"].startswith("torch (forced")
    assert by_backend["auto"]["scan_backend"].startswith("cpu_fused")


def test_train_steps_evaluate_and_bundle_through_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ``train`` step and ``evaluate``, in-process, a few steps each on tiny models:
    generator -> classifier -> directions -> encoder and pSp -> recipe's package stage
    (the bundle) -> evaluate -> verify and edit with the result."""
    monkeypatch.setattr(sys, "argv", ["pytest", "unrelated", "--arguments"])  # must not matter
    torch.set_num_threads(min(2, torch.get_num_threads()))
    r, bundle, ev = tmp_path / "run", tmp_path / "bundle", tmp_path / "eval"

    def train(*argv: str) -> None:
        assert main(["train", *argv]) == 0, argv

    train(
        "generator",
        "--out",
        str(r / "generator"),
        "--preset",
        "tiny",
        "--steps",
        "1",
        "--batch",
        "4",
        "--data-limit",
        "16",
        "--ckpt-every",
        "0",
        "--sample-every",
        "0",
        "--device",
        "cpu",
        "--no-amp",
    )
    assert (r / "generator" / "generator.pt").is_file()
    train(
        "classifier",
        "--out",
        str(r / "classifier"),
        "--steps",
        "2",
        "--batch",
        "8",
        "--width",
        "8",
        "--data-limit",
        "64",
    )
    train(
        "directions",
        "--generator",
        str(r / "generator" / "generator.pt"),
        "--classifier",
        str(r / "classifier" / "classifier.pt"),
        "--out",
        str(r / "directions"),
        "--samples",
        "64",
        "--calib-samples",
        "16",
        "--components",
        "2",
        "--max-strength",
        "1",
    )
    assert (r / "directions" / "catalog.json").is_file()
    for arch, out in (("mambastyle", "encoder"), ("psp", "psp")):
        train(
            "encoder",
            "--arch",
            arch,
            "--generator",
            str(r / "generator" / "generator.pt"),
            "--directions",
            str(r / "directions" / "directions.safetensors"),
            "--out",
            str(r / out),
            "--steps",
            "1",
            "--batch",
            "4",
            "--gen-batch",
            "2",
            "--data-limit",
            "16",
            "--device",
            "cpu",
        )
        assert json.loads((r / out / "summary.json").read_text())["arch"] == arch
    train(
        "recipe",
        "--run",
        str(r),
        "--bundle",
        str(bundle),
        "--eval-dir",
        str(ev),
        "--report",
        str(r / "quality.md"),
        "--grid",
        str(r / "grid.png"),
        "--calib-images",
        "16",
        "--only",
        "package",
    )
    b = load_bundle(bundle)
    assert b.encoder_arch == "mambastyle" and (ev / "psp_encoder.pt").is_file()
    assert b.provenance["catalog_calibration"]["data"].startswith("fashion-mnist:val[0:16]")

    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--bundle",
                str(bundle),
                "--classifier",
                str(ev / "classifier.pt"),
                "--psp",
                str(ev / "psp_encoder.pt"),
                "--out",
                str(r / "quality.md"),
                "--grid",
                str(r / "grid.png"),
                "--json",
                str(r / "evaluation.json"),
                "--n",
                "8",
                "--opt-n",
                "2",
                "--opt-steps",
                "2",
                "--batch",
                "8",
            ]
        )
        == 0
    )
    result = json.loads((r / "evaluation.json").read_text())
    assert {"ours", "psp"} <= set(result["methods"]) and (r / "grid.png").is_file()
    assert result["command"].startswith("python -m inversion evaluate --bundle ")
    assert "unrelated" not in result["command"]  # from main's argv, not sys.argv
    assert "Quality report" in (r / "quality.md").read_text()

    capsys.readouterr()
    assert main(["bundle", "verify", str(bundle)]) == 0
    assert capsys.readouterr().out.strip() == b.version
    photo = _photo(tmp_path / "p.png", 3)
    assert (
        main(
            [
                "invert",
                "--bundle",
                str(bundle),
                str(photo),
                "--out",
                str(tmp_path / "inv"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "edit",
                "--bundle",
                str(bundle),
                str(tmp_path / "inv" / "p.safetensors"),
                "--edit",
                f"{b.catalog.names[0]}=1",
                "--out",
                str(tmp_path / "e.png"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "e.png").size == (b.generator_config.size,) * 2


def test_train_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from inversion.training.cli import main as training_main

    with pytest.raises(SystemExit) as exc:
        main(["train", "nonsense"])
    assert exc.value.code == 2 and "invalid choice: 'nonsense'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "classifier", "--bogus"])
    assert exc.value.code == 2
    assert "python -m inversion train classifier" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # python -m inversion.training: same parsers
        training_main(["encoder", "--help"])
    assert exc.value.code == 0 and "--arch {mambastyle,psp}" in capsys.readouterr().out
