"""Rebuild the in-repository face fixture set (tests/data/lfw-mini) from the shared LFW development set.

The fixture set lets a fresh clone run every test that needs real faces without ``../shared/faces``. It is a
deterministic subset of LFW's development view (deep-funneled 250x250 JPEGs, copied byte for byte, never
re-encoded), chosen so that the tests' own selections find what they need:

- every photo of the people the tests name (Al_Gore, AJ_Cook, Aaron_Peirsol, ...);
- the first 20 identities (by name) with 5+ photos, 5 photos each (fusion and casework galleries);
- the photos of the first and last 20 lines of ``pairsDevTest.txt`` (written as ``pairs.txt``);
- the photos the evaluation test's 30-identity labels file picks (8 women and 12 men with 2+ photos, 10 with one);
- two photos with several faces in them (Abdel_Nasser_Assidi_0001, Akmal_Taher_0001);
- then two photos each of further identities (by name) until 80 identities have 2+ photos (bulk kill/resume tests).

Usage: ``python scripts/build_test_faces.py [--source ../shared/faces/lfw-dev] [--dest tests/data/lfw-mini]``
"""

from __future__ import annotations

import argparse
import csv
import shutil
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMED = [
    "Abdel_Nasser_Assidi", "Abdullah_Gul", "Abel_Pacheco", "AJ_Cook", "Aaron_Peirsol", "Adam_Sandler", "Ai_Sugiyama",
    "Al_Gore", "Albert_Costa",
]
MULTI_FACE = ["images/Abdel_Nasser_Assidi/Abdel_Nasser_Assidi_0001.jpg", "images/Akmal_Taher/Akmal_Taher_0001.jpg"]
FIVE_PHOTO_PEOPLE = 20
PAIR_LINES = 20
TWO_PHOTO_PEOPLE = 80
MAX_BYTES = 3 * 1024 * 1024


def pair_paths(line: str) -> list[str]:
    """Image paths of one ``pairsDevTest.txt`` line (``name i j`` or ``name1 i name2 j``)."""
    parts = line.split()
    if len(parts) == 3:
        name, i, j = parts
        pairs = [(name, i), (name, j)]
    else:
        pairs = [(parts[0], parts[1]), (parts[2], parts[3])]
    return [f"images/{n}/{n}_{int(k):04d}.jpg" for n, k in pairs]


def select(source: Path) -> tuple[list[dict[str, str]], list[str]]:
    """The labels rows to copy (in the source's order) and the pair lines."""
    with (source / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    people: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        people[row["identity"]].append(row)
    wanted: set[str] = set(MULTI_FACE)
    for name in NAMED:
        wanted.update(r["path"] for r in people[name])
    five = [name for name in sorted(people) if len(people[name]) >= 5][:FIVE_PHOTO_PEOPLE]
    for name in five:
        wanted.update(r["path"] for r in sorted(people[name], key=lambda r: r["path"])[:5])
    lines = (source / "pairsDevTest.txt").read_text().splitlines()
    pair_lines = lines[:PAIR_LINES] + lines[-PAIR_LINES:]
    for line in pair_lines:
        wanted.update(pair_paths(line))
    # The evaluation test's labels file (tests/evaluation/test_cli.py::labels30), taken from the full set.
    labelled: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row["gender"] in {"F", "M"}:
            labelled.setdefault(row["identity"], []).append(row)
    multi = [v[:3] for v in labelled.values() if len(v) >= 2]
    single = [v for v in labelled.values() if len(v) == 1]
    chosen = [v for v in multi if v[0]["gender"] == "F"][:8] + [v for v in multi if v[0]["gender"] == "M"][:12]
    for group in [*chosen, *single[:10]]:
        wanted.update(r["path"] for r in group)
    counts: dict[str, int] = defaultdict(int)
    for path in wanted:
        counts[path.split("/")[1]] += 1
    for name in sorted(people):
        if sum(1 for n in counts.values() if n >= 2) >= TWO_PHOTO_PEOPLE:
            break
        if len(people[name]) >= 2 and counts[name] < 2:
            for r in sorted(people[name], key=lambda r: r["path"]):
                if counts[name] < 2 and r["path"] not in wanted:
                    wanted.add(r["path"])
                    counts[name] += 1
    return [r for r in rows if r["path"] in wanted], pair_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "faces" / "lfw-dev")
    parser.add_argument("--dest", type=Path, default=ROOT / "tests" / "data" / "lfw-mini")
    args = parser.parse_args()
    rows, pair_lines = select(args.source)
    images = args.dest / "images"
    if images.exists():
        shutil.rmtree(images)
    total = 0
    for row in rows:
        target = args.dest / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.source / row["path"], target)
        total += target.stat().st_size
    with (args.dest / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "identity", "gender"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (args.dest / "pairs.txt").write_text("\n".join(pair_lines) + "\n")
    people = defaultdict(int)
    for row in rows:
        people[row["identity"]] += 1
    print(f"{len(rows)} photos of {len(people)} people ({sum(1 for n in people.values() if n >= 2)} with 2+), "
          f"{total / 2**20:.2f} MiB")
    if total > MAX_BYTES:
        raise SystemExit(f"fixture set too large: {total} bytes > {MAX_BYTES}")


if __name__ == "__main__":
    main()
