"""Evaluation inputs: LFW-format and CSV pairs files, labelled image folders, and fold assignment.

Formats accepted by :func:`read_pairs`:

* LFW text (whitespace separated): ``name i j`` is a same-person pair, ``name1 i name2 j`` a
  different-person pair; image ``i`` of ``name`` is ``IMAGES/name/name_000i.jpg``. An optional first
  line is a header: one number ``N`` (view 1: N same + N different lines, no folds) or two numbers
  ``K N`` (view 2: K folds of N same then N different lines, so folds come from the file).
* CSV: ``path_a,path_b,same`` (header optional; ``same`` is 1/0, true/false, yes/no or same/different;
  an optional fourth column ``fold`` gives the folds). Paths are relative to IMAGES (or absolute).

Where a file has no folds, :func:`stratified_folds` makes 10 folds by dealing the genuine pairs and the
impostor pairs in file order round-robin (pair ``i`` of each kind goes to fold ``i mod 10``): balanced,
deterministic, and reproducible by anyone with the same file.

Labels files (:func:`read_labels`) are CSV with at least ``path`` and ``identity`` columns, paths relative
to IMAGES; optional ``role`` (``gallery``/``probe``), ``probe_group`` and any demographic columns.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceleads.errors import ValidationError

TRUE_WORDS = {"1", "true", "yes", "same", "y", "t", "match", "genuine"}
FALSE_WORDS = {"0", "false", "no", "different", "n", "f", "nonmatch", "impostor"}


@dataclass(frozen=True)
class Pair:
    """One comparison: two image paths and whether they show the same person."""

    a: Path
    b: Path
    same: bool
    fold: int | None = None
    line: int = 0


@dataclass
class PairSet:
    """The pairs of one file, with the file's folds when it has them."""

    source: Path
    pairs: list[Pair]
    folds_from_file: bool

    @property
    def same(self) -> npt.NDArray[np.bool_]:
        """Whether each pair is a genuine (same-person) pair."""
        return np.array([p.same for p in self.pairs], dtype=bool)

    def folds(self, k: int = 10) -> npt.NDArray[np.int64]:
        """The file's folds, or ``k`` stratified round-robin folds when the file has none."""
        if self.folds_from_file:
            return np.array([p.fold for p in self.pairs], dtype=np.int64)
        return stratified_folds(self.same, k)

    def images(self) -> list[Path]:
        """Every distinct image path, in first-seen order."""
        seen: dict[Path, None] = {}
        for p in self.pairs:
            seen.setdefault(p.a, None)
            seen.setdefault(p.b, None)
        return list(seen)


def stratified_folds(same: npt.ArrayLike, k: int = 10) -> npt.NDArray[np.int64]:
    """Deal genuine and impostor pairs, each in order, round-robin into ``k`` folds."""
    lab = np.asarray(same, dtype=bool).reshape(-1)
    if k < 2:
        raise ValidationError("at least two folds are needed")
    folds = np.empty(lab.size, dtype=np.int64)
    for kind in (True, False):
        idx = np.flatnonzero(lab == kind)
        folds[idx] = np.arange(idx.size) % k
    return folds


def lfw_image_path(images: Path, name: str, number: str | int) -> Path:
    """Path of image ``number`` (1-based) of ``name`` in the LFW folder layout."""
    try:
        n = int(number)
    except ValueError:
        raise ValidationError(f"image number {number!r} for {name!r} is not an integer") from None
    return images / name / f"{name}_{n:04d}.jpg"


def _parse_bool(value: str, where: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValidationError(f"{where}: cannot read {value!r} as same/different (use 1 or 0)")


def _resolve(images: Path, rel: str) -> Path:
    p = Path(rel.strip())
    return p if p.is_absolute() else images / p


def _read_csv_pairs(path: Path, images: Path, text: str) -> PairSet:
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValidationError(f"{path}: no pairs found")
    start = 0
    header = [c.strip().lower() for c in rows[0]]
    if header[:3] == ["path_a", "path_b", "same"]:
        start = 1
    elif len(header) < 3 or header[2] not in TRUE_WORDS | FALSE_WORDS:
        raise ValidationError(f"{path}: CSV pairs need a path_a,path_b,same header or rows like a.jpg,b.jpg,1")
    has_fold = start == 1 and len(header) >= 4 and header[3] == "fold"
    pairs: list[Pair] = []
    for lineno, row in enumerate(rows[start:], start=start + 1):
        if len(row) < 3:
            raise ValidationError(f"{path}:{lineno}: expected path_a,path_b,same, got {row}")
        fold = None
        if has_fold:
            try:
                fold = int(row[3])
            except (ValueError, IndexError):
                raise ValidationError(f"{path}:{lineno}: fold must be an integer") from None
        pairs.append(
            Pair(
                _resolve(images, row[0]),
                _resolve(images, row[1]),
                _parse_bool(row[2], f"{path}:{lineno}"),
                fold,
                lineno,
            )
        )
    return PairSet(path, pairs, folds_from_file=has_fold)


def _lfw_pair(images: Path, toks: list[str], lineno: int) -> Pair:
    if len(toks) == 3:
        return Pair(
            lfw_image_path(images, toks[0], toks[1]), lfw_image_path(images, toks[0], toks[2]), True, None, lineno
        )
    if len(toks) == 4:
        return Pair(
            lfw_image_path(images, toks[0], toks[1]), lfw_image_path(images, toks[2], toks[3]), False, None, lineno
        )
    raise ValidationError(f"expected 'name i j' or 'name1 i name2 j', got {' '.join(toks)!r}")


def _read_lfw_pairs(path: Path, images: Path, text: str) -> PairSet:
    lines = [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise ValidationError(f"{path}: no pairs found")
    header: list[int] | None = None
    first = lines[0][1]
    if len(first) <= 2 and all(tok.isdigit() for tok in first):
        header = [int(tok) for tok in first]
        lines = lines[1:]
    pairs: list[Pair] = []
    for lineno, toks in lines:
        try:
            pairs.append(_lfw_pair(images, toks, lineno))
        except ValidationError as exc:
            raise ValidationError(f"{path}:{lineno}: {exc}") from None
    folds_from_file = False
    if header is not None:
        k, n = (1, header[0]) if len(header) == 1 else (header[0], header[1])
        if len(pairs) != 2 * k * n:
            raise ValidationError(
                f"{path}: header says {' '.join(map(str, header))} ({2 * k * n} pairs) but the file has {len(pairs)}"
            )
        if len(header) == 2:
            folds_from_file = True
            pairs = [Pair(p.a, p.b, p.same, i // (2 * n), p.line) for i, p in enumerate(pairs)]
    return PairSet(path, pairs, folds_from_file=folds_from_file)


def read_pairs(path: Path, images: Path) -> PairSet:
    """Read an LFW-format or CSV pairs file (see the module docstring)."""
    if not path.is_file():
        raise ValidationError(f"pairs file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not a UTF-8 text file") from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if path.suffix.lower() == ".csv" or "," in first:
        return _read_csv_pairs(path, images, text)
    return _read_lfw_pairs(path, images, text)


@dataclass(frozen=True)
class LabelledImage:
    """One row of a labels file."""

    path: Path
    identity: str
    line: int
    role: str | None = None  # "gallery" / "probe" when the file has a role column
    probe_group: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


def read_labels(path: Path, images: Path, group_column: str | None = None) -> list[LabelledImage]:
    """Read a labels CSV (``path,identity[,role][,probe_group][,...]``), paths relative to ``images``."""
    if not path.is_file():
        raise ValidationError(f"labels file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        for needed in ("path", "identity"):
            if needed not in fields:
                raise ValidationError(f"{path}: labels file needs a {needed!r} column (has {fields})")
        if group_column is not None and group_column not in fields:
            raise ValidationError(f"{path}: no column {group_column!r} for groups (has {fields})")
        rows: list[LabelledImage] = []
        seen: set[Path] = set()
        for lineno, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            if not row.get("path"):
                raise ValidationError(f"{path}:{lineno}: empty path")
            if not row.get("identity"):
                raise ValidationError(f"{path}:{lineno}: empty identity")
            role = None
            if "role" in fields:
                role = row.get("role", "").lower()
                if role not in {"gallery", "probe"}:
                    raise ValidationError(f"{path}:{lineno}: role must be 'gallery' or 'probe', got {role!r}")
            image = _resolve(images, row["path"])
            if image in seen:
                raise ValidationError(f"{path}:{lineno}: image {row['path']} is listed twice")
            seen.add(image)
            rows.append(
                LabelledImage(
                    path=image,
                    identity=row["identity"],
                    line=lineno,
                    role=role,
                    probe_group=row.get("probe_group") or None,
                    columns=row,
                )
            )
    if not rows:
        raise ValidationError(f"{path}: no labelled images")
    return rows


def group_lookup(labels_file: Path, images: Path, group_column: str) -> dict[Path, str]:
    """Map image paths to their value in ``group_column``.

    Label paths are tried both relative to ``images`` and relative to the labels file's own folder, so
    one labels file serves pairs files whose image root differs (LFW's ``pairs`` vs ``labels.csv``).
    """
    out: dict[Path, str] = {}
    for root in (images, labels_file.parent):
        for row in read_labels(labels_file, root, group_column):
            out.setdefault(row.path.resolve(), row.columns.get(group_column, ""))
    return out


def check_exist(paths: Sequence[Path], what: str) -> None:
    """Refuse a data set whose listed images are missing, naming a few of them."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        sample = ", ".join(str(p) for p in missing[:3])
        raise ValidationError(f"{len(missing)} image(s) listed in the {what} do not exist, e.g. {sample}")
