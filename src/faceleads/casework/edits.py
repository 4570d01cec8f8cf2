"""Non-destructive probe enhancement: an ordered, validated, serialisable edit list over uint8 RGB images.

The original evidence bytes are never changed. An edited probe is *derived* on demand by applying the edit list to
the decoded original, so the same list always gives the same pixels, and every product (search, report) can state
exactly which edits were used (:func:`describe`).

Each operation is a small pure function ``(pixels, **params) -> pixels`` over ``uint8 (H, W, 3)`` RGB arrays.
Parameters are checked when the list is parsed (:func:`parse_edits`), so a bad list is refused before any pixel is
touched, with an error naming the step and the parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceleads.errors import ValidationError
from faceleads.vision.types import ImageArray

MAX_EDITS = 32
MIN_CROP_PX = 16


@dataclass(frozen=True)
class Edit:
    """One step of an edit list: an operation name and its (validated) parameters."""

    op: str
    params: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The serialisable form ``{"op": ..., **params}``."""
        return {"op": self.op, **dict(self.params)}

    def describe(self) -> str:
        """A short human-readable form, e.g. ``gamma(gamma=1.4)``."""
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.op}({args})"


# --------------------------------------------------------------------------------------------- operations


def _check(image: ImageArray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValidationError(f"edits need a uint8 RGB image (H, W, 3), got {getattr(image, 'shape', None)}")


def _lut(table: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(table), 0, 255).astype(np.uint8)


def crop(image: ImageArray, *, x: int, y: int, width: int, height: int) -> ImageArray:
    """The rectangle (x, y, width, height) of ``image``; refused if it leaves the image."""
    h, w = image.shape[:2]
    if x + width > w or y + height > h:
        raise ValidationError(f"crop {width}x{height}+{x}+{y} leaves the {w}x{h} image")
    return np.ascontiguousarray(image[y : y + height, x : x + width])


def rotate(image: ImageArray, *, degrees: float) -> ImageArray:
    """Rotate counter-clockwise by ``degrees``; multiples of 90 are exact, others enlarge the canvas (black)."""
    turns = degrees / 90.0
    if abs(turns - round(turns)) < 1e-9:
        return np.ascontiguousarray(np.rot90(image, round(turns) % 4))
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    matrix[0, 2] += new_w / 2.0 - w / 2.0
    matrix[1, 2] += new_h / 2.0 - h / 2.0
    out = cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_CUBIC, borderValue=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)


def flip(image: ImageArray, *, axis: str) -> ImageArray:
    """Mirror left-right (``horizontal``) or top-bottom (``vertical``)."""
    return np.ascontiguousarray(image[:, ::-1] if axis == "horizontal" else image[::-1, :])


def brightness(image: ImageArray, *, amount: int) -> ImageArray:
    """Add ``amount`` (-255..255) to every channel, clipped."""
    return _lut(np.arange(256, dtype=np.float64) + amount)[image]


def contrast(image: ImageArray, *, factor: float) -> ImageArray:
    """Stretch (factor > 1) or flatten (< 1) around mid-grey."""
    return _lut((np.arange(256, dtype=np.float64) - 127.5) * factor + 127.5)[image]


def gamma(image: ImageArray, *, gamma: float) -> ImageArray:
    """Gamma correction: ``gamma`` > 1 brightens shadows, < 1 darkens them (out = in ** (1/gamma))."""
    return _lut(255.0 * (np.arange(256, dtype=np.float64) / 255.0) ** (1.0 / gamma))[image]


def equalize(image: ImageArray, *, method: str, clip_limit: float = 2.0) -> ImageArray:
    """Histogram equalisation of luminance only (colours kept): ``global`` or ``clahe`` (local, clip-limited)."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    luma = ycrcb[:, :, 0]
    if method == "clahe":
        ycrcb[:, :, 0] = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(8, 8)).apply(luma)
    else:
        ycrcb[:, :, 0] = cv2.equalizeHist(luma)
    return np.asarray(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), dtype=np.uint8)


def denoise(image: ImageArray, *, strength: float) -> ImageArray:
    """Non-local-means denoising (``strength`` 1..30: filter strength for luminance and colour)."""
    out = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(image), None, strength, strength, 7, 21)
    return np.asarray(out, dtype=np.uint8)


def sharpen(image: ImageArray, *, amount: float, radius: float = 1.0) -> ImageArray:
    """Unsharp mask: ``image + amount * (image - gaussian_blur(image, radius))``."""
    blurred = cv2.GaussianBlur(image, (0, 0), radius)
    out = cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)
    return np.asarray(out, dtype=np.uint8)


# --------------------------------------------------------------------------------------------- validation

Validator = Callable[[Mapping[str, Any], str], dict[str, Any]]


def _number(params: Mapping[str, Any], name: str, where: str, lo: float, hi: float, *, integer: bool = False,
            default: float | None = None) -> float:
    if name not in params:
        if default is not None:
            return default
        raise ValidationError(f"{where}: parameter {name!r} is required")
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValidationError(f"{where}: {name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ValidationError(f"{where}: {name} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ValidationError(f"{where}: {name} must be between {lo:g} and {hi:g}, got {value!r}")
    return int(value) if integer else float(value)


def _choice(params: Mapping[str, Any], name: str, where: str, choices: Sequence[str], default: str | None = None
            ) -> str:
    value = params.get(name, default)
    if value not in choices:
        raise ValidationError(f"{where}: {name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _v_crop(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "x": _number(p, "x", where, 0, 1e6, integer=True),
        "y": _number(p, "y", where, 0, 1e6, integer=True),
        "width": _number(p, "width", where, MIN_CROP_PX, 1e6, integer=True),
        "height": _number(p, "height", where, MIN_CROP_PX, 1e6, integer=True),
    }


def _v_rotate(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"degrees": _number(p, "degrees", where, -360, 360)}


def _v_flip(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"axis": _choice(p, "axis", where, ("horizontal", "vertical"))}


def _v_brightness(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"amount": _number(p, "amount", where, -255, 255, integer=True)}


def _v_contrast(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"factor": _number(p, "factor", where, 0.1, 5.0)}


def _v_gamma(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"gamma": _number(p, "gamma", where, 0.1, 5.0)}


def _v_equalize(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    method = _choice(p, "method", where, ("global", "clahe"), default="clahe")
    out: dict[str, Any] = {"method": method}
    if method == "clahe":
        out["clip_limit"] = _number(p, "clip_limit", where, 0.5, 10.0, default=2.0)
    return out


def _v_denoise(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"strength": _number(p, "strength", where, 1.0, 30.0)}


def _v_sharpen(p: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "amount": _number(p, "amount", where, 0.0, 5.0),
        "radius": _number(p, "radius", where, 0.3, 10.0, default=1.0),
    }


OPERATIONS: dict[str, tuple[Callable[..., ImageArray], Validator]] = {
    "crop": (crop, _v_crop),
    "rotate": (rotate, _v_rotate),
    "flip": (flip, _v_flip),
    "brightness": (brightness, _v_brightness),
    "contrast": (contrast, _v_contrast),
    "gamma": (gamma, _v_gamma),
    "equalize": (equalize, _v_equalize),
    "denoise": (denoise, _v_denoise),
    "sharpen": (sharpen, _v_sharpen),
}


def parse_edit(item: Mapping[str, Any] | Edit, position: int = 1) -> Edit:
    """Validate one step given as ``{"op": name, **params}`` (or an :class:`Edit`)."""
    if isinstance(item, Edit):
        item = item.to_json()
    where = f"edit {position}"
    if not isinstance(item, Mapping):
        raise ValidationError(f"{where}: expected an object like {{'op': 'gamma', 'gamma': 1.4}}, got {item!r}")
    op = item.get("op")
    if op not in OPERATIONS:
        raise ValidationError(f"{where}: unknown operation {op!r}; use one of {', '.join(OPERATIONS)}")
    where = f"edit {position} ({op})"
    params = {k: v for k, v in item.items() if k != "op"}
    validated = OPERATIONS[str(op)][1](params, where)
    unknown = set(params) - set(validated)
    if unknown:
        raise ValidationError(f"{where}: unknown parameter(s) {', '.join(sorted(unknown))}")
    return Edit(str(op), validated)


def parse_edits(items: Sequence[Mapping[str, Any] | Edit] | str | None) -> list[Edit]:
    """Validate an edit list (a sequence of steps, or its JSON text); empty/None means no edits."""
    if items is None:
        return []
    if isinstance(items, str):
        try:
            items = json.loads(items) if items.strip() else []
        except json.JSONDecodeError as exc:
            raise ValidationError(f"edit list is not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ValidationError("an edit list must be a list of steps")
    if len(items) > MAX_EDITS:
        raise ValidationError(f"an edit list holds at most {MAX_EDITS} steps, got {len(items)}")
    return [parse_edit(item, i) for i, item in enumerate(items, start=1)]


def edits_to_json(edits: Sequence[Edit]) -> list[dict[str, Any]]:
    """The serialisable form of an edit list (what the database stores)."""
    return [e.to_json() for e in edits]


def describe(edits: Sequence[Edit]) -> str:
    """One line stating the edits, in order (``"none (original)"`` for an empty list)."""
    return " -> ".join(e.describe() for e in edits) if edits else "none (original)"


def apply_edits(image: ImageArray, edits: Sequence[Edit] | Sequence[Mapping[str, Any]]) -> ImageArray:
    """Apply the steps in order to a copy of ``image``; the input array is never modified."""
    _check(image)
    steps = parse_edits(list(edits))
    out = image
    for position, step in enumerate(steps, start=1):
        try:
            out = OPERATIONS[step.op][0](out, **step.params)
        except ValidationError as exc:
            raise ValidationError(f"edit {position} ({step.op}): {exc}") from None
    return out.copy() if out is image else out


__all__ = [
    "OPERATIONS",
    "Edit",
    "apply_edits",
    "describe",
    "edits_to_json",
    "parse_edit",
    "parse_edits",
]
