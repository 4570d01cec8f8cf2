"""Recorded video: a clip made from real photos (one person walking across the frame, another standing still) is
sampled, its faces tracked, best shots offered as probes with their frame times, and a track's shots fused."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from pypdf import PdfReader

from faceleads.casework import adjudication, probes, reporting, searching
from faceleads.casework.video import FaceTracker, Frame, TrackerConfig, iou, sample_frames, video_info
from faceleads.errors import ImageError
from faceleads.vision.imaging import load_image
from faceleads.vision.types import Face, Quality
from tests.casework.conftest import CI, Env

FPS = 10
FRAMES = 30
W, H = 640, 360


def make_clip(path: Path, walker: list[Path], stander: Path) -> None:
    """Person A (cycling through their photos, blurred on some frames) walks left to right; person B stands."""
    walk = [cv2.resize(load_image(p).pixels, (180, 180)) for p in walker]
    still = cv2.resize(load_image(stander).pixels, (180, 180))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    try:
        for i in range(FRAMES):
            canvas = np.full((H, W, 3), 60, np.uint8)
            face = walk[(i // 5) % len(walk)]
            if i % 3 == 1:
                face = cv2.GaussianBlur(face, (0, 0), 2.5)  # motion blur: poorer shots
            x = 10 + i * 6
            canvas[90:270, x : x + 180] = face
            canvas[90:270, 440:620] = still
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def test_sampling_reports_frame_times(tmp_path: Path, env: Env) -> None:
    names = list(env.people)
    clip = tmp_path / "cctv.avi"
    make_clip(clip, env.people[names[0]][1:4], env.people[names[1]][1])
    info = video_info(clip)
    assert info.fps == pytest.approx(FPS) and info.frame_count == FRAMES and (info.width, info.height) == (W, H)
    frames = list(sample_frames(clip, every_s=0.5))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20, 25]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert frames[0].pixels.shape == (H, W, 3)
    with pytest.raises(ImageError, match="unsupported type"):
        video_info_path = tmp_path / "clip.txt"
        video_info_path.write_text("not a video")
        from faceleads.casework.video import check_video_path

        check_video_path(video_info_path, 10**9)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 2048)
    with pytest.raises(ImageError, match=r"cannot be decoded|no decodable"):
        video_info(bad)


def test_video_tracks_best_shots_and_fused_search(tmp_path: Path, env: Env) -> None:
    rt = env.rt
    names = list(env.people)
    walker, stander = names[0], names[1]
    clip = tmp_path / "cctv.avi"
    make_clip(clip, env.people[walker][1:4], env.people[stander][1])
    case_id = env.fresh_case("MET/2026/0300")
    seen: list[tuple[int, int]] = []
    intake = probes.add_video(
        rt, env.investigator, case_id, clip, source="Shop CCTV DVR export", obtained_by="PC 77 Khan",
        obtained_at=datetime(2026, 2, 1, 9, tzinfo=UTC), legal_basis="Voluntary production by the owner",
        every_s=0.2, shots_per_track=3, min_observations=3, progress=lambda d, t: seen.append((d, t)),
    )
    assert seen and seen[-1][0] == 15  # 30 frames sampled every 2nd frame
    tracks = intake.analysis["tracks"]
    assert isinstance(tracks, list) and len(tracks) == 2
    by_x = {}
    for t in tracks:
        box = t["best_shots"][0]["box"]
        by_x[t["track"]] = (box[0] + box[2]) / 2
        assert t["observations"] >= 10  # both people followed through (almost) every sampled frame
        times = [s["time_s"] for s in t["best_shots"]]
        assert len(times) == 3 and all(0 <= s <= 2.9 for s in times)
        qualities = [s["quality"] for s in t["best_shots"]]
        assert qualities == sorted(qualities, reverse=True)  # best first
    walk_track = min(by_x, key=lambda n: by_x[n])  # the walker stays left of the standing person
    shots = intake.probes_by_track[walk_track]
    assert len(shots) == 3
    for pid in shots:
        info = probes.show_probe(rt, env.analyst, pid)
        assert info.kind == "video_frame" and info.frame_time_s == pytest.approx(info.frame_index / FPS)
        assert info.face_source == "tracked" and info.evidence_sha256 == intake.sha256
    request = cases_request(env, case_id)
    fused = searching.run_search(rt, env.analyst, request, shots, top=3)
    assert fused.fused and len(fused.probes_used) == 3
    assert sum(u["weight"] for u in fused.probes_used) == pytest.approx(1.0)
    assert all(u["frame_time_s"] is not None for u in fused.probes_used)
    assert fused.result["candidates"][0]["subject_id"] == env.subjects[walker]
    single = searching.run_search(rt, env.analyst, request, intake.probes_by_track[3 - walk_track][:1], top=3)
    assert single.result["candidates"][0]["subject_id"] == env.subjects[stander]

    # The report of the fused search says which frames were fused, with their times and weights.
    adjudication.adjudicate(rt, env.analyst, fused.id, 1, "possible_lead", "Consistent across three frames")
    for rank in (2, 3):
        adjudication.adjudicate(rt, env.analyst, fused.id, rank, "excluded", "Different face shape")
    (lead,) = adjudication.submit_adjudication(rt, env.analyst, fused.id)
    adjudication.verify_lead(rt, env.reviewer, lead.id, "agree", "Same person")
    pdf = reporting.export_report(rt, env.analyst, fused.id).pdf
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "templates fused, weighted by quality" in text and text.count("fusion weight:") == 3
    for used in fused.probes_used:
        assert f"video frame {used['frame_index']} at {used['frame_time_s']:.2f} s" in text


def cases_request(env: Env, case_id: int) -> int:
    from faceleads.casework import cases

    return cases.open_request(env.rt, env.investigator, case_id, CI, "Identify the shoplifter").id


def _face(box: tuple[float, float, float, float], emb: np.ndarray, q: float = 0.5) -> Face:
    quality = Quality(40, 0, 0, 0, 100, 120, 50, 0.9, q)
    return Face(np.array(box, np.float32), np.zeros((5, 2), np.float32), 0.9, quality, emb.astype(np.float32))


def test_tracker_links_by_overlap_and_reidentifies_after_a_jump() -> None:
    rng = np.random.default_rng(7)
    a, b, c = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 512)))
    tracker = FaceTracker(TrackerConfig(max_gap_s=1.0, shots_per_track=2))
    pixels = np.zeros((4, 4, 3), np.uint8)
    for i in range(4):  # A moves right slowly, B stays
        tracker.update(Frame(i, i * 0.5, pixels), [_face((10 + 5 * i, 10, 60 + 5 * i, 60), a, 0.2 + 0.1 * i),
                                                   _face((200, 10, 250, 60), b)])
    # A jumps across the frame (no overlap) but is recognised; a new person C appears where A was.
    tracker.update(Frame(4, 2.0, pixels), [_face((400, 100, 450, 150), a + 0.05 * b), _face((25, 10, 75, 60), c)])
    # Long gap: B re-appears after the tracks closed -> a new track.
    tracker.update(Frame(5, 5.0, pixels), [_face((200, 10, 250, 60), b)])
    tracks = tracker.finish()
    assert [len(t.observations) for t in tracks] == [5, 4, 1, 1]
    assert [o.frame_index for o in tracks[0].observations] == [0, 1, 2, 3, 4]
    # Two best qualities (0.5 at frames 3 and 4; 0.4 at frame 2 drops out), best first, earlier first on ties.
    assert [s.observation.frame_index for s in tracks[0].shots] == [3, 4]
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
