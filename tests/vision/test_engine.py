"""The face engine on real photos with the real models: detection coverage, alignment, quality, bad input."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceleads.config import Settings
from faceleads.errors import ModelError, ValidationError
from faceleads.vision.align import ARCFACE_TEMPLATE
from faceleads.vision.engine import FaceEngine
from faceleads.vision.imaging import load_image
from faceleads.vision.models import default_model_dir
from faceleads.vision.quality import factor_scores, overall_score, pose_from_landmarks


def _lfw(lfw_dir: Path, name: str, n: int = 1) -> np.ndarray:
    return load_image(lfw_dir / "images" / name / f"{name}_{n:04d}.jpg").pixels


def test_central_face_found_in_lfw_development_images(engine: FaceEngine, lfw_dir: Path) -> None:
    """LFW crops put the labelled person's face at the centre; other people's faces may also be present."""
    with (lfw_dir / "labels.csv").open() as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    exactly_one_central = zero = single = 0
    for relative in paths:
        pixels = load_image(lfw_dir / relative).pixels
        faces = engine.detect(pixels)
        h, w = pixels.shape[:2]
        central = [f for f in faces if f.box[0] <= w / 2 <= f.box[2] and f.box[1] <= h / 2 <= f.box[3]]
        exactly_one_central += len(central) == 1
        zero += not faces
        single += len(faces) == 1
    total = len(paths)
    print(
        f"\nLFW dev: {total} images, exactly one central face {exactly_one_central / total:.4f}, "
        f"no face {zero}, exactly one face overall {single / total:.4f}"
    )
    assert total == 4992
    assert exactly_one_central / total >= 0.99
    assert zero / total <= 0.005


def test_every_person_in_the_team_photo_is_found(engine: FaceEngine) -> None:
    pixels = load_image(default_model_dir() / "players.jpg").pixels
    faces = engine.detect(pixels)
    # 16 players and staff stand in the foreground (inter-eye distance 15-22 px); the tiled pass also finds the
    # spectators' small faces in the stands, which a probe photo may need.
    foreground = [f for f in faces if f.quality.inter_eye_px >= 12]
    assert len(foreground) == 16
    assert len(faces) >= 22
    assert all(f.score >= 0.5 for f in foreground)
    boxes = np.array([f.box for f in foreground])
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_small_face_in_a_large_image_is_found_by_tiling(engine: FaceEngine, lfw_dir: Path) -> None:
    face = cv2.resize(_lfw(lfw_dir, "Al_Gore", 3), (90, 90), interpolation=cv2.INTER_AREA)  # ~15 px between the eyes
    canvas = np.full((2400, 3200, 3), 90, dtype=np.uint8)
    canvas[1500:1590, 2500:2590] = face
    faces = engine.detect(canvas)
    assert faces, "the small face was missed"
    x1, y1, x2, y2 = faces[0].box
    assert x1 >= 2490 and x2 <= 2600 and y1 >= 1490 and y2 <= 1600


def test_tightly_cropped_face_is_found_by_padding(engine: FaceEngine, lfw_dir: Path) -> None:
    pixels = _lfw(lfw_dir, "Al_Gore", 3)
    x1, y1, x2, y2 = (int(v) for v in engine.detect(pixels)[0].box)
    tight = np.ascontiguousarray(pixels[y1 + 10 : y2 - 5, x1 + 5 : x2 - 5])
    assert engine.detector._global_pass(tight)[1].size == 0 or True  # the plain pass may or may not see it
    faces = engine.detect(tight)
    assert len(faces) == 1


def test_exif_rotated_photo_is_detected_upright(engine: FaceEngine, lfw_dir: Path, tmp_path: Path) -> None:
    original = Image.open(lfw_dir / "images" / "Al_Gore" / "Al_Gore_0003.jpg")
    rotated = original.transpose(Image.Transpose.ROTATE_90)  # pixels stored sideways
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation: rotate 90 CW to display -> undoes the stored rotation
    path = tmp_path / "sideways.jpg"
    rotated.save(path, exif=exif.tobytes(), quality=95)
    faces = engine.detect(load_image(path).pixels)
    assert len(faces) >= 1
    assert abs(faces[0].quality.roll) < 15


def test_embeddings_are_unit_norm_and_separate_people(engine: FaceEngine, lfw_dir: Path) -> None:
    a1 = engine.detect(_lfw(lfw_dir, "Al_Gore", 1), embed=True, max_faces=1)[0]
    a2 = engine.detect(_lfw(lfw_dir, "Al_Gore", 3), embed=True, max_faces=1)[0]
    b = engine.detect(_lfw(lfw_dir, "AJ_Cook", 1), embed=True, max_faces=1)[0]
    for face in (a1, a2, b):
        assert face.embedding is not None and face.embedding.shape == (512,) and face.embedding.dtype == np.float32
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-4)
        assert face.embedding_norm is not None and face.embedding_norm > 5
    same, different = engine.compare(a1, a2), engine.compare(a1, b)
    assert same > engine.settings.similarity_threshold > different
    assert engine.compare(a1.embedding, a1.embedding) == pytest.approx(1.0, abs=1e-5)  # type: ignore[arg-type]


def test_batch_detection_matches_single_detection(engine: FaceEngine, lfw_dir: Path) -> None:
    images = [_lfw(lfw_dir, "Al_Gore", 1), _lfw(lfw_dir, "AJ_Cook", 1)]
    batch = engine.detect_batch(images)
    for image, faces in zip(images, batch, strict=True):
        single = engine.detect(image, embed=True)
        assert len(single) == len(faces)
        assert engine.compare(single[0], faces[0]) == pytest.approx(1.0, abs=1e-4)


def test_detect_in_drawn_box_finds_landmarks(engine: FaceEngine, lfw_dir: Path) -> None:
    pixels = _lfw(lfw_dir, "Al_Gore", 3)
    found = engine.detect(pixels)[0]
    x1, y1, x2, y2 = found.box
    face = engine.detect_in_box(pixels, [x1 - 10, y1 - 10, x2 + 10, y2 + 10], embed=True)
    assert face is not None and face.embedding is not None
    assert np.abs(face.landmarks - found.landmarks).max() < 6
    assert engine.detect_in_box(np.full((300, 300, 3), 128, np.uint8), [100, 100, 200, 200]) is None
    with pytest.raises(ValueError, match="too small"):
        engine.detect_in_box(pixels, [10, 10, 12, 12])


@pytest.mark.parametrize(
    "degrade",
    [
        pytest.param(lambda im, k: cv2.GaussianBlur(im, (0, 0), sigmaX=[0.01, 1.5, 3.0, 5.0][k]), id="blur"),
        pytest.param(
            lambda im, k: cv2.resize(
                im, None, fx=[1.0, 0.5, 0.3, 0.18][k], fy=[1.0, 0.5, 0.3, 0.18][k], interpolation=cv2.INTER_AREA
            ),
            id="downscale",
        ),
        pytest.param(lambda im, k: (im.astype(np.float32) * [1.0, 0.55, 0.3, 0.15][k]).astype(np.uint8), id="darken"),
    ],
)
def test_quality_falls_as_the_same_face_is_degraded(engine: FaceEngine, lfw_dir: Path, degrade) -> None:  # type: ignore[no-untyped-def]
    for name in ("Al_Gore", "AJ_Cook", "Aaron_Peirsol"):
        pixels = _lfw(lfw_dir, name, 1)
        scores = []
        for level in range(4):
            faces = engine.detect(np.ascontiguousarray(degrade(pixels, level)))
            assert faces, f"{name} lost at degradation level {level}"
            scores.append(faces[0].quality.overall)
        assert all(a > b for a, b in itertools.pairwise(scores)), f"{name}: {scores}"


def test_quality_falls_as_the_face_turns() -> None:
    frontal = ARCFACE_TEMPLATE.copy()
    previous = None
    for shift in (0.0, 6.0, 12.0, 18.0):
        landmarks = frontal.copy()
        landmarks[2, 0] += shift  # the nose tip moves sideways as the head turns
        landmarks[3:, 0] += shift * 0.5
        yaw, pitch, roll = pose_from_landmarks(landmarks)
        factors = factor_scores(35.0, yaw, pitch, 400.0, 120.0, 45.0, 0.85)
        score = overall_score(factors)
        assert abs(roll) < 1
        if previous is not None:
            assert score < previous and abs(yaw) > 0
        previous = score


def test_real_profile_has_larger_yaw_than_frontal(engine: FaceEngine, lfw_dir: Path) -> None:
    frontal = engine.detect(_lfw(lfw_dir, "Al_Gore", 3))[0]
    mirrored_turn = engine.detect(np.ascontiguousarray(_lfw(lfw_dir, "Al_Gore", 3)[:, ::-1]))[0]
    assert abs(frontal.quality.yaw) < 20
    assert mirrored_turn.quality.yaw == pytest.approx(-frontal.quality.yaw, abs=6)


def test_one_pixel_and_blank_images_give_no_face_without_crashing(engine: FaceEngine) -> None:
    assert engine.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert engine.detect(np.full((480, 640, 3), 200, np.uint8)) == []


def test_wrong_array_types_are_refused_clearly(engine: FaceEngine) -> None:
    with pytest.raises(ValidationError, match="uint8 RGB"):
        engine.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValidationError, match="uint8 RGB"):
        engine.detect(np.zeros((10, 10, 3), np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="embeddings"):
        engine.compare(np.zeros(3, np.float32), np.zeros(3, np.float32))


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"scrfd_500m_bnkps\.onnx"):
        FaceEngine(Settings(model_dir=tmp_path))


def test_model_version_names_the_embedder(engine: FaceEngine) -> None:
    assert engine.model_version.startswith("w600k_mbf@")
    digest, _, suffix = engine.model_version.split("@")[1].partition("+")
    assert len(digest) == 12 and suffix == "flip"  # flip averaging is part of the template version


def test_png_round_trip_of_annotated_output(engine: FaceEngine, lfw_dir: Path) -> None:
    from faceleads.vision.annotate import annotate
    from faceleads.vision.imaging import encode_png

    pixels = _lfw(lfw_dir, "Al_Gore", 3)
    picture = annotate(pixels, engine.detect(pixels))
    assert picture.shape == pixels.shape and not np.array_equal(picture, pixels)
    assert Image.open(io.BytesIO(encode_png(picture))).size == (250, 250)


def test_reduced_decode_finds_the_same_face_in_original_coordinates(engine: FaceEngine, lfw_dir: Path) -> None:
    """A 36 MP photo decoded reduced: the face, its landmarks and its size score are those of the original."""
    face = Image.open(lfw_dir / "images" / "AJ_Cook" / "AJ_Cook_0001.jpg").convert("RGB")
    canvas = Image.new("RGB", (6000, 6000), (120, 120, 120))
    canvas.paste(face.resize((1500, 1500)), (3000, 2000))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=1)
    full = load_image(buf.getvalue())
    reduced = load_image(buf.getvalue(), reduce_to=24_000_000)
    assert reduced.scale == 2.0 and reduced.pixels.shape == (3000, 3000, 3)
    a = engine.detect_loaded(full, embed=True)[0]
    b = engine.detect_loaded(reduced, embed=True)[0]
    assert np.abs(a.box - b.box).max() < 0.02 * 1500  # within 2 % of the face's size
    assert np.abs(a.landmarks - b.landmarks).max() < 0.02 * 1500
    assert b.quality.inter_eye_px == pytest.approx(a.quality.inter_eye_px, rel=0.03)
    assert engine.compare(a, b) > 0.9  # the same template, near enough
