"""Evaluation templates: one embedding per image, cached by image SHA-256 and model version.

Evaluation runs over thousands of images and is repeated (other thresholds, other splits, other group
columns), so templates are kept in a SQLite file under ``settings.data_dir / "cache" / "templates"``.
The key is the SHA-256 of the image file's bytes plus a *pipeline key*: the embedding model version
and the detector settings that shape the aligned crop. A changed model or detector therefore never
reuses stale templates. Failures to enrol (unreadable image, no face) are cached too: they are
deterministic for a given image and pipeline.

The template of an image is the embedding of its most prominent face (the engine's first face).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from faceleads.config import Settings
from faceleads.errors import FaceleadsError, ImageError
from faceleads.vision.engine import FaceEngine
from faceleads.vision.imaging import load_image

EMBEDDING_DIM = 512  # the length assumed when no template at all was computed


@dataclass(frozen=True)
class Template:
    """The template of one image, or the reason it has none (failure to enrol)."""

    sha256: str
    embedding: npt.NDArray[np.float32] | None
    quality: float = 0.0
    faces: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a face was found and embedded."""
        return self.embedding is not None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (the same digest the safe intake records)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class TemplateCache:
    """A SQLite table of templates keyed by ``(sha256, pipeline)``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "templates.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60.0)  # other evaluation runs may be writing
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS templates (sha256 TEXT NOT NULL, pipeline TEXT NOT NULL, "
            "embedding BLOB, quality REAL NOT NULL, faces INTEGER NOT NULL, error TEXT, "
            "PRIMARY KEY (sha256, pipeline))"
        )
        self._db.commit()

    def get_many(self, digests: Sequence[str], pipeline: str) -> dict[str, Template]:
        """The cached templates among ``digests`` for this pipeline."""
        out: dict[str, Template] = {}
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT sha256, embedding, quality, faces, error FROM templates "
                f"WHERE pipeline = ? AND sha256 IN ({marks})",
                [pipeline, *chunk],
            )
            for sha, blob, quality, faces, error in rows:
                vec = None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()
                out[sha] = Template(sha, vec, float(quality), int(faces), error)
        return out

    def put_many(self, templates: Sequence[Template], pipeline: str) -> None:
        """Store templates (replacing any for the same key)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    t.sha256,
                    pipeline,
                    None if t.embedding is None else np.asarray(t.embedding, np.float32).tobytes(),
                    t.quality,
                    t.faces,
                    t.error,
                )
                for t in templates
            ],
        )
        self._db.commit()

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()


def cache_dir(settings: Settings) -> Path:
    """Where evaluation templates are cached."""
    return settings.data_dir / "cache" / "templates"


@contextmanager
def progress_bar(label: str, total: int, quiet: bool = False) -> Iterator[Progress]:
    """A Rich progress bar on stderr (stdout stays clean for ``--json``)."""
    console = Console(stderr=True, quiet=quiet or not sys.stderr.isatty())
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield progress


class TemplateExtractor:
    """Computes image templates with the face engine, through the cache.

    ``computed`` counts the images actually sent to the engine (cache misses), so callers and tests can
    see that a re-run recomputes nothing.
    """

    def __init__(self, settings: Settings, engine: FaceEngine | None = None, use_cache: bool = True) -> None:
        self.settings = settings
        self._engine = engine
        self.use_cache = use_cache
        self.computed = 0

    @property
    def engine(self) -> FaceEngine:
        """The face engine (loaded on first use)."""
        if self._engine is None:
            self._engine = FaceEngine(self.settings)
        return self._engine

    @property
    def pipeline(self) -> str:
        """The cache key part naming the model and the detector settings."""
        s = self.settings
        detector = s.detector_file if s.model_pack == "insightface" else s.model_pack
        return (
            f"{self.engine.model_version}|{detector}|{s.det_size}|{s.det_threshold}|{s.nms_threshold}"
            f"|up{s.det_max_upscale:g}|wc{int(s.whole_crop)}:{s.whole_crop_max_side}"
        )

    def _compute(self, path: Path, sha: str) -> Template:
        try:
            image = load_image(path, self.settings)
        except ImageError as exc:
            return Template(sha, None, error=f"image refused: {exc}")
        faces = self.engine.detect(image.pixels)
        if not faces:
            return Template(sha, None, error="no face found")
        # Only the most prominent face is the image's template: embed it alone.
        self.engine.embed_faces(image.pixels, faces[:1])
        emb = faces[0].embedding
        assert emb is not None
        return Template(sha, np.asarray(emb, np.float32), float(faces[0].quality.overall), len(faces))

    def templates(self, paths: Sequence[Path], label: str = "templates") -> dict[Path, Template]:
        """The template of every path (missing files raise :class:`faceleads.errors.ValidationError`)."""
        from faceleads.evaluation.datasets import check_exist  # local: avoids an import cycle in typing

        unique = list(dict.fromkeys(paths))
        check_exist(unique, "data set")
        digests = {p: file_sha256(p) for p in unique}
        pipeline = self.pipeline
        cache = TemplateCache(cache_dir(self.settings)) if self.use_cache else None
        try:
            known = cache.get_many(list(digests.values()), pipeline) if cache else {}
            todo: dict[str, Path] = {}
            for p, sha in digests.items():
                if sha not in known:
                    todo.setdefault(sha, p)
            if todo:
                workers = max(1, min(self.settings.effective_workers, 4))
                fresh: list[Template] = []
                with (
                    progress_bar(f"{label}: extracting", len(todo)) as bar,
                    ThreadPoolExecutor(max_workers=workers) as pool,
                ):
                    task = bar.add_task(label, total=len(todo))
                    for tmpl in pool.map(lambda item: self._compute(item[1], item[0]), todo.items()):
                        fresh.append(tmpl)
                        self.computed += 1
                        bar.advance(task)
                        if cache and len(fresh) % 200 == 0:  # keep progress if interrupted
                            cache.put_many(fresh[-200:], pipeline)
                if cache:
                    cache.put_many(fresh, pipeline)
                known.update({t.sha256: t for t in fresh})
        finally:
            if cache:
                cache.close()
        return {p: known[sha] for p, sha in digests.items()}


def embedding_matrix(
    templates: Sequence[Template],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Stack templates as an (n, dim) float32 matrix (zeros for failures) and an ``ok`` mask.

    ``dim`` is the templates' own length (512 for one ArcFace-size model, more for a fusion of models).
    """
    ok = np.array([t.ok for t in templates], dtype=bool)
    dim = next((t.embedding.size for t in templates if t.embedding is not None), EMBEDDING_DIM)
    mat = np.zeros((len(templates), dim), dtype=np.float32)
    for i, t in enumerate(templates):
        if t.embedding is not None:
            mat[i] = t.embedding
    return mat, ok


def fuse(embeddings: npt.NDArray[np.float32], qualities: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Quality-weighted mean of L2-normalised embeddings, renormalised (several shots of one person)."""
    w = np.clip(np.asarray(qualities, dtype=np.float64).reshape(-1), 1e-3, None)  # never a zero weight
    if embeddings.shape[0] != w.size or w.size == 0:
        raise FaceleadsError("fusion needs one quality per embedding and at least one embedding")
    mean = (embeddings.astype(np.float64) * w[:, None]).sum(axis=0) / w.sum()
    norm = float(np.linalg.norm(mean))
    if norm == 0.0:
        return embeddings[0].astype(np.float32)
    return (mean / norm).astype(np.float32)
