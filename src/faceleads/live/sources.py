"""Camera sources: a video file, an RTSP/HTTP stream or a local camera device, decoded with OpenCV (FFmpeg).

A :class:`FrameReader` thread decodes frames into a :class:`DropQueue` of a few frames. A live source never waits
for the recogniser: when the queue is full the oldest frame is dropped (and counted), so memory stays bounded and
processing always works on recent frames. A file played "as a camera" (``realtime=True``) is read at its own frame
rate, like a camera would deliver it; for evaluation (``realtime=False``) every frame is processed and the reader
waits instead of dropping.

Frames live only in memory; nothing is written anywhere.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from faceleads.errors import ValidationError
from faceleads.vision.types import ImageArray

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
MAX_SOURCE_CHARS = 2000
OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 10_000
RECONNECTS = 5


@dataclass(frozen=True)
class SourceSpec:
    """A parsed camera source: ``kind`` is file, stream or device; ``location`` the path, URL or device index."""

    kind: str
    location: str

    @property
    def is_live(self) -> bool:
        return self.kind != "file"

    def display(self) -> str:
        """The source as shown to people and written to the audit log: a URL's user name and password removed."""
        if self.kind != "stream":
            return self.location if self.kind == "file" else f"device:{self.location}"
        parts = urlsplit(self.location)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_source(text: str) -> SourceSpec:
    """Parse ``path/to/file.mp4``, ``file:PATH``, ``rtsp://...``, ``http(s)://...`` or ``device:N``."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("a camera source is required (a video file, rtsp:// or http(s):// URL, or device:N)")
    value = text.strip()
    if len(value) > MAX_SOURCE_CHARS or any(ch in value for ch in "\x00\n\r"):
        raise ValidationError("camera source is too long or contains control characters")
    scheme = value.split(":", 1)[0].lower() if "://" in value else ""
    if scheme:
        if scheme not in STREAM_SCHEMES:
            raise ValidationError(f"camera source scheme {scheme!r} is not supported: use {', '.join(STREAM_SCHEMES)}")
        if not urlsplit(value).hostname:
            raise ValidationError(f"camera stream URL {SourceSpec('stream', value).display()!r} names no host")
        return SourceSpec("stream", value)
    if value.lower().startswith("device:"):
        index = value.split(":", 1)[1]
        if not index.isdigit() or int(index) > 63:
            raise ValidationError(f"camera device {index!r} must be a number 0-63 (device:0 is the first camera)")
        return SourceSpec("device", str(int(index)))
    if value.lower().startswith("file:"):
        value = value[5:]
    return SourceSpec("file", str(Path(value).expanduser()))


def open_capture(spec: SourceSpec) -> cv2.VideoCapture:
    """An opened OpenCV capture for ``spec``; :class:`ValidationError` naming the source when it cannot open."""
    if spec.kind == "file":
        path = Path(spec.location)
        if not path.is_file():
            raise ValidationError(f"camera source {spec.display()}: no such video file")
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    elif spec.kind == "device":
        cap = cv2.VideoCapture(int(spec.location))
    else:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        cap = cv2.VideoCapture(spec.location, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise ValidationError(f"camera source {spec.display()} cannot be opened (unreachable, or not a video)")
    return cap


def capture_fps(cap: cv2.VideoCapture) -> float:
    """The source's frame rate (25 when it states none, as many CCTV containers do)."""
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0 < fps <= 240 else 25.0


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its number from the start of the source, its time (s) in the source, RGB pixels
    (uint8 (H, W, 3))."""

    index: int
    time_s: float
    pixels: ImageArray


class DropQueue:
    """A bounded frame queue. ``put`` never blocks when ``drop_oldest``: the oldest frame is discarded and counted.

    Otherwise (evaluation) ``put`` waits for room, so that every frame is processed.
    """

    def __init__(self, capacity: int, *, drop_oldest: bool = True) -> None:
        if capacity < 1:
            raise ValidationError("a frame queue needs room for at least one frame")
        self._items: deque[VideoFrame] = deque()
        self._capacity = capacity
        self._drop_oldest = drop_oldest
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: VideoFrame) -> None:
        with self._cond:
            if self._drop_oldest:
                while len(self._items) >= self._capacity:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self._capacity and not self._closed:
                    self._cond.wait(0.5)
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> VideoFrame | None:
        """The oldest frame waiting, or None after ``timeout`` seconds or once closed and empty."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while not self._items:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def discard(self) -> None:
        """Forget every waiting frame (at shutdown)."""
        with self._cond:
            self._items.clear()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class FrameReader(threading.Thread):
    """Decodes a source into a :class:`DropQueue` until the source ends, fails or :meth:`stop` is called.

    ``realtime``: deliver a file's frames at its own rate (as a camera would); live sources are always real time.
    Network streams are reopened a few times after a failure. ``error`` names why reading stopped early.
    """

    def __init__(self, spec: SourceSpec, queue: DropQueue, *, realtime: bool = True) -> None:
        super().__init__(name=f"frame-reader-{spec.kind}", daemon=True)
        self.spec = spec
        self.queue = queue
        self.realtime = realtime or spec.is_live
        self.frames_read = 0
        self.fps = 25.0
        self.error: str | None = None
        self._stop_event = threading.Event()
        self._cap = open_capture(spec)  # opened here so a bad source fails before the thread starts
        self.fps = capture_fps(self._cap)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.frame_count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if spec.kind == "file" else 0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            self._read_all()
        except Exception as exc:  # a decoder crash must end this camera, never the process
            self.error = f"{type(exc).__name__} while decoding"
        finally:
            self._cap.release()
            self.queue.close()

    def _frames(self) -> Iterator[ImageArray]:
        reconnects = 0
        while not self._stop_event.is_set():
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                reconnects = 0
                yield np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                continue
            if self.spec.kind != "stream" or reconnects >= RECONNECTS:
                if self.spec.is_live:
                    self.error = f"camera source {self.spec.display()} stopped delivering frames"
                return
            reconnects += 1
            self._cap.release()
            if self._stop_event.wait(min(2.0**reconnects, 30.0)):
                return
            try:
                self._cap = open_capture(self.spec)
            except ValidationError:
                continue

    def _read_all(self) -> None:
        started = time.monotonic()
        for index, pixels in enumerate(self._frames()):
            time_s = index / self.fps
            if self.realtime and not self.spec.is_live:
                # A file played as a camera: wait until this frame's moment comes.
                delay = started + time_s - time.monotonic()
                if delay > 0 and self._stop_event.wait(delay):
                    return
            if self.spec.is_live:
                time_s = time.monotonic() - started
            self.frames_read += 1
            self.queue.put(VideoFrame(index, time_s, pixels))
