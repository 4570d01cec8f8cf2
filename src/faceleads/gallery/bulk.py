"""Bulk enrolment: a CSV manifest (or NIST files, see :mod:`faceleads.gallery.nist`) enrolled photo by photo.

Pipeline: the parent process reads every row, validates its fields, reads the photo and hashes it. Rows already
done in a previous run of the same input, and photos already enrolled for their subject, are skipped without
detection. The rest go to worker processes (spawned; each builds its own face engine with one ONNX thread) for
detection and embedding. The parent alone writes to the database, one transaction per photo that also records the
row's outcome, so a ``kill -9`` at any moment leaves whole photos or nothing. A re-run of the same input resumes:
it sweeps orphan blobs left by an interrupted commit, skips finished rows and retries the others.

Per-row problems never stop the batch; they are recorded and written to the error report (CSV).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from faceleads import identifiers, safecsv
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, require
from faceleads.core.uow import transaction
from faceleads.datadir import private_umask
from faceleads.db import utcnow
from faceleads.errors import FaceleadsError, ImageError, PermissionDenied, ValidationError
from faceleads.gallery.authorities import listed_authority, require_listed
from faceleads.gallery.dispositions import DispositionInput, find_encounter, parse_kind, record_in
from faceleads.gallery.enrolment import (
    PhotoAnalysis,
    PhotoOutcome,
    RecordInput,
    analyse_photo,
    enrolment_lock,
    find_enrolled,
    index_outcomes,
    parse_birth_year,
    parse_date,
    parse_sex,
    write_photo,
)
from faceleads.gallery.models import EnrolmentBatch, EnrolmentRow, RowStatus
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.vision.imaging import image_format

REQUIRED_COLUMNS = ("agency", "subject", "booking", "date", "authority", "photo")
OPTIONAL_COLUMNS = ("sex", "birth_year", "group", "charge", "gallery", "capture_date", "disposition",
                    "disposition_date", "disposition_ref")
DISPOSITION_COLUMNS = ("disposition", "disposition_date", "disposition_ref")
ERROR_COLUMNS = ("row", "status", "subject", "booking", "photo", "reason")
MAX_MANIFEST_BYTES = 512 * 1024 * 1024

ProgressCallback = Callable[[int, int], None]  # (rows finished, rows in batch)
T = TypeVar("T")


@dataclass
class PreparedRow:
    """One photo to enrol, with its record fields, or the reason it cannot be."""

    row_number: int  # 1-based data row (header not counted) or photo number in a NIST batch
    subject: str = ""
    booking: str = ""
    photo: str = ""  # as given in the input (for the report)
    agency_code: str = ""
    record: RecordInput | None = None
    capture_date: date | None = None
    data: bytes | None = field(default=None, repr=False)
    sha256: str = ""
    error: str = ""
    photo_path: Path | None = None  # the photo's real path, inside ``photo_root`` (checked when the row is parsed)
    photo_root: Path | None = None  # the folder every photo of the batch must be inside
    disposition: DispositionInput | None = None  # a disposition event of the row's booking (manifest columns)


@dataclass
class BatchReport:
    """Outcome of a bulk run (counts over the whole batch, including earlier runs)."""

    batch_id: int
    total: int
    enrolled: int
    skipped: int
    errors: int
    warnings: int
    processed_this_run: int
    error_rows: list[dict[str, Any]]
    # Distinct (booking, kind) disposition events the batch's rows carried; their destruction is scheduled by the
    # agency's disposition policy (faceleads disposition report / run).
    dispositions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "total": self.total,
            "enrolled": self.enrolled,
            "skipped": self.skipped,
            "errors": self.errors,
            "warnings": self.warnings,
            "processed_this_run": self.processed_this_run,
            "dispositions": self.dispositions,
        }


# ------------------------------------------------------------------------------------------ manifest parsing


def read_manifest(
    path: Path, default_agency: str, *, photo_root: Path | None = None, label: str | None = None
) -> tuple[str, list[PreparedRow]]:
    """Parse a manifest CSV into prepared rows (photos not yet read). Returns (content sha256, rows).

    Photo paths are relative to the manifest's folder and must resolve — symbolic links followed — inside
    ``photo_root`` (default: the manifest's folder); see :func:`resolve_photo`. ``label`` names the manifest in
    error messages (default: its path; an uploaded manifest passes a label so no server path is disclosed).

    Structural problems (unreadable file, missing columns) refuse the whole manifest with
    :class:`ValidationError`; problems of single rows are recorded on the row.
    """
    name = label or str(path)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValidationError(f"manifest {name} is larger than {MAX_MANIFEST_BYTES // 2**20} MB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"manifest {name} does not exist") from None
    except IsADirectoryError:
        raise ValidationError(f"manifest {name} is a directory") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"manifest {name} is not UTF-8 text (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValidationError(
            f"manifest {name} lacks column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}"
        )
    reader.fieldnames = header
    base = path.resolve().parent
    root = Path(os.path.realpath(photo_root if photo_root is not None else base))
    rows = []
    try:
        for number, raw_row in enumerate(reader, start=1):
            rows.append(_prepare_row(number, raw_row, base, root, default_agency))
    except csv.Error as exc:
        raise ValidationError(f"manifest {name} is not valid CSV near data row {len(rows) + 1}: {exc}") from None
    return hashlib.sha256(raw).hexdigest(), rows


def _prepare_row(number: int, raw: dict[str, Any], base: Path, root: Path, default_agency: str) -> PreparedRow:
    def get(name: str) -> str:
        value = raw.get(name)
        return value.strip() if isinstance(value, str) else ""

    row = PreparedRow(number, subject=get("subject"), booking=get("booking"), photo=get("photo"))
    row.agency_code = (get("agency") or default_agency).upper()
    if None in raw:  # DictReader puts surplus fields under the None key
        row.error = "row has more fields than the header"
        return row
    try:
        row.agency_code = identifiers.agency_code(get("agency") or default_agency)
        if not row.photo:
            raise ValidationError("photo path is empty")
        row.record = RecordInput(
            subject_number=row.subject,
            booking_number=row.booking,
            booking_date=parse_date(get("date"), "booking date"),
            legal_authority=get("authority"),
            charge=get("charge"),
            gallery=get("gallery") or None,
            sex=parse_sex(get("sex")),
            birth_year=parse_birth_year(get("birth_year")),
            population_group=get("group") or None,
        )
        if get("capture_date"):
            row.capture_date = parse_date(get("capture_date"), "capture date")
        if any(get(c) for c in DISPOSITION_COLUMNS):
            missing = [c for c in DISPOSITION_COLUMNS if not get(c)]
            if missing:
                raise ValidationError(
                    f"a disposition needs {', '.join(DISPOSITION_COLUMNS)}; missing {', '.join(missing)}"
                )
            row.disposition = DispositionInput(
                parse_kind(get("disposition")), parse_date(get("disposition_date"), "disposition date"),
                get("disposition_ref"),
            )  # fmt: skip
    except ValidationError as exc:
        row.error = str(exc)
        return row
    row.photo_root = root
    row.photo_path = resolve_photo(base, root, row.photo)
    if row.photo_path is None:
        row.error = photo_refused(row.photo)
    return row


# ------------------------------------------------------------------------------------------ photo paths
#
# A manifest names its photos by path, and whoever writes the manifest is not trusted with the server's files: an
# uploaded manifest (or one dropped in the import folder) could name /data/master.key, ../../etc/shadow or a
# symbolic link to them. Every photo must therefore resolve inside one root folder — the uploaded archive, the
# import folder, or the manifest's own folder on the command line — and anything else gets the same neutral
# answer as a missing file or a file that is not an image, so the error report cannot be used to probe which
# server files exist or what they hold.


def photo_refused(photo: str) -> str:
    """The one answer for a photo that is missing, outside the root, not a regular file or not an image."""
    shown = photo if len(photo) <= 200 else photo[:200] + "..."
    return (
        f"photo {shown!r} cannot be used: give the path, relative to the manifest, of an image file (JPEG, PNG, "
        "BMP, TIFF or WebP) inside the manifest's folder or uploaded archive"
    )


def resolve_photo(base: Path, root: Path, photo: str) -> Path | None:
    """The real path of ``photo`` (relative to ``base``) if it lies inside ``root`` after resolving every symbolic
    link; None for an absolute path, a NUL byte, or anything that ends up outside (``..``, a link pointing out)."""
    if not photo or "\x00" in photo or PurePosixPath(photo).is_absolute() or PureWindowsPath(photo).anchor:
        return None
    try:
        real = Path(os.path.realpath(base / photo))
    except (OSError, ValueError):
        return None
    return real if root in real.parents else None


def _open_inside(root: Path, real: Path) -> int:
    """Open ``real`` (inside ``root``) for reading, walking down from ``root`` one component at a time without
    following any link, so a component swapped for a symbolic link after :func:`resolve_photo` is refused (no race).
    Raises OSError when anything is off."""
    parts = real.relative_to(root).parts
    if not parts:
        raise IsADirectoryError(str(real))
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
        # O_NONBLOCK: a FIFO must not block the batch; it is refused below as not a regular file.
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


def read_photo(row: PreparedRow, max_bytes: int) -> None:
    """Read and hash the photo of ``row`` (recording the neutral refusal, or an over-size error, on the row)."""
    if row.photo_path is None or row.photo_root is None:
        row.error = photo_refused(row.photo)
        return
    try:
        fd = _open_inside(row.photo_root, row.photo_path)
    except (OSError, ValueError):
        row.error = photo_refused(row.photo)
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # devices (/dev/zero), FIFOs, sockets, directories
            row.error = photo_refused(row.photo)
            return
        if info.st_size > max_bytes:
            row.error = f"photo {row.photo} is {info.st_size} bytes, over the {max_bytes} byte limit"
            return
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError:
        row.error = photo_refused(row.photo)
        return
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        row.error = f"photo {row.photo} is over the {max_bytes} byte limit"
        return
    if image_format(data) is None:  # not an image at all: the same answer as a missing file
        row.error = photo_refused(row.photo)
        return
    row.data = data
    row.sha256 = hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------ worker processes

_worker_engine: Any = None
_worker_settings: Settings | None = None


def _init_worker(settings: Settings) -> None:
    """Runs once in each worker: one face engine with a single ONNX thread (parallelism comes from processes)."""
    global _worker_engine, _worker_settings
    from faceleads.vision.engine import FaceEngine

    private_umask()  # inherited from the parent already; set again in case a worker is started another way
    _worker_settings = settings.model_copy(update={"ort_threads": 1})
    _worker_engine = FaceEngine(_worker_settings)


def _analyse_in_worker(data: bytes) -> PhotoAnalysis | str:
    """Analyse one photo; an unreadable image comes back as its error message (never crashes the worker)."""
    assert _worker_engine is not None and _worker_settings is not None
    try:
        return analyse_photo(_worker_engine, data, _worker_settings)
    except ImageError as exc:
        return f"corrupt or unreadable image: {exc}"
    except FaceleadsError as exc:
        return f"cannot analyse photo: {exc}"


class _Analyser:
    """Runs analyses in worker processes, or in this process when ``workers`` is 0."""

    def __init__(self, rt: GalleryRuntime, workers: int) -> None:
        self.rt = rt
        self.workers = workers
        self.pool: cf.ProcessPoolExecutor | None = None
        if workers > 0:
            self.pool = cf.ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(rt.settings,),
            )

    def run(self, rows: Iterator[PreparedRow]) -> Iterator[tuple[PreparedRow, PhotoAnalysis | str]]:
        """Yield (row, analysis or error) as analyses finish, keeping a bounded number in flight."""
        if self.pool is None:
            for row in rows:
                assert row.data is not None
                try:
                    yield row, analyse_photo(self.rt.face_engine, row.data, self.rt.settings)
                except ImageError as exc:
                    yield row, f"corrupt or unreadable image: {exc}"
            return
        window = max(4, self.workers * 8)
        pending: dict[cf.Future[PhotoAnalysis | str], PreparedRow] = {}
        exhausted = False
        while pending or not exhausted:
            ready: list[tuple[PreparedRow, PhotoAnalysis | str]] = []
            try:
                while not exhausted and len(pending) < window:
                    nxt = next(rows, None)
                    if nxt is None:
                        exhausted = True
                        break
                    pending[self.pool.submit(_analyse_in_worker, nxt.data)] = nxt  # type: ignore[arg-type]
                if not pending:
                    break
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                ready = [(pending.pop(f), f.result()) for f in done]
            except BrokenProcessPool:
                # A worker was killed (OOM killer, operator): stop cleanly; committed rows are kept.
                raise FaceleadsError(
                    "a worker process died (out of memory or killed); finished rows are saved: "
                    "re-run the same command to resume"
                ) from None
            yield from ready

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def analyse_many(
    rt: GalleryRuntime, photos: Iterable[tuple[T, bytes]], workers: int
) -> Iterator[tuple[T, PhotoAnalysis | str]]:
    """Analyse many photos in worker processes (0 = in this process); yields (key, analysis or error text) in
    completion order. Used by bulk enrolment and by the measurement tools."""
    keys: dict[int, T] = {}

    def rows() -> Iterator[PreparedRow]:
        for number, (key, data) in enumerate(photos):
            keys[number] = key
            yield PreparedRow(number, data=data)

    analyser = _Analyser(rt, workers)
    try:
        for row, result in analyser.run(rows()):
            yield keys.pop(row.row_number), result
    finally:
        analyser.close()


# ------------------------------------------------------------------------------------------ the batch


def _record_row(session: Any, batch_id: int, row: PreparedRow, status: str, reason: str, image_id: int | None) -> None:
    existing = session.scalars(
        select(EnrolmentRow).where(EnrolmentRow.batch_id == batch_id, EnrolmentRow.row_number == row.row_number)
    ).first()
    details: dict[str, Any] = {"subject": row.subject, "booking": row.booking, "photo": row.photo}
    if row.disposition is not None and status != RowStatus.ERROR.value:
        details["disposition"] = row.disposition.kind
    if existing is None:
        session.add(
            EnrolmentRow(
                batch_id=batch_id,
                row_number=row.row_number,
                status=status,
                reason=reason,
                image_id=image_id,
                details=details,
            )
        )
    else:
        existing.status, existing.reason, existing.image_id, existing.details = (
            status,
            reason,
            image_id,
            details,
        )


def referenced_addresses(session: Session) -> set[str]:
    """Every blob-store address any record points at: gallery photos, case evidence, video frames used as probes,
    and the uploaded input of background jobs that have not finished.

    By convention every column holding a blob-store address is named ``*_address`` (the backup relies on the same
    convention). The columns are found in the live schema rather than imported from the domains that own them, so
    the gallery does not depend on casework, and a table added later is covered without a change here; counting a
    column that holds something else only keeps more blobs.
    """
    inspector = inspect(session.get_bind())
    referenced: set[str] = set()
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            name = str(column["name"])
            if not name.endswith("address"):
                continue
            query = text(f'SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL')  # names from the schema
            values: list[object] = list(session.execute(query).scalars())
            referenced.update(str(a) for a in values if a)
    from faceleads.gallery.bulk_jobs import job_input_addresses  # the queue's payloads are JSON, not columns

    referenced |= job_input_addresses(session)
    return referenced


def sweep_orphans(rt: GalleryRuntime) -> int:
    """Delete blobs no record references, if no other process is enrolling right now; returns the count.

    Only safe with the exclusive lock: every store writer (enrolment, case evidence) holds it shared, and its
    blob is an "orphan" until its transaction commits.
    """
    with enrolment_lock(rt, exclusive=True, blocking=False) as got:
        if not got:
            return 0
        with rt.session_factory() as session:
            referenced = referenced_addresses(session)
        return rt.store.remove_orphans(referenced)


def run_batch(
    rt: GalleryRuntime,
    actor: Actor,
    *,
    kind: str,
    source: str,
    source_sha256: str,
    rows: list[PreparedRow],
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Enrol prepared rows as one resumable batch (see the module docstring)."""
    require(actor, Action.ENROL, actor.agency_id)
    n_workers = rt.settings.effective_workers if workers is None else workers
    if n_workers < 0:
        raise ValidationError(f"workers must be 0 or more, got {n_workers}")
    sweep_orphans(rt)
    with transaction(rt.session_factory) as session:
        batch = session.scalars(
            select(EnrolmentBatch).where(
                EnrolmentBatch.agency_id == actor.agency_id, EnrolmentBatch.source_sha256 == source_sha256
            )
        ).first()
        if batch is None:
            batch = EnrolmentBatch(
                agency_id=actor.agency_id,
                kind=kind,
                source=source,
                source_sha256=source_sha256,
                username=actor.username,
                total_rows=len(rows),
                runs=0,
            )
            session.add(batch)
        batch.runs += 1
        batch.finished_at = None
        session.flush()
        batch_id = batch.id
        done_rows = set(
            session.execute(
                select(EnrolmentRow.row_number).where(
                    EnrolmentRow.batch_id == batch_id,
                    EnrolmentRow.status.in_([RowStatus.ENROLLED.value, RowStatus.SKIPPED.value]),
                )
            ).scalars()
        )
    todo = [r for r in rows if r.row_number not in done_rows]
    _refuse_unlisted_authorities(rt, actor, batch_id, todo)
    total = len(rows)
    finished = total - len(todo)
    processed = 0
    if progress:
        progress(finished, total)

    def tick() -> None:
        nonlocal finished, processed
        finished += 1
        processed += 1
        if progress:
            progress(finished, total)

    def needing_analysis() -> Iterator[PreparedRow]:
        """Rows that need detection; the others (errors, known photos) are settled here on the way."""
        for row in todo:
            if not row.error and row.agency_code and row.agency_code != actor.agency_code:
                row.error = (
                    f"agency {row.agency_code} is not the enrolling user's agency ({actor.agency_code}); "
                    "records are enrolled by their own agency"
                )
            if not row.error and row.data is None and row.photo_path is not None:
                read_photo(row, rt.settings.max_file_bytes)
            if row.error:
                _finish_error(rt, batch_id, row)
                tick()
                continue
            assert row.record is not None
            with rt.session_factory() as session:
                known = find_enrolled(session, actor.agency_id, row.record.subject_number, row.sha256)
            if known is not None:
                # Already enrolled (earlier batch or duplicate row): no detection needed; the record fields are
                # still checked for conflicts inside the write.
                _write(rt, actor, batch_id, row, None)
                row.data = None
                tick()
                continue
            yield row

    with enrolment_lock(rt, exclusive=False):
        analyser = _Analyser(rt, n_workers)
        try:
            for row, result in analyser.run(needing_analysis()):
                if isinstance(result, str):
                    row.error = result
                    _finish_error(rt, batch_id, row)
                else:
                    _write(rt, actor, batch_id, row, result)
                row.data = None  # free memory early
                tick()
        finally:
            analyser.close()
    with transaction(rt.session_factory) as session:
        batch = session.get(EnrolmentBatch, batch_id)
        assert batch is not None
        batch.finished_at = utcnow()
        report = _report(session, batch_id, total, processed)
        audit.record(
            session,
            actor,
            audit.AuditAction.ENROL,
            f"enrolment_batch:{batch_id}",
            audit.Outcome.OK,
            details={
                "kind": kind,
                "row_count": total,
                "enrolled_count": report.enrolled,
                "error_count": report.errors,
            },
        )
    return report


def _refuse_unlisted_authorities(rt: GalleryRuntime, actor: Actor, batch_id: int, rows: list[PreparedRow]) -> None:
    """Mark the rows whose legal authority is not on the agency's list as refused, before any photo is read.

    One audited refusal per distinct authority text (with the number of rows), not one per row: a manifest of
    100,000 rows under a bad authority is one decision, recorded once.
    """
    by_text: dict[str, list[PreparedRow]] = {}
    for row in rows:
        if not row.error and row.record is not None:
            by_text.setdefault(row.record.legal_authority.strip(), []).append(row)
    if not by_text:
        return
    with rt.session_factory() as session:
        unlisted = [given for given in by_text if listed_authority(session, actor.agency_id, given) is None]
    for given in unlisted:
        try:
            require_listed(rt, actor, given, f"enrolment_batch:{batch_id}", rows=len(by_text[given]))
        except PermissionDenied as exc:
            for row in by_text[given]:
                row.error = str(exc)


def _finish_error(rt: GalleryRuntime, batch_id: int, row: PreparedRow) -> None:
    with transaction(rt.session_factory) as session:
        _record_row(session, batch_id, row, RowStatus.ERROR.value, row.error, None)


def _write(rt: GalleryRuntime, actor: Actor, batch_id: int, row: PreparedRow, analysis: PhotoAnalysis | None) -> None:
    """Write one photo and its row outcome in one transaction; a conflict becomes the row's error instead."""
    assert row.record is not None and row.data is not None
    outcome: PhotoOutcome | None = None
    try:
        with transaction(rt.session_factory) as session:
            if analysis is None:
                # Known duplicate: write_photo re-checks and returns "skipped" without needing an analysis.
                analysis = _placeholder(row)
            outcome = write_photo(
                rt,
                session,
                actor,
                actor.agency_id,
                row.record,
                analysis,
                row.data,
                capture_date=row.capture_date,
                source=row.photo,
            )
            if row.disposition is not None:
                # The booking's disposition, in the photo's transaction: both or neither.
                encounter = find_encounter(session, actor.agency_id, row.record.booking_number)
                assert encounter is not None
                record_in(session, actor, encounter, row.disposition, "manifest")
            status = RowStatus.SKIPPED.value if outcome.status == "skipped" else RowStatus.ENROLLED.value
            reason = (
                "already enrolled (same photo for this subject)" if outcome.status == "skipped" else outcome.warning
            )
            _record_row(session, batch_id, row, status, reason, outcome.image_id)
    except FaceleadsError as exc:
        row.error = str(exc)
        _finish_error(rt, batch_id, row)
        return
    except sqlalchemy.exc.IntegrityError as exc:
        # Another process enrolled the same subject, booking or photo at the same moment.
        row.error = f"concurrent enrolment of the same record by another process; re-run to retry ({exc.orig})"
        _finish_error(rt, batch_id, row)
        return
    index_outcomes(rt, [outcome])


def _placeholder(row: PreparedRow) -> PhotoAnalysis:
    return PhotoAnalysis(
        sha256=row.sha256,
        format="",
        size_bytes=len(row.data or b""),
        width=0,
        height=0,
        face_count=0,
        face=None,
        model_name="",
        model_version="",
    )


def _report(session: Any, batch_id: int, total: int, processed: int) -> BatchReport:
    rows = session.scalars(
        select(EnrolmentRow).where(EnrolmentRow.batch_id == batch_id).order_by(EnrolmentRow.row_number)
    ).all()
    counts = {s.value: 0 for s in RowStatus}
    problems = []
    warnings = 0
    events: set[tuple[str, str]] = set()
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status != RowStatus.ERROR.value and (r.details or {}).get("disposition"):
            events.add((str(r.details.get("booking", "")), str(r.details["disposition"])))
        if r.status == RowStatus.ERROR.value or (r.status == RowStatus.ENROLLED.value and r.reason):
            if r.status == RowStatus.ENROLLED.value:
                warnings += 1
            problems.append(
                {
                    "row": r.row_number,
                    "status": "error" if r.status == RowStatus.ERROR.value else "warning",
                    "subject": r.details.get("subject", ""),
                    "booking": r.details.get("booking", ""),
                    "photo": r.details.get("photo", ""),
                    "reason": r.reason,
                }
            )
    return BatchReport(
        batch_id,
        total,
        counts[RowStatus.ENROLLED.value],
        counts[RowStatus.SKIPPED.value],
        counts[RowStatus.ERROR.value],
        warnings,
        processed,
        problems,
        len(events),
    )


def error_report_csv(report: BatchReport) -> str:
    """The batch's errors and warnings as CSV text (columns: row, status, subject, booking, photo, reason)."""
    out = io.StringIO(newline="")
    writer = safecsv.dict_writer(out, ERROR_COLUMNS)  # formula-safe: the report is opened in spreadsheets
    writer.writeheader()
    writer.writerows(report.error_rows)
    return out.getvalue()


def write_error_report(report: BatchReport, path: Path) -> None:
    """Write :func:`error_report_csv` to ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(error_report_csv(report), encoding="utf-8", newline="")
    os.replace(tmp, path)


def enrol_manifest(
    rt: GalleryRuntime,
    actor: Actor,
    manifest: Path,
    *,
    photo_root: Path | None = None,
    label: str | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Enrol every row of a manifest CSV (columns in docs/gallery.md); resumable and idempotent.

    Photos must lie inside ``photo_root`` (default: the manifest's folder). ``label`` names the manifest in errors
    and in the batch record instead of its server path (uploads).
    """
    require(actor, Action.ENROL, actor.agency_id)
    sha, rows = read_manifest(manifest, actor.agency_code, photo_root=photo_root, label=label)
    return run_batch(
        rt,
        actor,
        kind="manifest",
        source=label or str(manifest.resolve()),
        source_sha256=sha,
        rows=rows,
        workers=workers,
        progress=progress,
    )
