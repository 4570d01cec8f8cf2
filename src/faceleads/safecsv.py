"""The one way faceleads writes CSV: every cell that a spreadsheet would run as a formula is neutralised.

A value starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula (CSV or "formula" injection: ``=HYPERLINK(...)`` exfiltrating data, ``=cmd|...``
under DDE). Text typed by users reaches our CSVs — usernames, subject and booking numbers, photo paths, case
numbers and the reasons in error reports — so such a cell gets a leading apostrophe (OWASP's advice): a
spreadsheet shows it as text and a human still reads the original value. Numbers (int/float) are written as
numbers, so a negative score stays a number.

Every CSV the product writes (audit export, bulk-enrolment error reports, the transparency report) goes through
:func:`writer` or :func:`dict_writer`; do not use :mod:`csv` writers directly (``tests/test_safecsv.py`` checks the
sources).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text starting with a formula character gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeWriter:
    """A :func:`csv.writer` whose rows are neutralised cell by cell."""

    def __init__(self, handle: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """A :class:`csv.DictWriter` whose values are neutralised (the header is ours and written as is)."""

    def __init__(self, handle: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> None:
        self._writer = csv.DictWriter(handle, fieldnames=list(fieldnames), **kwargs)

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({k: neutralise(v) for k, v in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle: IO[str], **kwargs: Any) -> SafeWriter:
    """A formula-safe CSV writer over ``handle`` (same keyword arguments as :func:`csv.writer`)."""
    return SafeWriter(handle, **kwargs)


def dict_writer(handle: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> SafeDictWriter:
    """A formula-safe CSV dict writer over ``handle`` (same keyword arguments as :class:`csv.DictWriter`)."""
    return SafeDictWriter(handle, fieldnames, **kwargs)
