"""Starts and watches the camera processes of running deployments (one process per camera).

Used by ``faceleads live run`` and by the web application. The processes coordinate through the database only:
stopping a deployment is recorded there (:func:`faceleads.live.deployments.stop_deployment`) and every worker sees
it within a second; each worker also stops by itself at the stored end time. So a second server, or a restarted
one, agrees on the state, and a worker never outlives its authorisation.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.process import BaseProcess

from sqlalchemy import select

from faceleads.config import Settings
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live.models import DeploymentCamera


class DeploymentRunner:
    """Camera processes per deployment (``spawn``: a fresh interpreter each, never a fork of a busy server)."""

    def __init__(self, settings: Settings, *, realtime: bool = True) -> None:
        self.settings = settings
        self.realtime = realtime
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, list[BaseProcess]] = {}
        self._lock = threading.Lock()

    def start(self, rt: GalleryRuntime, deployment_id: int) -> int:
        """Start a process for every camera of a running deployment; returns how many started."""
        from faceleads.live.worker import process_main

        with rt.session_factory() as session:
            camera_ids = list(
                session.scalars(
                    select(DeploymentCamera.id)
                    .where(DeploymentCamera.deployment_id == deployment_id)
                    .order_by(DeploymentCamera.position)
                )
            )
        data = self.settings.model_dump(mode="json")
        with self._lock:
            if self.is_running(deployment_id):
                return 0
            procs: list[BaseProcess] = []
            for camera_id in camera_ids:
                proc = self._ctx.Process(
                    target=process_main, args=(data, camera_id, self.realtime), name=f"live-camera-{camera_id}",
                    daemon=True,
                )  # fmt: skip
                proc.start()
                procs.append(proc)
            self._procs[deployment_id] = procs
            return len(procs)

    def is_running(self, deployment_id: int) -> bool:
        return any(p.is_alive() for p in self._procs.get(deployment_id, []))

    def join(self, deployment_id: int, timeout: float | None = None) -> bool:
        """Wait for the deployment's cameras to finish; True when none is left running."""
        for proc in self._procs.get(deployment_id, []):
            proc.join(timeout)
        return not self.is_running(deployment_id)

    def stop(self, deployment_id: int, timeout: float = 15.0) -> None:
        """Wait for the cameras to notice the recorded stop; end any that does not within ``timeout``."""
        procs = self._procs.pop(deployment_id, [])
        for proc in procs:
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    def close(self) -> None:
        """End every camera process (the application is shutting down)."""
        for deployment_id in list(self._procs):
            for proc in self._procs.pop(deployment_id, []):
                if proc.is_alive():
                    proc.terminate()
                proc.join(5)
