"""The gallery runtime: settings, database, keystore, blob store, face engine and the search index, built once
per process and shared by the CLI, the API and the web application.

The database is the truth. The in-memory index is built from it on first use (decrypting every searchable
template) and then kept in step incrementally: enrolments and deletions made through this runtime update it
directly, and :meth:`GalleryRuntime.sync_index` (run before each search, cheap when nothing changed) catches up
with changes made by other processes (a bulk enrolment running in the CLI while the API serves searches): new
templates by id, deletions by comparing id sets when the counts disagree — never a full rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.config import ScoreFusion, Settings, get_settings
from faceleads.datadir import secure_data_dir
from faceleads.db import create_schema, make_engine, make_session_factory
from faceleads.errors import IntegrityError, KeyDestroyedError, NotFound
from faceleads.gallery import lawful
from faceleads.gallery.models import FaceTemplate, Image, Subject, SubjectStatus
from faceleads.storage.crypto import decrypt_embedding
from faceleads.storage.keystore import KeyStore

if TYPE_CHECKING:
    from faceleads.gallery.index import TemplateIndex
    from faceleads.storage.blobs import BlobStore
    from faceleads.vision.engine import FaceEngine



def template_context(subject_key_id: str, image_sha256: str, model_version: str) -> str:
    """Associated data binding an encrypted embedding to its subject, photo and model."""
    return f"template|{subject_key_id}|{image_sha256}|{model_version}"


def image_context(image_sha256: str) -> str:
    """Blob-store context of an enrolled original (the store adds the subject's key id and the address)."""
    return f"gallery-image|{image_sha256}"


@dataclass(frozen=True)
class SyncReport:
    """Outcome of :meth:`GalleryRuntime.sync_index`."""

    added: int
    removed: int
    skipped: int  # templates that could not be decrypted (destroyed key, tampered ciphertext)
    total: int


class GalleryRuntime:
    """Owns every long-lived resource of the gallery domain. Create one per process and reuse it.

    Thread-safe for searches; index mutations are serialised by an internal lock.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        face_engine: FaceEngine | None = None,
        create: bool = True,
    ) -> None:
        self.settings = settings or get_settings()
        self.settings.check_safe()
        # Private umask, data directory 0700 and its files 0600, interrupted backups removed (docs/security.md).
        secure_data_dir(self.settings)
        self.db_engine: Engine = make_engine(self.settings.effective_database_url)
        if create:
            create_schema(self.db_engine)
        self.session_factory: sessionmaker[Session] = make_session_factory(self.db_engine)
        if create:
            from faceleads.gallery.geometry import seal_legacy_geometry

            # Templates enrolled before geometry was encrypted: sealed once, on the first start after the upgrade.
            seal_legacy_geometry(self.session_factory, lambda: self.keystore)
        self._face_engine = face_engine
        self._lock = threading.RLock()
        self._index: TemplateIndex | None = None
        # Template id -> subject id of every indexed template (-1 = not indexed): 4 bytes per id, no Python objects.
        self._subject_of = np.full(0, -1, dtype=np.int32)
        self._max_seen = 0
        # Fused per-subject templates (built on the first MEAN_TEMPLATE ranking, then kept up to date).
        self._subject_index: TemplateIndex | None = None
        # subject -> (sum of unit embeddings, count, gallery); kept only while the subject index exists.
        self._subject_sums: dict[int, tuple[np.ndarray, int, int]] = {}
        # Templates that could not be decrypted (destroyed key, tampered or swapped ciphertext): never indexed.
        self._unreadable_ids: set[int] = set()
        self._indexed_model: str | None = None
        self._db_marker: tuple[int, int, int] | None = None

    # -- resources ------------------------------------------------------------------------------------------

    @cached_property
    def keystore(self) -> KeyStore:
        """The per-subject data keys (separate SQLite file under the data directory)."""
        return KeyStore.from_settings(self.settings)

    @cached_property
    def store(self) -> BlobStore:
        """The encrypted blob store of originals."""
        from faceleads.storage.blobs import BlobStore

        return BlobStore.from_settings(self.settings, self.keystore)

    @property
    def face_engine(self) -> FaceEngine:
        """The face engine (models are loaded on first use)."""
        with self._lock:
            if self._face_engine is None:
                from faceleads.vision.engine import FaceEngine

                self._face_engine = FaceEngine(self.settings)
            return self._face_engine

    @property
    def model_version(self) -> str:
        """The embedding model version probes are made with; only templates of this version are searched."""
        return self.face_engine.model_version

    @property
    def embedding_dim(self) -> int:
        """Length of the templates of the running model version (512, or more for a fusion of models)."""
        return self.face_engine.embedding_dim

    def close(self) -> None:
        """Release the database connections."""
        self.db_engine.dispose()

    # -- index ----------------------------------------------------------------------------------------------

    @property
    def index_built(self) -> bool:
        """Whether the in-memory index exists yet (it is built lazily, on the first search)."""
        return self._index is not None

    @property
    def fusion(self) -> ScoreFusion:
        """How subject scores are formed (``Settings.score_fusion``)."""
        return self.settings.score_fusion

    def _new_index(self) -> TemplateIndex:
        from faceleads.gallery.index import TemplateIndex

        return TemplateIndex(dim=self.embedding_dim, dtype=self.settings.index_dtype)

    def start(self) -> SyncReport:
        """Build the index now (instead of on the first search) and check it against the database.

        For long-running processes (API server) at start-up; raises :class:`IntegrityError` on disagreement.
        """
        report = self.sync_index(force=True)
        assert report is not None
        self.verify_index()
        return report

    def template_index(self) -> TemplateIndex:
        """The template index, built from the database on first call and synchronised with it afterwards."""
        self.sync_index()
        assert self._index is not None
        return self._index

    def subject_index(self) -> TemplateIndex:
        """The index of fused (mean) subject templates; used when ``score_fusion`` is MEAN_TEMPLATE."""
        self.sync_index()
        with self._lock:
            if self._subject_index is None:
                # Fused sums are only kept while this index exists: compute them all once now.
                self._subject_index = self._new_index()
                self._subject_sums.clear()
                self._refresh_sums({int(s) for s in np.unique(self._subject_of[self._subject_of >= 0])})
            return self._subject_index

    def _marker(self, session: Session) -> tuple[int, int, int]:
        count, max_id = session.execute(select(func.count(FaceTemplate.id), func.max(FaceTemplate.id))).one()
        return int(count or 0), int(max_id or 0), lawful.generation(session)

    @staticmethod
    def _searchable(model: str) -> Select[int]:
        # Active subjects' templates of the model, whose booking is held under an active listed legal authority.
        return lawful.only_lawful(
            select(FaceTemplate.id)
            .join(Subject, Subject.id == FaceTemplate.subject_id)
            .where(FaceTemplate.model_version == model, Subject.status == SubjectStatus.ACTIVE.value)
        )

    def _add_ids(self, session: Session, ids: list[int]) -> tuple[int, int]:
        added = skipped = 0
        for start in range(0, len(ids), 4096):
            chunk = ids[start : start + 4096]
            n_skipped = self._load_and_add(session, chunk)
            skipped += n_skipped
            added += len(chunk) - n_skipped
        return added, skipped

    def sync_index(self, *, force: bool = False) -> SyncReport | None:
        """Bring the index in step with the database; returns None when nothing changed since the last sync.

        A cheap marker (template count, highest id and the lawfulness generation, see
        :mod:`faceleads.gallery.lawful`) decides whether anything changed. New templates (ids above the highest
        seen) are decrypted and added; only when the searchable count then still disagrees (a deletion, a
        destruction, a reindex) or lawfulness changed is the full id set compared. Templates of another model
        version, of destroyed subjects, of bookings not held under an active listed legal authority, or that cannot
        be decrypted are never indexed.
        """
        with self._lock:
            model = self.model_version
            if self._index is None or self._indexed_model != model:
                self._index = self._new_index()
                self._subject_index = None
                self._subject_of = np.full(0, -1, dtype=np.int32)
                self._subject_sums.clear()
                self._unreadable_ids.clear()
                self._indexed_model = model
                self._db_marker = None
                self._max_seen = 0
            index = self._index
            with self.session_factory() as session:
                marker = self._marker(session)
                if not force and marker == self._db_marker:
                    return None
                fresh = self._searchable(model).where(FaceTemplate.id > self._max_seen)
                added, skipped = self._add_ids(session, sorted(session.execute(fresh).scalars()))
                removed = 0
                searchable = session.execute(
                    select(func.count()).select_from(self._searchable(model).subquery())
                ).scalar_one()
                # Lawfulness changed (an authority withdrawn, records re-attributed): the set may differ at an
                # equal count, so compare the ids.
                relawed = self._db_marker is not None and marker[2] != self._db_marker[2]
                if force or relawed or searchable != len(index) + len(self._unreadable_ids):
                    wanted = set(session.execute(self._searchable(model)).scalars())
                    have = {int(i) for i in index.ids()}
                    removed = self.remove_templates(sorted(have - wanted))
                    self._unreadable_ids &= wanted
                    more_added, more_skipped = self._add_ids(session, sorted(wanted - have - self._unreadable_ids))
                    added += more_added
                    skipped += more_skipped
                self._db_marker = marker
                self._max_seen = max(self._max_seen, marker[1])
            return SyncReport(added, removed, skipped, len(index))

    def _load_and_add(self, session: Session, template_ids: list[int]) -> int:
        from faceleads.gallery.models import Image

        rows = session.execute(
            select(
                FaceTemplate.id,
                FaceTemplate.subject_id,
                FaceTemplate.gallery_id,
                FaceTemplate.embedding,
                FaceTemplate.model_version,
                Subject.key_id,
                Image.sha256,
            )
            .join(Subject, Subject.id == FaceTemplate.subject_id)
            .join(Image, Image.id == FaceTemplate.image_id)
            .where(FaceTemplate.id.in_(template_ids))
        ).all()
        keys: dict[str, bytes | None] = {}
        batch: list[tuple[int, int, int, np.ndarray]] = []
        skipped = 0
        for tid, subject_id, gallery_id, blob, model_version, key_id, sha in rows:
            if key_id not in keys:
                try:
                    keys[key_id] = self.keystore.get(key_id)
                except (KeyDestroyedError, NotFound):
                    keys[key_id] = None
            key = keys[key_id]
            if key is None:
                skipped += 1
                self._unreadable_ids.add(tid)
                continue
            try:
                vector = decrypt_embedding(
                    key, blob, template_context(key_id, sha, model_version), dim=self.embedding_dim
                )
            except IntegrityError:
                skipped += 1  # tampered or swapped ciphertext: never searchable
                self._unreadable_ids.add(tid)
                continue
            self._unreadable_ids.discard(tid)
            batch.append((tid, subject_id, gallery_id, vector))
        self.add_templates(batch)
        return skipped

    def _grow(self, max_id: int) -> None:
        if max_id >= len(self._subject_of):
            size = max(1024, max_id + 1, 2 * len(self._subject_of))
            grown = np.full(size, -1, dtype=np.int32)
            grown[: len(self._subject_of)] = self._subject_of
            self._subject_of = grown

    def add_templates(self, items: Iterable[tuple[int, int, int, np.ndarray]]) -> None:
        """Add (template id, subject id, gallery id, unit embedding) entries to the index (no-op if not built)."""
        items = list(items)
        with self._lock:
            if self._index is None or not items:
                return
            ids = np.array([t[0] for t in items], dtype=np.int64)
            vectors = np.stack([np.asarray(t[3], dtype=np.float32) for t in items])
            partitions = np.array([t[2] for t in items], dtype=np.int32)
            self._grow(int(ids.max()))
            # Subjects of templates being replaced: their fused sums are recomputed rather than patched.
            stale = {int(s) for s in self._subject_of[ids] if s >= 0}
            self._index.add(ids, vectors, partitions)
            self._subject_of[ids] = np.array([t[1] for t in items], dtype=np.int32)
            if self._subject_index is None:
                return
            touched: set[int] = set()
            for _tid, subject_id, gallery_id, vector in items:
                if subject_id in stale:
                    continue
                zero = np.zeros(self.embedding_dim, np.float32)
                total, n, _ = self._subject_sums.get(subject_id, (zero, 0, gallery_id))
                self._subject_sums[subject_id] = (total + vector, n + 1, gallery_id)
                touched.add(subject_id)
            if stale:
                self._refresh_sums(stale)
            self._rebuild_subject_index(touched)

    def remove_templates(self, template_ids: Iterable[int]) -> int:
        """Remove templates from the index (no-op if not built); returns how many were indexed."""
        ids = np.array([int(t) for t in template_ids], dtype=np.int64)
        with self._lock:
            if self._index is None or ids.size == 0:
                return 0
            removed = self._index.remove(ids)
            known = ids[(ids >= 0) & (ids < len(self._subject_of))]
            subjects = {int(s) for s in self._subject_of[known] if s >= 0}
            self._subject_of[known] = -1
            if subjects and self._subject_index is not None:
                self._refresh_sums(subjects)
            return int(removed)

    def remove_subject(self, subject_id: int) -> int:
        """Remove every indexed template of a subject (destruction); returns how many."""
        with self._lock:
            return self.remove_templates(self.subject_template_ids(subject_id))

    def _refresh_sums(self, subject_ids: set[int]) -> None:
        """Recompute fused sums of subjects from their indexed templates (decrypting them; chunked queries)."""
        from faceleads.gallery.models import Image

        wanted = np.array(sorted(subject_ids), dtype=np.int32)
        tids = [int(t) for t in np.nonzero(np.isin(self._subject_of, wanted))[0]]
        sums: dict[int, tuple[np.ndarray, int, int]] = {}
        keys: dict[str, bytes | None] = {}
        with self.session_factory() as session:
            for start in range(0, len(tids), 4096):
                rows = session.execute(
                    select(
                        FaceTemplate.subject_id,
                        FaceTemplate.embedding,
                        FaceTemplate.model_version,
                        FaceTemplate.gallery_id,
                        Subject.key_id,
                        Image.sha256,
                    )
                    .join(Subject, Subject.id == FaceTemplate.subject_id)
                    .join(Image, Image.id == FaceTemplate.image_id)
                    .where(FaceTemplate.id.in_(tids[start : start + 4096]))
                ).all()
                for sid, blob, model_version, gid, key_id, sha in rows:
                    if key_id not in keys:
                        try:
                            keys[key_id] = self.keystore.get(key_id)
                        except (KeyDestroyedError, NotFound):
                            keys[key_id] = None
                    key = keys[key_id]
                    if key is None:
                        continue
                    vec = decrypt_embedding(
                        key, blob, template_context(key_id, sha, model_version), dim=self.embedding_dim
                    )
                    total, n, _ = sums.get(sid, (np.zeros(self.embedding_dim, np.float32), 0, gid))
                    sums[sid] = (total + vec, n + 1, gid)
        gone = [sid for sid in subject_ids if sid not in sums]
        for sid in gone:
            self._subject_sums.pop(sid, None)
        if gone and self._subject_index is not None:
            self._subject_index.remove(np.array(gone, dtype=np.int64))
        self._subject_sums.update(sums)
        self._rebuild_subject_index(sums.keys())

    def _rebuild_subject_index(self, subject_ids: Iterable[int]) -> None:
        if self._subject_index is None:
            return
        ids, vectors, parts = [], [], []
        for sid in subject_ids:
            entry = self._subject_sums.get(sid)
            if entry is None:
                continue
            total, count, gallery_id = entry
            norm = float(np.linalg.norm(total))
            if count == 0 or norm == 0.0:
                continue
            ids.append(sid)
            vectors.append((total / norm).astype(np.float32))
            parts.append(gallery_id)
        if ids:
            self._subject_index.add(np.array(ids, dtype=np.int64), np.stack(vectors), np.array(parts, dtype=np.int32))

    def subjects_of(self, template_ids: np.ndarray) -> np.ndarray:
        """Subject ids of indexed templates (-1 where a template is not indexed)."""
        ids = np.asarray(template_ids, dtype=np.int64)
        out = np.full(ids.shape, -1, dtype=np.int64)
        inside = (ids >= 0) & (ids < len(self._subject_of))
        out[inside] = self._subject_of[ids[inside]]
        return out

    def subject_template_ids(self, subject_id: int) -> set[int]:
        """Indexed template ids of a subject."""
        return {int(t) for t in np.nonzero(self._subject_of == subject_id)[0]}

    def partition_size(self, gallery_ids: Iterable[int]) -> int:
        """Number of indexed templates in the given galleries."""
        if self._index is None:
            return 0
        counts = self._index.partition_counts()
        return sum(counts.get(g, 0) for g in gallery_ids)

    def read_photo(self, subject: Subject, image: Image) -> bytes:
        """The decrypted original of an enrolled photo, for display or export after the caller's authorisation.

        A subject that is being destroyed (or was) is never shown, even before its key is shredded: the status
        is marked first, so this one check covers every viewer.
        """
        if subject.status != SubjectStatus.ACTIVE or image.store_address is None or image.subject_id != subject.id:
            raise NotFound(f"the photo {image.id} is no longer held (its subject was destroyed)")
        return self.store.get(subject.key_id, image.store_address, image_context(image.sha256))

    def verify_index(self) -> None:
        """Check the index against the database (count and id set); raise :class:`IntegrityError` on mismatch."""
        with self._lock, self.session_factory() as session:
            if self._index is None or self._indexed_model is None:
                return
            wanted = set(session.execute(self._searchable(self._indexed_model)).scalars())
            indexed = {int(i) for i in self._index.ids()}
            booked = {int(i) for i in np.nonzero(self._subject_of >= 0)[0]}
            if len(self._index) != len(indexed) or indexed != booked:
                raise IntegrityError(
                    f"search index bookkeeping is inconsistent ({len(self._index)} vectors, {len(booked)} entries)"
                )
            missing = wanted - indexed
            extra = indexed - wanted
            # Templates left out because their key was destroyed or their ciphertext failed are legitimate gaps.
            unexplained = {t for t in missing if t not in self._unreadable_ids and not self._unreadable(session, t)}
            if unexplained or extra:
                raise IntegrityError(
                    f"search index disagrees with the database: {len(unexplained)} template(s) missing, "
                    f"{len(extra)} not in the database"
                )

    def _unreadable(self, session: Session, template_id: int) -> bool:
        key_id = session.execute(
            select(Subject.key_id)
            .join(FaceTemplate, FaceTemplate.subject_id == Subject.id)
            .where(FaceTemplate.id == template_id)
        ).scalar_one()
        return self.keystore.is_destroyed(key_id) or not self.keystore.exists(key_id)
