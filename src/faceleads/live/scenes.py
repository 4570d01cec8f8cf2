"""Evaluation videos composed from real photographs: faces cut from photos, moved over a background, with the
ground truth of who is in view when (for ``faceleads evaluate live``, the tests and ``benchmarks/live_throughput``).

A real camera test needs consenting volunteers; this gives a repeatable stand-in: each person's photo is cut around
the detected face with a soft elliptical edge, scaled to a chosen face width, and walked across the frame on a
straight path during its appearance. The background is drawn (a street-like scene of blocks and a gradient), so that
the only faces in the video are the ones listed in the truth file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceleads import safecsv
from faceleads.errors import NoFaceError, ValidationError
from faceleads.vision.types import ImageArray


@dataclass(frozen=True)
class FacePatch:
    """A face cut from a photo: RGB pixels (h, w, 3), alpha (h, w) float32 in [0, 1], and the face's width in
    the patch (px)."""

    identity: str
    rgb: ImageArray
    alpha: np.ndarray
    face_width: float


@dataclass(frozen=True)
class Appearance:
    """One person in view from ``start_s`` to ``end_s``, moving from ``start_xy`` to ``end_xy`` (face centre, in
    frame pixels), with a face ``face_px`` wide."""

    patch: FacePatch
    start_s: float
    end_s: float
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    face_px: float


def cut_face(identity: str, pixels: ImageArray, box: Sequence[float], margin: float = 0.45) -> FacePatch:
    """Cut the face ``box`` of ``pixels`` with ``margin`` around it and a soft elliptical edge."""
    h, w = pixels.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    left, top = max(0, int(x1 - margin * bw)), max(0, int(y1 - margin * bh))
    right, bottom = min(w, int(x2 + margin * bw)), min(h, int(y2 + margin * bh))
    rgb = np.ascontiguousarray(pixels[top:bottom, left:right])
    ph, pw = rgb.shape[:2]
    if ph < 8 or pw < 8:
        raise ValidationError(f"the face of {identity} is too small to cut out")
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    cx, cy = (x1 + x2) / 2 - left, (y1 + y2) / 2 - top
    rx, ry = bw * (0.5 + margin * 0.8), bh * (0.5 + margin * 0.8)
    d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    alpha = np.clip((1.0 - d) / 0.25, 0.0, 1.0).astype(np.float32)
    return FacePatch(identity, rgb, alpha, bw)


def patch_from_photo(engine: object, identity: str, path: Path) -> FacePatch:
    """Load a photo safely, find its most prominent face with ``engine`` (a FaceEngine) and cut it out."""
    from faceleads.vision.imaging import load_image

    image = load_image(path)
    faces = engine.detect(image.pixels)  # type: ignore[attr-defined]
    if not faces:
        raise NoFaceError(f"no face found in {path.name} (for {identity})")
    return cut_face(identity, image.pixels, [float(v) for v in faces[0].box])


def draw_background(width: int, height: int, seed: int = 7) -> ImageArray:
    """A plain street-like scene: sky-to-pavement gradient and building blocks (no faces)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top, bottom = np.array([150, 170, 190], np.float32), np.array([90, 88, 85], np.float32)
    image = (top * (1 - ramp[..., None]) + bottom * ramp[..., None]).repeat(width, axis=1)
    canvas = np.ascontiguousarray(image.astype(np.uint8))
    horizon = int(height * 0.55)
    x = 0
    while x < width:
        bw = int(rng.integers(width // 12, width // 5))
        bh = int(rng.integers(height // 6, horizon))
        shade = rng.integers(60, 170, size=3).tolist()
        cv2.rectangle(canvas, (x, horizon - bh), (x + bw, horizon), shade, -1)
        for wy in range(horizon - bh + 10, horizon - 10, max(12, height // 30)):
            for wx in range(x + 6, x + bw - 10, max(14, width // 60)):
                cv2.rectangle(canvas, (wx, wy), (wx + 6, wy + 8), (210, 210, 170), -1)
        x += bw + int(rng.integers(2, 20))
    return canvas


def _paste(frame: ImageArray, patch: FacePatch, centre: tuple[float, float], face_px: float) -> None:
    scale = face_px / patch.face_width
    pw, ph = max(2, round(patch.rgb.shape[1] * scale)), max(2, round(patch.rgb.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    rgb = cv2.resize(patch.rgb, (pw, ph), interpolation=interp).astype(np.float32)
    alpha = cv2.resize(patch.alpha, (pw, ph), interpolation=cv2.INTER_LINEAR)[..., None]
    x0, y0 = round(centre[0] - pw / 2), round(centre[1] - ph / 2)
    fh, fw = frame.shape[:2]
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(fw, x0 + pw), min(fh, y0 + ph)
    if dx1 <= dx0 or dy1 <= dy0:
        return
    region = frame[dy0:dy1, dx0:dx1].astype(np.float32)
    a = alpha[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    src = rgb[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    frame[dy0:dy1, dx0:dx1] = np.clip(region * (1 - a) + src * a, 0, 255).astype(np.uint8)


def render_frame(background: ImageArray, appearances: Sequence[Appearance], t: float) -> ImageArray:
    """The frame at time ``t``: the background with every person in view at their position."""
    frame = background.copy()
    for a in appearances:
        if not a.start_s <= t < a.end_s:
            continue
        f = (t - a.start_s) / max(a.end_s - a.start_s, 1e-6)
        x = a.start_xy[0] + f * (a.end_xy[0] - a.start_xy[0])
        y = a.start_xy[1] + f * (a.end_xy[1] - a.start_xy[1])
        _paste(frame, a.patch, (x, y), a.face_px)
    return frame


def schedule(
    patches: Sequence[FacePatch],
    *,
    width: int,
    height: int,
    dwell_s: float,
    concurrent: int,
    face_px: float,
    seed: int = 1,
) -> tuple[list[Appearance], float]:
    """Walk every patch across the frame once, ``concurrent`` people in view at a time, each for ``dwell_s``.

    People in view together walk in separate horizontal lanes so that their faces do not overlap; the people of a
    lane follow each other in the same direction. Returns the appearances and the video's duration.
    """
    if concurrent < 1 or dwell_s <= 0:
        raise ValidationError("a scene needs at least one person in view and a positive dwell time")
    rng = np.random.default_rng(seed)
    lanes = max(1, concurrent)
    lane_h = height / lanes
    stagger = dwell_s / concurrent
    out: list[Appearance] = []
    for i, patch in enumerate(patches):
        start = 0.3 + i * stagger
        lane = i % lanes
        y = lane_h * (lane + 0.5)
        size = face_px * float(rng.uniform(0.9, 1.15))
        margin = size * 0.9
        # One walking direction per lane: the next person of a lane enters on the side opposite to where the
        # previous one left, as people do (and a tracker is not handed one face for another at the frame edge).
        left_to_right = lane % 2 == 0
        x_a, x_b = margin, width - margin
        if not left_to_right:
            x_a, x_b = x_b, x_a
        drift = float(rng.uniform(-0.15, 0.15)) * lane_h
        out.append(Appearance(patch, start, start + dwell_s, (x_a, y), (x_b, y + drift), size))
    duration = max(a.end_s for a in out) + 0.5 if out else dwell_s
    return out, duration


@dataclass(frozen=True)
class Scene:
    """A written scene: the video file, its truth rows (start_s, end_s, identity), frame count and size."""

    video: Path
    truth: list[tuple[float, float, str]]
    frames: int
    width: int
    height: int
    fps: float


def write_scene(
    path: Path,
    appearances: Sequence[Appearance],
    duration_s: float,
    *,
    width: int,
    height: int,
    fps: float,
    background: ImageArray | None = None,
) -> Scene:
    """Render the scene into ``path`` (``.mp4`` with MPEG-4 Part 2, or ``.avi`` with MJPEG) with OpenCV."""
    fourcc = cv2.VideoWriter.fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise ValidationError(f"cannot write video {path.name} with OpenCV")
    bg = background if background is not None else draw_background(width, height)
    if bg.shape[:2] != (height, width):
        bg = np.asarray(cv2.resize(bg, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    frames = math.ceil(duration_s * fps)
    try:
        for index in range(frames):
            frame = render_frame(bg, appearances, index / fps)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    truth = [(round(a.start_s, 3), round(a.end_s, 3), a.patch.identity) for a in appearances]
    return Scene(path, truth, frames, width, height, fps)


def write_truth(path: Path, truth: Sequence[tuple[float, float, str]]) -> None:
    """The truth file of ``faceleads evaluate live``: ``start_s,end_s,identity``."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = safecsv.writer(fh)
        writer.writerow(["start_s", "end_s", "identity"])
        for start, end, identity in truth:
            writer.writerow([f"{start:.3f}", f"{end:.3f}", identity])


def write_watchlist(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    """The watch-list file of ``faceleads evaluate live``: ``path,identity`` (paths relative to --images)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = safecsv.writer(fh)
        writer.writerow(["path", "identity"])
        for photo, identity in rows:
            writer.writerow([photo, identity])
