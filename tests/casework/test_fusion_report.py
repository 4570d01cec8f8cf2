"""Quality-weighted template fusion on real faces, and the PDF renderer on its own."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from pypdf import PdfReader

from faceleads.casework.fusion import MIN_WEIGHT, fuse_templates
from faceleads.casework.report import (
    DISCLAIMER,
    ReportCandidate,
    ReportData,
    ReportPerson,
    ReportProbe,
    render_lead_report,
)
from faceleads.errors import ValidationError
from faceleads.vision.imaging import encode_png, load_image
from tests.casework.conftest import lfw_people

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite


def test_fusion_weights_by_quality_and_stays_on_the_person(engine) -> None:  # type: ignore[no-untyped-def]
    people = list(lfw_people(min_photos=5).items())[:2]
    (_, a_photos), (_, b_photos) = people
    faces = [engine.detect(load_image(p).pixels, embed=True)[0] for p in a_photos[:5]]
    reference = engine.detect(load_image(a_photos[-1]).pixels, embed=True)[0]
    other = engine.detect(load_image(b_photos[0]).pixels, embed=True)[0]
    shots = faces[:4]
    fused = fuse_templates([f.embedding for f in shots], [f.quality.overall for f in shots])
    assert np.linalg.norm(fused.vector) == pytest.approx(1.0, abs=1e-5)
    assert sum(fused.weights) == pytest.approx(1.0)
    order_q = np.argsort([f.quality.overall for f in shots])
    assert np.argsort(fused.weights).tolist() == order_q.tolist()  # better shots weigh more
    singles = [engine.compare(f.embedding, reference.embedding) for f in shots]
    fused_score = engine.compare(fused.vector, reference.embedding)
    print(f"fusion: single-shot scores {np.round(singles, 3).tolist()}, fused {fused_score:.3f}")
    assert fused_score > float(np.mean(singles))  # averaging cancels per-shot noise
    assert fused_score > engine.compare(fused.vector, other.embedding) + 0.2


def test_fusion_refuses_bad_input() -> None:
    v = np.ones(512, np.float32)
    with pytest.raises(ValidationError, match="at least one"):
        fuse_templates([], [])
    with pytest.raises(ValidationError, match="quality scores"):
        fuse_templates([v], [0.5, 0.4])
    with pytest.raises(ValidationError, match="all zeros"):
        fuse_templates([np.zeros(512, np.float32)], [0.5])
    with pytest.raises(ValidationError, match="cancel out"):
        fuse_templates([v, -v], [0.5, 0.5])
    # A zero-quality shot still counts a little.
    assert fuse_templates([v, v], [0.0, 1.0]).weights[0] == pytest.approx(MIN_WEIGHT / (1 + MIN_WEIGHT))


def test_report_renders_every_section() -> None:
    face = load_image(sorted(lfw_people().values())[0][0]).pixels
    png = encode_png(face)
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    data = ReportData(
        report_ref="MET-LR-9", generated_at=at, generated_by="ann", agency="MET (Metropolitan Police)",
        occurrence_number="MET/2026/9", offence="ROB - Robbery", investigator="ivy", case_justification="why",
        purpose="criminal-investigation - Criminal investigation", purpose_authorisation="not required",
        request_justification="identify", search_id=4, searched_at=at, model_version="w600k_mbf@abc",
        gallery_size=1234, galleries="#1", candidate_list_length=20, quality_override="not needed",
        probes=[ReportProbe("probe 1 (photo, face 1)", "ab" * 32, "gamma(gamma=1.2)", 0.61, None, png, png),
                ReportProbe("probe 2 (photo, face 1)", "cd" * 32, "none (original)", 0.4, 0.3, None, None)],
        candidates=[ReportCandidate(1, 0.71234, "S0001", "MET", "B0001", "2020-01-01", "possible_lead",
                                    "agree by rey", png)],
        people=[ReportPerson("verifier (blind)", "rey", at, "rank 1: agree")],
    )
    pdf = render_lead_report(data)
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    for needle in (DISCLAIMER, "MET/2026/9", "1234 templates searched", "w600k_mbf@abc", "gamma(gamma=1.2)",
                   "fusion weight: 0.300", "score 0.7123", "booking B0001", "(image not available)", "rey"):
        assert needle in text, needle
    assert all(DISCLAIMER in " ".join(p.extract_text().split()) for p in reader.pages)  # on every page


def _degrade(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A poor CCTV-like shot: low resolution, blur and sensor noise."""
    import cv2

    small = cv2.resize(pixels, (44, 44), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 0.7)
    noisy = np.clip(small.astype(np.float32) + rng.normal(0, 12, small.shape), 0, 255).astype(np.uint8)
    return np.asarray(cv2.resize(noisy, (250, 250), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def test_fusing_poor_shots_beats_single_shots_at_rank_one(engine) -> None:  # type: ignore[no-untyped-def]
    """Measured on 20 LFW identities: gallery = one good photo each, probes = four degraded other photos.

    A small closed-set figure (printed), not a benchmark: the assertion only requires fusion not to lose.
    """
    rng = np.random.default_rng(3)
    people = list(lfw_people(min_photos=5).values())[:20]
    gallery, probe_sets = [], []
    for photos in people:
        face = engine.detect(load_image(photos[0]).pixels, embed=True)
        shots = []
        for p in photos[1:5]:
            found = engine.detect(_degrade(load_image(p).pixels, rng), embed=True, max_faces=1)
            if found:
                shots.append(found[0])
        if face and len(shots) >= 2:
            gallery.append(face[0].embedding)
            probe_sets.append(shots)
    g = np.stack(gallery)
    single_hits = single_total = fused_hits = 0
    for i, shots in enumerate(probe_sets):
        for s in shots:
            single_hits += int(np.argmax(g @ s.embedding) == i)
            single_total += 1
        fused = fuse_templates([s.embedding for s in shots], [s.quality.overall for s in shots])
        fused_hits += int(np.argmax(g @ fused.vector) == i)
    single_rate, fused_rate = single_hits / single_total, fused_hits / len(probe_sets)
    print(f"rank-1 over {len(probe_sets)} identities: single degraded shot {single_rate:.3f}, "
          f"fused shots {fused_rate:.3f}")
    assert len(probe_sets) >= 15
    assert fused_rate >= single_rate
