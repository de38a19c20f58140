"""Scarce-vaccine releases (e.g. HPV): N doses opened at a set time, a fair queue, no overselling.

Model
-----
A release has ``doses`` = N places, a counter ``requested`` (arrivals) and a counter ``taken``
(places held by a confirmed or offered request). A request, in one transaction:

1. ``UPDATE releases SET requested = requested + 1 WHERE id = :id AND status = 'open' AND
   opens_at <= :now [AND closes_at > :now] RETURNING requested`` — the arrival number ``seq``.
   It is the transaction's first statement and a write, so concurrent requests queue on the
   row lock (PostgreSQL) or the write lock (SQLite) in arrival order.
2. ``INSERT`` the request; ``UNIQUE(release_id, person_digest)`` refuses a second request by the
   same person (409 ``already_requested``: one person, one booking).
3. Arrival mode only: ``UPDATE releases SET taken = taken + 1 WHERE id = :id AND taken < doses
   RETURNING taken`` — when a row comes back the request is ``confirmed`` with ``place`` = the
   returned value, else ``waitlisted``. ``CHECK(taken <= doses)`` and ``UNIQUE(release_id,
   place)`` make overselling impossible even for a faulty caller.

Lottery mode: requests are ``entered`` until ``closes_at``. The draw ranks them by a permutation
of the arrival numbers drawn with NumPy's PCG64 generator seeded by the release's published
``seed`` — anyone can recompute it with :func:`lottery_order` — and confirms the first N.

Cancellations: a confirmed (or offered) request that is cancelled or declined passes its place
straight to the first ``waitlisted`` request in queue order (arrival or lottery rank), which
becomes ``offered`` until ``offer_expires_at``; accepting confirms it. The place is never free in
between, so ``taken`` does not change and nobody can jump the queue.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from tiercare.auth.service import Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.immunization.common import (
    as_utc,
    person_identity,
    require_site,
    site_by_code,
)
from tiercare.immunization.models import Release, ReleaseRequest
from tiercare.immunization.schedule import default_schedules
from tiercare.paging import check_window

HOLDING = ("confirmed", "offered")


def _not_below_min_age(max_age: int, info: ValidationInfo) -> int:
    """Refuse a ``max_age`` below the rule's ``min_age`` (``min_above_max``, on ``max_age``)."""
    min_age = info.data.get("min_age")
    if min_age is not None and min_age > max_age:
        raise PydanticCustomError("min_above_max", "min_age is above max_age")
    return max_age


Age = Annotated[int, Field(strict=True, ge=0, le=120, description="Whole years")]


class Eligibility(TypedDict, total=False):
    """Who may request a release's doses (every key optional; none: everyone)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    sex: Literal["F", "M"]
    min_age: Age
    max_age: Annotated[Age, AfterValidator(_not_below_min_age)]


class ReleaseIn(BaseModel):
    """A release of scarce doses."""

    code: str = Field(min_length=1, max_length=32)
    vaccine: str
    site_code: str
    doses: int = Field(ge=1, le=1_000_000)
    opens_at: dt.datetime
    closes_at: dt.datetime | None = Field(default=None,
                                          description="Required in lottery mode")
    mode: Literal["arrival", "lottery"] = "arrival"
    seed: int | None = Field(default=None, ge=0, lt=2**31,
                             description="Published lottery seed (default: random)")
    offer_hours: int = Field(default=24, ge=1, le=240)
    eligibility: Eligibility = Field(default_factory=dict,
                                     description="e.g. {'sex': 'F', 'min_age': 9, "
                                                 "'max_age': 45}")


class RequestIn(BaseModel):
    """A person's request for a dose of a release."""

    identity_number: str
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=32)


def lottery_order(seqs: list[int] | np.ndarray, seed: int) -> list[int]:
    """The published lottery: arrival numbers in drawn order.

    ``numpy.random.Generator(PCG64(seed)).permutation`` of the arrival numbers sorted ascending.

    >>> lottery_order([1, 2, 3], 7) == lottery_order([3, 1, 2], 7)
    True
    """
    ordered = np.sort(np.asarray(seqs, dtype=np.int64))
    return [int(x) for x in np.random.Generator(np.random.PCG64(seed)).permutation(ordered)]


def create_release(session: Session, actor: Actor, data: ReleaseIn) -> Release:
    """Create a release (audited).

    Raises
    ------
    InputError
        Unknown vaccine or site, duplicate code, lottery without a closing time, closing
        before opening.
    """
    problems: list[Problem] = []
    if data.vaccine not in default_schedules().vaccines:
        problems.append(Problem(reason=f"unknown vaccine {data.vaccine!r}", field="vaccine",
                                code="unknown_vaccine"))
    if session.scalar(select(Release.id).where(Release.code == data.code)) is not None:
        problems.append(Problem(reason="a release with this code exists", field="code",
                                code="duplicate"))
    if data.opens_at.tzinfo is None:
        problems.append(Problem(reason="give a time zone", field="opens_at",
                                code="missing_time_zone"))
    if data.mode == "lottery" and data.closes_at is None:
        problems.append(Problem(reason="a lottery needs closes_at", field="closes_at",
                                code="lottery_needs_closes_at"))
    if data.closes_at is not None and (data.closes_at.tzinfo is None or
                                       data.opens_at.tzinfo is not None and
                                       data.closes_at <= data.opens_at):
        problems.append(Problem(reason="must be after opens_at, with a time zone",
                                field="closes_at", code="closes_before_opens"))
    site = None
    try:
        site = site_by_code(session, data.site_code, field="site_code")
        require_site(actor, site)
    except InputError as exc:
        problems.extend(exc.problems)
    if problems or site is None:
        raise InputError(problems)
    seed = data.seed if data.seed is not None else int(np.random.default_rng().integers(2**31))
    release = Release(code=data.code, vaccine=data.vaccine, site_id=site.id, doses=data.doses,
                      opens_at=as_utc(data.opens_at),
                      closes_at=as_utc(data.closes_at) if data.closes_at else None,
                      mode=data.mode,
                      seed=seed, status="open", requested=0, taken=0,
                      offer_hours=data.offer_hours, eligibility=data.eligibility)
    session.add(release)
    session.flush()
    audit(session, actor, "create", "imm_release", str(release.id),
          after={**data.model_dump(mode="json"), "seed": seed})
    return release


def _eligible(rule: dict[str, Any], number: str, kind: str, today: dt.date) -> str | None:
    if not rule:
        return None
    if kind != "resident_id":
        return "a resident identity number is needed for this release"
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    if rule.get("sex") and rule["sex"] != sex:
        return f"this release is for sex {rule['sex']}"
    if "min_age" in rule and age < int(rule["min_age"]):
        return f"this release is for ages from {rule['min_age']}"
    if "max_age" in rule and age > int(rule["max_age"]):
        return f"this release is for ages up to {rule['max_age']}"
    return None


def request_dose(session: Session, actor: Actor, release_code: str, data: RequestIn, *,
                 secret: str, now: dt.datetime | None = None) -> ReleaseRequest:
    """Queue a person's request (see the module docstring); one transaction, commit by caller.

    The identity is validated before any database statement; the first statement is the
    arrival counter's conditional update.

    Raises
    ------
    InputError
        Bad identity number, not eligible.
    ConflictError
        ``not_open`` (before opening, after closing or drawn), ``already_requested``.
    NotFoundError
        Unknown release.
    """
    now = as_utc(now or utcnow())
    kind, number, masked, digest = person_identity(data.identity_number, secret=secret)
    condition = [Release.code == release_code, Release.status == "open",
                 Release.opens_at <= now]
    result = session.execute(
        update(Release).where(*condition,
                              (Release.closes_at.is_(None)) | (Release.closes_at > now))
        .values(requested=Release.requested + 1)
        .returning(Release.id, Release.requested, Release.mode, Release.eligibility),
        execution_options={"synchronize_session": False}).first()
    if result is None:
        if session.scalar(select(Release.id).where(Release.code == release_code)) is None:
            raise NotFoundError(f"release {release_code}")
        raise ConflictError("not_open", "this release is not open for requests now")
    release_id, seq, mode, eligibility = result
    reason = _eligible(eligibility or {}, number, kind, now.date())
    if reason:
        raise InputError.single(reason, field="identity_number", code="not_eligible")
    request = ReleaseRequest(release_id=release_id, person_digest=digest, person_masked=masked,
                             name=data.name, phone=data.phone, seq=seq,
                             rank=seq if mode == "arrival" else None, status="entered")
    session.add(request)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError("already_requested",
                            "this person has a request in this release already") from exc
    if mode == "arrival":
        place = session.execute(
            update(Release).where(Release.id == release_id, Release.taken < Release.doses)
            .values(taken=Release.taken + 1).returning(Release.taken),
            execution_options={"synchronize_session": False}).scalar()
        if place is not None:
            place = _free_place(session, release_id, place)
        request.status = "confirmed" if place is not None else "waitlisted"
        request.place = place
        session.flush()
    audit(session, actor, "request", "imm_release_request", str(request.id),
          after={"release": release_code, "seq": seq, "status": request.status,
                 "person": masked})
    return request


def _free_place(session: Session, release_id: int, wanted: int) -> int:
    """``wanted`` (= the new ``taken``) unless a place freed earlier left a gap below it."""
    if session.scalar(select(ReleaseRequest.id).where(
            ReleaseRequest.release_id == release_id, ReleaseRequest.place == wanted)) is None:
        return wanted
    used = set(session.scalars(select(ReleaseRequest.place).where(
        ReleaseRequest.release_id == release_id, ReleaseRequest.place.is_not(None))))
    return next(p for p in range(1, wanted + 1) if p not in used)


def draw(session: Session, actor: Actor, release_code: str, *,
         now: dt.datetime | None = None) -> dict[str, Any]:
    """Run the lottery of a closed lottery release (once; a second call is refused).

    Raises
    ------
    ConflictError
        ``not_lottery``, ``not_closed`` (before ``closes_at``), ``already_drawn``.
    """
    now = now or utcnow()
    release = session.scalar(select(Release).where(Release.code == release_code))
    if release is None:
        raise NotFoundError(f"release {release_code}")
    if release.mode != "lottery":
        raise ConflictError("not_lottery", "only lottery releases are drawn")
    if release.closes_at is None or as_utc(release.closes_at) > now:
        raise ConflictError("not_closed", "the lottery closes later")
    done = session.execute(update(Release).where(Release.id == release.id,
                                                 Release.status == "open")
                           .values(status="drawn"),
                           execution_options={"synchronize_session": False}).rowcount
    if done != 1:
        raise ConflictError("already_drawn", "this lottery was drawn already")
    requests = {r.seq: r for r in session.scalars(select(ReleaseRequest).where(
        ReleaseRequest.release_id == release.id, ReleaseRequest.status == "entered"))}
    order = lottery_order(list(requests), release.seed)
    confirmed = 0
    for rank, seq in enumerate(order, start=1):
        req = requests[seq]
        req.rank = rank
        if rank <= release.doses:
            req.status, req.place = "confirmed", rank
            confirmed += 1
        else:
            req.status = "waitlisted"
    session.flush()
    taken = session.execute(update(Release).where(Release.id == release.id, Release.taken == 0)
                            .values(taken=confirmed).returning(Release.taken),
                            execution_options={"synchronize_session": False}).scalar()
    if taken is None:
        raise ConflictError("already_drawn", "places were taken already")
    audit(session, actor, "draw", "imm_release", str(release.id),
          after={"seed": release.seed, "entries": len(order), "confirmed": confirmed})
    return {"release": release.code, "seed": release.seed, "entries": len(order),
            "confirmed": confirmed, "waitlisted": len(order) - confirmed}


def _pass_on(session: Session, release: Release, place: int, now: dt.datetime) -> None:
    """Offer a freed place to the first waitlisted request in queue order (or free it)."""
    nxt = session.scalar(select(ReleaseRequest).where(
        ReleaseRequest.release_id == release.id, ReleaseRequest.status == "waitlisted")
        .order_by(ReleaseRequest.rank, ReleaseRequest.seq).limit(1))
    if nxt is None:
        session.execute(update(Release).where(Release.id == release.id, Release.taken > 0)
                        .values(taken=Release.taken - 1))
        return
    nxt.status, nxt.place = "offered", place
    nxt.offer_expires_at = now + timedelta(hours=release.offer_hours)


def _person_request(session: Session, release: Release, identity_number: str,
                    secret: str) -> ReleaseRequest:
    digest = person_identity(identity_number, secret=secret)[3]
    req = session.scalar(select(ReleaseRequest).where(
        ReleaseRequest.release_id == release.id, ReleaseRequest.person_digest == digest))
    if req is None:
        raise NotFoundError("no request of this person in this release")
    return req


def _release(session: Session, code: str) -> Release:
    release = session.scalar(select(Release).where(Release.code == code))
    if release is None:
        raise NotFoundError(f"release {code}")
    return release


def cancel_request(session: Session, actor: Actor, release_code: str, *, identity_number: str,
                   secret: str, now: dt.datetime | None = None) -> ReleaseRequest:
    """Cancel (or decline an offer); a held place passes to the next in the queue."""
    now = now or utcnow()
    release = _release(session, release_code)
    req = _person_request(session, release, identity_number, secret)
    if req.status not in ("confirmed", "offered", "waitlisted", "entered"):
        raise ConflictError("not_active", f"request is {req.status}")
    place = req.place
    before = req.status
    req.status = "cancelled" if before != "offered" else "declined"
    req.place = None
    req.offer_expires_at = None
    session.flush()
    if before in HOLDING and place is not None:
        _pass_on(session, release, place, now)
    session.flush()
    audit(session, actor, "cancel", "imm_release_request", str(req.id),
          before={"status": before}, after={"status": req.status})
    return req


def accept_offer(session: Session, actor: Actor, release_code: str, *, identity_number: str,
                 secret: str, now: dt.datetime | None = None) -> ReleaseRequest:
    """Accept an offered place before it expires."""
    now = now or utcnow()
    release = _release(session, release_code)
    req = _person_request(session, release, identity_number, secret)
    if req.status != "offered":
        raise ConflictError("no_offer", f"request is {req.status}")
    if req.offer_expires_at is not None and as_utc(req.offer_expires_at) < now:
        raise ConflictError("offer_expired", "the offer has expired")
    req.status = "confirmed"
    req.offer_expires_at = None
    session.flush()
    audit(session, actor, "accept", "imm_release_request", str(req.id))
    return req


def expire_offers(session: Session, actor: Actor, release_code: str, *,
                  now: dt.datetime | None = None) -> int:
    """Pass every expired offer on to the next waitlisted request; returns how many expired."""
    now = now or utcnow()
    release = _release(session, release_code)
    expired = [r for r in session.scalars(select(ReleaseRequest).where(
        ReleaseRequest.release_id == release.id, ReleaseRequest.status == "offered")
        .order_by(ReleaseRequest.rank)) if r.offer_expires_at is not None
        and as_utc(r.offer_expires_at) < now]
    for req in expired:
        place = req.place
        req.status, req.place, req.offer_expires_at = "declined", None, None
        session.flush()
        if place is not None:
            _pass_on(session, release, place, now)
        session.flush()
    if expired:
        audit(session, actor, "expire_offers", "imm_release", str(release.id),
              detail=f"{len(expired)} offers expired")
    return len(expired)


def release_dict(session: Session, r: Release) -> dict[str, Any]:
    """A release with its counts by request status (public figures; no personal data)."""
    counts = dict(session.execute(select(ReleaseRequest.status, func.count()).where(
        ReleaseRequest.release_id == r.id).group_by(ReleaseRequest.status)).all())
    return {"id": r.id, "code": r.code, "vaccine": r.vaccine, "doses": r.doses,
            "opens_at": as_utc(r.opens_at).isoformat(),
            "closes_at": as_utc(r.closes_at).isoformat() if r.closes_at else None,
            "mode": r.mode, "seed": r.seed, "status": r.status, "requested": r.requested,
            "taken": r.taken, "free": r.doses - r.taken, "offer_hours": r.offer_hours,
            "eligibility": r.eligibility, "counts": counts}


def request_dict(req: ReleaseRequest) -> dict[str, Any]:
    """A request as the requester sees it."""
    return {"id": req.id, "seq": req.seq, "rank": req.rank, "place": req.place,
            "status": req.status, "person": req.person_masked,
            "offer_expires_at": as_utc(req.offer_expires_at).isoformat()
            if req.offer_expires_at else None}


def list_releases(session: Session, *, offset: int = 0, limit: int = 50
                  ) -> tuple[int, list[dict[str, Any]]]:
    """Releases, newest first (public)."""
    check_window(offset, limit)
    total = session.scalar(select(func.count()).select_from(Release))
    rows = session.scalars(select(Release).order_by(Release.opens_at.desc(), Release.id.desc())
                           .offset(offset).limit(limit))
    return total or 0, [release_dict(session, r) for r in rows]


def request_status(session: Session, release_code: str, *, identity_number: str,
                   secret: str) -> dict[str, Any]:
    """A person's request and position (waitlisted: how many are ahead)."""
    release = _release(session, release_code)
    req = _person_request(session, release, identity_number, secret)
    out = request_dict(req)
    if req.status == "waitlisted" and req.rank is not None:
        out["ahead"] = session.scalar(select(func.count()).select_from(ReleaseRequest).where(
            ReleaseRequest.release_id == release.id, ReleaseRequest.status == "waitlisted",
            ReleaseRequest.rank < req.rank))
    return out
