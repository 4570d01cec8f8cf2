"""Pure pieces of the live pipeline on synthetic arrays: IoU, the tracker, the bounded frame queue, the in-memory
watch list, source parsing, and the expected-false-alert arithmetic of stored calibrations."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from faceleads.errors import ModelError, ValidationError
from faceleads.evaluation.stored import (
    StoredCalibration,
    count_at_or_above,
    expected_rate,
    per_face_rate,
    summarise_impostors,
    wilson_upper,
)
from faceleads.live.matching import ListedPerson, WatchListMatrix
from faceleads.live.pipeline import LivePipeline, PipelineConfig, capture_face
from faceleads.live.sources import DropQueue, VideoFrame, parse_source
from faceleads.live.tracking import IouTracker, TrackerConfig, greedy_match, iou_matrix


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(1.0) and m[0, 1] == pytest.approx(50 / 150) and m[1].max() == 0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_greedy_match_takes_best_pairs_once() -> None:
    overlap = np.array([[0.9, 0.8], [0.85, 0.1]], np.float32)
    assert greedy_match(overlap, 0.3) == [(0, 0)]  # (1, 1) is below the minimum
    assert greedy_match(np.zeros((0, 0), np.float32), 0.3) == []


def moving(x: float) -> np.ndarray:
    return np.array([[x, 50, x + 40, 100]], np.float32)


def test_tracker_follows_moving_faces_and_ends_tracks() -> None:
    tracker = IouTracker(TrackerConfig(high=0.5, low=0.3, iou_min=0.25, max_unseen_s=0.5))
    numbers = [tracker.update(moving(10 + 12 * i), [0.9], i * 0.1).numbers[0] for i in range(10)]
    assert set(numbers) == {1}  # one face, one track, even moving 12 px a frame
    # A low-score detection continues the track (second stage) but never starts one.
    assert tracker.update(moving(10 + 12 * 10), [0.35], 1.0).numbers == [1]
    assert tracker.update(np.array([[300, 300, 340, 350]], np.float32), [0.35], 1.05).numbers == [0]
    # Unseen for longer than max_unseen_s: ended; the next face starts track 2.
    update = tracker.update(moving(400), [0.9], 2.0)
    assert update.ended == [1] and update.started == [2] and update.numbers == [2]
    assert tracker.finish() == [2]


def test_tracker_keeps_two_crossing_lanes_apart() -> None:
    tracker = IouTracker()
    for i in range(8):
        lower = moving(400 - 15 * i) + np.array([0, 120, 0, 120], np.float32)
        boxes = np.concatenate([moving(10 + 15 * i), lower])
        update = tracker.update(boxes, [0.9, 0.8], i * 0.1)
    assert update.numbers == [1, 2]


def test_drop_queue_drops_oldest_and_counts() -> None:
    q = DropQueue(2)
    for i in range(5):
        q.put(VideoFrame(i, i / 10, np.zeros((2, 2, 3), np.uint8)))
    assert q.dropped == 3 and len(q) == 2
    first = q.get(0.1)
    assert first is not None and first.index == 3
    q.close()
    assert q.get(0.1) is not None and q.get(0.1) is None
    with pytest.raises(ValidationError):
        DropQueue(0)


def test_watch_list_matrix_best_and_drop() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(3, 512)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    wl = WatchListMatrix([ListedPerson("a", "A", vecs[:2], (11, 12)), ListedPerson("b", "B", vecs[2:], (13,))])
    assert wl.people == 2 and wl.templates == 3
    match = wl.best(vecs[1])
    assert match is not None and match.key == "a" and match.ref == 12 and match.score == pytest.approx(1.0, abs=1e-5)
    assert wl.drop(["a", "zzz"]) == 1 and wl.templates == 1
    match = wl.best(vecs[1])
    assert match is not None and match.key == "b"
    wl.drop(["b"])
    assert wl.best(vecs[0]) is None


def test_pipeline_refuses_a_watch_list_of_another_template_version(engine) -> None:  # type: ignore[no-untyped-def]
    """Templates made without flip averaging (or by another model or fusion) are not compared with the engine's."""
    vec = np.zeros((1, 512), np.float32)
    vec[0, 0] = 1.0
    old = WatchListMatrix([ListedPerson("a", "A", vec, (1,))], model_version=engine.model_version.removesuffix("+flip"))
    with pytest.raises(ModelError, match="holds templates of w600k_mbf@"):
        LivePipeline(engine, old, PipelineConfig(threshold=0.5))
    same = WatchListMatrix([ListedPerson("a", "A", vec, (1,))], model_version=engine.model_version)
    assert LivePipeline(engine, same, PipelineConfig(threshold=0.5)).watchlist is same


def test_watch_list_matrix_holds_one_template_length_and_version() -> None:
    """A fused pipeline's templates are longer than 512; a face template of another length is never compared."""
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(3, 1024)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    wl = WatchListMatrix([ListedPerson("a", "A", vecs[:2], (1, 2))], model_version="fused(x*1,y*1)")
    assert (wl.dim, wl.model_version) == (1024, "fused(x*1,y*1)")
    match = wl.best(vecs[1])
    assert match is not None and match.ref == 2 and wl.scores_by_person(vecs[0])["a"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValidationError, match="512 values cannot be compared with a list of 1024"):
        wl.best(vecs[0, :512])
    with pytest.raises(ValidationError, match="templates of 512 values in a list of 1024"):
        WatchListMatrix([ListedPerson("a", "A", vecs[:1], (1,)), ListedPerson("b", "B", vecs[1:, :512], (2, 3))])
    assert WatchListMatrix([], dim=128).best_per_row(np.zeros((2, 128), np.float32)) == [None, None]


@pytest.mark.parametrize(
    ("text", "kind", "shown"),
    [
        ("rtsp://user:secret@10.0.0.5:554/stream1", "stream", "rtsp://10.0.0.5:554/stream1"),
        ("https://cam.example/live.m3u8?token=abc", "stream", "https://cam.example/live.m3u8"),
        ("device:0", "device", "device:0"),
        ("/data/video.mp4", "file", "/data/video.mp4"),
        ("file:/data/video.mp4", "file", "/data/video.mp4"),
    ],
)
def test_parse_source_hides_credentials(text: str, kind: str, shown: str) -> None:
    spec = parse_source(text)
    assert spec.kind == kind and spec.display() == shown


@pytest.mark.parametrize("bad", ["", "ftp://host/x", "device:abc", "rtsp:///nohost", "a\nb"])
def test_parse_source_refuses(bad: str) -> None:
    with pytest.raises(ValidationError):
        parse_source(bad)


def test_capture_face_is_clipped_and_bounded() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    crop = capture_face(frame, np.array([1200, 650, 1300, 760], np.float32))
    assert crop.shape[0] > 0 and crop.shape[1] > 0
    big = capture_face(frame, np.array([100, 100, 700, 700], np.float32))
    assert max(big.shape[:2]) <= 320


def test_calibration_arithmetic() -> None:
    scores = np.linspace(-0.1, 0.5, 10001)
    n, curve, tail = summarise_impostors(scores)
    assert n == 10001 and curve[0][1] == n
    assert count_at_or_above(curve, tail, n, 0.45) == int((scores >= 0.45).sum())  # exact in the tail
    assert count_at_or_above(curve, tail, n, 0.1) >= int((scores >= 0.1).sum())  # never under-counted
    assert wilson_upper(0, 1000) == pytest.approx(2.7e-3, rel=0.05)
    assert per_face_rate(1e-4, 100) == pytest.approx(1 - (1 - 1e-4) ** 100)
    cal = StoredCalibration(1, "calibrate", "m", "", n, None, None, "u", datetime(2026, 1, 1, tzinfo=UTC), curve,
                            tail)  # fmt: skip
    small = expected_rate(cal, 0.45, templates=10, shots=2)
    large = expected_rate(cal, 0.45, templates=1000, shots=2)
    assert small.comparisons_per_face == 20 and large.comparisons_per_face == 2000
    assert large.false_alerts_per_1000 > small.false_alerts_per_1000
    assert large.false_alerts_per_1000_upper >= large.false_alerts_per_1000
    fmr = (scores >= 0.45).mean()
    assert small.false_alerts_per_1000 == pytest.approx(1000 * (1 - (1 - fmr) ** 20), rel=1e-6)
    assert math.isfinite(expected_rate(cal, 0.99, 10, 2).false_alerts_per_1000_upper)
