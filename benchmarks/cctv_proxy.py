"""CCTV proxy: LFW-dev photos degraded like CCTV stills, searched against the undegraded first photo of everyone.

    python benchmarks/cctv_proxy.py [--json] [--limit N] [--seed 15] [--variants baseline,upscale,...]

Protocol (docs/accuracy.md): the gallery is the first photo (file order) of each of the 3,095 LFW-dev identities,
undegraded. Every later photo of an identity with two or more photos (1,897) becomes a probe: its face (found by
the default detector on the undegraded photo) is cropped 1.0-1.3x its box, reduced to 12-30 px between the eyes,
blurred (motion or defocus), darkened with noise and JPEG-compressed at quality 15-40
(:mod:`faceleads.evaluation.degrade`; conditions drawn from a generator seeded with (seed, probe number), so a
probe is the same in every run and every variant). Each pipeline variant then finds the face in every probe, embeds
it and searches it (exact cosine, one template per gallery identity).

Per variant: ``probes``; ``no_face`` (share of probes where no face was found: each is a miss); ``rank1`` (share
of all probes whose mate is ranked first); ``rank1_found`` (the same among probes with a face);
``fused_rank1`` (each identity's found probes fused into one quality-weighted template, searched once: share of
identities ranked first, an identity with no face found in any probe counting as a miss); plus which detection
path found the faces and rank-1 per path. Probe detections and templates are cached under
``FACELEADS_DATA_DIR/cache/cctv_proxy`` (by probe set, seed, pipeline settings and the detection code), gallery
templates in the template cache of ``faceleads evaluate`` (``FACELEADS_DATA_DIR/cache/templates``), so a second run
only re-scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from faceleads.config import Settings
from faceleads.evaluation.degrade import cctv_probe, lfw_split
from faceleads.evaluation.templates import TemplateExtractor, embedding_matrix, fuse
from faceleads.vision import detector as detector_module
from faceleads.vision import engine as engine_module
from faceleads.vision import enhance, wholecrop
from faceleads.vision import quality as quality_module
from faceleads.vision.engine import ALIGNED_KEY, FaceEngine
from faceleads.vision.imaging import load_image

DEFAULT_LFW = (Path(__file__).resolve().parents[1] / ".." / "shared" / "faces" / "lfw-dev").resolve()

#: Pipeline variants, each a set of settings on top of the defaults; in the order they add features.
VARIANTS: dict[str, dict[str, Any]] = {
    # The engine before issue 15: no enlargement, no whole-crop fallback, no flip averaging, one model.
    "baseline": {"det_max_upscale": 1.0, "whole_crop": False, "flip_embedding": False, "recognizers": "arcface"},
    "upscale": {"det_max_upscale": 4.0, "whole_crop": False, "flip_embedding": False, "recognizers": "arcface"},
    "whole_crop": {"det_max_upscale": 4.0, "whole_crop": True, "flip_embedding": False, "recognizers": "arcface"},
    "flip": {"det_max_upscale": 4.0, "whole_crop": True, "flip_embedding": True, "recognizers": "arcface"},
    "edgeface": {"det_max_upscale": 4.0, "whole_crop": True, "flip_embedding": True, "recognizers": "edgeface"},
    "fusion": {
        "det_max_upscale": 4.0,
        "whole_crop": True,
        "flip_embedding": True,
        "recognizers": "arcface,edgeface",
    },
    # The licence-clean pack: YuNet + SFace (no 106-point model, so the whole-crop fallback does not apply).
    "open": {"model_pack": "open", "det_max_upscale": 4.0, "flip_embedding": True},
    "open_noflip": {"model_pack": "open", "det_max_upscale": 4.0, "flip_embedding": False},
}


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class Cache:
    """npz files under the data directory, keyed by a digest of what produced them."""

    def __init__(self, directory: Path, enabled: bool) -> None:
        self.directory = directory
        self.enabled = enabled
        if enabled:
            directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.directory / f"{key}.npz"
        if not self.enabled or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def put(self, key: str, **arrays: np.ndarray) -> None:
        if self.enabled:
            tmp = self.directory / f"{key}.tmp.npz"
            np.savez(tmp, **arrays)
            tmp.replace(self.directory / f"{key}.npz")


def _code_digest() -> str:
    """Digest of the source of the modules that find faces: cached detections are stale once any of them changes."""
    digest = hashlib.sha256()
    for module in (detector_module, engine_module, enhance, wholecrop, quality_module):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def _finder_key(settings: Settings) -> tuple[Any, ...]:
    s = settings
    return (
        _code_digest(),
        s.model_pack,
        s.det_max_upscale,
        s.whole_crop,
        s.whole_crop_max_side,
        s.det_threshold,
    )


def _find(engine: FaceEngine, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Most prominent face of each image: aligned crop, quality, path (''), or zeros when none was found."""
    n = len(images)
    crops = np.zeros((n, 112, 112, 3), np.uint8)
    qualities = np.zeros(n, np.float32)
    paths = np.array([""] * n, dtype="<U12")
    for i, pixels in enumerate(images):
        faces = engine.detect(pixels, max_faces=1)
        if faces:
            crops[i] = faces[0].extra[ALIGNED_KEY]
            qualities[i] = faces[0].quality.overall
            paths[i] = faces[0].found_by
    return {"crops": crops, "quality": qualities, "paths": paths}


def _embed(engine: FaceEngine, crops: np.ndarray, found: np.ndarray) -> np.ndarray:
    out = np.zeros((len(crops), engine.embedding_dim), np.float32)
    idx = np.nonzero(found)[0]
    for start in range(0, len(idx), 64):
        chunk = idx[start : start + 64]
        out[chunk] = engine.embed_aligned(list(crops[chunk]))[0]
    return out


def _rank1(probe_vecs: np.ndarray, gallery_vecs: np.ndarray, mates: np.ndarray) -> np.ndarray:
    """Whether each probe's mate (gallery row ``mates[i]``) scores strictly above every other gallery row."""
    scores = probe_vecs @ gallery_vecs.T
    mate_scores = scores[np.arange(len(mates)), mates]
    # Ties count against the mate (as in faceleads evaluate identify).
    return (scores >= mate_scores[:, None]).sum(axis=1) == 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    gallery, probes = lfw_split(args.lfw)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(probes))
    order = np.sort(order[: args.limit]) if args.limit else np.arange(len(probes))
    probes = [probes[i] for i in order]
    names = [name for name, _ in gallery]
    row_of = {name: i for i, name in enumerate(names)}
    mates = np.array([row_of[name] for name, _ in probes])
    base = Settings()
    cache = Cache(base.data_dir / "cache" / "cctv_proxy", not args.no_cache)
    probe_set = _key([str(p.relative_to(args.lfw)) for _, p in probes], args.seed)

    # Reference geometry of each probe's face, on the undegraded photo, by the default detector.
    ref_key = _key("reference", probe_set)
    ref = cache.get(ref_key)
    if ref is None:
        engine = FaceEngine(Settings(whole_crop=False))
        boxes = np.zeros((len(probes), 4), np.float32)
        marks = np.zeros((len(probes), 5, 2), np.float32)
        ok = np.zeros(len(probes), bool)
        for i, (_, path) in enumerate(probes):
            faces = engine.detect(load_image(path).pixels, max_faces=1)
            if faces:
                boxes[i], marks[i], ok[i] = faces[0].box, faces[0].landmarks, True
        ref = {"boxes": boxes, "marks": marks, "ok": ok}
        cache.put(ref_key, **ref)
    usable = ref["ok"]
    degraded: list[np.ndarray] = []
    for i, (_, path) in enumerate(probes):
        if not usable[i]:
            degraded.append(np.zeros((8, 8, 3), np.uint8))
            continue
        pixels = load_image(path).pixels
        degraded.append(cctv_probe(pixels, ref["boxes"][i], ref["marks"][i], args.seed, int(order[i]))[0])
    if args.save_probes:
        args.save_probes.mkdir(parents=True, exist_ok=True)
        import cv2

        for i, img in enumerate(degraded[: args.save_probes_count]):
            cv2.imwrite(str(args.save_probes / f"probe_{i:04d}.png"), img[..., ::-1])

    results: dict[str, Any] = {}
    for name in args.variants:
        overrides = VARIANTS[name]
        settings = Settings(**overrides)
        v_started = time.perf_counter()
        engine = FaceEngine(settings)
        fkey = _key("probes", probe_set, _finder_key(settings))
        found = cache.get(fkey)
        if found is None:
            found = _find(engine, degraded)
            cache.put(fkey, **found)
        ok = found["paths"] != ""
        ok &= usable
        ekey = _key("emb", fkey, engine.model_version)
        emb = cache.get(ekey)
        if emb is None:
            emb = {"v": _embed(engine, found["crops"], ok)}
            cache.put(ekey, **emb)
        # The gallery is enrolled with the variant's recognition models and the default detection settings (good
        # photos: the plain detector finds every face), its templates computed exactly as `faceleads evaluate`
        # computes them, through its template cache (a variant already evaluated on LFW-dev costs nothing here).
        defaults = Settings()
        gallery_settings = settings.model_copy(
            update={"det_max_upscale": defaults.det_max_upscale, "whole_crop": defaults.whole_crop}
        )
        extractor = TemplateExtractor(gallery_settings, use_cache=not args.no_cache)
        templates = extractor.templates([p for _, p in gallery], f"gallery ({name})")
        gallery_templates = [templates[p] for _, p in gallery]
        gv, g_ok = embedding_matrix(gallery_templates)
        pv = emb["v"]
        hit = _rank1(pv, gv, mates) & ok & g_ok[mates]
        n = len(probes)
        by_identity: dict[int, list[int]] = defaultdict(list)
        for i in range(n):
            by_identity[int(mates[i])].append(i)
        fused_hits = 0
        for mate, members in by_identity.items():
            found_members = [i for i in members if ok[i]]
            if not found_members or not g_ok[mate]:
                continue
            vec = fuse(pv[found_members], found["quality"][found_members])
            fused_hits += bool(_rank1(vec[None], gv, np.array([mate]))[0])
        paths = found["paths"][ok]
        found_by = {p: int((paths == p).sum()) for p in sorted(set(paths.tolist()))}
        rank1_by_path = {p: round(float(hit[ok & (found["paths"] == p)].mean()), 4) for p in found_by}
        results[name] = {
            "probes": n,
            "no_face": round(float(1 - ok.mean()), 4),
            "rank1": round(float(hit.mean()), 4),
            "rank1_found": round(float(hit[ok].mean()), 4) if ok.any() else None,
            "fused_rank1": round(fused_hits / len(by_identity), 4),
            "fused_identities": len(by_identity),
            "found_by": found_by,
            "rank1_by_path": rank1_by_path,
            "gallery_no_face": int((~g_ok).sum()),
            "gallery_templates_computed": extractor.computed,
            "model_version": engine.model_version,
            "settings": overrides,
            "seconds": round(time.perf_counter() - v_started, 1),
        }
        r = results[name]  # progress on stderr (stdout stays one JSON object)
        print(
            f"{name:12s} no_face {r['no_face']:.4f}  rank1 {r['rank1']:.4f}  rank1_found {r['rank1_found']}  "
            f"fused_rank1 {r['fused_rank1']:.4f}  paths {found_by}",
            file=sys.stderr,
            flush=True,
        )
    return {
        "probes": len(probes),
        "unusable_originals": int((~usable).sum()),
        "gallery": len(gallery),
        "seed": args.seed,
        "variants": results,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="the lfw-dev folder")
    parser.add_argument("--seed", type=int, default=15, help="degradation seed (default 15)")
    parser.add_argument("--limit", type=int, default=0, help="only N probes (seeded sample; 0 = all 1,897)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated pipeline variants (default all: {','.join(VARIANTS)})",
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute detections and templates")
    parser.add_argument("--save-probes", type=Path, default=None, help="write the first degraded probes here (PNG)")
    parser.add_argument("--save-probes-count", type=int, default=48)
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    result = run(args)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
