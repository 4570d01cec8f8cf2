"""Identifiers people type: one normal form and one allowed alphabet per kind, for every entry point.

An occurrence number, booking number, username or agency code is a key: two strings that *display* the same must
be the same key, or ``DEV/2026/\\u200b4`` becomes a second case that looks exactly like ``DEV/2026/4`` (and an audit
trail, a retention rule or a search filter silently splits in two). So every identifier is

1. normalised to Unicode NFKC (full-width ``ＤＥＶ`` becomes ``DEV``, a no-break space a space, ligatures split),
2. refused if it holds a control or format character — NUL, CR/LF, tab (Cc), zero-width characters and
   bidirectional overrides/isolates (Cf), line/paragraph separators, private-use, surrogate or unassigned code
   points — naming the character and its position, never silently dropping it,
3. trimmed, with runs of inner spaces collapsed to one (HTML shows ``A  B`` as ``A B``),
4. checked against the kind's alphabet (ASCII only: Cyrillic ``А`` and Latin ``A`` look the same).

The domain services (enrolment, casework, users, administered lists, destruction) call :func:`normalise` on every
identifier they receive — to store it and to look it up — so the CLI, the REST API and the web pages all get the
same rules. Free text (justifications, notes) is not an identifier: :func:`free_text` only refuses NUL, control
characters other than tab and newline, and the bidirectional controls that make text display in another order than
it is stored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from faceleads.errors import ValidationError


class Kind(StrEnum):
    """The kinds of identifier users type."""

    OCCURRENCE = "occurrence number"
    BOOKING = "booking number"
    SUBJECT = "subject number"
    USERNAME = "username"
    AGENCY = "agency code"
    OFFENCE = "offence code"
    PURPOSE = "purpose code"
    GALLERY = "gallery name"


@dataclass(frozen=True)
class Rule:
    """Alphabet (a full-match regex), length limit, case folding and the wording of the alphabet for errors."""

    pattern: re.Pattern[str]
    max_length: int
    alphabet: str
    case: str = ""  # "upper", "lower" or "" (kept as typed)
    min_length: int = 1


# Case, booking and subject numbers come from many record systems: letters, digits and the separators they use.
_RECORD_NUMBER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 /._:#-]*[A-Za-z0-9])?")
_RECORD_ALPHABET = "ASCII letters and digits, with '/', '-', '_', '.', ':', '#' and single spaces between them"
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CODE_ALPHABET = "ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"

RULES: dict[Kind, Rule] = {
    Kind.OCCURRENCE: Rule(_RECORD_NUMBER, 100, _RECORD_ALPHABET),
    Kind.BOOKING: Rule(_RECORD_NUMBER, 64, _RECORD_ALPHABET),
    Kind.SUBJECT: Rule(_RECORD_NUMBER, 64, _RECORD_ALPHABET),
    Kind.USERNAME: Rule(
        re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]"),
        64,
        "lower-case ASCII letters, digits, '.', '-' or '_', starting and ending with a letter or digit",
        min_length=3,
    ),
    Kind.AGENCY: Rule(re.compile(r"[A-Z0-9][A-Z0-9_-]*"), 32, "ASCII letters, digits, '-' or '_'", case="upper"),
    Kind.OFFENCE: Rule(_CODE, 50, _CODE_ALPHABET),
    Kind.PURPOSE: Rule(_CODE, 64, _CODE_ALPHABET),
    Kind.GALLERY: Rule(
        re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ()'&,/._-]*[A-Za-z0-9)])?"),
        100,
        "ASCII letters, digits, spaces and ( ) ' & , / . _ -",
    ),
}

# Unicode general categories never allowed in an identifier: controls, format characters (zero-width, bidi,
# soft hyphen...), line and paragraph separators, surrogates, private use and unassigned code points.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# Characters that reorder how text displays (Trojan Source, CVE-2021-42574): refused in free text too.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r" {2,}")


def describe_char(ch: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: how an invisible character is named in error messages."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def _printable(value: str) -> str:
    """The value with every invisible character spelled out, so a message never hides what was refused."""
    return "".join(
        f"<{describe_char(ch)}>" if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES else ch for ch in value
    )


def normalise(kind: Kind, value: object) -> str:
    """The canonical form of identifier ``value`` of ``kind``; :class:`ValidationError` naming the problem.

    Idempotent: ``normalise(k, normalise(k, v)) == normalise(k, v)``.
    """
    rule = RULES[kind]
    if not isinstance(value, str):
        raise ValidationError(f"{kind} must be text")
    text = unicodedata.normalize("NFKC", value)
    for position, ch in enumerate(text, start=1):
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise ValidationError(
                f"{kind} {_printable(text)!r} contains an invisible or control character ({describe_char(ch)}) at "
                f"position {position}: type it again without it"
            )
    text = _SPACES.sub(" ", text.strip())
    if rule.case == "upper":
        text = text.upper()
    elif rule.case == "lower":
        text = text.lower()
    if not text:
        raise ValidationError(f"{kind} is required")
    if len(text) > rule.max_length or len(text) < rule.min_length:
        raise ValidationError(
            f"{kind} {text!r} must be {rule.min_length}-{rule.max_length} characters long, got {len(text)}"
        )
    if not rule.pattern.fullmatch(text):
        raise ValidationError(f"{kind} {text!r} may only hold {rule.alphabet}")
    return text


def free_text(value: str, name: str) -> str:
    """Free text (a justification, a note) with NUL, control characters other than tab/newline, and bidirectional
    controls refused; CR LF becomes LF. Not normalised otherwise: it is the user's own wording."""
    text = value.replace("\r\n", "\n")
    for position, ch in enumerate(text, start=1):
        if ch in "\t\n":
            continue
        if unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS:
            raise ValidationError(
                f"{name} contains a control or text-direction character ({describe_char(ch)}) at position "
                f"{position}; remove it"
            )
    return text


def occurrence_number(value: object) -> str:
    """A case / occurrence number (see :func:`normalise`)."""
    return normalise(Kind.OCCURRENCE, value)


def username(value: object) -> str:
    """A username (see :func:`normalise`)."""
    return normalise(Kind.USERNAME, value)


def agency_code(value: object) -> str:
    """An agency code, upper-cased (see :func:`normalise`)."""
    return normalise(Kind.AGENCY, value)
