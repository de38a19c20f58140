"""FHIR R4B endpoints of the immunisation register (``fhir.resources.R4B``).

* ``Patient/child-{id}`` — a registered child (identity masked unless the caller may see it;
  a child who is also in the resident index links to ``Patient/{resident id}``);
* ``Immunization/{id}`` and ``Immunization?patient=Patient/child-{id}`` — doses given;
* ``ImmunizationRecommendation?patient=Patient/child-{id}[&date=YYYY-MM-DD]`` — the schedule
  engine's forecast (date criteria in LOINC: earliest, due, overdue);
* ``POST /fhir/Immunization/$upload?site=CODE`` — a ``Bundle`` of ``Immunization`` uploaded
  atomically and idempotently like the CSV batch.

Errors are OperationOutcome resources (404 unknown or out of scope, 422 invalid input, 409 a
conflict). Every read of a child is audited like in the REST API.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from sqlalchemy import select

from tiercare.auth.service import Actor
from tiercare.errors import InputError, NotFoundError
from tiercare.fhir.api import FHIR_JSON, _guard, _json
from tiercare.fhir.mapping import ID_SYSTEM
from tiercare.immunization import records, upload
from tiercare.immunization.fhir import immunization_resource, recommendation_resource
from tiercare.immunization.forecast import HistoryDose
from tiercare.immunization.models import Child, ImmunizationRecord, VaccinationSite
from tiercare.immunization.upload import BIRTH_CERTIFICATE_SYSTEM, RECORD_SYSTEM, SITE_SYSTEM
from tiercare.web.deps import ActorDep, SessionDep, SettingsDep

router = APIRouter(prefix="/fhir", tags=["fhir"])
CHILD = "child-"


def child_patient(c: Child, actor: Actor) -> Patient:
    """A registered child as ``Patient``."""
    number = c.id_number if actor.sees_identifiers else c.id_masked
    system = ID_SYSTEM if c.id_kind == "resident_id" else BIRTH_CERTIFICATE_SYSTEM
    data: dict[str, Any] = {
        "resourceType": "Patient", "id": f"{CHILD}{c.id}", "active": c.active,
        "identifier": [{"use": "official", "system": system, "value": number}],
        "name": [{"use": "official", "text": c.name}],
        "gender": {"M": "male", "F": "female"}[c.sex], "birthDate": c.birth_date.isoformat(),
        "address": [{"use": "home", "district": c.village_code}],
        "contact": [{"relationship": [{"text": c.guardian_relation}],
                     "name": {"text": c.guardian_name or "—"}}],
    }
    if c.guardian_phone and actor.sees_identifiers:
        data["contact"][0]["telecom"] = [{"system": "phone", "value": c.guardian_phone}]
    if c.resident_id is not None:
        data["link"] = [{"other": {"reference": f"Patient/{c.resident_id}"}, "type": "seealso"}]
    return Patient.model_validate(data)


def record_resource(r: ImmunizationRecord, site: VaccinationSite | None, *,
                    child: Child | None = None, actor: Actor | None = None) -> dict[str, Any]:
    """A record as ``Immunization`` (JSON) with lot, site, route, performer and record id.

    With ``child`` and an ``actor`` who may see identifiers, ``patient.identifier`` carries the
    child's number too, so that the resource can be uploaded elsewhere as is.
    """
    res = immunization_resource(HistoryDose(vaccine=r.vaccine, date=r.given_on),
                                patient_reference=f"Patient/{CHILD}{r.child_id}",
                                dose_number=r.dose_number, lot_number=r.lot or None,
                                resource_id=str(r.id)).model_dump(mode="json", exclude_none=True)
    # the site's own record id (a digest key is recomputed from child, vaccine and date)
    if site is not None and r.record_key.startswith(site.code + ":"):
        res["identifier"] = [{"system": RECORD_SYSTEM,
                              "value": r.record_key[len(site.code) + 1:]}]
    if child is not None and actor is not None and actor.sees_identifiers:
        system = ID_SYSTEM if child.id_kind == "resident_id" else BIRTH_CERTIFICATE_SYSTEM
        res["patient"]["identifier"] = {"system": system, "value": child.id_number}
    if site is not None:
        res["location"] = {"identifier": {"system": SITE_SYSTEM, "value": site.code},
                           "display": site.name}
    if r.vaccinator:
        res["performer"] = [{"actor": {"display": r.vaccinator}}]
    if r.manufacturer:
        res["manufacturer"] = {"display": r.manufacturer}
    if r.route:
        res["route"] = {"coding": [{"code": r.route}]}
    if r.body_site:
        res["site"] = {"coding": [{"code": r.body_site}]}
    if r.aefi:
        res["reaction"] = [{"date": r.aefi["onset_on"], "reported": True,
                            "detail": {"display": r.aefi["symptoms"]}}]
    return res


def _child_id(reference: str) -> int:
    tail = reference.rsplit("/", 1)[-1]
    if not tail.startswith(CHILD) or not tail[len(CHILD):].isdigit():
        raise InputError.single("expected Patient/child-{id}", field="patient")
    return int(tail[len(CHILD):])


@router.get("/Patient/child-{child_id}", summary="A registered child as Patient")
def read_child(child_id: int, session: SessionDep, actor: ActorDep) -> JSONResponse:
    """Audited read."""
    return _guard(lambda: _json(child_patient(
        records.get_child(session, actor, child_id, purpose="FHIR Patient"), actor)))


@router.get("/Immunization/{record_id}", summary="A dose given")
def read_immunization(record_id: int, session: SessionDep, actor: ActorDep) -> JSONResponse:
    """Audited read of the child's record."""
    def run() -> JSONResponse:
        rec = session.get(ImmunizationRecord, record_id)
        if rec is None:
            raise NotFoundError(f"Immunization/{record_id}")
        c = records.get_child(session, actor, rec.child_id, purpose="FHIR Immunization")
        site = session.get(VaccinationSite, rec.site_id) if rec.site_id else None
        return JSONResponse(record_resource(rec, site, child=c, actor=actor),
                            media_type=FHIR_JSON)
    return _guard(run)


@router.get("/Immunization", summary="Doses of a child (searchset)")
def search_immunization(session: SessionDep, actor: ActorDep,
                        patient: str = Query(description="Patient/child-{id}")) -> JSONResponse:
    """Every dose of one child."""
    def run() -> JSONResponse:
        c = records.get_child(session, actor, _child_id(patient), purpose="FHIR search")
        sites = {s.id: s for s in session.scalars(select(VaccinationSite))}
        entries = [{"fullUrl": f"Immunization/{r.id}",
                    "resource": record_resource(r, sites.get(r.site_id), child=c,
                                                actor=actor),
                    "search": {"mode": "match"}}
                   for r in records.child_records(session, c.id)]
        bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "searchset",
                                        "total": len(entries), "entry": entries})
        return _json(bundle)
    return _guard(run)


@router.get("/ImmunizationRecommendation", summary="Forecast of a child")
def recommendation(session: SessionDep, actor: ActorDep,
                   patient: str = Query(description="Patient/child-{id}"),
                   date: dt.date | None = None) -> JSONResponse:
    """The schedule engine's next dose of every series on ``date`` (default today)."""
    def run() -> JSONResponse:
        child_id = _child_id(patient)
        _, result = records.child_forecast(session, actor, child_id,
                                           as_of=date or dt.date.today())
        return _json(recommendation_resource(result, patient_reference=f"Patient/{CHILD}"
                                             f"{child_id}"))
    return _guard(run)


@router.post("/Immunization/$upload", summary="Upload a Bundle of Immunization (atomic)")
async def upload_bundle(request: Request, session: SessionDep, actor: ActorDep,
                        settings: SettingsDep, site: str = Query()) -> JSONResponse:
    """All entries or none (422 OperationOutcome listing every bad entry); idempotent."""
    body = await request.body()

    def run() -> JSONResponse:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError.single(f"not JSON: {exc}", field="body") from exc
        if actor.role not in {"admin", "facility_staff", "village_doctor", "group_manager"}:
            raise NotFoundError("no upload right")
        out = upload.upload_bundle(session, actor, data, site_code=site,
                                   secret=settings.secret_key)
        return JSONResponse({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": json.dumps(out)}]}, media_type=FHIR_JSON)
    return _guard(run)
