"""The gallery runtime: settings, database, keystore, blob store, face engine and the search index, built once
per process and shared by the CLI, the API and the web application.

The database is the truth. The in-memory index is built from it on first use (decrypting every searchable
template) and then kept in step by the change feed (:mod:`faceleads.gallery.changefeed`): database triggers record
every template insert, update and delete and every subject status change, and :meth:`GalleryRuntime.sync_index`
(run before each search, and by a :class:`~faceleads.gallery.changefeed.FeedFollower` thread in long-running
processes) applies the entries after this process's cursor, in order, whichever process or host made the change.
This process's own writes reach its index the same way, so there is one path from the database to the index.

The index is whatever ``Settings.index_backend`` names, behind the ``VectorIndex`` protocol
(``gallery/index_backend.py``): the in-process index (filled from the database at start), or a Milvus collection
shared by every process (``index.persistent``). The feed is applied to either the same way. A shared collection
is adopted at start (its ids compared with the database, nothing decrypted again); applying the feed to it
removes what is no longer searchable whoever had indexed it, and uploads a new template only if no other process
did already. A process enrolling with the embeddings in hand writes them to a shared engine at once (the CLI has no
follower: servers searching the engine see the templates without waiting for theirs).

A template whose subject's data key is missing from the keystore (not destroyed: missing) is an error, reported by
:meth:`GalleryRuntime.verify_index` and by every search until the key is back; a destroyed key is not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.config import ScoreFusion, Settings, get_settings
from faceleads.datadir import secure_data_dir
from faceleads.db import create_schema, make_engine, make_session_factory
from faceleads.errors import IntegrityError, NotFound
from faceleads.gallery import changefeed, lawful
from faceleads.gallery.models import ChangeKind, FaceTemplate, Image, Subject, SubjectStatus
from faceleads.storage.crypto import decrypt_embedding
from faceleads.storage.keystore import KeyService, open_keystore

if TYPE_CHECKING:
    from faceleads.gallery.index import TemplateIndex
    from faceleads.gallery.index_backend import VectorIndex
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
    skipped: int  # templates that could not be decrypted (destroyed or missing key, tampered ciphertext)
    total: int
    cursor: int = 0  # the change-feed position the index reflects


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
        # The template index of Settings.index_backend (in-process, or a Milvus collection shared by every server).
        self._index: VectorIndex | None = None
        # Set when the index object is opened (empty, or a shared engine's current contents) without being brought
        # in step with the database yet: the next sync builds or reconciles it.
        self._reconcile_pending = False
        # Template id -> subject id of every indexed template (-1 = not indexed): 4 bytes per id, no Python objects.
        self._subject_of = np.full(0, -1, dtype=np.int32)
        # Fused per-subject templates (built on the first MEAN_TEMPLATE ranking, then kept up to date). Always
        # in-process: it is a cache derived from the templates, private to this process whatever the backend.
        self._subject_index: TemplateIndex | None = None
        # subject -> (sum of unit embeddings, count, gallery); kept only while the subject index exists.
        self._subject_sums: dict[int, tuple[np.ndarray, int, int]] = {}
        # Templates that could not be decrypted (destroyed key, tampered or swapped ciphertext): never indexed.
        self._unreadable_ids: set[int] = set()
        # Templates whose subject's data key is missing (not destroyed): an error until the key is back.
        self._missing_key_ids: dict[int, int] = {}  # template id -> subject id
        self._indexed_model: str | None = None
        self._cursor = 0  # last change-feed seq applied to the index
        # Lawfulness generation the index reflects (gallery.lawful): an authority withdrawn or records re-attributed
        # change which templates may be searched without a template row changing, so the feed cannot say it.
        self._lawful_generation = -1
        # Wake-up calls of this process's feed followers (run after this process changed the database).
        self.feed_listeners: list[Callable[[], None]] = []

    # -- resources ------------------------------------------------------------------------------------------

    @cached_property
    def keystore(self) -> KeyService:
        """The per-subject data keys: the keystore database (``FACELEADS_KEYSTORE_URL``) or file (default)."""
        return open_keystore(self.settings)

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
        """Release the index backend's connection and the database connections."""
        with self._lock:
            if self._index is not None:
                self._index.close()
        self.db_engine.dispose()
        keystore = self.__dict__.get("keystore")
        engine = getattr(keystore, "engine", None)
        if engine is not None:  # a keystore database: its pool reconnects if used again
            engine.dispose()

    # -- index ----------------------------------------------------------------------------------------------

    @property
    def index_built(self) -> bool:
        """Whether this process's index is built and follows the feed (it is built lazily, on the first search)."""
        return self._index is not None and not self._reconcile_pending

    @property
    def shared_index(self) -> bool:
        """Whether the template index is an engine shared with other processes (Milvus) rather than in-process."""
        return self.settings.index_backend != "memory"

    @property
    def fusion(self) -> ScoreFusion:
        """How subject scores are formed (``Settings.score_fusion``)."""
        return self.settings.score_fusion

    def _new_index(self) -> TemplateIndex:
        """An in-process index (the fused subject index; the template index of the default backend)."""
        from faceleads.gallery.index_backend import memory_index

        return memory_index(self.settings, self.embedding_dim)

    def _ensure_index(self, model: str) -> VectorIndex:
        """The template index object of ``model``, opened if needed (empty, or a shared engine's current contents)
        without bringing it in step with the database (the next sync does)."""
        with self._lock:
            if self._index is None or self._indexed_model != model:
                from faceleads.gallery.index_backend import open_index

                if self._index is not None:
                    self._index.close()
                self._index = None
                self._index = open_index(self.settings, self.embedding_dim, model)
                self._reconcile_pending = True
                self._subject_index = None
                self._subject_of = np.full(0, -1, dtype=np.int32)
                self._subject_sums.clear()
                self._unreadable_ids.clear()
                self._missing_key_ids.clear()
                self._indexed_model = model
            return self._index

    def start(self) -> SyncReport:
        """Build the index now (instead of on the first search) and check it against the database.

        For long-running processes (API server) at start-up; raises :class:`IntegrityError` on disagreement.
        """
        report = self.sync_index(force=True)
        assert report is not None
        self.verify_index()
        return report

    def notify_local_change(self) -> None:
        """Wake this process's feed followers now (other processes are woken by NOTIFY, or poll)."""
        for wake in list(self.feed_listeners):
            wake()

    @property
    def feed_cursor(self) -> int:
        """The last change-feed ``seq`` applied to this process's index."""
        return self._cursor

    def template_index(self) -> VectorIndex:
        """The template index, built from the database on first call and synchronised with it afterwards.

        Raises :class:`IntegrityError` while some subject's data key is missing from the keystore: a search would
        silently leave that subject out.
        """
        self.sync_index()
        self._refuse_missing_keys()
        assert self._index is not None
        return self._index

    def subject_index(self) -> TemplateIndex:
        """The index of fused (mean) subject templates; used when ``score_fusion`` is MEAN_TEMPLATE."""
        self.sync_index()
        self._refuse_missing_keys()
        with self._lock:
            if self._subject_index is None:
                # Fused sums are only kept while this index exists: compute them all once now.
                self._subject_index = self._new_index()
                self._subject_sums.clear()
                self._refresh_sums({int(s) for s in np.unique(self._subject_of[self._subject_of >= 0])})
            return self._subject_index

    def _refuse_missing_keys(self) -> None:
        if self._missing_key_ids:
            raise IntegrityError(self.missing_keys_message())

    def missing_keys_message(self) -> str:
        """What is wrong while templates cannot be decrypted because their keys are missing ('' when none)."""
        if not self._missing_key_ids:
            return ""
        subjects = sorted(set(self._missing_key_ids.values()))
        shown = ", ".join(str(s) for s in subjects[:10]) + (" ..." if len(subjects) > 10 else "")
        return (
            f"{len(self._missing_key_ids)} template(s) of {len(subjects)} subject(s) (ids {shown}) cannot be "
            "searched: their data keys are missing from the keystore (they were not destroyed). Searches are refused "
            "until the keys are back, rather than silently leaving these subjects out: check the keystore of this "
            "host (FACELEADS_KEYSTORE_URL or the keystore file), or restore it from its escrow copy "
            "(docs/encryption.md)"
        )

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

    def _searchable_among(self, session: Session, model: str, ids: set[int]) -> set[int]:
        ordered = sorted(ids)
        found: set[int] = set()
        for start in range(0, len(ordered), 4096):
            chunk = ordered[start : start + 4096]
            found.update(session.execute(self._searchable(model).where(FaceTemplate.id.in_(chunk))).scalars())
        return found

    def sync_index(self, *, force: bool = False) -> SyncReport | None:
        """Bring the index in step with the database; returns None when nothing changed since the last sync.

        Builds the index on first use (or when the model changed); afterwards applies the change-feed entries after
        this process's cursor, in order. ``force`` (or feed entries pruned before this process applied them)
        compares the index with the tables instead, and so does a change of the lawfulness generation (see
        :mod:`faceleads.gallery.lawful`). Templates of another model version, of subjects that are not active, of
        bookings not held under an active listed legal authority, or that cannot be decrypted are never indexed.
        """
        with self._lock:
            model = self.model_version
            with self.session_factory() as session:
                generation = lawful.generation(session)
                if self._index is None or self._indexed_model != model or self._reconcile_pending:
                    report = self._build(session, model)
                    self._lawful_generation = generation
                    return report
                if force or generation != self._lawful_generation:
                    report = self._reconcile(session, model)
                    self._lawful_generation = generation
                    return report
                try:
                    changes = changefeed.read_changes(session, self._cursor)
                except changefeed.FeedGap:
                    return self._reconcile(session, model)
                if not changes and not self._missing_key_ids:
                    return None
                added = removed = skipped = 0
                while changes:
                    a, r, k = self._apply(session, changes, model)
                    added, removed, skipped = added + a, removed + r, skipped + k
                    self._cursor = changes[-1].seq
                    if len(changes) < changefeed.READ_BATCH:
                        break
                    changes = changefeed.read_changes(session, self._cursor)
                if self._missing_key_ids:  # the keys may be back (keystore restored)
                    retry = self._searchable_among(session, model, set(self._missing_key_ids))
                    self._missing_key_ids = {t: s for t, s in self._missing_key_ids.items() if t in retry}
                    a, k = self._add_ids(session, sorted(retry))
                    added, skipped = added + a, skipped + k
            assert self._index is not None
            return SyncReport(added, removed, skipped, len(self._index), self._cursor)

    def _build(self, session: Session, model: str) -> SyncReport:
        """The index of every searchable template, positioned at the feed's current end: filled from the tables
        (in-process), or a shared engine's contents reconciled with them (nothing it holds is decrypted again)."""
        index = self._ensure_index(model)
        if index.persistent:
            report = self._reconcile(session, model)
            self._reconcile_pending = False
            return report
        # The cursor is read before the tables: changes committed in between are applied again later, which is
        # harmless (applying an entry re-reads the current state of what it names).
        cursor = changefeed.latest_seq(session)
        added, skipped = self._add_ids(session, sorted(session.execute(self._searchable(model)).scalars()))
        self._cursor = cursor
        self._reconcile_pending = False
        return SyncReport(added, 0, skipped, len(index), cursor)

    def _reconcile(self, session: Session, model: str) -> SyncReport:
        """Compare the index with the tables and fix every difference (start-up checks, a pruned feed, a shared
        engine being adopted)."""
        assert self._index is not None
        cursor = changefeed.latest_seq(session)
        wanted = set(session.execute(self._searchable(model)).scalars())
        have = {int(i) for i in self._index.ids()}
        # A shared engine holds templates other processes indexed: book them without decrypting them again.
        self._adopt(session, sorted(have & wanted))
        # Entries this process booked that the engine no longer holds were removed by another process sharing it.
        booked = {int(i) for i in np.nonzero(self._subject_of >= 0)[0]}
        removed = self.remove_templates(sorted((have - wanted) | (booked - have)))
        self._unreadable_ids &= wanted
        self._missing_key_ids = {t: s for t, s in self._missing_key_ids.items() if t in wanted}
        retry = [t for t in self._missing_key_ids if t not in have]
        added, skipped = self._add_ids(session, sorted(set(wanted - have - self._unreadable_ids) | set(retry)))
        self._cursor = max(self._cursor, cursor)
        return SyncReport(added, removed, skipped, len(self._index), self._cursor)

    def _apply(self, session: Session, changes: list[changefeed.Change], model: str) -> tuple[int, int, int]:
        """Apply a batch of feed entries; each names something whose current state is re-read from the tables."""
        inserted: set[int] = set()
        replaced: set[int] = set()
        subjects: set[int] = set()
        for change in changes:
            if change.kind == ChangeKind.TEMPLATE_INSERT.value:
                inserted.add(change.ref_id)
            elif change.kind in (ChangeKind.TEMPLATE_UPDATE.value, ChangeKind.TEMPLATE_DELETE.value):
                replaced.add(change.ref_id)  # content changed or gone: whatever is indexed under this id goes
            elif change.kind == ChangeKind.SUBJECT.value:
                subjects.add(change.ref_id)
        of_subjects: set[int] = set()
        if subjects:
            wanted = np.array(sorted(subjects), dtype=np.int32)
            of_subjects = {int(t) for t in np.nonzero(np.isin(self._subject_of, wanted))[0]}
            for start in range(0, len(wanted), 4096):
                chunk = [int(s) for s in wanted[start : start + 4096]]
                of_subjects.update(
                    session.execute(select(FaceTemplate.id).where(FaceTemplate.subject_id.in_(chunk))).scalars()
                )
        candidates = inserted | replaced | of_subjects
        searchable = self._searchable_among(session, model, candidates)
        indexed = {t for t in candidates if t < len(self._subject_of) and self._subject_of[t] >= 0}
        assert self._index is not None
        shared = self._index.persistent
        stale = (candidates - searchable) | replaced
        # A shared engine may hold what another process indexed: every process removes what is no longer
        # searchable, whoever indexed it (the destroying process waits for every follower to have done so).
        removed = self.remove_templates(sorted(stale if shared else stale & indexed))
        for tid in candidates - searchable:
            self._unreadable_ids.discard(tid)
            self._missing_key_ids.pop(tid, None)
        fresh = sorted(t for t in searchable if t in replaced or t not in indexed)
        if shared and fresh:
            # Uploaded already by the enrolling process or another follower: book it, decrypt nothing.
            present = set(self._index.present([t for t in fresh if t not in replaced]).tolist())
            self._adopt(session, sorted(present))
            fresh = [t for t in fresh if t not in present]
        added, skipped = self._add_ids(session, fresh)
        return added, removed, skipped

    def _adopt(self, session: Session, template_ids: list[int]) -> None:
        """Book templates found in a shared index that this process has not indexed itself (their subject comes
        from the database; their vectors are already in the engine, so nothing is decrypted)."""
        if not template_ids:
            return
        ids = np.array(template_ids, dtype=np.int64)
        self._grow(int(ids.max()))
        unknown = ids[self._subject_of[ids] < 0].tolist()
        for start in range(0, len(unknown), 4096):
            chunk = unknown[start : start + 4096]
            rows = session.execute(
                select(FaceTemplate.id, FaceTemplate.subject_id).where(FaceTemplate.id.in_(chunk))
            ).all()
            for tid, sid in rows:
                self._subject_of[int(tid)] = int(sid)
        if self._subject_index is not None and unknown:
            self._refresh_sums({int(s) for s in self._subject_of[np.array(unknown, dtype=np.int64)] if s >= 0})

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
            # In id order, like _refresh_sums: a subject's fused sum then adds the same floats in the same order in
            # every process and after every rebuild (float addition is not associative).
            .order_by(FaceTemplate.id)
        ).all()
        keys = self.keystore.lookup({r[5] for r in rows})
        batch: list[tuple[int, int, int, np.ndarray]] = []
        skipped = 0
        for tid, subject_id, gallery_id, blob, model_version, key_id, sha in rows:
            key = keys.live.get(key_id)
            if key is None:
                skipped += 1
                if key_id in keys.missing:
                    self._missing_key_ids[tid] = subject_id  # an error, reported until the key is back
                else:
                    self._unreadable_ids.add(tid)  # destroyed: gone for good
                    self._missing_key_ids.pop(tid, None)
                continue
            self._missing_key_ids.pop(tid, None)
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
        """Add (template id, subject id, gallery id, unit embedding) entries to the index.

        A no-op while an in-process index is not built (it is built from the database when first needed); a
        shared engine is opened if needed and written at once, so every server sees the template at once.
        """
        items = list(items)
        with self._lock:
            if not items:
                return
            if self._index is None and self.shared_index:
                self._ensure_index(self.model_version)
            if self._index is None:
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
        """Remove templates from the index; returns how many were indexed.

        A no-op while an in-process index is not built; a shared engine is opened if needed, so that a process
        that never searched (the CLI running a destruction) still deletes the vectors from it.
        """
        ids = np.array([int(t) for t in template_ids], dtype=np.int64)
        with self._lock:
            if ids.size == 0:
                return 0
            if self._index is None and self.shared_index:
                self._ensure_index(self.model_version)
            if self._index is None:
                return 0
            removed = self._index.remove(ids)
            known = ids[(ids >= 0) & (ids < len(self._subject_of))]
            subjects = {int(s) for s in self._subject_of[known] if s >= 0}
            self._subject_of[known] = -1
            if subjects and self._subject_index is not None:
                self._refresh_sums(subjects)
            return int(removed)

    def remove_subject(self, subject_id: int) -> int:
        """Remove every indexed template of a subject (destruction); returns how many.

        With a shared engine the subject's templates are also looked up in the database: another server may
        have indexed templates this process never booked.
        """
        with self._lock:
            ids = self.subject_template_ids(subject_id)
            if self.shared_index:
                with self.session_factory() as session:
                    ids |= set(session.scalars(select(FaceTemplate.id).where(FaceTemplate.subject_id == subject_id)))
            return self.remove_templates(sorted(ids))

    def _refresh_sums(self, subject_ids: set[int]) -> None:
        """Recompute fused sums of subjects from their indexed templates (decrypting them; chunked queries)."""
        from faceleads.gallery.models import Image

        wanted = np.array(sorted(subject_ids), dtype=np.int32)
        tids = [int(t) for t in np.nonzero(np.isin(self._subject_of, wanted))[0]]
        sums: dict[int, tuple[np.ndarray, int, int]] = {}
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
                    .order_by(FaceTemplate.id)
                ).all()
                keys = self.keystore.lookup({r[4] for r in rows}).live
                for sid, blob, model_version, gid, key_id, sha in rows:
                    key = keys.get(key_id)
                    if key is None:  # destroyed since indexing: the feed removes the subject
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
        return self._index.count(list(gallery_ids))

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
            if self._missing_key_ids:
                raise IntegrityError(self.missing_keys_message())
            self._check_indexed_keys(session)
            missing = wanted - indexed
            extra = indexed - wanted
            # Templates left out because their key was destroyed or their ciphertext failed are legitimate gaps; a
            # key that is merely missing is not.
            unexplained = missing - self._unreadable_ids
            keyless = 0
            if unexplained:
                key_of = dict(
                    session.execute(
                        select(FaceTemplate.id, Subject.key_id)
                        .join(Subject, Subject.id == FaceTemplate.subject_id)
                        .where(FaceTemplate.id.in_(sorted(unexplained)[:10_000]))
                    ).all()
                )
                keys = self.keystore.lookup(set(key_of.values()))
                unexplained = {t for t in unexplained if key_of.get(t) not in keys.destroyed}
                keyless = sum(1 for t in unexplained if key_of.get(t) in keys.missing)
            if unexplained or extra:
                why = f" ({keyless} of them have no data key in the keystore)" if keyless else ""
                raise IntegrityError(
                    f"search index disagrees with the database: {len(unexplained)} template(s) missing{why}, "
                    f"{len(extra)} not in the database"
                )

    def _check_indexed_keys(self, session: Session) -> None:
        """Every indexed subject's key must be live: a missing one is this host's keystore failing, a destroyed
        one a destruction this index did not follow."""
        subjects = sorted({int(x) for x in np.unique(self._subject_of[self._subject_of >= 0])})
        for start in range(0, len(subjects), 4096):
            chunk = subjects[start : start + 4096]
            key_of = dict(session.execute(select(Subject.id, Subject.key_id).where(Subject.id.in_(chunk))).all())
            keys = self.keystore.lookup(set(key_of.values()))
            for sid, key_id in sorted(key_of.items()):
                if key_id in keys.missing:
                    self._missing_key_ids.update({t: sid for t in self.subject_template_ids(sid)})
                elif key_id in keys.destroyed:
                    raise IntegrityError(f"subject {sid} is in the search index but its data key was destroyed")
            if self._missing_key_ids:
                raise IntegrityError(self.missing_keys_message())
