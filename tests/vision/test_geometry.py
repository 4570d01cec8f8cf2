"""Pure decoding and geometry units on synthetic arrays: anchors, distance decoding, NMS, similarity transform."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from faceleads.vision import scrfd
from faceleads.vision.align import ARCFACE_TEMPLATE, align_face, estimate_similarity, invert_affine, transform_points
from faceleads.vision.detector import tile_origins
from faceleads.vision.recognition import l2_normalise


def test_anchor_grid_is_row_major_with_two_anchors_per_cell() -> None:
    centers = scrfd.anchor_centers(2, 3, 8)
    assert centers.shape == (12, 2)
    expected = np.array([[0, 0], [8, 0], [16, 0], [0, 8], [8, 8], [16, 8]], dtype=np.float32)
    np.testing.assert_array_equal(centers[0::2], expected)
    np.testing.assert_array_equal(centers[1::2], expected)


def test_anchor_counts_match_each_stride() -> None:
    for stride in scrfd.STRIDES:
        assert (
            scrfd.anchor_centers(640 // stride, 480 // stride, stride).shape[0] == (640 // stride) * (480 // stride) * 2
        )


def test_distance_to_box_and_keypoints() -> None:
    points = np.array([[100.0, 50.0]], dtype=np.float32)
    box = scrfd.distance_to_box(points, np.array([[10.0, 20.0, 30.0, 40.0]], dtype=np.float32))
    np.testing.assert_allclose(box, [[90.0, 30.0, 130.0, 90.0]])
    kps = scrfd.distance_to_keypoints(points, np.arange(10, dtype=np.float32)[None])
    assert kps.shape == (1, 5, 2)
    np.testing.assert_allclose(kps[0, 0], [100.0, 51.0])
    np.testing.assert_allclose(kps[0, 4], [108.0, 59.0])


def _synthetic_outputs(height: int, width: int, face_at: tuple[int, int], stride: int = 16) -> list[np.ndarray]:
    """Raw SCRFD-like outputs with one confident anchor at pixel ``face_at`` of the given stride."""
    outputs: list[np.ndarray] = []
    scores, boxes, kps = [], [], []
    for s in scrfd.STRIDES:
        n = (height // s) * (width // s) * 2
        score = np.zeros((n, 1), np.float32)
        box = np.ones((n, 4), np.float32)
        kp = np.zeros((n, 10), np.float32)
        if s == stride:
            cx, cy = face_at
            index = ((cy // s) * (width // s) + (cx // s)) * 2
            score[index] = 0.9
            box[index] = [2.0, 2.0, 2.0, 2.0]  # a 4-stride wide box around the anchor
            kp[index] = [-1, -1, 1, -1, 0, 0, -1, 1, 1, 1]
        scores.append(score)
        boxes.append(box)
        kps.append(kp)
    outputs.extend(scores)
    outputs.extend(boxes)
    outputs.extend(kps)
    return outputs


def test_decode_finds_the_one_confident_anchor_in_image_pixels() -> None:
    outputs = _synthetic_outputs(64, 96, face_at=(48, 32), stride=16)
    boxes, scores, kps = scrfd.decode(outputs, 64, 96, score_threshold=0.5)
    assert scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(boxes[0], [48 - 32, 32 - 32, 48 + 32, 32 + 32])
    np.testing.assert_allclose(kps[0, 0], [48 - 16, 32 - 16])
    np.testing.assert_allclose(kps[0, 2], [48, 32])


def test_decode_rejects_a_canvas_that_is_not_a_multiple_of_32() -> None:
    outputs = _synthetic_outputs(64, 96, face_at=(48, 32))
    with pytest.raises(ValueError, match="multiple of 32"):
        scrfd.decode(outputs, 64, 130, score_threshold=0.5)


def test_nms_keeps_best_of_overlapping_and_all_disjoint() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.1], dtype=np.float32)
    keep = scrfd.nms(boxes, scores, iou_threshold=0.4)
    assert keep.tolist() == [1, 2]
    assert scrfd.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4).size == 0


def test_nms_keeps_touching_boxes_with_zero_overlap() -> None:
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10]], dtype=np.float32)
    assert sorted(scrfd.nms(boxes, np.array([0.5, 0.6], np.float32), 0.1).tolist()) == [0, 1]


def test_letterbox_keeps_aspect_and_normalises() -> None:
    image = np.full((50, 100, 3), 255, dtype=np.uint8)
    tensor, scale = scrfd.letterbox(image, 64, 64)
    assert tensor.shape == (1, 3, 64, 64)
    assert scale == pytest.approx(0.64)
    assert tensor[0, 0, 0, 0] == pytest.approx((255 - 127.5) / 128)
    assert tensor[0, 0, 63, 0] == pytest.approx(0.0)  # padding is the mean


def test_similarity_transform_round_trip() -> None:
    rng = np.random.default_rng(0)
    angle, scale, shift = math.radians(23), 1.7, np.array([12.0, -4.0])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = rng.uniform(0, 100, size=(5, 2)).astype(np.float32)
    dst = (src @ rotation.T + shift).astype(np.float32)
    matrix = estimate_similarity(src, dst)
    np.testing.assert_allclose(transform_points(src, matrix), dst, atol=1e-3)
    back = transform_points(dst, invert_affine(matrix))
    np.testing.assert_allclose(back, src, atol=1e-3)


def test_similarity_transform_is_least_squares_under_noise_and_refuses_degenerate_points() -> None:
    noisy = ARCFACE_TEMPLATE + np.random.default_rng(1).normal(0, 0.5, ARCFACE_TEMPLATE.shape).astype(np.float32)
    matrix = estimate_similarity(noisy, ARCFACE_TEMPLATE)
    residual = np.abs(transform_points(noisy, matrix) - ARCFACE_TEMPLATE).max()
    assert residual < 2.0
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 2), np.float32), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 3), np.float32), ARCFACE_TEMPLATE)


def test_align_face_puts_landmarks_on_the_template() -> None:
    image = np.zeros((300, 300, 3), dtype=np.uint8)
    landmarks = ARCFACE_TEMPLATE * 2 + 40
    for x, y in landmarks.astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop = align_face(image, landmarks)
    assert crop.shape == (112, 112, 3)
    for x, y in np.round(ARCFACE_TEMPLATE).astype(int):
        assert crop[y, x].max() > 100


def test_tile_origins_cover_the_length_with_overlap() -> None:
    assert tile_origins(500, 640, 0.25) == [0]
    origins = tile_origins(2000, 640, 0.25)
    assert origins[0] == 0 and origins[-1] == 2000 - 640
    assert all(b - a <= 640 * 0.75 + 1 for a, b in itertools.pairwise(origins))


def test_l2_normalise_keeps_norms_and_zero_rows() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    unit, norms = l2_normalise(vectors)
    np.testing.assert_allclose(unit[0], [0.6, 0.8])
    np.testing.assert_allclose(unit[1], [0.0, 0.0])
    np.testing.assert_allclose(norms, [5.0, 0.0])


def test_draw_points_and_box_mark_a_copy() -> None:
    from faceleads.vision.compare import draw_box, draw_points

    image = np.zeros((100, 120, 3), np.uint8)
    dotted = draw_points(image, [[10, 20], [60.4, 50.6]], radius=3)
    assert image.sum() == 0, "the input is never changed"
    assert tuple(dotted[20, 10]) == (220, 38, 38) and tuple(dotted[51, 60]) == (220, 38, 38)
    assert tuple(dotted[90, 100]) == (0, 0, 0)
    boxed = draw_box(image, [20, 30, 80, 70], thickness=2)
    assert boxed[30, 50].sum() > 0 and boxed[50, 20].sum() > 0  # the outline
    assert boxed[50, 50].sum() == 0  # the inside is untouched
