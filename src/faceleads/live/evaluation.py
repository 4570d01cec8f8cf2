"""``faceleads evaluate live``: the live pipeline over a recorded video, scored against who was in view when.

Inputs: a watch list CSV ``path,identity`` (photos relative to ``--images``), a video, and a truth CSV
``start_s,end_s,identity`` (extra columns ignored; identities need not be on the list). Every frame is processed
(nothing dropped), with the same detector, tracker, best-shot policy and threshold as a deployment.

- ``true_alerts``: listed people in view who were alerted as themselves while in view (people, not alerts);
- ``false_alerts``: alerts naming someone who was not in view at that time;
- ``missed``: listed people in view who were never alerted as themselves.

An alert counts as in view within ``TOLERANCE_S`` of a truth interval (the truth is annotated by hand).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceleads.config import Settings
from faceleads.errors import NoFaceError, ValidationError
from faceleads.live.matching import ListedPerson, WatchListMatrix
from faceleads.live.pipeline import LivePipeline, PipelineConfig
from faceleads.live.sources import DropQueue, FrameReader, SourceSpec
from faceleads.vision.imaging import load_image

TOLERANCE_S = 0.5
MAX_ROWS = 100_000


def _rows(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValidationError(f"{what} file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise ValidationError(f"{what} file {path.name} lacks the column(s) {', '.join(missing)} "
                                      f"(expected {','.join(required)})")  # fmt: skip
            rows = []
            for i, row in enumerate(reader, start=2):
                if i > MAX_ROWS:
                    raise ValidationError(f"{what} file {path.name} has more than {MAX_ROWS} rows")
                rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items() if k})
            return rows
    except UnicodeDecodeError:
        raise ValidationError(f"{what} file {path.name} is not UTF-8 text") from None


def read_watchlist(path: Path, images: Path) -> list[tuple[str, Path]]:
    """(identity, photo path) rows of a watch-list CSV."""
    out = []
    root = images.resolve()
    for n, row in enumerate(_rows(path, ("path", "identity"), "watch list"), start=2):
        if not row["path"] or not row["identity"]:
            raise ValidationError(f"watch list {path.name} line {n}: path and identity are required")
        photo = (root / row["path"]).resolve()
        if root not in photo.parents:
            raise ValidationError(f"watch list {path.name} line {n}: {row['path']!r} is outside --images")
        out.append((row["identity"], photo))
    if not out:
        raise ValidationError(f"watch list {path.name} has no rows")
    return out


def read_truth(path: Path) -> list[tuple[float, float, str]]:
    """(start_s, end_s, identity) rows of a truth CSV."""
    out = []
    for n, row in enumerate(_rows(path, ("start_s", "end_s", "identity"), "truth"), start=2):
        try:
            start, end = float(row["start_s"]), float(row["end_s"])
        except ValueError:
            raise ValidationError(f"truth {path.name} line {n}: start_s and end_s must be numbers") from None
        if not (np.isfinite(start) and np.isfinite(end)) or end < start or start < 0:
            raise ValidationError(f"truth {path.name} line {n}: need 0 <= start_s <= end_s")
        if not row["identity"]:
            raise ValidationError(f"truth {path.name} line {n}: identity is required")
        out.append((start, end, row["identity"]))
    return out


def build_watchlist(engine: Any, rows: list[tuple[str, Path]], settings: Settings | None = None) -> WatchListMatrix:
    """Embed every watch-list photo's most prominent face (an identity may have several photos)."""
    vectors: dict[str, list[np.ndarray]] = {}
    refs: dict[str, list[int]] = {}
    for index, (identity, photo) in enumerate(rows):
        image = load_image(photo, settings)
        faces = engine.detect(image.pixels, embed=True, max_faces=1)
        if not faces or faces[0].embedding is None:
            raise NoFaceError(f"watch-list photo {photo.name} (for {identity}) shows no face")
        vectors.setdefault(identity, []).append(faces[0].embedding)
        refs.setdefault(identity, []).append(index)
    return WatchListMatrix(
        (ListedPerson(identity, identity, np.stack(vectors[identity]), tuple(refs[identity])) for identity in vectors),
        model_version=engine.model_version,
        dim=engine.embedding_dim,
    )


def in_view(truth: list[tuple[float, float, str]], identity: str, t: float, tolerance: float = TOLERANCE_S) -> bool:
    return any(who == identity and start - tolerance <= t <= end + tolerance for start, end, who in truth)


@dataclass
class LiveEvaluation:
    """The figures (``result``) and the impostor comparison scores seen (for ``--save-calibration``)."""

    result: dict[str, Any]
    impostor_scores: np.ndarray


def evaluate_video(
    engine: Any,
    settings: Settings,
    watchlist: WatchListMatrix,
    video: Path,
    truth: list[tuple[float, float, str]],
    threshold: float,
    progress: Callable[[int, int], None] | None = None,
) -> LiveEvaluation:
    """Run the live pipeline over every frame of ``video`` and score its alerts against ``truth``."""
    queue = DropQueue(8, drop_oldest=False)
    reader = FrameReader(SourceSpec("file", str(video)), queue, realtime=False)
    total = reader.frame_count
    pipeline = LivePipeline(engine, watchlist, PipelineConfig.from_settings(settings, threshold), keep_scores=True)
    alerts: list[dict[str, Any]] = []
    reader.start()
    started = time.perf_counter()
    while True:
        frame = queue.get(timeout=5.0)
        if frame is None:
            if queue.closed or not reader.is_alive():
                break
            continue
        for event in pipeline.process(frame):
            alerts.append({"identity": str(event.match.key), "score": round(event.match.score, 4),
                           "start_s": round(event.time_s, 3), "track": event.track_number})  # fmt: skip
        if progress is not None:
            progress(pipeline.counters.frames, max(total, pipeline.counters.frames))
    elapsed = time.perf_counter() - started
    pipeline.finish()
    if reader.error:
        raise ValidationError(f"video {video.name}: {reader.error}")
    frames = pipeline.counters.frames
    if frames == 0:
        raise ValidationError(f"video {video.name} has no decodable frame")
    duration = frames / reader.fps
    listed = set(watchlist.keys())
    listed_in_view = sorted({who for _, _, who in truth if who in listed})
    true_people = sorted({a["identity"] for a in alerts if in_view(truth, a["identity"], a["start_s"])})
    false_list = [a for a in alerts if not in_view(truth, a["identity"], a["start_s"])]
    missed = [who for who in listed_in_view if who not in true_people]
    impostors = [score for _track, t, scores in (pipeline.scores or []) for who, score in scores.items()
                 if not in_view(truth, str(who), t)]  # fmt: skip
    tracks = pipeline.counters.tracks
    result: dict[str, Any] = {
        "frames": frames,
        "duration_s": round(duration, 3),
        "processing_fps": round(frames / elapsed, 3) if elapsed > 0 else None,
        "realtime_factor": round(duration / elapsed, 3) if elapsed > 0 else None,
        "faces_detected": pipeline.counters.faces,
        "tracks": tracks,
        "threshold": threshold,
        "alerts": [{k: a[k] for k in ("identity", "score", "start_s")} for a in alerts],
        "true_alerts": len(true_people),
        "false_alerts": len(false_list),
        "missed": len(missed),
        "true_alert_identities": true_people,
        "false_alert_list": [{k: a[k] for k in ("identity", "score", "start_s")} for a in false_list],
        "missed_identities": missed,
        "listed_people": len(listed),
        "listed_in_view": len(listed_in_view),
        "watchlist_templates": watchlist.templates,
        "faces_compared": pipeline.counters.faces_compared,
        "false_alerts_per_1000_faces": round(1000 * len(false_list) / tracks, 4) if tracks else None,
        "frames_dropped": 0,
        "impostor_comparisons": len(impostors),
        "video": {"width": reader.width, "height": reader.height, "fps": round(reader.fps, 3)},
    }
    return LiveEvaluation(result, np.asarray(impostors, dtype=np.float64))
