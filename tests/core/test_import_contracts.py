"""The layers' import contracts (pyproject.toml `[tool.importlinter]`) hold, and can fail.

`lint-imports` builds the import graph of the real code and checks every contract.
The second test runs the same contracts on a small throwaway tree whose imports go
the wrong way, so a contract that could never fail (a typo in a module name, a
contract that checks nothing) does not pass silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
LAYER_CONTRACTS = ("audit-knows-no-domain", "inversion-is-pure-pytorch")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_code_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit knows no domain" in result.stdout and " 0 broken" in result.stdout, result.stdout


def write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def project_contracts(ids: tuple[str, ...]) -> str:
    """The named contracts from pyproject.toml, as a standalone TOML config."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]
    contracts = [c for c in config["contracts"] if c["id"] in ids]
    assert [c["id"] for c in contracts] == list(ids)
    lines = ["[tool.importlinter]"] + [
        f"{k} = {json.dumps(v)}" for k, v in config.items() if k != "contracts"
    ]
    for contract in contracts:
        lines += ["", "[[tool.importlinter.contracts]]"] + [
            f"{k} = {json.dumps(v)}" for k, v in contract.items()
        ]
    return "\n".join(lines) + "\n"


def test_the_contracts_fail_when_an_arrow_is_reversed(tmp_path):
    """The project's own contracts, on a tree where audit imports jobs and inversion Django."""
    write(tmp_path / "pyproject.toml", project_contracts(LAYER_CONTRACTS))
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]
    named = {
        m for c in config["contracts"] if c["id"] in LAYER_CONTRACTS for m in c["forbidden_modules"]
    }
    for module in sorted(m for m in named if m.startswith("editplatform.")) + ["editplatform.core"]:
        write(tmp_path.joinpath(*module.split(".")) / "__init__.py")
    write(tmp_path / "editplatform" / "__init__.py")
    write(tmp_path / "editplatform" / "jobs" / "models.py", "class EditJob:\n    pass\n")
    write(tmp_path / "audit" / "__init__.py")
    write(
        tmp_path / "audit" / "views.py", "from editplatform.jobs.models import EditJob  # upward\n"
    )
    write(tmp_path / "inversion" / "__init__.py")
    write(
        tmp_path / "inversion" / "bundle.py", "import django  # a pure-PyTorch package must not\n"
    )
    result = lint_imports(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "audit knows no domain: it imports no app above it BROKEN" in out
    assert "inversion is pure PyTorch: no Django, no platform, no audit BROKEN" in out
    assert "audit.views -> editplatform.jobs.models" in out
    assert "inversion.bundle -> django" in out
