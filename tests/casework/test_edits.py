"""The non-destructive edit pipeline: each operation on real photos, validation, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceleads.casework import edits as E
from faceleads.errors import ValidationError
from faceleads.vision.imaging import load_image
from tests.conftest import LFW_DIR

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    path = sorted((LFW_DIR).rglob("*.jpg"))[0]
    return load_image(path).pixels


def test_crop_rotate_flip_geometry(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    out = E.apply_edits(photo, [{"op": "crop", "x": 10, "y": 20, "width": 100, "height": 80}])
    assert out.shape == (80, 100, 3)
    assert np.array_equal(out, photo[20:100, 10:110])
    r90 = E.apply_edits(photo, [{"op": "rotate", "degrees": 90}])
    assert r90.shape == (w, h, 3)
    assert np.array_equal(E.apply_edits(r90, [{"op": "rotate", "degrees": -90}]), photo)
    r15 = E.apply_edits(photo, [{"op": "rotate", "degrees": 15}])
    assert r15.shape[0] > h and r15.shape[1] > w  # canvas enlarged, nothing cut off
    flipped = E.apply_edits(photo, [{"op": "flip", "axis": "horizontal"}])
    assert np.array_equal(flipped[:, 0], photo[:, -1])
    assert np.array_equal(E.apply_edits(photo, [{"op": "flip", "axis": "vertical"}])[0], photo[-1])


def test_tone_operations_move_luminance_as_documented(photo: np.ndarray) -> None:
    mean = float(photo.mean())
    assert E.apply_edits(photo, [{"op": "brightness", "amount": 40}]).mean() > mean + 20
    assert E.apply_edits(photo, [{"op": "brightness", "amount": -40}]).mean() < mean - 20
    assert E.apply_edits(photo, [{"op": "contrast", "factor": 1.8}]).std() > photo.std() * 1.3
    assert E.apply_edits(photo, [{"op": "gamma", "gamma": 2.0}]).mean() > mean
    assert E.apply_edits(photo, [{"op": "gamma", "gamma": 0.5}]).mean() < mean
    dark = E.apply_edits(photo, [{"op": "contrast", "factor": 0.3}])
    for method in ("global", "clahe"):
        eq = E.apply_edits(dark, [{"op": "equalize", "method": method}])
        assert eq.std() > dark.std() * 1.5, method


def test_denoise_and_sharpen(photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(photo.astype(np.int16) + rng.normal(0, 20, photo.shape), 0, 255).astype(np.uint8)
    clean = E.apply_edits(noisy, [{"op": "denoise", "strength": 12}])
    err_noisy = np.abs(noisy.astype(float) - photo).mean()
    err_clean = np.abs(clean.astype(float) - photo).mean()
    assert err_clean < err_noisy * 0.8

    def laplacian_var(img: np.ndarray) -> float:
        import cv2

        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    sharp = E.apply_edits(photo, [{"op": "sharpen", "amount": 1.5, "radius": 1.5}])
    assert laplacian_var(sharp) > laplacian_var(photo) * 1.5


def test_original_never_modified_and_list_is_ordered(photo: np.ndarray) -> None:
    before = photo.copy()
    steps = [{"op": "crop", "x": 0, "y": 0, "width": 120, "height": 120}, {"op": "rotate", "degrees": 90},
             {"op": "gamma", "gamma": 1.3}]
    a = E.apply_edits(photo, steps)
    assert np.array_equal(photo, before)
    b = E.apply_edits(photo, list(reversed(steps))[1:] + steps[-1:])  # a different order gives other pixels
    assert not np.array_equal(a, b) or a.shape != b.shape
    assert E.apply_edits(photo, []) is not photo  # even no edits hands out a copy
    assert np.array_equal(E.apply_edits(photo, steps), a)  # deterministic


def test_serialisation_round_trip_and_describe() -> None:
    steps = E.parse_edits('[{"op": "equalize"}, {"op": "sharpen", "amount": 1}, {"op": "flip", "axis": "vertical"}]')
    data = E.edits_to_json(steps)
    assert data[0] == {"op": "equalize", "method": "clahe", "clip_limit": 2.0}  # defaults made explicit
    assert E.parse_edits(json.loads(json.dumps(data))) == steps
    assert E.describe(steps).startswith("equalize(method=clahe")
    assert E.describe([]) == "none (original)"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"op": "blur"}], "unknown operation 'blur'"),
        ([{"op": "gamma"}], "parameter 'gamma' is required"),
        ([{"op": "gamma", "gamma": 9}], "gamma must be between"),
        ([{"op": "brightness", "amount": 1.5}], "whole number"),
        ([{"op": "flip", "axis": "diagonal"}], "axis must be one of"),
        ([{"op": "crop", "x": 0, "y": 0, "width": 4, "height": 40}], "width must be between"),
        ([{"op": "sharpen", "amount": 1, "strength": 3}], "unknown parameter(s) strength"),
        ([{"op": "contrast", "factor": True}], "must be a number"),
        ("not json", "not valid JSON"),
        ([{"op": "gamma", "gamma": 1.1}] * 40, "at most 32"),
    ],
)
def test_bad_edit_lists_are_refused_with_the_step_named(steps: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        E.parse_edits(steps)  # type: ignore[arg-type]


def test_crop_outside_image_is_refused(photo: np.ndarray) -> None:
    with pytest.raises(ValidationError, match=r"edit 2 \(crop\).*leaves the"):
        E.apply_edits(photo, [{"op": "gamma", "gamma": 1.2}, {"op": "crop", "x": 200, "y": 0, "width": 100,
                                                              "height": 50}])
