"""FHIR REST endpoints at ``/fhir``: read and search for ten resource types, create for
Appointment and ServiceRequest, and the CapabilityStatement at ``/fhir/metadata``.

Searches return a ``searchset`` Bundle with ``total`` and paging by ``_count`` (≤ 500) and
``_offset`` (a ``next`` link is given). Errors are OperationOutcome resources: 400 bad search,
404 unknown or outside the caller's scope, 409 a booking or transition conflict (the TierCare
reason, e.g. ``slot_full``, is the issue's ``details.coding.code``), 422 an invalid resource.
Every read of personal health data is audited like in the REST API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from tiercare import __version__
from tiercare.auth.service import Actor, audit
from tiercare.errors import ConflictError, InputError, NotFoundError
from tiercare.fhir import mapping
from tiercare.referral import service as referral_service
from tiercare.referral.models import Referral
from tiercare.registry.models import Facility, StaffMember
from tiercare.residents import service as resident_service
from tiercare.residents.models import Resident
from tiercare.scheduling import service as scheduling_service
from tiercare.scheduling.api import start_write_transaction
from tiercare.scheduling.models import Appointment, Schedule, Slot
from tiercare.web.deps import ActorDep, SessionDep, SettingsDep

router = APIRouter(prefix="/fhir", tags=["fhir"])
FHIR_JSON = "application/fhir+json"
MAX_COUNT = 500

#: Search parameters per resource type (name → FHIR search parameter type).
SEARCH_PARAMS: dict[str, dict[str, str]] = {
    "Patient": {"_id": "token", "identifier": "token", "name": "string", "birthdate": "date"},
    "Practitioner": {"_id": "token", "identifier": "token", "name": "string",
                     "organization": "reference"},
    "Organization": {"_id": "token", "identifier": "token", "name": "string", "type": "token",
                     "active": "token"},
    "Location": {"_id": "token", "identifier": "token", "name": "string",
                 "organization": "reference"},
    "HealthcareService": {"_id": "token", "organization": "reference", "specialty": "token"},
    "Schedule": {"_id": "token", "actor": "reference", "service-type": "token"},
    "Slot": {"schedule": "reference", "start": "date", "status": "token",
             "service-type": "token"},
    "Appointment": {"_id": "token", "patient": "reference", "date": "date", "status": "token"},
    "ServiceRequest": {"_id": "token", "patient": "reference", "subject": "reference",
                       "requester": "reference", "performer": "reference", "status": "token",
                       "authored": "date"},
    "Task": {"_id": "token", "patient": "reference", "owner": "reference",
             "requester": "reference", "status": "token", "focus": "reference"},
}
CREATABLE = {"Appointment", "ServiceRequest"}


class FhirError(Exception):
    """A FHIR-level error answered as an OperationOutcome."""

    def __init__(self, status: int, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.reason = status, code, reason


def outcome(status: int, code: str, message: str, reason: str | None = None) -> JSONResponse:
    """An OperationOutcome response."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": message}
    if reason:
        issue["details"] = {"coding": [{"system": "urn:tiercare:codesystem:conflict-reason",
                                        "code": reason}]}
    return JSONResponse({"resourceType": "OperationOutcome", "issue": [issue]},
                        status_code=status, media_type=FHIR_JSON)


def _json(resource: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> JSONResponse:
    return JSONResponse(resource.model_dump(mode="json", exclude_none=True),
                        status_code=status, media_type=FHIR_JSON, headers=headers)


def _guard(fn: Callable[[], JSONResponse]) -> JSONResponse:
    """Run an endpoint body, turning domain errors into OperationOutcomes."""
    try:
        return fn()
    except FhirError as exc:
        return outcome(exc.status, exc.code, str(exc), exc.reason)
    except NotFoundError as exc:
        return outcome(404, "not-found", f"not found: {exc}")
    except ConflictError as exc:
        return outcome(409, "conflict", str(exc), exc.reason)
    except InputError as exc:
        return outcome(422, "invalid", exc.summary())
    except ValidationError as exc:
        return outcome(422, "structure", "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))


def _int_id(value: str, kind: str) -> int:
    tail = value.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise FhirError(404, "not-found", f"{kind}/{value} does not exist")
    return int(tail)


def _ref_id(value: str, kind: str) -> int:
    """``Kind/12`` or ``12`` → 12 (400 for another resource type)."""
    if "/" in value and value.split("/")[-2] != kind:
        raise FhirError(400, "invalid", f"expected a {kind} reference, got {value}")
    tail = value.rsplit("/", 1)[-1].split("-")[0]
    if not tail.isdigit():
        raise FhirError(400, "invalid", f"bad reference {value}")
    return int(tail)


def _date_range(values: list[str], name: str) -> tuple[datetime | None, datetime | None]:
    """``ge2026-01-01``, ``lt2026-02-01``, ``2026-01-15`` (a whole UTC day) → [lo, hi)."""
    lo = hi = None
    for raw in values:
        prefix, text = (raw[:2], raw[2:]) if raw[:2] in ("ge", "gt", "le", "lt", "eq") else (
            "eq", raw)
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                end = start + timedelta(days=1)
            else:
                start = end = scheduling_service.as_utc(datetime.fromisoformat(text))
        except ValueError:
            raise FhirError(400, "invalid", f"{name}: '{raw}' is not a date") from None
        if prefix in ("ge", "gt"):
            lo = start if prefix == "ge" else end
        elif prefix in ("le", "lt"):
            hi = end if prefix == "le" else start
        else:
            lo, hi = start, end
    return lo, hi


def _paging(request: Request) -> tuple[int, int]:
    try:
        count = int(request.query_params.get("_count", "50"))
        offset = int(request.query_params.get("_offset", "0"))
    except ValueError:
        raise FhirError(400, "invalid", "_count and _offset must be integers") from None
    if not 1 <= count <= MAX_COUNT or offset < 0:
        raise FhirError(400, "invalid", f"_count must be 1..{MAX_COUNT}, _offset ≥ 0")
    return count, offset


def _bundle(request: Request, total: int, resources: list[Any], offset: int, count: int
            ) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    link = [{"relation": "self", "url": str(request.url)}]
    if offset + count < total:
        link.append({"relation": "next", "url": str(request.url.include_query_params(
            _offset=offset + count, _count=count))})
    bundle = Bundle.model_validate({
        "resourceType": "Bundle", "type": "searchset", "total": total, "link": link,
        "entry": [{"fullUrl": f"{base}/fhir/{r.get_resource_type()}/{r.id}",
                   "resource": r.model_dump(mode="json", exclude_none=True),
                   "search": {"mode": "match"}} for r in resources],
    })
    return _json(bundle)


def _check_params(kind: str, request: Request) -> dict[str, list[str]]:
    allowed = set(SEARCH_PARAMS[kind]) | {"_count", "_offset", "_format"}
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise FhirError(400, "not-supported", f"search parameter '{key}' is not supported "
                            f"for {kind} (supported: {', '.join(sorted(SEARCH_PARAMS[kind]))})")
        params.setdefault(key, []).append(value)
    return params


def _page(session: Session, query: Select, offset: int, count: int) -> tuple[int, list[Any]]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return total or 0, list(session.scalars(query.offset(offset).limit(count)))


def _token(value: str) -> str:
    return value.split("|", 1)[-1]


# --------------------------------------------------------------------------- searches


def _search_patient(session: Session, actor: Actor, p: dict[str, list[str]], secret: str,
                    offset: int, count: int) -> tuple[int, list[Any]]:
    if "identifier" in p:
        try:
            r = resident_service.find_by_identity(session, actor, _token(p["identifier"][0]),
                                                  secret=secret)
        except (NotFoundError, InputError):
            return 0, []
        return 1, [mapping.patient(r, actor)]
    query = select(Resident).where(actor.division_clause(Resident.village_code),
                                   Resident.active.is_(True)).order_by(Resident.id)
    if "_id" in p:
        query = query.where(Resident.id.in_([_int_id(v, "Patient") for v in p["_id"]]))
    if "name" in p:
        query = query.where(Resident.name.contains(p["name"][0]))
    if "birthdate" in p:
        lo, hi = _date_range(p["birthdate"], "birthdate")
        if lo is not None:
            query = query.where(Resident.birth_date >= lo.date())
        if hi is not None:
            query = query.where(Resident.birth_date < hi.date())
    total, rows = _page(session, query, offset, count)
    if rows:
        audit(session, actor, "list", "resident", "", detail="fhir ids " + ",".join(
            str(r.id) for r in rows))
    return total, [mapping.patient(r, actor) for r in rows]


def _facility_query(p: dict[str, list[str]]) -> Select:
    query = select(Facility).order_by(Facility.id)
    if "_id" in p:
        query = query.where(Facility.id.in_([_int_id(v, "Organization") for v in p["_id"]]))
    if "identifier" in p:
        query = query.where(Facility.code == _token(p["identifier"][0]))
    if "name" in p:
        query = query.where(Facility.name.contains(p["name"][0]))
    if "type" in p:
        query = query.where(Facility.type_code == _token(p["type"][0]))
    if "active" in p:
        active = p["active"][0] == "true"
        query = query.where(Facility.closed_on.is_(None) if active else
                            Facility.closed_on.is_not(None))
    if "organization" in p:
        query = query.where(Facility.id == _ref_id(p["organization"][0], "Organization"))
    return query


def _referral_query(actor: Actor, p: dict[str, list[str]], kind: str) -> Select:
    src, dst = aliased(Facility), aliased(Facility)
    query = (select(Referral).join(src, src.id == Referral.from_facility_id)
             .join(dst, dst.id == Referral.to_facility_id)
             .where(or_(actor.facility_clause(src), actor.facility_clause(dst)))
             .order_by(Referral.id))
    if "_id" in p:
        query = query.where(Referral.id.in_([_int_id(v, kind) for v in p["_id"]]))
    for key in ("patient", "subject"):
        if key in p:
            query = query.where(Referral.resident_id == _ref_id(p[key][0], "Patient"))
    if "requester" in p:
        query = query.where(Referral.from_facility_id == _ref_id(p["requester"][0],
                                                                 "Organization"))
    for key in ("performer", "owner"):
        if key in p:
            query = query.where(Referral.to_facility_id == _ref_id(p[key][0], "Organization"))
    if "focus" in p:
        query = query.where(Referral.id == _ref_id(p["focus"][0], "ServiceRequest"))
    if "status" in p:
        table = mapping.SERVICE_REQUEST_STATUS if kind == "ServiceRequest" \
            else mapping.TASK_STATUS
        ours = [k for k, v in table.items() if v in p["status"][0].split(",")]
        query = query.where(Referral.status.in_(ours))
    if "authored" in p:
        lo, hi = _date_range(p["authored"], "authored")
        if lo is not None:
            query = query.where(Referral.requested_at >= lo)
        if hi is not None:
            query = query.where(Referral.requested_at < hi)
    return query


def _search(kind: str, session: Session, actor: Actor, request: Request, secret: str
            ) -> JSONResponse:
    p = _check_params(kind, request)
    count, offset = _paging(request)
    total: int
    resources: list[Any]
    if kind == "Patient":
        total, resources = _search_patient(session, actor, p, secret, offset, count)
    elif kind in ("Organization", "Location"):
        total, rows = _page(session, _facility_query(p), offset, count)
        convert = mapping.organization if kind == "Organization" else mapping.location
        resources = [convert(f) for f in rows]
    elif kind == "Practitioner":
        query = select(StaffMember).order_by(StaffMember.id)
        if "_id" in p:
            query = query.where(StaffMember.id.in_([_int_id(v, kind) for v in p["_id"]]))
        if "identifier" in p:
            query = query.where(StaffMember.code == _token(p["identifier"][0]))
        if "name" in p:
            query = query.where(StaffMember.name.contains(p["name"][0]))
        if "organization" in p:
            query = query.where(StaffMember.facility_id == _ref_id(p["organization"][0],
                                                                   "Organization"))
        total, rows = _page(session, query, offset, count)
        resources = [mapping.practitioner(s) for s in rows]
    elif kind in ("HealthcareService", "Schedule"):
        query = select(Schedule).order_by(Schedule.id)
        if "_id" in p:
            query = query.where(Schedule.id.in_([_int_id(v, kind) for v in p["_id"]]))
        if "organization" in p:
            query = query.where(Schedule.facility_id == _ref_id(p["organization"][0],
                                                                "Organization"))
        if "actor" in p:
            ref = p["actor"][0]
            if ref.startswith("Practitioner/"):
                query = query.where(Schedule.clinician_id == _ref_id(ref, "Practitioner"))
            else:
                query = query.where(Schedule.facility_id == _ref_id(ref, "Location"))
        for key in ("specialty", "service-type"):
            if key in p:
                query = query.where(Schedule.department == _token(p[key][0]))
        total, rows = _page(session, query, offset, count)
        convert = mapping.healthcare_service if kind == "HealthcareService" \
            else mapping.schedule
        resources = [convert(s) for s in rows]
    elif kind == "Slot":
        query = select(Slot).order_by(Slot.start, Slot.id)
        if "schedule" in p:
            query = query.where(Slot.schedule_id == _ref_id(p["schedule"][0], "Schedule"))
        if "start" in p:
            lo, hi = _date_range(p["start"], "start")
            if lo is not None:
                query = query.where(Slot.start >= lo)
            if hi is not None:
                query = query.where(Slot.start < hi)
        rows = list(session.scalars(query.limit(5000)))
        resources = [fs for s in rows for fs in mapping.slots(s)]
        if "status" in p:
            resources = [r for r in resources if r.status in p["status"][0].split(",")]
        if "service-type" in p:
            wanted = _token(p["service-type"][0])
            resources = [r for r in resources if r.serviceType[0].coding[0].code == wanted]
        total = len(resources)
        resources = resources[offset:offset + count]
    elif kind == "Appointment":
        lo = hi = None
        if "date" in p:
            lo, hi = _date_range(p["date"], "date")
        status = None
        if "status" in p:
            reverse = {v: k for k, v in mapping.APPOINTMENT_STATUS.items()}
            status = reverse.get(p["status"][0])
            if status is None:
                return _bundle(request, 0, [], offset, count)
        resident = _ref_id(p["patient"][0], "Patient") if "patient" in p else None
        if "_id" in p:
            ids = [_int_id(v, kind) for v in p["_id"]]
            rows = [scheduling_service.get_appointment(session, actor, i) for i in ids]
            total, resources = len(rows), [mapping.appointment(a, slot=a.slot) for a in rows]
        else:
            total, items = scheduling_service.list_appointments(
                session, actor, resident_id=resident, status=status, start=lo, end=hi,
                offset=offset, limit=count)
            rows = [session.get(Appointment, i["id"]) for i in items]
            resources = [mapping.appointment(a, slot=a.slot) for a in rows if a is not None]
    else:  # ServiceRequest, Task
        total, rows = _page(session, _referral_query(actor, p, kind), offset, count)
        if rows:
            audit(session, actor, "list", "referral", "", detail="fhir ids " + ",".join(
                str(r.id) for r in rows))
        convert = mapping.service_request if kind == "ServiceRequest" else mapping.task
        resources = [convert(r) for r in rows]
    return _bundle(request, total, resources, offset, count)


def _read(kind: str, ident: str, session: Session, actor: Actor) -> JSONResponse:
    if kind == "Patient":
        r = resident_service.get_resident(session, actor, _int_id(ident, kind), purpose="fhir")
        facility = session.get(Facility, r.signed_facility_id) if r.signed_facility_id else None
        return _json(mapping.patient(r, actor, facility=facility))
    if kind in ("Organization", "Location"):
        f = session.get(Facility, _int_id(ident, kind))
        if f is None:
            raise NotFoundError(f"{kind}/{ident}")
        return _json(mapping.organization(f) if kind == "Organization" else mapping.location(f))
    if kind == "Practitioner":
        s = session.get(StaffMember, _int_id(ident, kind))
        if s is None:
            raise NotFoundError(f"{kind}/{ident}")
        return _json(mapping.practitioner(s))
    if kind in ("HealthcareService", "Schedule"):
        sch = session.get(Schedule, _int_id(ident, kind))
        if sch is None:
            raise NotFoundError(f"{kind}/{ident}")
        return _json(mapping.healthcare_service(sch) if kind == "HealthcareService"
                     else mapping.schedule(sch))
    if kind == "Slot":
        slot = session.get(Slot, _ref_id(ident, "Slot"))
        matches = [s for s in mapping.slots(slot) if s.id == ident] if slot else []
        if not matches:
            raise NotFoundError(f"Slot/{ident}")
        return _json(matches[0])
    if kind == "Appointment":
        a = scheduling_service.get_appointment(session, actor, _int_id(ident, kind))
        return _json(mapping.appointment(a, slot=a.slot))
    r = referral_service.get_referral(session, actor, _int_id(ident, kind))
    return _json(mapping.service_request(r) if kind == "ServiceRequest" else mapping.task(r))


# --------------------------------------------------------------------------- creates


def _create_appointment(body: dict[str, Any], session: Session, actor: Actor,
                        key: str | None) -> JSONResponse:
    resource = FhirAppointment.model_validate(body)
    if resource.status not in ("booked", "proposed", "pending"):
        raise FhirError(422, "invalid", "a new Appointment must be proposed, pending or booked")
    if not resource.slot:
        raise FhirError(422, "required", "Appointment.slot is required")
    slot_ref = resource.slot[0].reference or ""
    patients = [p.actor.reference for p in resource.participant or []
                if p.actor is not None and (p.actor.reference or "").startswith("Patient/")]
    if not patients:
        raise FhirError(422, "required", "a Patient participant is required")
    slot_id = _ref_id(slot_ref, "Slot")
    resident_id = _ref_id(patients[0], "Patient")
    start_write_transaction(session)
    if slot_ref.endswith("-r"):
        based = [b.reference for b in resource.basedOn or [] if b.reference]
        if not based:
            raise FhirError(422, "required", "a reserved (-r) Slot needs basedOn ServiceRequest")
        rid = _ref_id(based[0], "ServiceRequest")
        current = referral_service.get_referral(session, actor, rid, audit_read=False)
        if current.status == "requested":
            r = referral_service.accept_and_book(session, actor, rid, slot_id=slot_id,
                                                 idempotency_key=key)
        else:
            r = referral_service.schedule(session, actor, rid, slot_id=slot_id,
                                          idempotency_key=key)
        a = session.get(Appointment, r.appointment_id)
        created = True
    else:
        a, created = scheduling_service.book(session, actor, slot_id=slot_id,
                                             resident_id=resident_id, idempotency_key=key)
    assert a is not None
    return _json(mapping.appointment(a, slot=a.slot), 201 if created else 200,
                 {"Location": f"/fhir/Appointment/{a.id}"})


def _create_service_request(body: dict[str, Any], session: Session, actor: Actor
                            ) -> JSONResponse:
    resource = ServiceRequest.model_validate(body)
    if resource.subject is None or not (resource.subject.reference or "").startswith("Patient/"):
        raise FhirError(422, "required", "ServiceRequest.subject must reference a Patient")
    if not resource.performer:
        raise FhirError(422, "required", "ServiceRequest.performer (an Organization) is "
                        "required")

    def facility_code(ref: str) -> str:
        f = session.get(Facility, _ref_id(ref, "Organization"))
        if f is None:
            raise FhirError(422, "invalid", f"{ref} does not exist")
        return f.code

    reverse_priority = {v: k for k, v in mapping.PRIORITY.items()}
    reverse_priority["asap"] = "urgent"
    direction = "up"
    criteria: list[str] = []
    reason = ""
    for concept in resource.category or []:
        for coding in concept.coding or []:
            if coding.system == mapping.DIRECTION_SYSTEM and coding.code:
                direction = coding.code
    for concept in resource.reasonCode or []:
        reason = reason or (concept.text or "")
        criteria += [c.code for c in concept.coding or []
                     if c.system == mapping.CRITERIA_SYSTEM and c.code]
    data = referral_service.ReferralIn(
        resident_id=_ref_id(resource.subject.reference or "", "Patient"),
        to_facility_code=facility_code(resource.performer[0].reference or ""),
        from_facility_code=facility_code(resource.requester.reference or "")
        if resource.requester is not None else None,
        direction=direction, urgency=reverse_priority.get(resource.priority or "routine",
                                                          "routine"),
        reason=reason or (resource.code.text if resource.code else "") or "referral",
        criteria=criteria, summary="\n".join(n.text for n in resource.note or [] if n.text),
        service=resource.code.text if resource.code and resource.code.text else "")
    r = referral_service.create_referral(session, actor, data)
    return _json(mapping.service_request(r), 201, {"Location": f"/fhir/ServiceRequest/{r.id}"})


# --------------------------------------------------------------------------- routes


#: Resource types served by other modules' /fhir routers (tiercare.fhir.immunization,
#: tiercare.maternal.api): type → (interactions, search parameters).
OTHER_MODULE_RESOURCES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "Immunization": (("read", "search-type", "create"), {"patient": "reference"}),
    "ImmunizationRecommendation": (("search-type",), {"patient": "reference"}),
    "EpisodeOfCare": (("read",), {}),
    "RiskAssessment": (("read",), {}),
    "Observation": (("read",), {}),
}


def capability_statement() -> CapabilityStatement:
    """What this server supports (validated R4B CapabilityStatement)."""
    resources = []
    for kind, params in SEARCH_PARAMS.items():
        interactions = [{"code": "read"}, {"code": "search-type"}]
        if kind in CREATABLE:
            interactions.append({"code": "create"})
        resources.append({"type": kind, "interaction": interactions,
                          "searchParam": [{"name": n, "type": t} for n, t in params.items()]})
    for kind, (codes, params) in OTHER_MODULE_RESOURCES.items():
        entry: dict[str, Any] = {"type": kind, "interaction": [{"code": c} for c in codes]}
        if params:
            entry["searchParam"] = [{"name": n, "type": t} for n, t in params.items()]
        resources.append(entry)
    return CapabilityStatement.model_validate({
        "resourceType": "CapabilityStatement", "status": "active",
        "date": datetime.now(UTC).date().isoformat(), "kind": "instance",
        "software": {"name": "TierCare", "version": __version__},
        "implementation": {"description": "TierCare FHIR endpoint (registry, residents, "
                           "appointments, two-way referral, immunisation, maternal care)"},
        "fhirVersion": mapping.FHIR_VERSION, "format": ["json"],
        "rest": [{"mode": "server", "security": {"description": "Bearer token from "
                                                 "POST /api/v1/auth/token"},
                  "resource": resources}],
    })


@router.get("/metadata", summary="CapabilityStatement")
def metadata() -> JSONResponse:
    """The server's CapabilityStatement (no authentication needed)."""
    return _json(capability_statement())


def _search_route(kind: str) -> Callable[..., JSONResponse]:
    def search(request: Request, session: SessionDep, actor: ActorDep,
               settings: SettingsDep) -> JSONResponse:
        return _guard(lambda: _search(kind, session, actor, request, settings.secret_key))
    return search


def _read_route(kind: str) -> Callable[..., JSONResponse]:
    def read(ident: str, session: SessionDep, actor: ActorDep) -> JSONResponse:
        return _guard(lambda: _read(kind, ident, session, actor))
    return read


def _create_route(kind: str) -> Callable[..., Any]:
    async def create(request: Request, session: SessionDep, actor: ActorDep) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return outcome(400, "structure", "the body is not JSON")
        key = request.headers.get("Idempotency-Key")

        def run() -> JSONResponse:
            if not isinstance(body, dict) or body.get("resourceType") != kind:
                raise FhirError(400, "invalid", f"the body must be a {kind} resource")
            if kind == "Appointment":
                return _create_appointment(body, session, actor, key)
            return _create_service_request(body, session, actor)

        response = _guard(run)
        if response.status_code >= 400:
            session.rollback()
        return response
    return create


# One explicit route per resource type, so other modules can add /fhir routes for other types.
for _kind, _params in SEARCH_PARAMS.items():
    router.add_api_route(
        f"/{_kind}", _search_route(_kind), methods=["GET"], summary=f"Search {_kind}",
        description="A searchset Bundle. Parameters: " + ", ".join(_params)
        + "; paging with `_count` (≤ 500) and `_offset`.")
    router.add_api_route(f"/{_kind}/{{ident}}", _read_route(_kind), methods=["GET"],
                         summary=f"Read {_kind}")
    if _kind in CREATABLE:
        router.add_api_route(
            f"/{_kind}", _create_route(_kind), methods=["POST"], status_code=201,
            summary=f"Create {_kind}",
            description="Appointment: books the referenced Slot for the Patient participant "
            "(`-r` slots with `basedOn` a ServiceRequest use the reserved places); honours "
            "`Idempotency-Key`. ServiceRequest: sends a referral from `requester` to "
            "`performer`.")
