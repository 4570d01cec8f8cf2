"""The ``faces``, ``compare`` and ``selfcheck`` commands, end to end with real models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from faceleads.cli.main import app
from faceleads.config import Settings

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(settings: Settings) -> None:
    """Every command runs against a temporary data directory."""


def _command_paths() -> list[list[str]]:
    """Every command and sub-command path of the CLI, found by walking the Click tree."""
    import typer.main

    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_every_command_has_help() -> None:
    paths = _command_paths()
    assert {"faces", "compare", "selfcheck"} <= {p[0] for p in paths if p}
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"{' '.join(path)} --help failed: {result.output}"
        assert "Usage:" in result.output


def test_faces_json_shape_and_annotation(lfw_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotated.png"
    result = runner.invoke(
        app, ["faces", str(lfw_dir / "images/Al_Gore/Al_Gore_0003.jpg"), "--json", "--annotate", str(out)]
    )
    assert result.exit_code == 0, result.output
    faces = json.loads(result.stdout)
    assert isinstance(faces, list) and len(faces) >= 1
    face = faces[0]
    assert len(face["box"]) == 4 and 0 < face["score"] <= 1
    assert len(face["landmarks"]) == 5 and all(len(point) == 2 for point in face["landmarks"])
    assert 0 <= face["quality"]["overall"] <= 1
    assert {"inter_eye_px", "yaw", "pitch", "roll", "sharpness", "brightness", "contrast", "detector_score"} <= set(
        face["quality"]
    )
    assert Image.open(out).size == (250, 250)


def test_compare_json_same_and_different(lfw_dir: Path) -> None:
    same = runner.invoke(
        app,
        [
            "compare",
            str(lfw_dir / "images/Al_Gore/Al_Gore_0001.jpg"),
            str(lfw_dir / "images/Al_Gore/Al_Gore_0003.jpg"),
            "--json",
        ],
    )
    different = runner.invoke(
        app,
        [
            "compare",
            str(lfw_dir / "images/Al_Gore/Al_Gore_0001.jpg"),
            str(lfw_dir / "images/AJ_Cook/AJ_Cook_0001.jpg"),
            "--json",
        ],
    )
    for result in (same, different):
        assert result.exit_code == 0, result.output
    s, d = json.loads(same.stdout), json.loads(different.stdout)
    assert set(s) == {"score", "threshold", "same"}
    assert s["same"] is True and d["same"] is False and s["score"] > d["score"]


def _bad_inputs(tmp_path: Path, lfw_dir: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    files["empty"] = tmp_path / "empty.jpg"
    files["empty"].write_bytes(b"")
    files["text"] = tmp_path / "notes.jpg"
    files["text"].write_text("this is not a photo\n")
    data = (lfw_dir / "images/Al_Gore/Al_Gore_0001.jpg").read_bytes()
    files["truncated"] = tmp_path / "cut.jpg"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["gif"] = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    frames[0].save(files["gif"], save_all=True, append_images=frames[1:])
    files["missing"] = tmp_path / "nope.png"
    return files


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "gif", "missing"])
def test_bad_input_gets_a_clear_error_not_a_traceback(kind: str, tmp_path: Path, lfw_dir: Path) -> None:
    path = _bad_inputs(tmp_path, lfw_dir)[kind]
    result = runner.invoke(app, ["faces", str(path), "--json"])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_faceless_photo_gives_empty_list_and_compare_names_it(tmp_path: Path, lfw_dir: Path) -> None:
    blank = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (180, 180, 170)).save(blank)
    result = runner.invoke(app, ["faces", str(blank), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = runner.invoke(app, ["compare", str(blank), str(lfw_dir / "images/Al_Gore/Al_Gore_0001.jpg")])
    assert result.exit_code == 2 and "no face found in" in result.output


def test_selfcheck_runs_as_an_installed_command(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "faceleads"
    completed = subprocess.run(
        [str(exe), "selfcheck"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"FACELEADS_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "self-check passed" in completed.stdout
