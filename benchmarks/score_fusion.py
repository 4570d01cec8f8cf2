"""Subject score fusion on LFW dev: best single photo versus fused mean template, through the real search path.

Usage: ``python benchmarks/score_fusion.py [--json] [--workers N] [--lfw DIR]``.

Protocol: identities with at least three photos give their last photo as a probe; every other LFW dev photo is
enrolled (``enroll bulk`` path, worker processes), so each probed subject has two or more gallery photos and
single-photo identities act as distractors. Each probe is ranked with ``ScoreFusion.BEST`` and
``ScoreFusion.MEAN_TEMPLATE`` by :func:`faceleads.gallery.search.rank_subjects`. Reported per method: rank-1 and
rank-5 hit rates, the median margin between the mated subject's score and the best non-mated score, and the
share of probes whose mated score reaches ``Settings.similarity_threshold``, and an open-set figure: FNIR at the
score threshold that 1% of the probes' best non-mated subjects reach (FPIR = 1%).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

DEFAULT_LFW = (Path(__file__).resolve().parents[1] / ".." / "shared" / "faces" / "lfw-dev").resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="the lfw-dev folder")
    args = parser.parse_args(argv)

    people: dict[str, list[Path]] = defaultdict(list)
    with (args.lfw / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            people[row["identity"]].append(args.lfw / row["path"])
    probes = [(name, photos[-1]) for name, photos in sorted(people.items()) if len(photos) >= 3]
    probe_paths = {p for _, p in probes}

    with tempfile.TemporaryDirectory(prefix="faceleads-fusion-") as tmp:
        tmp_dir = Path(tmp)
        os.environ["FACELEADS_DATA_DIR"] = str(tmp_dir / "data")
        from sqlalchemy import select

        from faceleads.cli.context import cli_actor
        from faceleads.config import ScoreFusion, Settings
        from faceleads.gallery.bulk import analyse_many, enrol_manifest
        from faceleads.gallery.models import Image, Subject
        from faceleads.gallery.runtime import GalleryRuntime
        from faceleads.gallery.search import rank_subjects

        settings = Settings(data_dir=tmp_dir / "data")
        manifest = tmp_dir / "manifest.csv"
        with manifest.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["agency", "subject", "booking", "date", "authority", "photo"])
            n = 0
            for name, photos in sorted(people.items()):
                for photo in photos:
                    if photo not in probe_paths:
                        photo_rel = os.path.relpath(photo, manifest.parent)  # relative to the manifest
                        writer.writerow(["BENCH", name, f"B{n:06d}", "2020-01-01", "benchmark", photo_rel])
                        n += 1
        rt = GalleryRuntime(settings)
        actor = cli_actor(rt, "BENCH")
        # Only records held under a listed legal authority are enrolled (docs/gallery.md, "Lawful gallery").
        from faceleads.gallery.authorities import add_authority

        add_authority(rt, actor, "benchmark", "Benchmark data (LFW), not booking records")
        started = time.perf_counter()
        report = enrol_manifest(rt, actor, manifest, workers=args.workers, photo_root=args.lfw.resolve())
        enrol_s = time.perf_counter() - started
        with rt.session_factory() as session:
            names = {sid: number for sid, number in session.execute(select(Subject.id, Subject.subject_number))}
            galleries = sorted(set(session.scalars(select(Image.gallery_id))))
        threshold = settings.similarity_threshold
        stats: dict[str, dict[str, list[float]]] = {m.value: defaultdict(list) for m in ScoreFusion}
        workers = settings.effective_workers if args.workers is None else args.workers
        photos = ((name, path.read_bytes()) for name, path in probes)
        for name, analysis in analyse_many(rt, photos, workers):
            if isinstance(analysis, str):
                raise SystemExit(f"probe of {name} unreadable: {analysis}")
            for method in ScoreFusion:
                s = stats[method.value]
                if analysis.face is None:
                    s["rank1"].append(0.0)
                    s["rank5"].append(0.0)
                    s["at_threshold"].append(0.0)
                    continue
                ranked = rank_subjects(rt, analysis.face.embedding, galleries, 50, fusion=method)
                order = [names[r.subject_id] for r in ranked]
                mated = next((r.score for r in ranked if names[r.subject_id] == name), None)
                best_other = next((r.score for r in ranked if names[r.subject_id] != name), -1.0)
                s["rank1"].append(float(bool(order) and order[0] == name))
                s["rank5"].append(float(name in order[:5]))
                s["at_threshold"].append(float(mated is not None and mated >= threshold))
                if mated is not None:
                    s["margin"].append(mated - best_other)
                    s["mated"].append(mated)
                s["mated_or_miss"].append(mated if mated is not None else -1.0)
                s["nonmated_top"].append(best_other)
        rt.close()

    result: dict[str, object] = {
        "gallery_photos": report.total,
        "gallery_subjects": len(people),
        "probes": len(probes),
        "enrol_seconds": round(enrol_s, 1),
        "threshold": threshold,
    }
    for method, s in stats.items():
        # Open-set view: the best non-mated subject of each probe stands for a search of someone not enrolled.
        # FNIR at the threshold that lets through 1% of those (FPIR = 1%).
        nonmated = np.asarray(s["nonmated_top"])
        t_fpir = float(np.quantile(nonmated, 0.99)) if nonmated.size else 0.0
        fnir = float(np.mean(np.asarray(s["mated_or_miss"]) < t_fpir)) if nonmated.size else 0.0
        result[method] = {
            "fnir_at_fpir_1pct": round(fnir, 4),
            "threshold_at_fpir_1pct": round(t_fpir, 4),
            "rank1": round(float(np.mean(s["rank1"])), 4),
            "rank5": round(float(np.mean(s["rank5"])), 4),
            "hit_at_threshold": round(float(np.mean(s["at_threshold"])), 4),
            "median_mated_score": round(float(np.median(s["mated"])), 4) if s["mated"] else None,
            "median_margin": round(float(np.median(s["margin"])), 4) if s["margin"] else None,
            "median_top_nonmated": round(float(np.median(s["nonmated_top"])), 4),
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
