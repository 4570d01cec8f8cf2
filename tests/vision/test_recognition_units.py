"""Pure pieces of the recognition, landmark, YuNet and whole-crop code on synthetic arrays (no models)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from faceleads.vision import enhance, landmarks, wholecrop, yunet
from faceleads.vision.align import ARCFACE_TEMPLATE
from faceleads.vision.detector import box_iou, pad_image, upscale_steps
from faceleads.vision.recognition import (
    FusedRecognizer,
    InputFormat,
    OnnxRecognizer,
    average_mirrors,
    fuse_templates,
    fused_version,
    preprocess,
    split_template,
    with_mirrors,
)
from faceleads.vision.types import Detection

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_fused_scores_are_the_weighted_mean_of_member_scores() -> None:
    rng = np.random.default_rng(1)
    a1, a2 = _unit(rng, 5, 512), _unit(rng, 5, 128)
    b1, b2 = _unit(rng, 5, 512), _unit(rng, 5, 128)
    for weights in ([1.0, 1.0], [2.0, 1.0], [0.7, 0.3]):
        fa, fb = fuse_templates([a1, a2], weights), fuse_templates([b1, b2], weights)
        assert fa.shape == (5, 640)
        np.testing.assert_allclose(np.linalg.norm(fa, axis=1), 1.0, atol=1e-5)
        w = np.asarray(weights) / sum(weights)
        expected = w[0] * (a1 * b1).sum(1) + w[1] * (a2 * b2).sum(1)
        np.testing.assert_allclose((fa * fb).sum(1), expected, atol=1e-5)
        parts = split_template(fa[0], [512, 128], weights)
        np.testing.assert_allclose(parts[0], a1[0], atol=1e-5)
        np.testing.assert_allclose(parts[1], a2[0], atol=1e-5)
    with pytest.raises(ValueError):
        fuse_templates([a1], [1.0, 2.0])
    with pytest.raises(ValueError):
        fuse_templates([a1, a2], [0.0, 0.0])


def test_versions_name_the_members_and_their_weights() -> None:
    assert fused_version(["a@1+flip"], [1.0]) == "a@1+flip"
    assert fused_version(["a@1+flip", "b@2+flip"], [1.0, 1.0]) == "fused(a@1+flip*1,b@2+flip*1)"


def test_preprocess_normalises_and_orders_channels() -> None:
    crops = np.zeros((1, 112, 112, 3), np.uint8)
    crops[..., 0] = 255  # pure red
    rgb = preprocess(crops, InputFormat(127.5, 127.5, bgr=False))
    bgr = preprocess(crops, InputFormat(0.0, 1.0, bgr=True))
    assert rgb.shape == (1, 3, 112, 112) and rgb.dtype == np.float32
    assert rgb[0, 0, 0, 0] == pytest.approx(1.0) and rgb[0, 2, 0, 0] == pytest.approx(-1.0)
    assert bgr[0, 2, 0, 0] == 255.0 and bgr[0, 0, 0, 0] == 0.0


def test_mirrors_are_batched_with_the_originals_and_averaged_back() -> None:
    crops = np.arange(2 * 112 * 112 * 3, dtype=np.uint32).reshape(2, 112, 112, 3).astype(np.uint8)
    both = with_mirrors(crops)
    assert both.shape == (4, 112, 112, 3)
    np.testing.assert_array_equal(both[2], crops[0][:, ::-1])
    raw = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 4.0]], np.float32)
    np.testing.assert_allclose(average_mirrors(raw), [[2.0, 0.0], [0.0, 3.0]])


class _Linear:
    """A fake runner: the embedding is the mean of each channel, and it records batch sizes."""

    def __init__(self, max_batch: int = 0) -> None:
        self.input_name = "x"
        self.output_names = ["y"]
        self.batches: list[int] = []
        self.max_batch = max_batch

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        if self.max_batch and len(tensor) > self.max_batch:
            raise RuntimeError("fixed batch")
        self.batches.append(len(tensor))
        left = tensor[:, :, :, :56].mean(axis=(2, 3))
        right = tensor[:, :, :, 56:].mean(axis=(2, 3))
        return [np.concatenate([left, right], axis=1)]


def test_onnx_recognizer_batches_flip_and_respects_fixed_batch_models() -> None:
    crops = np.zeros((3, 112, 112, 3), np.uint8)
    crops[:, :, :56] = 200  # bright left half: the mirror has it on the right
    runner = _Linear()
    rec = OnnxRecognizer(runner, name="m", digest="abcdef0123456789", dim=6, fmt=InputFormat(), flip=True)
    vectors, norms = rec.embed(crops)
    assert rec.version == "m@abcdef012345+flip"
    assert runner.batches == [6]  # originals and mirrors in one call
    np.testing.assert_allclose(vectors[:, :3], vectors[:, 3:], atol=1e-6)  # averaged with the mirror: symmetric
    assert (norms > 0).all()
    single = _Linear(max_batch=1)
    rec1 = OnnxRecognizer(single, name="m", digest="0" * 12, dim=6, fmt=InputFormat(max_batch=1), flip=False)
    rec1.embed(crops)
    assert single.batches == [1, 1, 1]
    fused = FusedRecognizer([rec, rec1])
    assert fused.dim == 12 and fused.version.startswith("fused(")
    out, _ = fused.embed(crops)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="aligned crops"):
        rec.embed(np.zeros((1, 50, 50, 3), np.uint8))


def test_landmark_crop_and_decode_round_trip() -> None:
    box = np.array([40.0, 30.0, 140.0, 150.0])
    matrix = landmarks.crop_matrix(box)
    # The box centre goes to the input centre; the long side times 1.5 fills the input.
    centre = matrix[:, :2] @ np.array([90.0, 90.0]) + matrix[:, 2]
    np.testing.assert_allclose(centre, [96.0, 96.0])
    assert matrix[0, 0] == pytest.approx(192 / (120 * 1.5))
    # An output of all zeros is the input centre, i.e. the box centre in the image.
    pts = landmarks.decode(np.zeros(212, np.float32), matrix)
    assert pts.shape == (106, 2)
    np.testing.assert_allclose(pts[0], [90.0, 90.0], atol=1e-4)
    corner = landmarks.decode(np.full(212, -1.0, np.float32), matrix)[0]
    np.testing.assert_allclose(corner, [90.0 - 90.0, 90.0 - 90.0], atol=1e-3)
    with pytest.raises(ValueError):
        landmarks.crop_matrix([10, 10, 10, 10])


def test_five_points_from_106_and_mirroring() -> None:
    pts = np.zeros((106, 2), np.float32)
    pts[34], pts[38] = [10, 20], [12, 22]
    pts[88], pts[92] = [30, 20], [30, 22]
    pts[86], pts[52], pts[61] = [20, 30], [14, 40], [26, 40]
    five = landmarks.five_from_106(pts)
    np.testing.assert_allclose(five, [[11, 21], [30, 21], [20, 30], [14, 40], [26, 40]])
    back = landmarks.mirror_five(landmarks.mirror_five(five, 64), 64)
    np.testing.assert_allclose(back, five)
    mirrored = landmarks.mirror_five(five, 41)
    assert mirrored[0, 0] < mirrored[1, 0]  # still image-left eye first


def test_whole_crop_geometry_checks() -> None:
    template = ARCFACE_TEMPLATE.copy()
    assert wholecrop.plausible_geometry(template, 112)
    assert not wholecrop.plausible_geometry(template, 400)  # eyes far too close for the crop
    upside_down = template.copy()
    upside_down[:, 1] = 112 - upside_down[:, 1]
    assert not wholecrop.plausible_geometry(upside_down[[1, 0, 2, 4, 3]], 112)
    collapsed = np.tile(template.mean(axis=0), (5, 1)) + np.arange(10).reshape(5, 2) * 0.01
    assert not wholecrop.plausible_geometry(collapsed, 112)
    assert wholecrop.plausible_crop(60, 50, 320)
    assert not wholecrop.plausible_crop(10, 50, 320)
    assert not wholecrop.plausible_crop(600, 500, 320)
    assert not wholecrop.plausible_crop(40, 200, 320)
    assert wholecrop.disagreement([template, template + 0.5]) == pytest.approx(0.5 * np.sqrt(2) / 35.2, rel=0.01)
    canvas, expected = wholecrop.verification_canvas(np.full((60, 50, 3), 90, np.uint8), template * 0.4)
    assert canvas.shape == (wholecrop.CANVAS, wholecrop.CANVAS, 3)
    assert 0 < expected[0] < expected[2] < wholecrop.CANVAS


def test_yunet_decoding_of_a_single_cell() -> None:
    size = yunet.INPUT_SIZE
    outputs = []
    for stride in yunet.STRIDES:  # cls
        outputs.append(np.zeros((1, (size // stride) ** 2, 1), np.float32))
    for stride in yunet.STRIDES:  # obj
        outputs.append(np.zeros((1, (size // stride) ** 2, 1), np.float32))
    for stride in yunet.STRIDES:  # bbox
        outputs.append(np.zeros((1, (size // stride) ** 2, 4), np.float32))
    for stride in yunet.STRIDES:  # kps
        outputs.append(np.zeros((1, (size // stride) ** 2, 10), np.float32))
    cells = size // 16
    cell = 3 * cells + 5  # row 3, column 5 of stride 16
    outputs[1][0, cell, 0] = 0.81
    outputs[4][0, cell, 0] = 1.0
    outputs[7][0, cell] = [0.5, 0.5, np.log(2.0), np.log(3.0)]
    outputs[10][0, cell] = np.arange(10) / 10
    boxes, scores, kps = yunet.decode(outputs, 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    cx, cy = (5 + 0.5) * 16, (3 + 0.5) * 16
    np.testing.assert_allclose(boxes[0], [cx - 16, cy - 24, cx + 16, cy + 24])
    np.testing.assert_allclose(kps[0, 0], [5 * 16 + 0.0, 3 * 16 + 1.6], atol=1e-5)
    tensor = yunet.to_tensor(np.full((100, 50, 3), (10, 20, 30), np.uint8), 2.0)
    assert tensor.shape == (1, 3, size, size)
    assert tensor[0, :, 0, 0].tolist() == [30.0, 20.0, 10.0]  # BGR, raw values
    assert tensor[0, 0, 199, 99] == 30.0 and tensor[0, 0, 200, 100] == 0.0
    with pytest.raises(ValueError, match="does not fit"):
        yunet.to_tensor(np.zeros((400, 10, 3), np.uint8), 2.0)


def test_contrast_enhancement_of_dark_flat_crops() -> None:
    rng = np.random.default_rng(0)
    dark = (rng.random((40, 30, 3)) * 40 + 10).astype(np.uint8)
    stretched = enhance.autolevel(dark)
    assert stretched.dtype == np.uint8 and stretched.shape == dark.shape
    assert np.percentile(stretched, 99) > 200 and np.percentile(stretched, 1) < 20
    flat = np.full((20, 20, 3), 77, np.uint8)
    np.testing.assert_array_equal(enhance.autolevel(flat), flat)  # nothing to stretch
    local = enhance.local_contrast(dark)
    assert local.shape == dark.shape and local.std() > dark.std()


def test_denoised_stretch_keeps_an_edge_and_not_the_noise() -> None:
    """A dark, noisy crop with one edge: smoothing before the stretch keeps the edge's full contrast but stretches
    far less noise than stretching alone."""
    rng = np.random.default_rng(1)
    clean = np.full((48, 40, 3), 20.0)
    clean[:, 20:] = 45.0  # a faint edge in a dark picture
    noisy = np.clip(clean + rng.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
    plain, denoised = enhance.autolevel(noisy), enhance.denoised_autolevel(noisy)
    assert denoised.dtype == np.uint8 and denoised.shape == noisy.shape
    for out in (plain, denoised):
        assert out[:, 24:].mean() - out[:, :16].mean() > 120  # the edge is stretched either way
    assert denoised[:, :16].std() < 0.6 * plain[:, :16].std()  # the noise much less
    assert enhance.ENHANCEMENTS[0] is enhance.denoised_autolevel


def _detection(box: list[float], five: np.ndarray, score: float = 0.55) -> Detection:
    return Detection(box=np.array(box, np.float32), landmarks=five.astype(np.float32), score=score)


def test_a_face_found_by_a_fallback_must_fill_the_photo_look_like_a_face_and_have_a_face_norm() -> None:
    # A face box 40 px wide with the ArcFace template's layout in it.
    five = ARCFACE_TEMPLATE * (40 / 112) + np.array([5.0, 4.0])
    face = _detection([5, 4, 45, 48], five)
    arcface = wholecrop.FACENESS["arcface"]
    assert wholecrop.fallback_is_face(face, 52, 48, 15.5, arcface)  # fills a tight 48x52 crop
    assert not wholecrop.fallback_is_face(face, 120, 100, 15.5, arcface)  # a 40 px find in a 100 px picture
    assert not wholecrop.fallback_is_face(face, 52, 48, 14.0, arcface)  # the recognition model does not see a face
    assert wholecrop.fallback_is_face(replace(face, score=0.65), 52, 48, 12.5, arcface)  # confident, lower norm
    assert not wholecrop.fallback_is_face(replace(face, score=0.65), 52, 48, 11.0, arcface)
    assert not wholecrop.fallback_is_face(face, 52, 48, 9.0, wholecrop.FACENESS["sface"])  # SFace's own scale
    assert wholecrop.fallback_is_face(replace(face, score=0.65), 52, 48, 7.0, wholecrop.FACENESS["sface"])
    scrambled = five[[2, 3, 0, 4, 1]]  # nose and mouth where the eyes should be
    assert not wholecrop.fallback_is_face(_detection([5, 4, 45, 48], scrambled), 52, 48, 18.0, arcface)
    # Without a faceness model (a vendor's weights) the fill and layout checks still apply.
    assert wholecrop.fallback_is_face(face, 52, 48)
    assert not wholecrop.fallback_is_face(face, 120, 100)
    assert not wholecrop.fallback_is_face(_detection([5, 4, 45, 48], scrambled), 52, 48)


def test_fallback_ladder_helpers() -> None:
    assert upscale_steps(60, 640, 4.0) == [2.0, 3.0, 4.0]
    assert upscale_steps(60, 640, 1.0) == []
    assert upscale_steps(250, 640, 4.0) == [2.0]
    assert upscale_steps(400, 640, 4.0) == [1.6]
    assert upscale_steps(700, 640, 4.0) == []
    padded, pad = pad_image(np.zeros((50, 40, 3), np.uint8))
    assert pad == 20 and padded.shape == (90, 80, 3) and padded[0, 0, 0] == 127
    iou = box_iou([0, 0, 10, 10], np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32))
    np.testing.assert_allclose(iou, [1.0, 1 / 3, 0.0])
