"""Quick-search probe workspaces: an analyst's uploaded probes, kept for an hour, in the database and blob store.

A probe uploaded for a quick search must be visible to whichever server handles the analyst's next request, so
nothing about it stays in one process: its metadata (faces found, searches run) is a row of ``workspace_probes``;
its bytes are a blob in the shared blob store, encrypted under a key of its own (``workspace:<probe id>``) that is
destroyed when the probe is dropped — at sign-out, when it expires (``ttl_seconds``), or when the user's workspace
is full (oldest first) — so an expired probe is unreadable even in a backup. Probes are never enrolled.

Every method is scoped to the calling user (their user id and agency): another user's probe id is "not found".
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from faceleads.db import Base, transaction, utcnow
from faceleads.errors import KeyDestroyedError, NotFound
from faceleads.security.actor import Actor

if TYPE_CHECKING:
    from faceleads.gallery.runtime import GalleryRuntime
    from faceleads.vision.types import Face


class WorkspaceProbe(Base):
    """A probe in a user's quick-search workspace (its bytes are an encrypted blob)."""

    __tablename__ = "workspace_probes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(80))
    store_address: Mapped[str] = mapped_column(String(200))
    faces: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    searches: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


@dataclass
class ProbeFace:
    """A face found in a probe (or drawn by the analyst), without its embedding."""

    number: int  # 1-based, most prominent first (the search's face numbering)
    box: list[float]
    landmarks: list[list[float]]
    score: float
    quality: dict[str, float]
    drawn: bool = False

    @classmethod
    def from_face(cls, number: int, face: Face, drawn: bool = False) -> ProbeFace:
        data = face.to_json()
        return cls(number, data["box"], data["landmarks"], data["score"], data["quality"], drawn)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeFace:
        return cls(int(data["number"]), list(data["box"]), [list(p) for p in data["landmarks"]],
                   float(data["score"]), dict(data["quality"]), bool(data.get("drawn", False)))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "box": self.box,
            "landmarks": self.landmarks,
            "score": self.score,
            "quality": self.quality,
            "drawn": self.drawn,
        }


@dataclass
class Probe:
    """A probe of the workspace; ``data`` (the original bytes) is read from the blob store when first used."""

    probe_id: str
    user_id: int | None
    agency_id: int
    sha256: str
    width: int
    height: int
    filename: str
    faces: list[ProbeFace]
    created: datetime
    searches: list[int] = field(default_factory=list)
    _loader: Callable[[], bytes] | None = field(default=None, repr=False)
    _data: bytes | None = field(default=None, repr=False)

    @property
    def data(self) -> bytes:
        if self._data is None:
            assert self._loader is not None
            self._data = self._loader()
        return self._data


def _context(probe_id: str) -> str:
    return f"workspace-probe|{probe_id}"


class ProbeWorkspace:
    """Per-user probes in the database with a time limit and per-user count and byte bounds (oldest dropped)."""

    def __init__(self, rt: GalleryRuntime, ttl_seconds: float = 3600.0, max_probes: int = 50,
                 max_bytes: int = 512 * 1024 * 1024) -> None:  # fmt: skip
        self.rt = rt
        self.ttl = ttl_seconds
        self.max_probes = max_probes
        self.max_bytes = max_bytes

    def _probe(self, row: WorkspaceProbe) -> Probe:
        key_id, address, probe_id = row.key_id, row.store_address, row.id

        def load() -> bytes:
            try:
                return self.rt.store.get(key_id, address, _context(probe_id))
            except (NotFound, KeyDestroyedError) as exc:
                raise NotFound(f"probe {probe_id} is no longer held: upload it again ({exc})") from None

        return Probe(row.id, row.user_id, row.agency_id, row.sha256, row.width, row.height, row.filename,
                     [ProbeFace.from_json(f) for f in row.faces or []], row.created_at, list(row.searches or []),
                     load)  # fmt: skip

    def _cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.ttl)

    def _drop_rows(self, session: Session, rows: list[WorkspaceProbe]) -> None:
        """Delete rows in the caller's transaction; their blobs and keys go after it commits (see _shred)."""
        for row in rows:
            session.delete(row)

    def _shred(self, rows: list[tuple[str, str]]) -> None:
        for key_id, address in rows:
            with contextlib.suppress(Exception):  # an orphan blob is swept later; a key stays unusable anyway
                self.rt.store.delete(address)
            with contextlib.suppress(Exception):
                self.rt.keystore.destroy(key_id)

    def _expire(self) -> None:
        with transaction(self.rt.session_factory) as session:
            rows = list(session.scalars(select(WorkspaceProbe).where(WorkspaceProbe.created_at < self._cutoff())))
            doomed = [(r.key_id, r.store_address) for r in rows]
            self._drop_rows(session, rows)
        self._shred(doomed)

    def add(self, actor: Actor, data: bytes, sha256: str, width: int, height: int, filename: str,
            faces: list[ProbeFace]) -> Probe:  # fmt: skip
        """Keep a probe for ``actor``; returns it with a fresh unguessable id."""
        self._expire()
        probe_id = secrets.token_urlsafe(12)
        key_id = f"workspace:{probe_id}"
        self.rt.keystore.create(key_id)
        doomed: list[tuple[str, str]] = []
        from faceleads.gallery.enrolment import enrolment_lock  # not at import: this module only defines a table there

        # As a store writer (shared lock): an orphan sweep must not delete the blob before its row is committed.
        with enrolment_lock(self.rt, exclusive=False), transaction(self.rt.session_factory) as session:
            address = self.rt.store.put(key_id, data, _context(probe_id))
            own = list(session.scalars(
                select(WorkspaceProbe).where(WorkspaceProbe.user_id == actor.user_id,
                                             WorkspaceProbe.agency_id == actor.agency_id)
                .order_by(WorkspaceProbe.created_at)
            ))  # fmt: skip
            while own and (len(own) >= self.max_probes or sum(r.size_bytes for r in own) + len(data) > self.max_bytes):
                oldest = own.pop(0)
                doomed.append((oldest.key_id, oldest.store_address))
                self._drop_rows(session, [oldest])
            row = WorkspaceProbe(id=probe_id, user_id=actor.user_id, agency_id=actor.agency_id, sha256=sha256,
                                 width=width, height=height, filename=filename[:200], size_bytes=len(data),
                                 key_id=key_id, store_address=address, faces=[f.to_json() for f in faces],
                                 searches=[], created_at=utcnow())  # fmt: skip
            session.add(row)
            session.flush()
            probe = self._probe(row)
        probe._data = bytes(data)
        self._shred(doomed)
        return probe

    def _own_row(self, session: Session, actor: Actor, probe_id: str) -> WorkspaceProbe:
        row = session.get(WorkspaceProbe, str(probe_id)[:32])
        if (row is None or row.user_id != actor.user_id or row.agency_id != actor.agency_id
                or _aware(row.created_at) < self._cutoff()):  # fmt: skip
            raise NotFound("no such probe in your workspace (probes are kept for one hour): upload it again")
        return row

    def get(self, actor: Actor, probe_id: str) -> Probe:
        """The actor's probe (NotFound for another user's, or an expired one)."""
        with self.rt.session_factory() as session:
            return self._probe(self._own_row(session, actor, probe_id))

    def mine(self, actor: Actor) -> list[Probe]:
        """The actor's probes, newest first."""
        with self.rt.session_factory() as session:
            rows = session.scalars(
                select(WorkspaceProbe)
                .where(WorkspaceProbe.user_id == actor.user_id, WorkspaceProbe.agency_id == actor.agency_id,
                       WorkspaceProbe.created_at >= self._cutoff())
                .order_by(WorkspaceProbe.created_at.desc(), WorkspaceProbe.id)
            ).all()  # fmt: skip
            return [self._probe(r) for r in rows]

    def add_face(self, actor: Actor, probe_id: str, face: ProbeFace) -> None:
        """Remember a face the analyst found inside a drawn box."""
        with transaction(self.rt.session_factory) as session:
            row = self._own_row(session, actor, probe_id)
            row.faces = [*(row.faces or []), face.to_json()]

    def add_search(self, actor: Actor, probe_id: str, search_id: int) -> None:
        """Remember that a search was run from this probe (its results page shows the probe)."""
        with transaction(self.rt.session_factory) as session:
            row = self._own_row(session, actor, probe_id)
            row.searches = [*(row.searches or []), int(search_id)]

    def drop_user(self, user_id: int | None) -> None:
        """Forget every probe of a user (sign-out): rows deleted, blobs deleted, keys destroyed."""
        with transaction(self.rt.session_factory) as session:
            rows = list(session.scalars(select(WorkspaceProbe).where(WorkspaceProbe.user_id == user_id)))
            doomed = [(r.key_id, r.store_address) for r in rows]
            self._drop_rows(session, rows)
        self._shred(doomed)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def workspace_addresses(session: Session) -> set[str]:
    """Blob addresses of workspace probes (the orphan sweep must keep them)."""
    return set(session.execute(select(WorkspaceProbe.store_address)).scalars())


__all__ = ["Probe", "ProbeFace", "ProbeWorkspace", "WorkspaceProbe", "workspace_addresses"]
