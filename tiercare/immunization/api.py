"""REST API of the immunisation information system under ``/api/v1/immunization``.

Staff endpoints need a bearer token (or the page session cookie); writes need a role that
vaccinates or manages sites (:data:`WRITERS`). The family endpoints (look-up, one-time code,
booking, scarce-vaccine requests) need no account: they are checked against the child's
identity plus the guardian's registered phone or a one-time code, and audited as ``family``.
Bad input answers 422 with every problem (field, row, reason); conflicts 409 with a machine
reason (``session_full``, ``already_requested``, ``not_open`` …).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor
from tiercare.errors import InputError, NotFoundError, Problem
from tiercare.immunization import records, releases, sites, stock, upload, worklists
from tiercare.immunization.common import WRITERS, begin_write, person_identity
from tiercare.immunization.forecast import forecast, parse_child
from tiercare.immunization.models import Child, Release, VaccinationSite
from tiercare.immunization.records import FAMILY
from tiercare.registry.schemas import Page
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/immunization", tags=["immunization"])
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def require_writer(actor: ActorDep) -> Actor:
    """Only roles that vaccinate or run sites may write."""
    if actor.role not in WRITERS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{actor.role}' may not change this")
    return actor


WriterDep = Annotated[Actor, Depends(require_writer)]


def commit_now(session: Session) -> None:
    """Commit inside the handler's own thread.

    Requests that queue on a row lock (a release, a session counter) hold worker threads while
    they wait; committing here releases the lock without needing another thread, so a flash
    crowd cannot starve the lock holder of the thread its commit would otherwise run on.
    """
    session.commit()


class LookupIn(BaseModel):
    """Identity of a child (never put it in a URL)."""

    identity_number: str


class TransferIn(BaseModel):
    """Move a child to another site."""

    to_site_code: str
    village_code: str | None = None
    reason: str = Field(default="", max_length=500)


class FamilyIn(BaseModel):
    """A family's credentials: the child's identity and the guardian's phone or a code."""

    identity_number: str
    guardian_phone: str | None = None
    code: str | None = None


class FamilyBookingIn(FamilyIn):
    """A family books a session for its child's due doses."""

    session_id: int
    vaccines: list[str] = Field(min_length=1)
    slot_start: str | None = None
    idempotency_key: str | None = Field(default=None, max_length=64)


class ReleasePersonIn(BaseModel):
    """Identify one's own request in a release."""

    identity_number: str


# --------------------------------------------------------------------------- children


@router.get("/children", response_model=Page, summary="List children of your area (masked)")
def list_children(session: SessionDep, actor: ActorDep, site: str | None = None,
                  village: str | None = None, q: str | None = None, offset: Offset = 0,
                  limit: Limit = 50) -> Page:
    """Registered children in your scope; identity numbers masked, the listing audited."""
    total, items = records.list_children(session, actor, site=site, village=village, q=q,
                                         offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/children", status_code=201, summary="Register a child (birth or arrival)")
def register_child(data: records.ChildIn, session: SessionDep, actor: WriterDep,
                   settings: SettingsDep) -> dict[str, Any]:
    """Register a child with its identity, village, responsible site and guardian."""
    c = records.register_child(session, actor, data, secret=settings.secret_key)
    return records.child_dict(c, actor, session=session)


@router.post("/children/lookup", summary="Find a child by identity number (audited)")
def lookup_child(data: LookupIn, session: SessionDep, actor: ActorDep,
                 settings: SettingsDep) -> dict[str, Any]:
    """Look up by resident identity or birth-certificate number."""
    c = records.find_child(session, actor, data.identity_number, secret=settings.secret_key)
    return records.child_dict(c, actor, session=session)


@router.get("/children/{child_id}", summary="Read a child with its records (audited)")
def read_child(child_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """The child and every dose recorded."""
    c = records.get_child(session, actor, child_id)
    out = records.child_dict(c, actor, session=session)
    codes = dict(session.execute(select(VaccinationSite.id, VaccinationSite.code)).all())
    out["immunizations"] = [records.record_dict(r, site_code=codes.get(r.site_id))
                            for r in records.child_records(session, c.id)]
    return out


@router.post("/children/{child_id}/transfer", summary="Transfer a child to another site")
def transfer(child_id: int, data: TransferIn, session: SessionDep,
             actor: WriterDep) -> dict[str, Any]:
    """Change the responsible site (and village when the family moved)."""
    records.transfer_child(session, actor, child_id, to_site_code=data.to_site_code,
                           village_code=data.village_code, reason=data.reason)
    return records.child_dict(session.get(Child, child_id), actor, session=session)


@router.get("/children/{child_id}/forecast", summary="Due doses of a registered child")
def child_forecast(child_id: int, session: SessionDep, actor: ActorDep,
                   as_of: dt.date | None = None, self_paid: bool = False) -> dict[str, Any]:
    """The schedule engine's forecast from the recorded doses (audited read)."""
    _, result = records.child_forecast(session, actor, child_id, as_of=as_of or dt.date.today(),
                                       include_self_paid=self_paid)
    return result.to_json()


# --------------------------------------------------------------------------- immunizations


@router.post("/immunizations", status_code=201, summary="Record a dose given")
def record_dose(data: records.DoseIn, session: SessionDep, actor: WriterDep,
                response: Response) -> dict[str, Any]:
    """Record a dose; the same dose again (same stable key) answers 200 with the first."""
    rec, created = records.record_dose(session, actor, data)
    if not created:
        response.status_code = 200
    return records.record_dict(rec, site_code=data.site_code)


@router.post("/immunizations/{record_id}/aefi", summary="Adverse event follow-up of a dose")
def record_aefi(record_id: int, data: records.AefiIn, session: SessionDep,
                actor: WriterDep) -> dict[str, Any]:
    """Attach or update the AEFI report and its follow-up."""
    rec = records.record_aefi(session, actor, record_id, data)
    return records.record_dict(rec)


@router.post("/immunizations/upload", summary="Upload a batch of records (CSV or FHIR Bundle)")
async def upload_batch(request: Request, session: SessionDep, actor: WriterDep,
                       settings: SettingsDep,
                       site: Annotated[str, Query(description="Uploading site")]
                       ) -> dict[str, Any]:
    """Body ``text/csv`` (columns in :mod:`tiercare.immunization.upload`) or
    ``application/fhir+json`` / ``application/json`` (a Bundle of Immunization). All rows or
    none: 422 lists every bad row; uploading the same batch again adds nothing."""
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        raise InputError.single("batch larger than 64 MB: split it", field="file")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind in ("application/fhir+json", "application/json"):
        try:
            bundle = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError.single(f"not JSON: {exc}", field="file") from exc
        return upload.upload_bundle(session, actor, bundle, site_code=site,
                                    secret=settings.secret_key)
    if kind not in ("text/csv", "application/csv", "text/plain"):
        raise InputError.single("send text/csv or application/fhir+json", field="content-type")
    return upload.upload_csv(session, actor, body, site_code=site, secret=settings.secret_key)


# --------------------------------------------------------------------------- forecasts


@router.post("/forecasts", summary="Forecast for a child given as JSON (no record kept)")
def forecast_json(body: dict[str, Any], as_of: dt.date, actor: ActorDep,
                  self_paid: bool = False) -> dict[str, Any]:
    """Body as ``child.json`` of the CLI (birth_date, sex, history, mother_hbsag, …)."""
    return forecast(parse_child(body), as_of=as_of, include_self_paid=self_paid).to_json()


# --------------------------------------------------------------------------- sites, sessions


@router.get("/sites", response_model=Page, summary="Vaccination sites of your area")
def list_sites(session: SessionDep, actor: ActorDep, kind: str | None = None,
               offset: Offset = 0, limit: Limit = 50) -> Page:
    """Fixed, temporary and mobile sites with capacity, route and checklist result."""
    total, items = sites.list_sites(session, actor, kind=kind, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/sites", status_code=201, summary="Create a vaccination site")
def create_site(data: sites.SiteIn, session: SessionDep, actor: WriterDep) -> dict[str, Any]:
    """A site with daily capacity by vaccine and, for a vehicle, its weekly route."""
    return sites.site_dict(session, sites.create_site(session, actor, data))


@router.get("/sites/{code}", summary="A vaccination site")
def read_site(code: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Capacity, route and the latest ``vaccination_site`` checklist assessment."""
    site = sites.site_by_code(session, code)
    sites.require_site(actor, site)
    return sites.site_dict(session, site)


@router.post("/sites/{code}/sessions", status_code=201, summary="Open a session")
def open_session(code: str, data: sites.SessionIn, session: SessionDep,
                 actor: WriterDep) -> dict[str, Any]:
    """A session on one day (a vehicle opens where its route puts it that weekday)."""
    return sites.session_dict(session, sites.open_session(session, actor, code, data))


@router.get("/sessions", response_model=Page, summary="Sessions with free places (public)")
def list_sessions(session: SessionDep, site: str | None = None, start: dt.date | None = None,
                  end: dt.date | None = None, vaccine: str | None = None, offset: Offset = 0,
                  limit: Limit = 50) -> Page:
    """Sessions between two dates with free places by vaccine and slot (no personal data)."""
    total, items = sites.list_sessions(session, FAMILY, site=site, start=start, end=end,
                                       vaccine=vaccine, offset=offset, limit=limit, public=True)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/bookings", status_code=201, summary="Book a session (staff, for a child)")
def create_booking(data: sites.BookingIn, session: SessionDep, actor: WriterDep,
                   settings: SettingsDep, response: Response,
                   self_paid: bool = False) -> dict[str, Any]:
    """Conditional counters: 409 ``session_full``/``vaccine_full``/``slot_full``/
    ``already_booked``; a repeated ``idempotency_key`` answers 200 with the first booking."""
    begin_write(session)
    b, created = sites.book(session, actor, data, secret=settings.secret_key,
                            self_paid=self_paid)
    if not created:
        response.status_code = 200
    out = sites.booking_dict(session, b)
    commit_now(session)
    return out


@router.delete("/bookings/{booking_id}", summary="Cancel a booking")
def cancel_booking(booking_id: int, session: SessionDep, actor: WriterDep) -> dict[str, Any]:
    """Give the places back."""
    begin_write(session)
    return sites.booking_dict(session, sites.cancel_booking(session, actor, booking_id))


@router.get("/reminders", response_model=Page, summary="Bookings of a day to remind")
def list_reminders(session: SessionDep, actor: WriterDep, on_date: dt.date,
                   site: Annotated[str | None, Query(description="Site code")] = None,
                   offset: Offset = 0, limit: Limit = 50) -> Page:
    """Who to remind (name, phone, site, time, vaccines) for a day, by site and time; the
    phone is masked for roles that do not see identifiers, and the listing is audited."""
    total, items = sites.reminders(session, actor, on_date=on_date, site=site, offset=offset,
                                   limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.get("/reminders/families",
            summary="Families to remind: a booking or a due dose in the coming days")
def family_reminders(session: SessionDep, actor: WriterDep, start: dt.date,
                     end: dt.date | None = None, site: str | None = None,
                     staff: str | None = None, village: str | None = None,
                     format: str = "json") -> Any:  # noqa: A002
    """List who to remind (nothing is sent); ``end`` defaults to a week after ``start``.

    ``format=csv`` exports one line per family.
    """
    last = end or start + dt.timedelta(days=7)
    items = worklists.reminder_list(session, actor, start=start, end=last, site=site,
                                    staff=staff, village=village)
    if format == "csv":
        return Response(worklists.reminders_csv(items), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=reminders.csv"})
    return {"start": start.isoformat(), "end": last.isoformat(), "families": len(items),
            "items": json.loads(json.dumps(items, default=str))}


# --------------------------------------------------------------------------- family


def checked_family_lookup(session: Session, data: FamilyIn, *, secret: str) -> dict[str, Any]:
    """:func:`~tiercare.immunization.records.family_lookup`; a refused attempt's audit entry
    is committed before the 404 (the request's transaction is rolled back otherwise)."""
    try:
        return records.family_lookup(session, identity_number=data.identity_number,
                                     guardian_phone=data.guardian_phone, code=data.code,
                                     secret=secret)
    except NotFoundError:
        session.commit()
        raise


@router.post("/family/code", status_code=202, summary="Send a one-time code to the guardian")
def family_code(data: LookupIn, session: SessionDep, settings: SettingsDep) -> dict[str, str]:
    """Always answers the same (reveals nothing); the code goes to the registered phone."""
    records.request_family_code(session, identity_number=data.identity_number,
                                secret=settings.secret_key)
    return {"status": "sent if a child with a registered phone matches"}


@router.post("/family/lookup", summary="A family looks up its child's record and due doses")
def family_lookup(data: FamilyIn, session: SessionDep, settings: SettingsDep
                  ) -> dict[str, Any]:
    """Identity plus guardian's phone or a one-time code; every attempt audited."""
    return checked_family_lookup(session, data, secret=settings.secret_key)


@router.post("/family/bookings", status_code=201, summary="A family books its child's doses")
def family_booking(data: FamilyBookingIn, session: SessionDep, settings: SettingsDep,
                   response: Response) -> dict[str, Any]:
    """Checked like the look-up, then booked like a staff booking."""
    view = checked_family_lookup(session, data, secret=settings.secret_key)
    begin_write(session)
    b, created = sites.book(session, FAMILY, sites.BookingIn(
        session_id=data.session_id, vaccines=data.vaccines, child_id=view["child"]["id"],
        slot_start=data.slot_start, idempotency_key=data.idempotency_key),
        secret=settings.secret_key)
    if not created:
        response.status_code = 200
    out = sites.booking_dict(session, b)
    commit_now(session)
    return out


# --------------------------------------------------------------------------- releases


@router.get("/releases", response_model=Page, summary="Scarce-vaccine releases (public)")
def list_releases(session: SessionDep, offset: Offset = 0, limit: Limit = 50) -> Page:
    """Releases with places left, mode and the published lottery seed."""
    total, items = releases.list_releases(session, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/releases", status_code=201, summary="Create a release")
def create_release(data: releases.ReleaseIn, session: SessionDep,
                   actor: WriterDep) -> dict[str, Any]:
    """N doses at a set time, by arrival or by a published lottery."""
    return releases.release_dict(session, releases.create_release(session, actor, data))


@router.get("/releases/{code}", summary="A release and its counts (public)")
def read_release(code: str, session: SessionDep) -> dict[str, Any]:
    """Places taken and free, requests by status."""
    r = session.scalar(select(Release).where(Release.code == code))
    if r is None:
        raise NotFoundError(f"release {code}")
    return releases.release_dict(session, r)


@router.post("/releases/{code}/requests", status_code=201, summary="Request a dose (public)")
def request_dose(code: str, data: releases.RequestIn, session: SessionDep,
                 settings: SettingsDep) -> dict[str, Any]:
    """Queue: ``confirmed`` or ``waitlisted`` (arrival) / ``entered`` (lottery); 409
    ``already_requested`` (one person, one booking) or ``not_open``."""
    person_identity(data.identity_number, secret=settings.secret_key)
    begin_write(session)
    out = releases.request_dict(releases.request_dose(session, FAMILY, code, data,
                                                      secret=settings.secret_key))
    commit_now(session)
    return out


@router.post("/releases/{code}/status", summary="One's own request and queue position")
def request_status(code: str, data: ReleasePersonIn, session: SessionDep,
                   settings: SettingsDep) -> dict[str, Any]:
    """Status, place, rank and how many are ahead on the waiting list."""
    return releases.request_status(session, code, identity_number=data.identity_number,
                                   secret=settings.secret_key)


@router.post("/releases/{code}/cancel", summary="Cancel one's request (or decline an offer)")
def cancel_request(code: str, data: ReleasePersonIn, session: SessionDep,
                   settings: SettingsDep) -> dict[str, Any]:
    """A held place passes to the first on the waiting list."""
    begin_write(session)
    return releases.request_dict(releases.cancel_request(
        session, FAMILY, code, identity_number=data.identity_number,
        secret=settings.secret_key))


@router.post("/releases/{code}/accept", summary="Accept an offered place")
def accept_offer(code: str, data: ReleasePersonIn, session: SessionDep,
                 settings: SettingsDep) -> dict[str, Any]:
    """Before the offer expires."""
    begin_write(session)
    return releases.request_dict(releases.accept_offer(
        session, FAMILY, code, identity_number=data.identity_number,
        secret=settings.secret_key))


@router.post("/releases/{code}/draw", summary="Draw the lottery after it closes")
def draw(code: str, session: SessionDep, actor: WriterDep) -> dict[str, Any]:
    """Ranks the entries by the published seed; confirms the first N."""
    begin_write(session)
    return releases.draw(session, actor, code)


@router.post("/releases/{code}/expire-offers", summary="Pass expired offers on")
def expire_offers(code: str, session: SessionDep, actor: WriterDep) -> dict[str, int]:
    """Each expired offer goes to the next on the waiting list."""
    begin_write(session)
    return {"expired": releases.expire_offers(session, actor, code)}


# --------------------------------------------------------------------------- stock


@router.get("/stock/{site}", summary="Stock of a site with alerts")
def read_stock(site: str, session: SessionDep, actor: ActorDep,
               as_of: dt.date | None = None) -> dict[str, Any]:
    """Lots, receipts, doses used (from the records), wastage, on hand; alerts."""
    return stock.stock_report(session, actor, site, today=as_of)


@router.post("/stock/{site}/moves", status_code=201, summary="Receipt, wastage or adjustment")
def stock_move(site: str, data: stock.MoveIn, session: SessionDep,
               actor: WriterDep) -> dict[str, Any]:
    """A receipt of a new lot creates it (expiry required)."""
    move = stock.record_move(session, actor, site, data)
    return {"id": move.id, "kind": move.kind, "doses": move.doses}


# --------------------------------------------------------------------------- work lists


@router.get("/worklists", summary="Due and overdue doses (JSON or CSV)")
def work_list(session: SessionDep, actor: ActorDep, start: dt.date, end: dt.date,
              site: str | None = None, staff: str | None = None, village: str | None = None,
              format: str = "json") -> Any:  # noqa: A002
    """Per site, village doctor (staff code) or village, for a period; ``format=csv`` exports."""
    if not (site or staff or village):
        raise InputError([Problem(reason="give site, staff or village", field="site")])
    table = worklists.work_list(session, actor, start=start, end=end, site=site, staff=staff,
                                village=village)
    if format == "csv":
        return Response(table.to_csv(index=False), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=worklist.csv"})
    for column in ("birth_date", "earliest", "overdue_after"):
        table[column] = [d.isoformat() if isinstance(d, dt.date) else None
                         for d in table[column]]
    return {"start": start.isoformat(), "end": end.isoformat(), "lines": len(table),
            "items": json.loads(table.to_json(orient="records"))}


@router.get("/coverage", summary="Coverage and timeliness by division, cohort, vaccine, dose")
def coverage(session: SessionDep, actor: ActorDep, as_of: dt.date, level: str = "village",
             division: str | None = None,
             cohort: Annotated[list[int] | None, Query()] = None,
             vaccine: Annotated[list[str] | None, Query()] = None,
             format: str = "json") -> Any:  # noqa: A002
    """Indicators for the performance evaluation (``format=csv`` exports)."""
    table = worklists.coverage(session, actor, as_of=as_of, level=level, division=division,
                               cohorts=cohort, vaccines=vaccine)
    if format == "csv":
        return Response(table.to_csv(index=False), media_type="text/csv")
    return {"as_of": as_of.isoformat(), "level": level,
            "items": json.loads(table.to_json(orient="records"))}


@router.get("/coverage/below-target", summary="Villages below the coverage target")
def below_target(session: SessionDep, actor: ActorDep, as_of: dt.date, vaccine: str,
                 dose: int = 1, cohort: Annotated[list[int] | None, Query()] = None,
                 division: str | None = None) -> dict[str, Any]:
    """Villages with coverage and target, lowest first (``below_target`` flags)."""
    rows = worklists.villages_below_target(session, actor, as_of=as_of, vaccine=vaccine,
                                           dose=dose, cohorts=cohort, division=division)
    for r in rows:
        r.pop("boundary", None)
    return {"as_of": as_of.isoformat(), "vaccine": vaccine, "dose": dose, "items": rows}

