"""``faceleads evaluate`` end to end with the real models on small subsets of the shared LFW data."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from faceleads.cli import evaluate_cmds
from faceleads.config import Settings, get_settings
from faceleads.evaluation.templates import TemplateExtractor
from faceleads.vision.engine import FaceEngine

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

VERIFY_KEYS = {"pairs", "failures", "accuracy", "accuracy_std", "eer", "threshold", "tar_at_far"}
IDENTIFY_KEYS = {"gallery", "mated_probes", "nonmated_probes", "rank", "fnir_at_fpir", "fnir_rank50"}

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # A host app with only this sub-app keeps these tests independent of the other domains' commands.
    host = typer.Typer()
    evaluate_cmds.register(host)

    @host.callback()
    def _root() -> None:
        """Test host."""

    return host


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory (template cache) for the module: each image is embedded once."""
    return tmp_path_factory.mktemp("eval-data")


@pytest.fixture
def env(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FACELEADS_DATA_DIR", str(shared_data))
    get_settings.cache_clear()
    yield shared_data
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def pairs40(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 same and 20 different pairs from LFW's pairsDevTest (its first and last lines, kept as pairs.txt)."""
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()
    path = tmp_path_factory.mktemp("pairs") / "pairs40.txt"
    path.write_text("\n".join(lines[:20] + lines[-20:]) + "\n")
    return path


@pytest.fixture(scope="module")
def labels30(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 identities: 20 with 2-3 photos (gallery + mated probes) and 10 with one (non-mated), with gender."""
    with (lfw_dir / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_id: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if r["gender"] in {"F", "M"}:
            by_id.setdefault(r["identity"], []).append(r)
    multi = [v[:3] for v in by_id.values() if len(v) >= 2]
    single = [v for v in by_id.values() if len(v) == 1]
    # Take both genders among the multi-photo identities so the group figures have two groups.
    chosen = [v for v in multi if v[0]["gender"] == "F"][:8] + [v for v in multi if v[0]["gender"] == "M"][:12]
    chosen += single[:10]
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "identity", "gender"])
        for group in chosen:
            for r in group:
                w.writerow([r["path"], r["identity"], r["gender"]])
    return path


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {result.stdout!r}"
    return json.loads(lines[0])


def test_verify_on_lfw_subset(app: typer.Typer, env: Path, pairs40: Path, lfw_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    args = ["evaluate", "verify", "--pairs", str(pairs40), "--images", str(lfw_dir / "images")]
    args += ["--labels", str(lfw_dir / "labels.csv"), "--group-column", "gender", "--json", "--report", str(report)]
    out = _json(runner.invoke(app, args))
    assert out.keys() >= VERIFY_KEYS
    assert out["pairs"] == 40 and out["genuine_pairs"] == 20
    assert out["failures"] == 0
    assert 0.9 <= out["accuracy"] <= 1.0
    assert 0.0 <= out["accuracy_std"] <= 0.2
    assert 0.0 <= out["eer"] <= 0.1
    assert -1.0 <= out["threshold"] <= 1.0
    assert set(out["tar_at_far"]) == {"0.01", "0.001", "0.0001"}
    assert all(v is None for v in out["tar_at_far"].values())  # 20 impostor pairs resolve none of them
    groups = out["groups"]
    assert set(groups["per_group"]) == {"F", "M"}
    assert groups["overall"]["genuine_pairs"] == 20
    counted = sum(g["impostor_pairs"] for g in groups["per_group"].values())
    assert counted + groups["cross_group_impostors"]["impostor_pairs"] + groups["unlabelled_pairs"] >= 20
    for name in ("index.html", "roc.png", "det.png", "scores.png", "differentials.png", "figures.json"):
        assert (report / name).stat().st_size > 0
    assert json.loads((report / "figures.json").read_text())["pairs"] == 40


def test_identify_on_lfw_subset(app: typer.Typer, env: Path, labels30: Path, lfw_dir: Path, tmp_path: Path) -> None:
    args = ["evaluate", "identify", "--labels", str(labels30), "--images", str(lfw_dir)]
    args += ["--group-column", "gender", "--json", "--report", str(tmp_path / "r")]
    out = _json(runner.invoke(app, args))
    assert out.keys() >= IDENTIFY_KEYS
    assert out["gallery"] == 20
    assert out["nonmated_probes"] == 10
    assert 20 <= out["mated_probes"] <= 40
    assert set(out["rank"]) == {"1", "5", "10", "20", "50"}
    assert out["rank"]["1"] >= 0.85
    ranks = [out["rank"][k] for k in ("1", "5", "10", "20", "50")]
    assert ranks == sorted(ranks)  # CMC never decreases
    assert out["rank"]["50"] == 1.0  # 20 identities: everything is within rank 50
    assert out["fnir_rank50"] == 0.0
    assert out["fnir_at_fpir"]["0.1"] is not None and 0.0 <= out["fnir_at_fpir"]["0.1"] <= 0.5
    assert out["fnir_at_fpir"]["0.01"] is None  # 10 non-mated searches cannot resolve FPIR 1e-2
    per_group = out["groups"]["per_group"]
    assert set(per_group) == {"F", "M"}
    assert per_group["F"]["mated_probes"] + per_group["M"]["mated_probes"] == out["mated_probes"]
    assert (tmp_path / "r" / "cmc.png").stat().st_size > 0


def test_calibrate_writes_settings(app: typer.Typer, env: Path, pairs40: Path, lfw_dir: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "faceleads.env"
    env_file.write_text("FACELEADS_MODE=dev\n")
    args = ["evaluate", "calibrate", "--target-fmr", "0.1", "--pairs", str(pairs40)]
    args += ["--images", str(lfw_dir / "images"), "--write-settings", str(env_file), "--json"]
    args += ["--report", str(tmp_path / "cal")]
    out = _json(runner.invoke(app, args))
    assert {"threshold", "ci_low", "ci_high", "impostor_pairs"} <= out.keys()
    assert out["impostor_pairs"] == 20
    assert out["observed_fmr"] <= 0.1
    assert out["warnings"]  # 20 comparisons are fewer than 3 / 0.1
    lines = env_file.read_text().splitlines()
    assert lines[0] == "FACELEADS_MODE=dev"
    assert lines[1] == f"FACELEADS_SIMILARITY_THRESHOLD={out['threshold']:.6f}"
    assert "exact binomial" in (tmp_path / "cal" / "index.html").read_text()
    assert (tmp_path / "cal" / "scores.png").stat().st_size > 0


def test_failure_to_enrol_is_counted_and_scored_as_non_match(
    app: typer.Typer, env: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    blank = tmp_path / "blank.jpg"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)  # a real image with no face
    a = lfw_dir / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    b = lfw_dir / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    c = lfw_dir / "images" / "AJ_Cook" / "AJ_Cook_0001.jpg"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"path_a,path_b,same\n{a},{b},1\n{a},{blank},1\n{a},{c},0\n{b},{c},0\n")
    out = _json(runner.invoke(app, ["evaluate", "verify", "--pairs", str(pairs), "--json"]))
    assert out["failures"] == 1 and out["failed_images"] == 1
    assert out["pairs"] == 4
    # The failed genuine pair scores -1, below both impostors: FNMR cannot fall under 1/2 before FMR
    # reaches 1/2, so the EER is 1/2 (it would be 0 had the failure been left out).
    assert out["eer"] == pytest.approx(0.5)
    assert out["accuracy"] < 1.0


def test_errors_are_named(app: typer.Typer, env: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["evaluate", "verify", "--json"])
    assert res.exit_code == 2
    assert "--pairs" in res.stderr and res.stdout == ""
    missing = tmp_path / "p.csv"
    missing.write_text("path_a,path_b,same\nnope.jpg,nada.jpg,1\n")
    res = runner.invoke(app, ["evaluate", "verify", "--pairs", str(missing)])
    assert res.exit_code == 2 and "do not exist" in res.stderr


def test_template_cache_skips_recomputation(
    lfw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: FaceEngine
) -> None:
    calls: list[int] = []
    original = FaceEngine.detect

    def spy(self: FaceEngine, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FaceEngine, "detect", spy)
    paths = sorted((lfw_dir / "images" / "Aaron_Peirsol").glob("*.jpg"))[:4]
    settings = Settings(data_dir=tmp_path / "data")
    first = TemplateExtractor(settings, engine=engine).templates(paths)
    assert len(calls) == 4
    again = TemplateExtractor(settings, engine=engine)
    second = again.templates(paths + paths[:1])
    assert again.computed == 0 and len(calls) == 4  # every template came from the cache
    for p in paths:
        assert first[p].embedding is not None
        np.testing.assert_array_equal(first[p].embedding, second[p].embedding)
    # Another detector setting is another pipeline: nothing stale is reused.
    other = TemplateExtractor(Settings(data_dir=tmp_path / "data", det_threshold=0.6), engine=engine)
    other.templates(paths[:1])
    assert other.computed == 1 and len(calls) == 5
