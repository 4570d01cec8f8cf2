"""Recorded video (CCTV files) as probe evidence: sample frames, detect and track faces, offer the best shots.

This is retrospective analysis of a recorded file, never a live stream. Frames are sampled at a fixed interval
(decoding is sequential: ``grab`` every frame, ``retrieve`` only the sampled ones, because seeking is unreliable on
many CCTV encodings). Faces of consecutive sampled frames are linked into tracks by box overlap (IoU) and embedding
similarity; a face that re-appears elsewhere after a short gap re-joins its track by similarity alone. Each track
keeps its best-quality shots (full frames, with their frame index and time) to be offered as probes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceleads.errors import ImageError, ValidationError
from faceleads.vision.types import Face, ImageArray

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v"})


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video."""

    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class Frame:
    """A decoded, sampled frame: its index in the file, its time from the start, RGB pixels."""

    index: int
    time_s: float
    pixels: ImageArray


@dataclass
class Observation:
    """One face in one sampled frame."""

    frame_index: int
    time_s: float
    face: Face

    @property
    def quality(self) -> float:
        return float(self.face.quality.overall)


@dataclass
class Shot:
    """A best shot of a track: the observation and the full frame it was seen in."""

    observation: Observation
    frame: ImageArray


@dataclass
class Track:
    """A face followed across frames."""

    number: int
    observations: list[Observation] = field(default_factory=list)
    shots: list[Shot] = field(default_factory=list)  # best first
    _sum: np.ndarray | None = None
    _heap: list[tuple[float, int, Shot]] = field(default_factory=list)

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    @property
    def first_time_s(self) -> float:
        return self.observations[0].time_s

    @property
    def last_time_s(self) -> float:
        return self.observations[-1].time_s

    def mean_embedding(self) -> np.ndarray | None:
        if self._sum is None:
            return None
        norm = float(np.linalg.norm(self._sum))
        return self._sum / norm if norm > 0 else None

    def add(self, obs: Observation, frame: ImageArray, keep: int) -> None:
        self.observations.append(obs)
        if obs.face.embedding is not None:
            vec = np.asarray(obs.face.embedding, dtype=np.float64)
            self._sum = vec.copy() if self._sum is None else self._sum + vec
        # Bounded min-heap of the best shots: memory stays at ``keep`` frames per track.
        entry = (obs.quality, -obs.frame_index, Shot(obs, frame))
        if len(self._heap) < keep:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def finish(self) -> None:
        self.shots = [s for _, _, s in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]

    def summary(self) -> dict[str, object]:
        """JSON-friendly description (no pixels, no embeddings)."""
        return {
            "track": self.number,
            "observations": len(self.observations),
            "first_time_s": round(self.first_time_s, 3),
            "last_time_s": round(self.last_time_s, 3),
            "best_shots": [
                {
                    "frame_index": s.observation.frame_index,
                    "time_s": round(s.observation.time_s, 3),
                    "quality": round(s.observation.quality, 4),
                    "box": [round(float(v), 1) for v in s.observation.face.box],
                }
                for s in self.shots
            ],
        }


def check_video_path(path: Path, max_bytes: int) -> None:
    """Refuse a missing, oversize or non-video file before decoding it."""
    if not path.is_file():
        raise ImageError(f"video {path} does not exist")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        allowed = ", ".join(sorted(VIDEO_EXTENSIONS))
        raise ImageError(f"video {path.name}: unsupported type {path.suffix!r}; use {allowed}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"video {path.name} is {size} bytes, over the limit of {max_bytes}")


def video_info(path: Path) -> VideoInfo:
    """Frame rate, frame count and size; :class:`ImageError` if OpenCV cannot open the file."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ImageError(f"video {path.name} cannot be decoded (corrupt or unsupported codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise ImageError(f"video {path.name} has no decodable picture")
    if not 0 < fps <= 1000:
        fps = 25.0  # some CCTV containers carry no rate; 25 fps is the usual PAL rate
    return VideoInfo(fps=fps, frame_count=max(count, 0), width=width, height=height)


def sample_frames(path: Path, *, every_s: float = 0.5, max_frames: int = 1200) -> Iterator[Frame]:
    """Decode the frames at ``every_s`` intervals (the first frame included), at most ``max_frames`` of them."""
    if not every_s > 0:
        raise ValidationError(f"sampling interval must be positive, got {every_s}")
    if max_frames < 1:
        raise ValidationError(f"max_frames must be at least 1, got {max_frames}")
    info = video_info(path)
    step = max(1, round(every_s * info.fps))
    cap = cv2.VideoCapture(str(path))
    try:
        index = -1
        yielded = 0
        while yielded < max_frames:
            if not cap.grab():
                break
            index += 1
            if index % step:
                continue
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                continue  # a damaged frame: skip it, keep going
            rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
            yield Frame(index=index, time_s=index / info.fps, pixels=rgb)
            yielded += 1
    finally:
        cap.release()


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True)
class TrackerConfig:
    """Association thresholds.

    A face continues a track when its box overlaps the track's last box by ``iou_min`` and its embedding is not
    clearly someone else's (``iou_sim_min``), or, regardless of position, when its similarity to the track's mean
    embedding reaches ``sim_min`` (re-identification after a jump or a gap). Tracks unseen for more than
    ``max_gap_s`` seconds are closed.
    """

    iou_min: float = 0.3
    iou_sim_min: float = 0.2
    sim_min: float = 0.45
    max_gap_s: float = 3.0
    shots_per_track: int = 3


class FaceTracker:
    """Links per-frame faces into tracks (greedy assignment by overlap + similarity)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []

    def _score(self, track: Track, face: Face) -> float | None:
        cfg = self.config
        overlap = iou(track.last.face.box.tolist(), face.box.tolist())
        mean = track.mean_embedding()
        sim = float(np.dot(mean, face.embedding)) if mean is not None and face.embedding is not None else None
        if overlap >= cfg.iou_min and (sim is None or sim >= cfg.iou_sim_min):
            return overlap + (sim or 0.0)
        if sim is not None and sim >= cfg.sim_min:
            return sim
        return None

    def update(self, frame: Frame, faces: Sequence[Face]) -> None:
        """Assign the faces of one sampled frame to tracks (new tracks for unmatched faces)."""
        cfg = self.config
        live = [t for t in self.tracks if frame.time_s - t.last_time_s <= cfg.max_gap_s]
        pairs: list[tuple[float, int, int]] = []
        for ti, track in enumerate(live):
            for fi, face in enumerate(faces):
                score = self._score(track, face)
                if score is not None:
                    pairs.append((score, ti, fi))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_f: set[int] = set()
        for _, ti, fi in pairs:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            live[ti].add(Observation(frame.index, frame.time_s, faces[fi]), frame.pixels, cfg.shots_per_track)
        for fi, face in enumerate(faces):
            if fi not in used_f:
                track = Track(number=len(self.tracks) + 1)
                track.add(Observation(frame.index, frame.time_s, face), frame.pixels, cfg.shots_per_track)
                self.tracks.append(track)

    def finish(self, min_observations: int = 1) -> list[Track]:
        """The tracks with at least ``min_observations`` faces, best shots ordered, renumbered from 1."""
        kept = [t for t in self.tracks if len(t.observations) >= min_observations]
        for number, track in enumerate(kept, start=1):
            track.number = number
            track.finish()
        return kept


@dataclass
class VideoAnalysis:
    """The outcome of :func:`analyse_video`."""

    info: VideoInfo
    frames_sampled: int
    faces_seen: int
    tracks: list[Track]

    def summary(self) -> dict[str, object]:
        return {
            "fps": round(self.info.fps, 3),
            "frame_count": self.info.frame_count,
            "duration_s": round(self.info.duration_s, 3),
            "width": self.info.width,
            "height": self.info.height,
            "frames_sampled": self.frames_sampled,
            "faces_seen": self.faces_seen,
            "tracks": [t.summary() for t in self.tracks],
        }


def analyse_video(
    engine: object,
    path: Path,
    *,
    every_s: float = 0.5,
    max_frames: int = 1200,
    config: TrackerConfig | None = None,
    min_observations: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> VideoAnalysis:
    """Sample ``path``, detect and embed faces in each sampled frame with ``engine`` (a FaceEngine), track them.

    ``progress(done, total)`` is called after each sampled frame (total is an estimate from the frame count).
    """
    info = video_info(path)
    step = max(1, round(every_s * info.fps))
    total = min(max_frames, -(-info.frame_count // step)) if info.frame_count else max_frames
    tracker = FaceTracker(config)
    sampled = seen = 0
    for frame in sample_frames(path, every_s=every_s, max_frames=max_frames):
        faces = engine.detect(frame.pixels, embed=True)  # type: ignore[attr-defined]
        seen += len(faces)
        tracker.update(frame, faces)
        sampled += 1
        if progress is not None:
            progress(sampled, max(total, sampled))
    return VideoAnalysis(info, sampled, seen, tracker.finish(min_observations))


__all__ = [
    "VIDEO_EXTENSIONS",
    "FaceTracker",
    "Frame",
    "Observation",
    "Shot",
    "Track",
    "TrackerConfig",
    "VideoAnalysis",
    "VideoInfo",
    "analyse_video",
    "check_video_path",
    "iou",
    "sample_frames",
    "video_info",
]
