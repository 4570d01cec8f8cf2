"""Who is acting: the identity every domain operation is authorised and audited against."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """The roles of PRODUCT.md. A user may hold several."""

    INVESTIGATOR = "investigator"
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"
    RECORDS_OFFICER = "records_officer"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"
    # Records facial-comparison certifications (a second person, a supervisor, approves each one).
    TRAINING_OFFICER = "training_officer"
    # An external body's reader (privacy commissioner, external auditor): audit, statistics and reports of every
    # agency, never images or templates.
    OVERSIGHT = "oversight"
    # Runs the installation: creates agencies with their first administrator, grants the system-level roles. Holds
    # no action on any agency's data.
    SYSTEM_OPERATOR = "system_operator"


@dataclass(frozen=True)
class Actor:
    """An authenticated user acting within one agency.

    ``user_id`` is None only for the system itself (migrations, scheduled retention), which is still audited.
    """

    username: str
    agency_id: int
    roles: frozenset[Role] = field(default_factory=frozenset)
    user_id: int | None = None
    agency_code: str = ""

    def has(self, role: Role) -> bool:
        return role in self.roles
