"""Real face photos for the live tests, without requiring ../shared.

LFW (``../shared/faces/lfw-dev``) when present: people with at least two photos (one enrolled, another walks
through the video). Otherwise the faces of the model wheel's sample photos (players.jpg, gdp.jpg), one crop per
person (enrolled and walked through the video at another scale). None when neither is available: the caller skips.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.conftest import LFW_DIR


def lfw_people(minimum: int = 2) -> dict[str, list[Path]]:
    labels = LFW_DIR / "labels.csv"
    if not labels.is_file():
        return {}
    people: dict[str, list[Path]] = defaultdict(list)
    with labels.open(newline="") as fh:
        for row in csv.DictReader(fh):
            people[row["identity"]].append(LFW_DIR / row["path"])
    return {k: v for k, v in sorted(people.items()) if len(v) >= minimum}


def wheel_people(engine: Any, folder: Path) -> dict[str, list[Path]]:
    """One JPEG per face of the wheel's group photos, written into ``folder``."""
    from faceleads.vision.imaging import encode_jpeg, load_image
    from faceleads.vision.models import default_model_dir

    try:
        model_dir = default_model_dir()
    except Exception:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for name in ("players.jpg", "gdp.jpg"):
        path = model_dir / name
        if not path.is_file():
            continue
        image = load_image(path)
        for k, face in enumerate(engine.detect(image.pixels)):
            if face.quality.overall < 0.45:
                continue
            x1, y1, x2, y2 = (float(v) for v in face.box)
            w, h = x2 - x1, y2 - y1
            crop = image.pixels[max(0, int(y1 - h)) : int(y2 + h), max(0, int(x1 - w)) : int(x2 + w)]
            target = folder / f"{path.stem}-{k}.jpg"
            target.write_bytes(encode_jpeg(crop, quality=95))
            out[f"{path.stem}-{k}"] = [target]
    return out


def sample_people(engine: Any, folder: Path, count: int) -> dict[str, list[Path]] | None:
    """``count`` people with their photos (first = enrolled/listed photo, last = the one in the video)."""
    people = lfw_people()
    if len(people) >= count:
        return dict(list(people.items())[:count])
    people = wheel_people(engine, folder)
    if len(people) >= count:
        return dict(list(people.items())[:count])
    return None
