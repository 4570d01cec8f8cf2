"""The architecture contract (pyproject.toml [tool.importlinter]) holds on the tree, and breaks on a forbidden import.

The forbidden imports are written into a copy of the package (never into the source tree), which ``lint-imports``
analyses through ``PYTHONPATH``: the same command CI runs, the same contracts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
PACKAGE = REPO_ROOT / "src" / "faceleads"
LINT = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _lint(package_parent: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    args = [str(LINT), str(PYPROJECT), "--no-cache", "--no-logo"]
    for contract in contracts:
        args += ["--contract", contract]
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(args, cwd=package_parent, env=env, capture_output=True, text=True, timeout=600)


def test_the_contract_names_the_rules() -> None:
    contracts = _contracts()
    layers = contracts["layers"]["layers"]
    assert layers[0] == "faceleads.cli" and layers[1] == "faceleads.web"
    assert layers[-2:] == ["faceleads.core", "faceleads.storage | faceleads.vision"]
    forbidden = contracts["web-cli-through-services"]
    assert forbidden["source_modules"] == ["faceleads.web", "faceleads.cli"]
    for internal in ("faceleads.storage", "faceleads.gallery.search", "faceleads.gallery.models",
                     "faceleads.casework.models"):  # fmt: skip
        assert internal in forbidden["forbidden_modules"]
    assert contracts["one-search-path"]["allowed_importers"] == ["faceleads.gallery", "faceleads.casework"]


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert result.stdout.count("KEPT") == len(_contracts())


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        # The web app may not open the blob store or read biometric tables itself.
        ("web/leak.py", "from faceleads.storage import blobs\n", "web-cli-through-services"),
        ("web/leak.py", "from faceleads.gallery.models import Image\n", "web-cli-through-services"),
        # The CLI may not search the gallery around casework.
        ("cli/leak.py", "from faceleads.gallery.search import search_embedding\n", "web-cli-through-services"),
        ("web/leak.py", "from faceleads.vision.engine import FaceEngine\n", "web-no-face-inference"),
        # The core never depends on a domain; a domain never on the web; the gallery never on casework.
        ("core/leak.py", "from faceleads.casework import models\n", "layers"),
        ("gallery/leak.py", "import faceleads.casework.searching\n", "layers"),
        ("security/leak.py", "from faceleads.web import deps\n", "layers"),
        # Governance may read the gallery, but not run its search.
        ("governance/leak.py", "from faceleads.gallery.search import rank_subjects\n", "one-search-path"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(tmp_path: Path, module: str, source: str, contract: str) -> None:
    copy = tmp_path / "faceleads"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / module).write_text(f'"""A forbidden import (test)."""\n\n{source}')
    result = _lint(tmp_path, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    leaked = "faceleads." + module.removesuffix(".py").replace("/", ".")
    assert leaked in result.stdout, result.stdout
