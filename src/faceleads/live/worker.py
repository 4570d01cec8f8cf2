"""One camera of a running deployment, in its own process: decode, recognise, store alerts, report counts.

The worker stops by itself at the deployment's stored end time (checked before every frame, not only when the
database says so), when the deployment is stopped (seen at the next heartbeat, about once a second), or when the
source ends. Entries that drop out of the frozen list (destruction, expiry) are removed from memory at the next
heartbeat. It logs lifecycle events and counts only: never a face, a box, a score of a non-matching face or a frame.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faceleads.config import Settings
from faceleads.db import utcnow
from faceleads.errors import FaceleadsError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live import camera_control as control
from faceleads.live.common import as_utc
from faceleads.live.models import DeploymentCamera
from faceleads.live.pipeline import Counters, LivePipeline, PipelineConfig
from faceleads.live.sources import DropQueue, FrameReader, parse_source

log = logging.getLogger("faceleads.live.worker")

HEARTBEAT_S = 1.0


def run_camera(settings: Settings, camera_id: int, *, realtime: bool = True, rt: GalleryRuntime | None = None) -> str:
    """Run one camera until the deployment ends or stops or the source ends; returns "stopped" or "failed"."""
    own = rt is None
    runtime = rt or GalleryRuntime(settings, create=False)
    try:
        return _run(runtime, camera_id, realtime)
    finally:
        if own:
            runtime.close()


def _run(rt: GalleryRuntime, camera_id: int, realtime: bool) -> str:
    with rt.session_factory() as session:
        cam = session.get(DeploymentCamera, camera_id)
        if cam is None:
            raise FaceleadsError(f"no camera {camera_id}")
        dep = control.deployment_for_camera(session, camera_id)
        deployment_id, threshold, source, position = dep.id, dep.alert_threshold, cam.source, cam.position
    beat = control.heartbeat(rt, camera_id, Counters(), frames_read=0, frames_dropped=0, video_seconds=0.0)
    if not beat.go_on:
        control.heartbeat(rt, camera_id, Counters(), frames_read=0, frames_dropped=0, video_seconds=0.0,
                          final="stopped", error=f"deployment is {beat.status}")  # fmt: skip
        return "stopped"
    end_at = beat.end_at
    try:
        watchlist = control.load_watchlist(rt, deployment_id)
        watchlist.drop(control.check_entries(rt, deployment_id))
        spec = parse_source(source)
        # A camera (or a file played as one) never waits for the recogniser: old frames are dropped. A file run
        # as fast as possible (realtime=False: evaluation, tests) is processed frame by frame instead.
        queue = DropQueue(rt.settings.live_queue_frames, drop_oldest=realtime or spec.is_live)
        reader = FrameReader(spec, queue, realtime=realtime)
    except FaceleadsError as exc:
        control.mark_failed(rt, camera_id, str(exc))
        log.warning("live deployment %s camera %s failed to start: %s", deployment_id, position, exc)
        return "failed"
    pipeline = LivePipeline(rt.face_engine, watchlist, PipelineConfig.from_settings(rt.settings, threshold))
    control.camera_started(rt, camera_id, reader.width, reader.height, reader.fps)
    log.info("live deployment %s camera %s started (%d listed people)", deployment_id, position, watchlist.people)
    reader.start()
    final, error, video_s = "stopped", "", 0.0
    last_beat = time.monotonic()

    def counts() -> dict[str, Any]:
        return {"frames_read": reader.frames_read, "frames_dropped": queue.dropped, "video_seconds": video_s}

    try:
        while True:
            if utcnow() >= as_utc(end_at):
                break  # the worker's own check of the end time: no alert is raised after it
            frame = queue.get(timeout=0.25)
            if frame is None:
                if queue.closed and not reader.is_alive():
                    if reader.error:
                        final, error = "failed", reader.error
                    break
            else:
                video_s = frame.time_s
                for event in pipeline.process(frame):
                    control.record_alert(rt, camera_id, event)
                del frame
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                last_beat = time.monotonic()
                beat = control.heartbeat(rt, camera_id, pipeline.counters, **counts())
                if not beat.go_on:
                    break
                dropped = control.check_entries(rt, deployment_id)
                if dropped and watchlist.drop(dropped):
                    log.info("live deployment %s camera %s: %d entries dropped from the list in memory",
                             deployment_id, position, len(dropped))  # fmt: skip
    except Exception as exc:  # never let one camera's failure go unrecorded
        final, error = "failed", f"{type(exc).__name__}: {str(exc)[:200]}"
        log.error("live deployment %s camera %s failed: %s", deployment_id, position, type(exc).__name__)
    finally:
        reader.stop()
        queue.discard()
        pipeline.finish()
        reader.join(timeout=5)
        control.heartbeat(rt, camera_id, pipeline.counters, **counts(), final=final, error=error)
    log.info("live deployment %s camera %s %s: %s", deployment_id, position, final, pipeline.counters.as_dict())
    return final


def process_main(settings_data: dict[str, Any], camera_id: int, realtime: bool) -> None:
    """Entry point of a camera process (spawned by :mod:`faceleads.live.runner`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_camera(Settings(**settings_data), camera_id, realtime=realtime)
