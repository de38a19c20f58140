"""Tables of the immunisation information system (migration branch ``immunization``, 0201).

Children and their vaccination records, upload batches, vaccination sites (fixed, temporary,
mobile with a route), sessions with capacity by vaccine and optional minute slots, bookings,
scarce-vaccine releases with their queue, vaccine lots and stock movements, family one-time codes.

Over-booking is prevented by the database: counters are raised with conditional ``UPDATE``
statements (``… WHERE booked < capacity``) and guarded by ``CHECK`` constraints, and ``UNIQUE``
constraints hold one booking per child and session, one request per person and release, one
confirmed place number per release, and one record per stable record key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tiercare.db.base import Base, TimestampMixin, utcnow
from tiercare.registry import models as _registry_models  # noqa: F401  (facilities, staff FKs)
from tiercare.residents import models as _resident_models  # noqa: F401  (residents FK)

SITE_KINDS = ("fixed", "temporary", "mobile")
ID_KINDS = ("resident_id", "birth_certificate")
BOOKING_STATUSES = ("booked", "cancelled", "attended")
RELEASE_MODES = ("arrival", "lottery")
REQUEST_STATUSES = ("entered", "confirmed", "offered", "waitlisted", "cancelled", "declined")
MOVE_KINDS = ("receipt", "wastage", "adjustment")


class VaccinationSite(TimestampMixin, Base):
    """A place where vaccinations are given: fixed clinic, temporary point or vaccination vehicle.

    ``facility_id`` links the site to the registry facility that runs it (its standardisation
    checklist ``vaccination_site`` is assessed on that facility). ``slot_minutes`` > 0 means the
    site books minute slots inside its sessions.
    """

    __tablename__ = "imm_sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"), nullable=True,
                                                    index=True)
    division_prefix: Mapped[str] = mapped_column(String(12), index=True)
    village_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=0)
    active_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    active_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        CheckConstraint("kind IN ('fixed', 'temporary', 'mobile')", name="kind_known"),
        CheckConstraint("slot_minutes >= 0", name="slot_minutes_positive"),
    )


class SiteStop(Base):
    """Where a mobile site stands on a weekday (0 = Monday) and between which local times."""

    __tablename__ = "imm_site_stops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id", ondelete="CASCADE"),
                                         index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    village_code: Mapped[str] = mapped_column(String(12))
    place: Mapped[str] = mapped_column(String(128), default="")
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))

    __table_args__ = (
        UniqueConstraint("site_id", "weekday"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
    )


class SiteCapacity(Base):
    """Doses of a vaccine the site can give per day (copied into each new session)."""

    __tablename__ = "imm_site_capacity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id", ondelete="CASCADE"))
    vaccine: Mapped[str] = mapped_column(String(16))
    daily_doses: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("site_id", "vaccine"),
                      CheckConstraint("daily_doses >= 0", name="doses_positive"))


class VaccinationSession(Base):
    """An opening of a site on one day (for a mobile site: at the stop of that weekday)."""

    __tablename__ = "imm_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id"), index=True)
    on_date: Mapped[date] = mapped_column(Date, index=True)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))
    village_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    place: Mapped[str] = mapped_column(String(128), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")

    __table_args__ = (
        UniqueConstraint("site_id", "on_date", "start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="not_overbooked"),
    )


class SessionVaccine(Base):
    """Capacity of one vaccine within a session."""

    __tablename__ = "imm_session_vaccines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("imm_sessions.id", ondelete="CASCADE"))
    vaccine: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("session_id", "vaccine"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="not_overbooked"),
    )


class SessionSlot(Base):
    """A minute slot of a session (sites with ``slot_minutes`` > 0)."""

    __tablename__ = "imm_session_slots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("imm_sessions.id", ondelete="CASCADE"),
                                            index=True)
    start: Mapped[str] = mapped_column(String(5))
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("session_id", "start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="not_overbooked"),
    )


class Child(TimestampMixin, Base):
    """A child of the immunisation register (registered at birth or on arrival).

    The identity (resident identity number or birth-certificate number) is kept as a masked form,
    a keyed digest (unique, for look-ups) and the number itself, returned only to roles that may
    see identifiers. The guardian may be a registered resident (``guardian_resident_id``); the
    guardian's phone is what a family look-up is checked against (kept as a keyed digest too).
    """

    __tablename__ = "imm_children"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date, index=True)
    id_kind: Mapped[str] = mapped_column(String(20))
    id_masked: Mapped[str] = mapped_column(String(32))
    id_digest: Mapped[str] = mapped_column(String(64), unique=True)
    id_number: Mapped[str] = mapped_column(String(32))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), nullable=True)
    guardian_resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"),
                                                             nullable=True)
    guardian_name: Mapped[str] = mapped_column(String(64), default="")
    guardian_relation: Mapped[str] = mapped_column(String(16), default="mother")
    guardian_phone: Mapped[str] = mapped_column(String(32), default="")
    guardian_phone_digest: Mapped[str] = mapped_column(String(64), default="")
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id"), index=True)
    registered_how: Mapped[str] = mapped_column(String(8), default="birth")
    registered_on: Mapped[date] = mapped_column(Date)
    mother_hbsag: Mapped[str | None] = mapped_column(String(8), nullable=True)
    birth_weight_g: Mapped[float | None] = mapped_column(Float, nullable=True)
    tb_test_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    tb_test_result: Mapped[str | None] = mapped_column(String(8), nullable=True)
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        CheckConstraint("sex IN ('M', 'F')", name="sex_known"),
        CheckConstraint("id_kind IN ('resident_id', 'birth_certificate')", name="id_kind_known"),
        CheckConstraint("registered_how IN ('birth', 'arrival')", name="how_known"),
    )


class Transfer(Base):
    """A child moved from one responsible site to another."""

    __tablename__ = "imm_transfers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("imm_children.id"), index=True)
    from_site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id"))
    to_site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id"))
    village_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")


class UploadBatch(Base):
    """One upload of records from a site (CSV or FHIR Bundle), kept only when it committed."""

    __tablename__ = "imm_upload_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("imm_sites.id"), nullable=True)
    source_format: Mapped[str] = mapped_column(String(8))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    already_present: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImmunizationRecord(Base):
    """A dose given.

    ``record_key`` is stable: ``<site code>:<the site's own record id>`` when the site sends one,
    else a digest of child, vaccine and date — so uploading the same dose again adds nothing.
    """

    __tablename__ = "imm_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_key: Mapped[str] = mapped_column(String(96), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("imm_children.id"))
    vaccine: Mapped[str] = mapped_column(String(16))
    dose_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    given_on: Mapped[date] = mapped_column(Date)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("imm_sites.id"), nullable=True)
    vaccinator: Mapped[str] = mapped_column(String(64), default="")
    lot: Mapped[str] = mapped_column(String(32), default="")
    manufacturer: Mapped[str] = mapped_column(String(64), default="")
    route: Mapped[str] = mapped_column(String(8), default="")
    body_site: Mapped[str] = mapped_column(String(24), default="")
    aefi: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("imm_upload_batches.id"),
                                                 nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_imm_records_child_date", "child_id", "given_on"),
        Index("ix_imm_records_site_lot", "site_id", "vaccine", "lot"),
    )


class Booking(Base):
    """A booked visit to a session for a child's due doses or a self-paid vaccine.

    ``active_key`` is ``"<session>:<person>"`` while the booking stands and NULL once cancelled:
    the UNIQUE constraint on it allows one standing booking per person and session.
    """

    __tablename__ = "imm_bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("imm_sessions.id"), index=True)
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("imm_session_slots.id"),
                                                nullable=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("imm_children.id"), nullable=True,
                                                 index=True)
    person_digest: Mapped[str] = mapped_column(String(64))
    person_name: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    vaccines: Mapped[list[str]] = mapped_column(JSON, default=list)
    self_paid: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    active_key: Mapped[str | None] = mapped_column(String(96), nullable=True, unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64), default="")


class Release(Base):
    """A release of ``doses`` doses of a scarce vaccine opening at ``opens_at``.

    ``mode`` ``arrival``: requests are confirmed in arrival order while places remain.
    ``mode`` ``lottery``: requests are entered until ``closes_at``; the draw then ranks them by a
    permutation drawn from the published ``seed`` and confirms the first ``doses``.
    ``taken`` counts places held (confirmed or offered); ``requested`` numbers arrivals.
    """

    __tablename__ = "imm_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    vaccine: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id"))
    doses: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    mode: Mapped[str] = mapped_column(String(8), default="arrival")
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default="open")
    requested: Mapped[int] = mapped_column(Integer, default=0)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    offer_hours: Mapped[int] = mapped_column(Integer, default=24)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint("taken >= 0 AND taken <= doses", name="never_oversold"),
        CheckConstraint("mode IN ('arrival', 'lottery')", name="mode_known"),
    )


class ReleaseRequest(Base):
    """One person's request in a release queue.

    ``seq`` is the arrival number; ``rank`` the queue position (arrival order, or the lottery
    rank after the draw); ``place`` the place number 1…N while the request holds a place —
    UNIQUE per release, so two requests can never hold the same place.
    """

    __tablename__ = "imm_release_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("imm_releases.id"), index=True)
    person_digest: Mapped[str] = mapped_column(String(64))
    person_masked: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    seq: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    place: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(12))
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                              nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("release_id", "person_digest"),
        UniqueConstraint("release_id", "seq"),
        UniqueConstraint("release_id", "place"),
        CheckConstraint("place IS NULL OR place >= 1", name="place_positive"),
    )


class VaccineLot(Base):
    """A lot of a vaccine held at a site."""

    __tablename__ = "imm_lots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("imm_sites.id"), index=True)
    vaccine: Mapped[str] = mapped_column(String(16))
    lot: Mapped[str] = mapped_column(String(32))
    manufacturer: Mapped[str] = mapped_column(String(64), default="")
    expires_on: Mapped[date] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("site_id", "vaccine", "lot"),)


class StockMove(Base):
    """A receipt, wastage or adjustment of a lot (doses used come from the records)."""

    __tablename__ = "imm_stock_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("imm_lots.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    doses: Mapped[int] = mapped_column(Integer)
    on_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(128), default="")
    username: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('receipt', 'wastage', 'adjustment')", name="kind_known"),
    )


class FamilyCode(Base):
    """A one-time code sent to the guardian's phone for a family look-up (hash stored only)."""

    __tablename__ = "imm_family_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("imm_children.id"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
