"""What the lawful-gallery condition costs the search index: the queries that decide which templates are searched.

Usage::

    .venv/bin/python benchmarks/lawful_overhead.py [--n 200000] [--json]

Builds a SQLite database of ``--n`` templates (rows only: synthetic ciphertext, one photo and booking per template,
a tenth of the bookings held under a withdrawn authority) through the real schema, then times, best of five:

- the searchable-template count the index compares on every change (``GalleryRuntime._searchable``), with the
  lawful-authority condition and without it;
- the full id set read when lawfulness changed (an authority withdrawn, records re-attributed);
- the per-search check of a candidate list's templates (``lawful.unlawful_template_ids``, 50 ids).

With ``--json``: exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def best_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(min(times) * 1000, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="templates in the database")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from sqlalchemy import func, insert, select

    from faceleads.db import Agency, create_schema, make_engine, make_session_factory, utcnow
    from faceleads.gallery import lawful
    from faceleads.gallery.models import (
        Encounter,
        FaceTemplate,
        Gallery,
        Image,
        LegalAuthority,
        Subject,
        SubjectStatus,
    )
    from faceleads.gallery.runtime import GalleryRuntime

    with tempfile.TemporaryDirectory(prefix="faceleads-lawful-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        create_schema(engine)
        factory = make_session_factory(engine)
        now, model = utcnow(), "bench-model"
        with factory() as session:
            session.execute(insert(Agency), [{"id": 1, "code": "BENCH", "name": "bench", "created_at": now}])
            session.execute(insert(LegalAuthority), [
                {"id": 1, "agency_id": 1, "code": "LISTED", "title": "Listed Act", "description": "", "active": True,
                 "added_by": "bench", "added_at": now},
                {"id": 2, "agency_id": 1, "code": "OLD", "title": "Old Act", "description": "", "active": False,
                 "added_by": "bench", "added_at": now}])  # fmt: skip
            session.execute(insert(Gallery), [{"id": 1, "agency_id": 1, "name": "bookings", "legal_authority": "x",
                                               "purposes": [], "created_at": now}])  # fmt: skip
            step = 20_000
            for start in range(1, args.n + 1, step):
                ids = range(start, min(args.n, start + step - 1) + 1)
                session.execute(insert(Subject), [
                    {"id": i, "agency_id": 1, "gallery_id": 1, "subject_number": f"S{i}", "key_id": f"subject:{i}",
                     "status": SubjectStatus.ACTIVE.value, "created_at": now} for i in ids])  # fmt: skip
                session.execute(insert(Encounter), [
                    {"id": i, "agency_id": 1, "subject_id": i, "booking_number": f"B{i}",
                     "booking_date": date(2020, 1, 1), "charge": "",
                     "legal_authority": "Old Act" if i % 10 == 0 else "Listed Act",
                     "authority_id": 2 if i % 10 == 0 else 1, "created_at": now} for i in ids])  # fmt: skip
                session.execute(insert(Image), [
                    {"id": i, "encounter_id": i, "subject_id": i, "gallery_id": 1, "sha256": f"{i:064d}",
                     "format": "jpeg", "size_bytes": 1, "width": 1, "height": 1, "source": "", "face_count": 1,
                     "flags": [], "created_at": now} for i in ids])  # fmt: skip
                session.execute(insert(FaceTemplate), [
                    {"id": i, "image_id": i, "subject_id": i, "gallery_id": 1, "box": [0, 0, 1, 1], "landmarks": [],
                     "detector_score": 1.0, "quality": {}, "quality_overall": 1.0, "model_name": "m",
                     "model_version": model, "embedding": b"x", "embedding_norm": 1.0, "created_at": now}
                    for i in ids])  # fmt: skip
            session.commit()
        with factory() as session:
            searchable = GalleryRuntime._searchable(model)
            plain = (
                select(FaceTemplate.id)
                .join(Subject, Subject.id == FaceTemplate.subject_id)
                .where(FaceTemplate.model_version == model, Subject.status == SubjectStatus.ACTIVE.value)
            )

            def count(query: Any) -> int:
                return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())

            lawful_n, all_n = count(searchable), count(plain)
            sample = list(range(1, args.n + 1, max(1, args.n // 50)))[:50]
            result = {
                "templates": args.n,
                "searchable_with_lawful_condition": lawful_n,
                "searchable_without": all_n,
                "count_ms_with_lawful_condition": best_ms(lambda: count(searchable)),
                "count_ms_without": best_ms(lambda: count(plain)),
                "id_set_ms_with_lawful_condition": best_ms(lambda: set(session.execute(searchable).scalars())),
                "id_set_ms_without": best_ms(lambda: set(session.execute(plain).scalars())),
                "candidate_check_ms_50_ids": best_ms(lambda: lawful.unlawful_template_ids(session, sample)),
                "generation_read_ms": best_ms(lambda: lawful.generation(session)),
            }
        engine.dispose()
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        for key, value in result.items():
            print(f"{key:40s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
