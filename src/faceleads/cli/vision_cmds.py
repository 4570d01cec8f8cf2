"""Face engine commands: ``selfcheck``, ``faces`` and ``compare``."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceleads import __version__
from faceleads.cli.common import JsonOpt, cli_errors, console, emit, err_console
from faceleads.config import get_settings
from faceleads.datadir import check_data_dir
from faceleads.errors import NoFaceError
from faceleads.vision.annotate import annotate
from faceleads.vision.engine import FaceEngine
from faceleads.vision.imaging import encode_png, load_image
from faceleads.vision.models import default_model_dir, model_dir
from faceleads.vision.types import Face

ImageArg = Annotated[Path, typer.Argument(help="Photo file (JPEG, PNG, BMP, TIFF or WebP; checked by content).")]


def _faces_table(faces: list[Face]) -> Table:
    table = Table(title=f"{len(faces)} face(s), most prominent first")
    columns = ("#", "box x1,y1,x2,y2", "found by", "score", "quality", "eyes px", "yaw/pitch/roll", "sharp",
               "bright/contr")
    for column in columns:
        table.add_column(column, justify="right")
    for number, face in enumerate(faces, start=1):
        q = face.quality
        table.add_row(
            str(number),
            ",".join(f"{v:.0f}" for v in face.box),
            face.found_by,
            f"{face.score:.3f}",
            f"{q.overall:.2f}",
            f"{q.inter_eye_px:.0f}",
            f"{q.yaw:+.0f}/{q.pitch:+.0f}/{q.roll:+.0f}",
            f"{q.sharpness:.0f}",
            f"{q.brightness:.0f}/{q.contrast:.0f}",
        )
    return table


def faces_cmd(
    image: ImageArg,
    as_json: JsonOpt = False,
    annotate_to: Annotated[
        Path | None, typer.Option("--annotate", help="Write a PNG with numbered boxes and landmarks here.")
    ] = None,
) -> None:
    """Detect every face in IMAGE with its box, landmarks, detector score and quality."""
    with cli_errors():
        settings = get_settings()
        loaded = load_image(image, settings)
        engine = FaceEngine(settings)
        faces = engine.detect(loaded.pixels)
        if annotate_to is not None:
            annotate_to.write_bytes(encode_png(annotate(loaded.pixels, faces)))

        def summary() -> None:
            console.print(f"{image}  {loaded.width}x{loaded.height} {loaded.format}  sha256 {loaded.sha256}")
            console.print(_faces_table(faces))
            if annotate_to is not None:
                console.print(f"annotated picture: {annotate_to}")

        emit([face.to_json() for face in faces], as_json, summary)


def compare_cmd(image_a: ImageArg, image_b: ImageArg, as_json: JsonOpt = False) -> None:
    """Compare the most prominent face of IMAGE_A with that of IMAGE_B (cosine similarity and decision)."""
    with cli_errors():
        settings = get_settings()
        engine = FaceEngine(settings)
        best: list[Face] = []
        for path in (image_a, image_b):
            faces = engine.detect(load_image(path, settings).pixels, max_faces=1, embed=True)
            if not faces:
                raise NoFaceError(f"no face found in {path}")
            best.append(faces[0])
        score = engine.compare(best[0], best[1])
        threshold = settings.similarity_threshold
        result = {"score": round(score, 6), "threshold": threshold, "same": score >= threshold}

        def lines() -> None:
            verdict = "[green]same person (at this threshold)[/]" if result["same"] else "[yellow]different people[/]"
            console.print(f"score {score:.4f}  threshold {threshold:.4f}  → {verdict}")
            console.print("A 1:1 score is a lead for a trained examiner, never an identification.", style="dim")

        emit(result, as_json, lines)


def selfcheck_cmd() -> None:
    """Check the installation: settings, a private data directory, model files, and a real detection on the wheel's
    sample photo. Exits 1 when the data directory (or anything in it) is open to other local accounts."""
    with cli_errors():
        settings = get_settings()
        console.print(f"[bold]faceleads {__version__}[/] on Python {platform.python_version()} — mode {settings.mode}")
        console.print(f"data directory : {settings.data_dir}")
        exposed = check_data_dir(settings)
        if exposed:
            console.print(f"[bold red]data directory is not private[/] ({len(exposed)} problem(s)):", highlight=False)
            for problem in exposed[:20]:
                console.print(f"  {problem}", highlight=False, soft_wrap=True)
            console.print("  fix: chmod -R go-rwx on it (any faceleads command also tightens it at start)")
        else:
            console.print("data privacy   : directory 0700, files 0600, umask 0077")
        console.print(f"model directory: {model_dir(settings)}")
        started = time.perf_counter()
        engine = FaceEngine(settings)
        console.print(f"model pack     : {engine.pack.name} ({engine.pack.description})")
        console.print(f"models loaded  : {engine.model_version} in {time.perf_counter() - started:.2f}s")
        console.print(f"whole-crop     : {'on' if engine.landmarker is not None else 'off'}")
        sample = default_model_dir() / "players.jpg"
        if sample.is_file():
            loaded = load_image(sample, settings)
            started = time.perf_counter()
            faces = engine.detect(loaded.pixels, embed=True)
            elapsed = time.perf_counter() - started
            console.print(f"sample photo   : {len(faces)} faces in {sample.name} in {elapsed:.2f}s")
        if exposed:
            console.print("[bold red]self-check FAILED[/]: the data directory is readable by other accounts")
            raise typer.Exit(code=1)
        console.print("[green]self-check passed[/]\n")
        console.print("Try:")
        console.print(f"  faceleads faces {sample} --annotate faces.png")
        console.print("  faceleads compare PHOTO_A PHOTO_B")
        console.print("  faceleads --help   (every command has --help)")


def register(app: typer.Typer) -> None:
    """Add the face engine commands to the main app."""
    app.command("selfcheck")(selfcheck_cmd)
    app.command("faces")(faces_cmd)
    app.command("compare")(compare_cmd)
    _ = err_console
