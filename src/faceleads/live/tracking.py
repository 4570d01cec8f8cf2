"""Face tracking across video frames by box overlap: our own small ByteTrack-style IoU tracker.

Why our own: the face detector already gives one box per face per frame, so association is all that is needed;
the kept libraries that package ByteTrack (``supervision``) pull in PyAV, SciPy, requests and more for one
class, and ``opencv-python`` conflicts with our ``opencv-python-headless``. The tracker here keeps what makes
ByteTrack work on crowds: a constant-velocity prediction of each track's box, a first association of confident
detections, then a second association of low-score detections to tracks that are still unmatched (a face that
turns away or blurs keeps its track instead of starting a new one), and new tracks only from confident detections.

Everything is plain arrays: boxes are float32 (n, 4) as x1, y1, x2, y2 in frame pixels, times in seconds. A track
holds its number, its last box and velocity, and times; nothing about the face itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float32]


def iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Intersection over union of every box of ``a`` (n, 4) with every box of ``b`` (m, 4): float32 (n, m)."""
    aa = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    bb = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    if aa.shape[0] == 0 or bb.shape[0] == 0:
        return np.zeros((aa.shape[0], bb.shape[0]), dtype=np.float32)
    x1 = np.maximum(aa[:, None, 0], bb[None, :, 0])
    y1 = np.maximum(aa[:, None, 1], bb[None, :, 1])
    x2 = np.minimum(aa[:, None, 2], bb[None, :, 2])
    y2 = np.minimum(aa[:, None, 3], bb[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(aa[:, 2] - aa[:, 0], 0, None) * np.clip(aa[:, 3] - aa[:, 1], 0, None)
    area_b = np.clip(bb[:, 2] - bb[:, 0], 0, None) * np.clip(bb[:, 3] - bb[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out.astype(np.float32)


def greedy_match(overlap: npt.NDArray[np.float32], minimum: float) -> list[tuple[int, int]]:
    """Pairs (row, column) by descending overlap, each row and column used once, overlap >= ``minimum``."""
    if overlap.size == 0:
        return []
    rows, cols = np.nonzero(overlap >= minimum)
    order = np.argsort(-overlap[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


@dataclass
class TrackBox:
    """A tracked face's position: number, last box, velocity (per second), first and last times seen."""

    number: int
    box: npt.NDArray[np.float32]
    first_s: float
    last_s: float
    hits: int = 1
    velocity: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(4, np.float32))

    def predict(self, t: float) -> npt.NDArray[np.float32]:
        """Where the box should be at ``t`` (constant velocity, at most one second ahead)."""
        dt = min(max(t - self.last_s, 0.0), 1.0)
        return (self.box + self.velocity * dt).astype(np.float32)

    def update(self, box: npt.NDArray[np.float32], t: float) -> None:
        dt = t - self.last_s
        if dt > 1e-6:
            # Smoothed velocity: detections jitter by a few pixels from frame to frame.
            self.velocity = (0.5 * self.velocity + 0.5 * (box - self.box) / dt).astype(np.float32)
        self.box = np.asarray(box, dtype=np.float32)
        self.last_s = t
        self.hits += 1


@dataclass(frozen=True)
class TrackerConfig:
    """Association settings: ``high``/``low`` detector scores of the two stages, minimum IoU, and how long an
    unseen track is kept (seconds) before it ends."""

    high: float = 0.5
    low: float = 0.3
    iou_min: float = 0.25
    max_unseen_s: float = 1.0


@dataclass
class TrackUpdate:
    """Outcome of one frame: the track number of each detection (0 = not tracked, a low-score detection that
    continued nothing), the numbers of tracks that started, and of tracks that ended."""

    numbers: list[int]
    started: list[int]
    ended: list[int]


class IouTracker:
    """Links per-frame face boxes into tracks (see the module docstring)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: dict[int, TrackBox] = {}
        self.created = 0

    def update(self, boxes: npt.ArrayLike, scores: npt.ArrayLike, t: float) -> TrackUpdate:
        """Associate one frame's detections (boxes (n, 4), scores (n,)) seen at time ``t`` (seconds)."""
        cfg = self.config
        det = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        sc = np.asarray(scores, dtype=np.float32).reshape(-1)
        numbers = [0] * len(det)
        ended = [n for n, tr in self.tracks.items() if t - tr.last_s > cfg.max_unseen_s]
        for n in ended:
            del self.tracks[n]
        live = list(self.tracks.values())
        predicted = np.stack([tr.predict(t) for tr in live]) if live else np.zeros((0, 4), np.float32)
        high = [i for i in range(len(det)) if sc[i] >= cfg.high]
        low = [i for i in range(len(det)) if cfg.low <= sc[i] < cfg.high]
        unmatched = list(range(len(live)))
        for stage in (high, low):
            if not stage or not unmatched:
                continue
            overlap = iou_matrix(predicted[unmatched], det[stage])
            taken: set[int] = set()
            for r, c in greedy_match(overlap, cfg.iou_min):
                track = live[unmatched[r]]
                track.update(det[stage[c]], t)
                numbers[stage[c]] = track.number
                taken.add(r)
            unmatched = [u for k, u in enumerate(unmatched) if k not in taken]
        started: list[int] = []
        for i in high:
            if numbers[i] == 0:
                self.created += 1
                self.tracks[self.created] = TrackBox(self.created, det[i].copy(), t, t)
                numbers[i] = self.created
                started.append(self.created)
        return TrackUpdate(numbers, started, ended)

    def finish(self) -> list[int]:
        """End every track (the stream ended); returns their numbers."""
        ended = list(self.tracks)
        self.tracks.clear()
        return ended
