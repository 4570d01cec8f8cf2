"""Identity tables: users, role grants, analyst certifications, sign-in sessions, TOTP and recovery codes.

Secrets are never stored in the clear: passwords as argon2id hashes, session tokens and recovery codes as SHA-256
digests (both are 128/80-bit random values, so a fast hash is enough), TOTP secrets AES-256-GCM encrypted under a
key derived from the master key.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from faceleads.db import Agency, Base, utcnow

CERTIFICATION_FACIAL_COMPARISON = "facial_comparison"


class User(Base):
    """A person who signs in. Belongs to exactly one agency; may hold several roles."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Who created the account (None: bootstrap, or inserted before this was recorded). Nobody certifies, or approves
    # access for, a user they created: they chose its first password.
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Lockout: consecutive failures since the last success; locked while locked_until is in the future.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # TOTP: encrypted secret; enabled only once a first code was confirmed. The last accepted time step blocks replay.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)

    agency: Mapped[Agency] = relationship()
    role_grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", foreign_keys="RoleGrant.user_id"
    )
    certifications: Mapped[list[Certification]] = relationship(
        back_populates="user", cascade="all, delete-orphan", foreign_keys="Certification.user_id"
    )


class RoleGrant(Base):
    """One role held by one user. Revoking deletes the grant (the audit log keeps the history)."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", name="uq_role_grants_user_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship(back_populates="role_grants", foreign_keys=[user_id])


class Certification(Base):
    """Training certification (facial comparison) with an expiry; analysts and reviewers need a valid one."""

    __tablename__ = "certifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64), default=CERTIFICATION_FACIAL_COMPARISON)
    reference: Mapped[str] = mapped_column(String(200), default="")  # course / certificate number
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    user: Mapped[User] = relationship(back_populates="certifications", foreign_keys=[user_id])


class AuthSession(Base):
    """A sign-in session. Only the SHA-256 of the bearer token is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # absolute limit
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    client: Mapped[str] = mapped_column(String(100), default="")
    second_factor: Mapped[str] = mapped_column(String(16), default="none")  # none / totp / recovery

    user: Mapped[User] = relationship()


class RecoveryCode(Base):
    """A single-use recovery code (SHA-256 of an 80-bit random code)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApprovalKind(StrEnum):
    """What a pending approval would do once a second person approves it."""

    GRANT_ROLE = "grant_role"  # a role that reaches biometric content
    CERTIFY = "certify"  # a facial-comparison certification (makes analyst/reviewer effective)
    RESET_PASSWORD = "reset_password"  # of a user holding a biometric role
    RESET_TOTP = "reset_totp"  # of a user holding a biometric role


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # and applied, in the same transaction
    REJECTED = "rejected"
    EXPIRED = "expired"  # nobody decided within the approval window


class AccessApproval(Base):
    """A change that gives someone access to biometric content, waiting for a second person's approval.

    Requested by one person (an administrator, a training officer), approved or rejected by another holding the
    approving role in the same agency; it expires when nobody decides in time. The new password of a reset is held
    only as its argon2id hash, and only while the request is pending.
    """

    __tablename__ = "access_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    target_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cert_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cert_reference: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    requested_by_username: Mapped[str] = mapped_column(String(150))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=ApprovalStatus.PENDING.value, index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_by_username: Mapped[str | None] = mapped_column(String(150), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)  # e.g. certification:12
