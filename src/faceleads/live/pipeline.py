"""The live recognition pipeline for one camera: detect, track, embed best shots, compare with the watch list.

Per frame: faces are detected in one pass at a reduced size (``detect_side``), linked into tracks
(:mod:`.tracking`), and a track's face is embedded only when it is a better shot than any embedded before (quality
``quality_margin`` higher, at most ``embeds_per_track`` shots per track, never below ``min_quality`` or narrower than
``min_face_px``). Each embedding is compared with the watch list in memory at once and then dropped. When a track's
score reaches the threshold an :class:`AlertEvent` is raised, at most one per track, carrying the face cut from
that frame.

What is kept about a track that does not match: its number and a few numbers (shots embedded, best quality, best
score) while it is in view, forgotten when it ends. No crop, frame, box or embedding outlives the frame it came
from; counters are plain counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from faceleads.errors import ModelError
from faceleads.live.matching import Match, WatchListMatrix
from faceleads.live.sources import VideoFrame
from faceleads.live.tracking import IouTracker, TrackerConfig
from faceleads.vision.align import align_face
from faceleads.vision.quality import assess
from faceleads.vision.types import Detection, ImageArray

if TYPE_CHECKING:
    from faceleads.config import Settings
    from faceleads.vision.engine import FaceEngine

CAPTURE_MARGIN = 0.4  # share of the face box added on every side of an alert's captured face
CAPTURE_MAX_SIDE = 320


@dataclass(frozen=True)
class PipelineConfig:
    """How a camera's frames are processed (see the module docstring)."""

    threshold: float
    detect_side: int = 640
    det_high: float = 0.5
    det_low: float = 0.3
    nms: float = 0.4
    embeds_per_track: int = 4
    min_quality: float = 0.30
    min_face_px: int = 24
    quality_margin: float = 0.05
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    @classmethod
    def from_settings(cls, settings: Settings, threshold: float) -> PipelineConfig:
        high = settings.det_threshold
        return cls(
            threshold=threshold,
            detect_side=settings.live_detect_side,
            det_high=high,
            det_low=min(0.3, high),
            nms=settings.nms_threshold,
            embeds_per_track=settings.live_embeds_per_track,
            min_quality=settings.live_min_quality,
            min_face_px=settings.live_min_face_px,
            tracker=TrackerConfig(high=high, low=min(0.3, high)),
        )


@dataclass
class AlertEvent:
    """A track reached the threshold. ``capture``: the face with a margin, uint8 (h, w, 3) RGB."""

    track_number: int
    match: Match
    time_s: float
    frame_index: int
    capture: ImageArray
    quality: float


@dataclass
class _TrackState:
    """What is known of a track while it is in view: numbers only."""

    embeds: int = 0
    best_quality: float = -1.0
    best_score: float = -1.0
    alerted: bool = False


@dataclass
class Counters:
    """Counts of one camera (nothing else is kept about the people seen)."""

    frames: int = 0
    faces: int = 0
    faces_compared: int = 0
    tracks: int = 0
    alerts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"frames": self.frames, "faces": self.faces, "faces_compared": self.faces_compared,
                "tracks": self.tracks, "alerts": self.alerts}  # fmt: skip


def capture_face(pixels: ImageArray, box: np.ndarray, margin: float = CAPTURE_MARGIN) -> ImageArray:
    """The face ``box`` (x1, y1, x2, y2) with ``margin`` of its size on each side, clipped, at most 320 px."""
    h, w = pixels.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    left, top = max(0, int(x1 - margin * bw)), max(0, int(y1 - margin * bh))
    right, bottom = min(w, int(np.ceil(x2 + margin * bw))), min(h, int(np.ceil(y2 + margin * bh)))
    crop = np.ascontiguousarray(pixels[top : max(bottom, top + 1), left : max(right, left + 1)])
    side = max(crop.shape[:2])
    if side > CAPTURE_MAX_SIDE:
        scale = CAPTURE_MAX_SIDE / side
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return crop


class LivePipeline:
    """Processes one camera's frames in order (not thread-safe: one pipeline per camera)."""

    def __init__(
        self, engine: FaceEngine, watchlist: WatchListMatrix, config: PipelineConfig, *, keep_scores: bool = False
    ) -> None:
        self.engine = engine
        self.watchlist = watchlist
        self.config = config
        if watchlist.model_version is not None and watchlist.model_version != engine.model_version:
            # Scores of templates of different versions (another model, flip averaging on or off, another fusion)
            # mean nothing against each other or against the threshold's calibration.
            raise ModelError(
                f"the watch list holds templates of {watchlist.model_version}, the engine makes {engine.model_version}"
            )
        if watchlist.templates and watchlist.dim != engine.embedding_dim:
            raise ModelError(f"the watch list holds {watchlist.dim}-value templates, the engine makes "
                             f"{engine.embedding_dim}")  # fmt: skip
        # One pass over the engine's detector session at the live size, with a lower score floor for the tracker's
        # second association stage; never the tiles or the fallback ladder of photo detection, whose cost per
        # face-less frame would be many passes.
        self.detect = engine.frame_detector(config.detect_side, config.det_low, config.nms)
        self.tracker = IouTracker(config.tracker)
        self.counters = Counters()
        self._states: dict[int, _TrackState] = {}
        # Evaluation only (never in a deployment): per comparison, (track, time, best score per listed person).
        self.scores: list[tuple[int, float, dict[Any, float]]] | None = [] if keep_scores else None

    def _candidates(self, frame: VideoFrame, detections: list[Detection], numbers: list[int]) -> list[Any]:
        cfg = self.config
        out = []
        for detection, number in zip(detections, numbers, strict=True):
            state = self._states.get(number)
            if state is None or state.alerted or state.embeds >= cfg.embeds_per_track:
                continue
            if float(detection.box[2] - detection.box[0]) < cfg.min_face_px:
                continue
            aligned = align_face(frame.pixels, detection.landmarks)
            quality = assess(detection.landmarks, aligned, detection.score).overall
            if quality < cfg.min_quality or quality < state.best_quality + cfg.quality_margin:
                continue
            out.append((number, detection, aligned, quality))
        return out

    def process(self, frame: VideoFrame) -> list[AlertEvent]:
        """Process one frame; returns the alerts it raised (usually none)."""
        self.counters.frames += 1
        detections = self.detect(frame.pixels)
        self.counters.faces += len(detections)
        boxes = np.array([d.box for d in detections], dtype=np.float32).reshape(-1, 4)
        scores = np.array([d.score for d in detections], dtype=np.float32)
        update = self.tracker.update(boxes, scores, frame.time_s)
        for number in update.ended:
            self._states.pop(number, None)
        for number in update.started:
            self._states[number] = _TrackState()
            self.counters.tracks += 1
        candidates = self._candidates(frame, detections, update.numbers)
        if not candidates:
            return []
        vectors, _norms = self.engine.embed_aligned([c[2] for c in candidates])
        alerts: list[AlertEvent] = []
        for (number, detection, _aligned, quality), vector in zip(candidates, vectors, strict=True):
            state = self._states[number]
            state.embeds += 1
            state.best_quality = quality
            self.counters.faces_compared += 1
            if self.scores is not None:
                self.scores.append((number, frame.time_s, self.watchlist.scores_by_person(vector)))
            match = self.watchlist.best(vector)
            if match is None:
                continue
            state.best_score = max(state.best_score, match.score)
            if match.score >= self.config.threshold and not state.alerted:
                state.alerted = True
                self.counters.alerts += 1
                capture = capture_face(frame.pixels, detection.box)
                alerts.append(AlertEvent(number, match, frame.time_s, frame.index, capture, quality))
        # The embeddings and aligned crops of this frame go out of scope here: nothing of them is kept.
        del vectors, candidates
        return alerts

    def finish(self) -> None:
        """End every track and forget their state (the source ended or the deployment stopped)."""
        self.tracker.finish()
        self._states.clear()

    @property
    def active_tracks(self) -> int:
        return len(self._states)
