"""Real 1:N identification on LFW development data through the real bulk enrolment path.

Gallery: one photo per LFW dev identity (3,095 subjects), enrolled with ``enroll bulk`` semantics and worker
processes. Probes: every other photo of identities with several photos (1,897). Identities with a single photo are
distractors. Required: rank-1 hit rate of at least 98.5%.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from faceleads.cli.context import cli_actor
from faceleads.gallery.bulk import analyse_many, enrol_manifest
from faceleads.gallery.models import Image
from faceleads.gallery.search import rank_subjects
from tests.conftest import lfw_gender, lfw_identities
from tests.gallery.conftest import write_manifest
from tests.lawful import search_on_case


# 4,992 photos detected and embedded for real (gallery and probes), each face with its mirror image (flip averaging
# doubles the embedding cost, ~30 ms a photo on one core): about 2.5 minutes on two lightly loaded cores, but it once
# ran past the suite's 900 s limit on a machine shared by several test runs. Its own limit is raised rather than the
# work cut: the real enrolment and search of every photo is what is being tested.
@pytest.mark.slow
@pytest.mark.measurement
@pytest.mark.timeout(2700)
def test_lfw_dev_rank1(rt, tmp_path, full_lfw_dir) -> None:  # type: ignore[no-untyped-def]
    people = lfw_identities(full_lfw_dir)
    gender = lfw_gender(full_lfw_dir)
    actor = cli_actor(rt, "DEV")
    rows = [
        [
            "DEV",
            name,
            f"LFW-{i:05d}",
            "2020-01-01",
            "LFW evaluation (test data)",
            str(photos[0]),
            gender[name] if gender[name] in ("M", "F") else "",  # labels.csv also says "conflict"
        ]
        for i, (name, photos) in enumerate(sorted(people.items()))
    ]
    report = enrol_manifest(rt, actor, write_manifest(tmp_path / "lfw.csv", rows), workers=2, photo_root=full_lfw_dir)
    assert report.errors == 0, report.error_rows[:5]
    assert report.enrolled == len(people) == 3095
    with rt.session_factory() as session:
        no_face = session.scalar(select(func.count()).select_from(Image).where(Image.face_count == 0))
    assert no_face <= 3  # the detector finds a face in (nearly) every LFW photo

    with rt.session_factory() as session:
        number_of = dict(session.execute(select(Image.subject_id, Image.source)).all())
    subject_name = {sid: source.split("/")[-2] for sid, source in number_of.items()}
    probes = [(name, p) for name, photos in sorted(people.items()) for p in photos[1:]]
    assert len(probes) == 1897
    with rt.session_factory() as session:
        galleries = sorted(set(session.scalars(select(Image.gallery_id))))
    hits = misses = no_face_probes = 0
    # Probes are analysed in worker processes too (the same pool the bulk enrolment uses): both cores busy.
    photos = ((name, path.read_bytes()) for name, path in probes)
    for name, analysis in analyse_many(rt, photos, workers=2):
        assert not isinstance(analysis, str), analysis
        if analysis.face is None:
            no_face_probes += 1
            misses += 1
            continue
        ranked = rank_subjects(rt, analysis.face.embedding, galleries, 20)
        if ranked and subject_name[ranked[0].subject_id] == name:
            hits += 1
        else:
            misses += 1
    rank1 = hits / len(probes)
    print(
        f"\nLFW dev identification: gallery {len(people)}, probes {len(probes)}, rank-1 {rank1:.4f}, "
        f"probes without face {no_face_probes}"
    )
    assert rank1 >= 0.985

    # The full search path (recorded, consolidated) agrees with the ranking core on a few probes.
    for _name, path in probes[:5]:
        result = search_on_case(rt, actor, path, case="LFW", offence="TEST", reason="accuracy check", top=5)
        assert result.gallery_size == 3095 - no_face
        assert len({c.subject_id for c in result.candidates}) == 5
        assert np.isfinite([c.score for c in result.candidates]).all()
