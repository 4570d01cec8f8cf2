"""The command line: ``faceleads evaluate live`` on a video composed from real photos, and the ``live`` group."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceleads.cli.main import app
from faceleads.live import scenes
from tests.live.conftest import LiveEnv

KEYS = {"frames", "duration_s", "processing_fps", "realtime_factor", "faces_detected", "tracks", "threshold", "alerts",
        "true_alerts", "false_alerts", "missed"}  # fmt: skip


@pytest.fixture
def inputs(live_env: LiveEnv, tmp_path: Path) -> tuple[Path, Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for who in live_env.listed:
        src = live_env.photos[who][0]
        dst = images / f"{who}{src.suffix}"
        shutil.copy(src, dst)
        rows.append((dst.name, who))
    rows.append((rows[0][0], rows[0][1]))  # a second photo row of the same person is fine
    scenes.write_watchlist(tmp_path / "W.csv", rows)
    scenes.write_truth(tmp_path / "T.csv", live_env.truth)
    return tmp_path / "W.csv", images, tmp_path / "T.csv"


def test_evaluate_live_json(live_env: LiveEnv, inputs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch,
                            tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("FACELEADS_DATA_DIR", str(tmp_path / "data"))
    from faceleads.config import get_settings

    get_settings.cache_clear()
    watchlist, images, truth = inputs
    result = CliRunner().invoke(app, ["evaluate", "live", "--watchlist", str(watchlist), "--images", str(images),
                                      "--video", str(live_env.video), "--truth", str(truth), "--threshold", "0.4",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= KEYS
    assert data["threshold"] == 0.4 and data["frames"] > 50 and data["duration_s"] > 5
    assert data["processing_fps"] > 0 and data["realtime_factor"] > 0
    assert data["tracks"] >= len(live_env.listed) + len(live_env.unlisted)
    assert data["faces_detected"] >= data["tracks"]
    # Every listed person walks through the scene in view: each is alerted as themselves, nobody else is named.
    assert data["true_alerts"] == len(live_env.listed) and data["missed"] == 0 and data["false_alerts"] == 0
    assert {a["identity"] for a in data["alerts"]} == set(live_env.listed)
    assert all(set(a) == {"identity", "score", "start_s"} for a in data["alerts"])
    # A threshold no impostor and no genuine reaches: no alert, everyone missed.
    strict = CliRunner().invoke(app, ["evaluate", "live", "--watchlist", str(watchlist), "--images", str(images),
                                      "--video", str(live_env.video), "--truth", str(truth), "--threshold", "0.999",
                                      "--json"])  # fmt: skip
    assert strict.exit_code == 0, strict.output
    data = json.loads(strict.stdout)
    assert data["alerts"] == [] and data["missed"] == len(live_env.listed) and data["true_alerts"] == 0
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("truth-columns", "lacks the column"),
        ("missing-video", "does not exist"),
        ("outside", "outside --images"),
        ("not-a-video", "cannot be opened"),
    ],
)
def test_evaluate_live_bad_input(live_env: LiveEnv, inputs: tuple[Path, Path, Path], tmp_path: Path,
                                 change: str, message: str) -> None:  # fmt: skip
    watchlist, images, truth = inputs
    video = live_env.video
    assert video is not None
    if change == "truth-columns":
        truth.write_text("from,to,who\n0,1,x\n")
    elif change == "missing-video":
        video = tmp_path / "nope.mp4"
    elif change == "outside":
        watchlist.write_text("path,identity\n../../etc/passwd,x\n")
    elif change == "not-a-video":
        video = tmp_path / "fake.mp4"
        video.write_bytes(b"this is not a video" * 10)
    result = CliRunner().invoke(app, ["evaluate", "live", "--watchlist", str(watchlist), "--images", str(images),
                                      "--video", str(video), "--truth", str(truth), "--json"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
