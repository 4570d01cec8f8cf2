"""Threshold calibration to a target false match rate, and writing the result to a settings file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceleads.errors import ValidationError
from faceleads.evaluation import metrics
from faceleads.evaluation.verify import PairScores

SETTING_NAME = "FACELEADS_SIMILARITY_THRESHOLD"


def impostor_scores(ps: PairScores) -> npt.NDArray[np.float64]:
    """Impostor scores of the comparisons that actually happened.

    Pairs with a failure to enrol are left out: no operational comparison produces them, and their
    placeholder score would only make the observed FMR look lower.
    """
    return ps.scores[~ps.same & ~ps.failed]


def calibrate(ps: PairScores, target_fmr: float, confidence: float = 0.95) -> metrics.Calibration:
    """Calibrate the 1:1 threshold to ``target_fmr`` on the impostor pairs of ``ps``."""
    imp = impostor_scores(ps)
    if imp.size == 0:
        raise ValidationError("no impostor comparisons to calibrate on (all pairs are genuine or failed)")
    return metrics.calibrate_threshold(imp, target_fmr, confidence)


def write_threshold(env_file: Path, threshold: float) -> None:
    """Set ``FACELEADS_SIMILARITY_THRESHOLD`` in an env file, keeping every other line as it is."""
    line = f"{SETTING_NAME}={threshold:.6f}"
    if not -1.0 <= threshold <= 1.0:
        raise ValidationError(f"threshold {threshold} is outside [-1, 1] and cannot be a setting")
    lines = env_file.read_text(encoding="utf-8").splitlines() if env_file.exists() else []
    pattern = re.compile(rf"^\s*(export\s+)?{SETTING_NAME}\s*=")
    replaced = False
    for i, existing in enumerate(lines):
        if pattern.match(existing):
            lines[i] = line
            replaced = True
    if not replaced:
        lines.append(line)
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
