"""ANSI/NIST-ITL transactions (Type-2 descriptive record + Type-10 facial images) into bulk enrolment rows.

Type-2 content is defined by each implementation domain; faceleads reads the EBTS-style fields below (documented in
docs/gallery.md). The legal authority is not a NIST field: it is given with the import.

=========================  ===================================================================
record field               NIST source (first non-empty)
=========================  ===================================================================
subject number             2.015 SID, 2.014 FBI/UCN, 2.017 MNU
booking number             2.009 OCA, then 1.009 TCN (transaction control number)
booking date               2.045 DOA (date of arrest), then 1.005 DAT (YYYYMMDD)
charge                     2.047 ASL (arrest segment literal, subfields joined with "; ")
sex                        2.024 SEX (M, F, X; U = unknown)
birth year                 year of 2.022 DOB
population group           2.025 RAC
photo                      each Type-10 record with 10.003 IMT = FACE: 10.999 image data,
                           10.005 PHD capture date
=========================  ===================================================================

A transaction with several Type-2 records links each Type-10 record to the Type-2 record with the same IDC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceleads.core.actor import Actor
from faceleads.core.policy import Action, require
from faceleads.errors import ValidationError
from faceleads.gallery.authorities import require_listed
from faceleads.gallery.bulk import BatchReport, PreparedRow, ProgressCallback, run_batch
from faceleads.gallery.enrolment import RecordInput, parse_date
from faceleads.gallery.runtime import GalleryRuntime

MAX_NIST_BYTES = 256 * 1024 * 1024
SUBJECT_FIELDS = (15, 14, 17)
BOOKING_FIELD, DOA_FIELD, ASL_FIELD, SEX_FIELD, DOB_FIELD, RAC_FIELD = 9, 45, 47, 24, 22, 25


def _text(record: Any, tag: int) -> str:
    """The text of a field (subfields and items joined), '' when absent."""
    field = record[tag]
    if field is None:
        return ""
    parts: list[str] = []
    value = field.value
    if isinstance(value, str) and value:
        parts.append(value)
    for i in range(len(field)):
        sub = field[i]
        values = getattr(sub, "values", None) or []
        if values:
            parts.append(" ".join(str(v) for v in values if str(v)))
        elif getattr(sub, "value", None):
            parts.append(str(sub.value))
    return "; ".join(p.strip() for p in parts if p and p.strip())


@dataclass
class NistPhoto:
    """One Type-10 facial image of a transaction, with the record it belongs to."""

    label: str
    record: RecordInput | None
    data: bytes | None
    capture_date: Any
    subject: str
    booking: str
    error: str = ""


def parse_transaction(path: Path, authority: str, gallery: str | None = None) -> tuple[str, list[NistPhoto]]:
    """Read one NIST file; returns (sha256 of the file, its facial photos). Raises ValidationError if unreadable."""
    import nistitl

    try:
        if path.stat().st_size > MAX_NIST_BYTES:
            raise ValidationError(f"NIST file {path} is larger than {MAX_NIST_BYTES // 2**20} MB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"NIST file {path} does not exist") from None
    except IsADirectoryError:
        raise ValidationError(f"NIST file {path} is a directory") from None
    message = nistitl.Message()
    try:
        message.parse(raw)
    except Exception as exc:  # nistitl raises NistException and also plain errors on garbage
        raise ValidationError(f"{path.name} is not a valid ANSI/NIST-ITL transaction: {exc}") from None
    sha = hashlib.sha256(raw).hexdigest()
    type1 = message[0]
    tcn = _text(type1, 9)
    dat = _text(type1, 5)
    records: dict[int, RecordInput | str] = {}
    labels: dict[int, tuple[str, str]] = {}
    for r2 in message.iter(2):
        idc = int(r2.IDC)
        subject = next((t for t in (_text(r2, f) for f in SUBJECT_FIELDS) if t), "")
        booking = _text(r2, BOOKING_FIELD) or tcn
        labels[idc] = (subject, booking)
        try:
            if not subject:
                raise ValidationError("Type-2 record has no subject number (2.015 SID, 2.014 or 2.017)")
            if not booking:
                raise ValidationError("Type-2 record has no booking number (2.009 OCA) and Type-1 has no 1.009 TCN")
            when = _text(r2, DOA_FIELD) or dat
            if not when:
                raise ValidationError("no booking date (2.045 DOA or 1.005 DAT)")
            sex = _text(r2, SEX_FIELD).upper() or None
            dob = _text(r2, DOB_FIELD)
            records[idc] = RecordInput(
                subject_number=subject,
                booking_number=booking,
                booking_date=parse_date(when, "booking date (2.045 DOA / 1.005 DAT)"),
                legal_authority=authority,
                charge=_text(r2, ASL_FIELD),
                gallery=gallery,
                sex=None if sex in (None, "U") else sex,
                birth_year=parse_date(dob, "date of birth (2.022 DOB)").year if dob else None,
                population_group=_text(r2, RAC_FIELD) or None,
            )
        except ValidationError as exc:
            records[idc] = str(exc)
    if not records:
        raise ValidationError(f"{path.name} has no Type-2 record (subject and booking details)")
    photos: list[NistPhoto] = []
    for r10 in message.iter(10):
        idc = int(r10.IDC)
        label = f"{path.name}#10.{idc}"
        if _text(r10, 3).upper() != "FACE":
            continue  # Type-10 also carries scars, marks and tattoos: not faces
        owner = records.get(idc) if len(records) > 1 else next(iter(records.values()))
        subject, booking = labels.get(idc, next(iter(labels.values())))
        field = r10[999]
        data = bytes(field.value) if field is not None and field.value else None
        photo = NistPhoto(label, None, data, None, subject, booking)
        if owner is None:
            photo.error = f"Type-10 record IDC {idc} matches no Type-2 record"
        elif isinstance(owner, str):
            photo.error = owner
        elif not data:
            photo.error = "Type-10 record has no image data (10.999)"
        else:
            photo.record = owner
            phd = _text(r10, 5)
            try:
                photo.capture_date = parse_date(phd, "photo date (10.005 PHD)") if phd else None
            except ValidationError as exc:
                photo.error = str(exc)
        photos.append(photo)
    if not photos:
        raise ValidationError(f"{path.name} has no Type-10 facial image (10.003 IMT = FACE)")
    return sha, photos


def enrol_nist(
    rt: GalleryRuntime,
    actor: Actor,
    files: list[Path],
    *,
    authority: str,
    gallery: str | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Enrol the facial images of NIST transactions as one resumable batch.

    An unreadable file becomes one error row (it never stops the other files).
    """
    require(actor, Action.ENROL, actor.agency_id)
    if not authority or not authority.strip():
        raise ValidationError("NIST enrolment needs the legal authority (--authority)")
    if not files:
        raise ValidationError("no NIST files given")
    # The authority is the import's, not a NIST field: an unlisted one refuses the whole import (audited).
    require_listed(rt, actor, authority, f"nist_import:{files[0].name}"[:300], rows=len(files))
    rows: list[PreparedRow] = []
    digest = hashlib.sha256(f"nist|{authority.strip()}|{gallery or ''}".encode())
    for path in files:
        try:
            sha, photos = parse_transaction(path, authority.strip(), gallery)
        except ValidationError as exc:
            digest.update(f"|bad:{path.resolve()}".encode())
            rows.append(PreparedRow(len(rows) + 1, photo=path.name, error=str(exc)))
            continue
        digest.update(f"|{sha}".encode())
        for photo in photos:
            row = PreparedRow(
                len(rows) + 1,
                subject=photo.subject,
                booking=photo.booking,
                photo=photo.label,
                agency_code=actor.agency_code,
                record=photo.record,
                capture_date=photo.capture_date,
                data=photo.data,
                error=photo.error,
            )
            if row.data is not None and not row.error:
                row.sha256 = hashlib.sha256(row.data).hexdigest()
            rows.append(row)
    return run_batch(
        rt,
        actor,
        kind="nist",
        source=", ".join(str(p) for p in files)[:2000],
        source_sha256=digest.hexdigest(),
        rows=rows,
        workers=workers,
        progress=progress,
    )
