"""What the comparison view needs, built the same way for the analyst (candidate list), the blind verifier and
the supervisor deciding a dispute: the probe (aligned crop, the full image as searched, face box and landmarks),
the candidate's photos for the filmstrip (newest booking first) and which one is shown. No routes here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceleads.vision.compare import crop_landmarks


@dataclass(frozen=True)
class Compare:
    """The comparison view's data (the template turns it into panes, a filmstrip and the scene)."""

    probe: dict[str, Any]
    candidate: dict[str, Any]
    photos: list[dict[str, Any]]
    scene: dict[str, Any]


def probe_side(probe_id: int, box: list[float] | None, landmarks: list[list[float]] | None, caption: str) -> dict[
    str, Any
]:
    """The probe pane: aligned crop, the image as searched (full resolution) with the face's geometry in it."""
    return {"crop": f"/case-probes/{probe_id}/aligned", "orig": f"/case-probes/{probe_id}/image", "box": box,
            "landmarks": crop_landmarks(landmarks) if landmarks else None, "landmarks_original": landmarks,
            "caption": caption}  # fmt: skip


def build(
    probe_id: int,
    probe_box: list[float] | None,
    probe_landmarks: list[list[float]] | None,
    photos: list[Any],
    shown_image_id: int,
    photo_url: Callable[[int, str], str],
    caption: Callable[[Any], str],
    probe_caption: str,
) -> Compare:
    """The comparison of a probe with one candidate, whose held ``photos`` (:class:`faceleads.gallery.viewing.
    PhotoView` or their JSON) make the filmstrip; ``photo_url(image_id, view)`` gives each photo's address."""
    strip = []
    for photo in photos:
        data = photo if isinstance(photo, dict) else photo.to_json()
        info = {"crop": photo_url(data["image_id"], "aligned"), "orig": photo_url(data["image_id"], "original"),
                "box": data["box"], "width": data["width"], "landmarks": data["landmarks"],
                "landmarks_original": data["landmarks_original"], "caption": caption(data)}  # fmt: skip
        strip.append({"image_id": data["image_id"], "date": data["booking_date"], "booking": data["booking_number"],
                      "info": info, "shown": data["image_id"] == shown_image_id})  # fmt: skip
    shown = next((p["info"] for p in strip if p["shown"]), None)
    if shown is None:  # the matched photo is no longer held: show the newest one held
        shown = strip[0]["info"] if strip else {"crop": photo_url(shown_image_id, "aligned"), "caption": "candidate"}
        if strip:
            strip[0]["shown"] = True
    probe = probe_side(probe_id, probe_box, probe_landmarks, probe_caption)
    return Compare(probe, shown, strip, {"src": probe["orig"], "box": probe_box})


__all__ = ["Compare", "build", "probe_side"]
