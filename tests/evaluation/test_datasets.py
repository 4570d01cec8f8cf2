"""Pairs and labels parsing, folds, gallery/probe splits and exact search on hand-made inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from faceleads.config import ScoreFusion
from faceleads.errors import ValidationError
from faceleads.evaluation import identify
from faceleads.evaluation.calibrate import write_threshold
from faceleads.evaluation.datasets import (
    LabelledImage,
    read_labels,
    read_pairs,
    stratified_folds,
)
from faceleads.evaluation.templates import Template, fuse
from faceleads.evaluation.verify import rate_key

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_lfw_pairs_without_header(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.txt", "Ann\t1\t2\nAnn 1 Bob 3\n\n")
    ps = read_pairs(f, tmp_path / "img")
    assert [p.same for p in ps.pairs] == [True, False]
    assert ps.pairs[0].a == tmp_path / "img" / "Ann" / "Ann_0001.jpg"
    assert ps.pairs[1].b == tmp_path / "img" / "Bob" / "Bob_0003.jpg"
    assert not ps.folds_from_file
    assert ps.images() == [
        tmp_path / "img/Ann/Ann_0001.jpg",
        tmp_path / "img/Ann/Ann_0002.jpg",
        tmp_path / "img/Bob/Bob_0003.jpg",
    ]


def test_lfw_pairs_view1_header_has_no_folds(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.txt", "1\nAnn 1 2\nAnn 1 Bob 1\n")
    ps = read_pairs(f, tmp_path)
    assert len(ps.pairs) == 2 and not ps.folds_from_file


def test_lfw_pairs_view2_header_gives_folds(tmp_path: Path) -> None:
    lines = ["2\t1", "Ann 1 2", "Ann 1 Bob 1", "Cy 1 2", "Cy 1 Dee 2"]
    ps = read_pairs(_write(tmp_path / "p.txt", "\n".join(lines)), tmp_path)
    assert ps.folds_from_file
    assert ps.folds().tolist() == [0, 0, 1, 1]


def test_lfw_pairs_bad_lines_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"p.txt:2"):
        read_pairs(_write(tmp_path / "p.txt", "Ann 1 2\nAnn 1 Bob\nx y\n"), tmp_path)
    with pytest.raises(ValidationError, match="header says"):
        read_pairs(_write(tmp_path / "q.txt", "2 1\nAnn 1 2\n"), tmp_path)
    with pytest.raises(ValidationError, match="not an integer"):
        read_pairs(_write(tmp_path / "r.txt", "Ann one 2\n"), tmp_path)
    with pytest.raises(ValidationError, match="not found"):
        read_pairs(tmp_path / "missing.txt", tmp_path)


def test_csv_pairs_with_and_without_header(tmp_path: Path) -> None:
    with_header = read_pairs(
        _write(tmp_path / "a.csv", "path_a,path_b,same\nx.jpg,y.jpg,1\nx.jpg,z.jpg,no\n"), tmp_path
    )
    assert [p.same for p in with_header.pairs] == [True, False]
    assert with_header.pairs[0].a == tmp_path / "x.jpg"
    bare = read_pairs(_write(tmp_path / "b.csv", "x.jpg,y.jpg,true\n/abs/z.jpg,y.jpg,0\n"), tmp_path)
    assert bare.pairs[1].a == Path("/abs/z.jpg")
    folds = read_pairs(_write(tmp_path / "c.csv", "path_a,path_b,same,fold\na,b,1,0\nc,d,0,1\n"), tmp_path)
    assert folds.folds_from_file and folds.folds().tolist() == [0, 1]
    with pytest.raises(ValidationError, match="same/different"):
        read_pairs(_write(tmp_path / "d.csv", "path_a,path_b,same\na,b,maybe\n"), tmp_path)


def test_stratified_folds_deal_each_class_round_robin() -> None:
    same = [True, True, False, True, False, False]
    assert stratified_folds(same, k=2).tolist() == [0, 1, 0, 0, 1, 0]


def test_read_labels(tmp_path: Path) -> None:
    f = _write(tmp_path / "l.csv", "path,identity,gender\r\na.jpg,A,F\r\nb.jpg,B,\r\n")
    rows = read_labels(f, tmp_path, "gender")
    assert [(r.path.name, r.identity, r.columns["gender"]) for r in rows] == [("a.jpg", "A", "F"), ("b.jpg", "B", "")]
    with pytest.raises(ValidationError, match="no column 'age'"):
        read_labels(f, tmp_path, "age")
    with pytest.raises(ValidationError, match="'identity' column"):
        read_labels(_write(tmp_path / "m.csv", "path,name\na.jpg,A\n"), tmp_path)
    with pytest.raises(ValidationError, match="role must be"):
        read_labels(_write(tmp_path / "r.csv", "path,identity,role\na.jpg,A,both\n"), tmp_path)
    with pytest.raises(ValidationError, match="listed twice"):
        read_labels(_write(tmp_path / "d.csv", "path,identity\na.jpg,A\na.jpg,B\n"), tmp_path)


def _row(path: str, ident: str, role: str | None = None, group: str | None = None, g: str = "") -> LabelledImage:
    return LabelledImage(Path(path), ident, 0, role, group, {"gender": g})


def test_default_split_rules() -> None:
    rows = [_row("a1", "A"), _row("b1", "B"), _row("a2", "A"), _row("a3", "A"), _row("c1", "C"), _row("c2", "C")]
    split = identify.split_labels(rows)
    assert [g.path.name for g in split.gallery] == ["a1", "c1"]  # first photo of each multi-photo identity
    assert sorted(s.images[0].path.name for s in split.mated) == ["a2", "a3", "c2"]
    assert [s.images[0].path.name for s in split.nonmated] == ["b1"]  # single-photo identity


def test_holdout_and_roles_and_probe_groups() -> None:
    rows = [_row(f"{i}{n}", i) for i in "ABCDEFGHIJ" for n in (1, 2)]
    held = identify.split_labels(rows, holdout=0.3)
    assert len(held.gallery) == 7
    assert len(held.nonmated) == 6 and len({s.identity for s in held.nonmated}) == 3
    assert identify.split_labels(rows, holdout=0.3).nonmated[0].identity == held.nonmated[0].identity  # stable
    roles = [_row("a1", "A", "probe"), _row("a2", "A", "gallery"), _row("b1", "B", "probe")]
    split = identify.split_labels(roles)
    assert [g.path.name for g in split.gallery] == ["a2"]
    assert [s.mated for s in split.searches] == [True, False]
    grouped = [_row("a1", "A", "gallery"), _row("a2", "A", "probe", "x"), _row("a3", "A", "probe", "x")]
    fused = identify.split_labels(grouped)
    assert len(fused.searches) == 1 and len(fused.searches[0].images) == 2
    mixed = [_row("a1", "A", "gallery"), _row("a2", "A", "probe", "x"), _row("b1", "B", "probe", "x")]
    with pytest.raises(ValidationError, match="mixes identities"):
        identify.split_labels(mixed)
    with pytest.raises(ValidationError, match="gallery empty"):
        identify.split_labels([_row("a", "A"), _row("b", "B")])


def _unit(*values: float) -> np.ndarray:
    v = np.zeros(512, dtype=np.float32)
    v[: len(values)] = values
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_searches_rank_consolidate_and_count_failures() -> None:
    # Gallery: A (two photos), B, C. Probes: a mated A probe, a mated B probe that fails, a non-mated D.
    rows = [
        _row("a1", "A", "gallery", g="F"),
        _row("a2", "A", "gallery", g="F"),
        _row("b1", "B", "gallery", g="M"),
        _row("c1", "C", "gallery", g="M"),
        _row("pa", "A", "probe", g="F"),
        _row("pb", "B", "probe", g="M"),
        _row("pd", "D", "probe", g="M"),
    ]
    t = {
        Path("a1"): Template("1", _unit(1, 0, 0)),
        Path("a2"): Template("2", _unit(0.6, 0.8, 0)),
        Path("b1"): Template("3", _unit(0, 1, 0)),
        Path("c1"): Template("4", _unit(0, 0, 1)),
        Path("pa"): Template("5", _unit(0.5, 1, 0)),  # closer to B than to a1, closest to a2
        Path("pb"): Template("6", None, error="no face found"),
        Path("pd"): Template("7", _unit(0, 0.2, 1)),
    }
    split = identify.split_labels(rows)
    res = identify.run_searches(split, t, "gender")
    # A's best photo (a2) beats B for the probe: rank 1 thanks to consolidation by best photo.
    assert res.mate_ranks.tolist() == [1.0, math.inf]
    assert res.mate_scores[0] == pytest.approx(float(_unit(0.5, 1, 0) @ _unit(0.6, 0.8, 0)))
    assert res.nonmated_top[0] == pytest.approx(float(_unit(0, 0.2, 1) @ _unit(0, 0, 1)))
    assert res.failures == {"gallery_images": 0, "probe_searches": 1, "mates_not_enrolled": 0}
    out = identify.evaluate_identification(res, max_rank=20, group_threshold=0.5)
    assert out["gallery"] == 3 and out["mated_probes"] == 2 and out["nonmated_probes"] == 1
    assert out["rank"]["1"] == 0.5
    assert out["fnir_rank50"] == 0.5
    assert out["fnir_at_fpir"] == {"0.1": None, "0.01": None, "0.001": None}  # 1 non-mated search
    assert out["groups"]["per_group"]["F"]["rank1"] == 1.0
    assert out["groups"]["per_group"]["M"]["fnir"] == 1.0


def test_fuse_is_quality_weighted_and_unit_norm() -> None:
    a, b = _unit(1, 0), _unit(0, 1)
    f = fuse(np.stack([a, b]), [3.0, 1.0])
    assert np.linalg.norm(f) == pytest.approx(1.0)
    assert f[0] == pytest.approx(3 / math.sqrt(10))


def test_rate_keys_and_env_file(tmp_path: Path) -> None:
    assert [rate_key(r) for r in (1e-2, 1e-3, 1e-4, 1e-1)] == ["0.01", "0.001", "0.0001", "0.1"]
    env = _write(tmp_path / ".env", "FACELEADS_MODE=dev\nFACELEADS_SIMILARITY_THRESHOLD=0.3\n")
    write_threshold(env, 0.4123456789)
    assert env.read_text().splitlines() == ["FACELEADS_MODE=dev", "FACELEADS_SIMILARITY_THRESHOLD=0.412346"]
    fresh = tmp_path / "new.env"
    write_threshold(fresh, -0.05)
    assert fresh.read_text() == "FACELEADS_SIMILARITY_THRESHOLD=-0.050000\n"


def test_mean_template_fusion_consolidates_gallery_photos() -> None:
    rows = [
        _row("a1", "A", "gallery"),
        _row("a2", "A", "gallery"),
        _row("b1", "B", "gallery"),
        _row("pa", "A", "probe"),
    ]
    t = {
        Path("a1"): Template("1", _unit(1, 0), quality=1.0),
        Path("a2"): Template("2", _unit(0, 1), quality=1.0),
        Path("b1"): Template("3", _unit(0.3, 1), quality=1.0),
        Path("pa"): Template("4", _unit(0, 1)),
    }
    split = identify.split_labels(rows)
    best = identify.run_searches(split, t, fusion=ScoreFusion.BEST)
    mean = identify.run_searches(split, t, fusion=ScoreFusion.MEAN_TEMPLATE)
    assert best.mate_scores[0] == pytest.approx(1.0)  # a2 is the probe itself
    assert best.mate_ranks[0] == 1
    # A's fused template is (1, 1)/sqrt(2): score 0.707, below B's 0.958 -> rank 2.
    assert mean.mate_scores[0] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert mean.mate_ranks[0] == 2
