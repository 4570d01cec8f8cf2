"""Stored threshold calibrations, per agency: the impostor score distribution behind a threshold choice.

``faceleads evaluate calibrate --save`` and ``faceleads evaluate live --save-calibration`` record one; the live
deployment screens read the agency's latest to show the expected false alert rate of a threshold for a watch-list
size (docs/live.md). Nothing biometric: only counts of impostor comparison scores at or above a grid of thresholds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from faceleads.db import Base, utcnow


class ThresholdCalibration(Base):
    """One calibration run of an agency: impostor counts at or above each grid threshold, and what it was run on."""

    __tablename__ = "threshold_calibrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # "calibrate" or "live_evaluation"
    model_version: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(Text, default="")  # what it was measured on (file names, not images)
    impostor_comparisons: Mapped[int] = mapped_column(Integer)
    # [[threshold, impostor comparisons scoring >= threshold], ...] on an ascending grid.
    curve: Mapped[list[list[float]]] = mapped_column(JSON)
    target_fmr: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(150))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class EvaluationResult(Base):
    """A stored summary of an agency's ``evaluate verify`` or ``evaluate identify`` run (``--save``): the headline
    accuracy figures and the demographic differentials, as published in the transparency report. Figures only."""

    __tablename__ = "evaluation_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "verify" or "identify"
    model_version: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(Text, default="")  # what it was measured on (a name, not images)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(150))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
