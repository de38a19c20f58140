"""FHIR R4 (R4B models, R4-compatible) mapping of maternal case management.

==================  =================================================================
TierCare            FHIR
==================  =================================================================
resident (woman)    ``Patient`` (id = resident id; identity number masked unless the
                    caller may see identifiers; address = 12-digit village code)
pregnancy file      ``EpisodeOfCare`` (id = pregnancy id): ``status`` active / finished,
                    ``type`` pregnancy (+ high-risk-pregnancy with the colour),
                    ``careManager`` the named case manager, ``period`` registration →
                    closure, ``managingOrganization`` the registering facility
assessment          ``RiskAssessment`` (id = assessment id) built by
                    :func:`tiercare.maternal.fhir.to_risk_assessment`, ``basis`` → the
                    assessment's Observations
finding             ``Observation`` (id ``mat-<assessment>-<field>``): numeric fields as
                    ``valueQuantity``, asserted conditions as ``valueBoolean`` true
==================  =================================================================

Code systems are TierCare's own (:data:`tiercare.maternal.fhir.CODE_SYSTEM_BASE`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.riskassessment import RiskAssessment
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import Actor, audit
from tiercare.errors import InputError, NotFoundError
from tiercare.maternal.criteria import load_table
from tiercare.maternal.fhir import CODE_SYSTEM_BASE, CRITERION_SYSTEM, to_risk_assessment
from tiercare.maternal.grading import GradeResult, ManagementAction, Reason
from tiercare.maternal.models import MaternalAssessment, Pregnancy
from tiercare.registry.models import Facility
from tiercare.residents.models import Resident

__all__ = ["episode_of_care", "everything", "observations", "parse_observation_id", "patient",
           "risk_assessment"]

RESIDENT_ID_SYSTEM = f"{CODE_SYSTEM_BASE}/resident-identity-number"
EPISODE_TYPE_SYSTEM = f"{CODE_SYSTEM_BASE}/maternal-episode-type"
FINDING_SYSTEM = f"{CODE_SYSTEM_BASE}/maternal-finding"
FACILITY_SYSTEM = f"{CODE_SYSTEM_BASE}/facility-code"
UCUM = "http://unitsofmeasure.org"
_UCUM_UNITS = {"years": "a", "kg/m2": "kg/m2", "cm": "cm", "kg": "kg", "g/L": "g/L",
               "10^9/L": "10*9/L", "mmHg": "mm[Hg]", "%": "%"}
_OBSERVATION_ID = re.compile(r"^mat-(\d+)-[a-z0-9-]+$")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def patient(session: Session, resident_id: int, *, actor: Actor) -> Patient:
    """The woman as a FHIR ``Patient`` (the read is audited)."""
    r = session.get(Resident, resident_id)
    if r is None:
        raise NotFoundError(f"Patient {resident_id}")
    audit(session, actor, "read", "resident", str(r.id), detail="fhir Patient")
    see = actor.sees_identifiers
    return Patient.model_validate({
        "resourceType": "Patient", "id": str(r.id), "active": r.active,
        "identifier": [{"system": RESIDENT_ID_SYSTEM,
                        "value": r.id_number if see else r.id_masked}],
        "name": [{"text": r.name if see else r.name[:1] + "**"}],
        "gender": "female" if r.sex == "F" else "male",
        "birthDate": r.birth_date.isoformat() if see else None,
        "address": [{"district": r.village_code[:6],
                     "text": r.village_code}],
    })


def episode_of_care(session: Session, p: Pregnancy) -> EpisodeOfCare:
    """The pregnancy file as a FHIR ``EpisodeOfCare``."""
    types: list[dict[str, Any]] = [{"coding": [{"system": EPISODE_TYPE_SYSTEM,
                                                "code": "pregnancy"}], "text": "pregnancy"}]
    if p.high_risk:
        types.append({"coding": [{"system": EPISODE_TYPE_SYSTEM,
                                  "code": "high-risk-pregnancy"}],
                      "text": f"high-risk pregnancy ({p.colour}"
                              + (", purple" if p.purple else "") + ")"})
    period: dict[str, Any] = {"start": p.registered_on.isoformat()}
    if p.closed_at is not None:
        period["end"] = _aware(p.closed_at).isoformat()
    doc: dict[str, Any] = {
        "resourceType": "EpisodeOfCare", "id": str(p.id),
        "status": "finished" if p.status == "closed" else (
            "waitlist" if p.status == "awaiting_grading" else "active"),
        "type": types,
        "patient": {"reference": f"Patient/{p.resident_id}"},
        "period": period,
    }
    if p.registered_facility_id is not None:
        facility = session.get(Facility, p.registered_facility_id)
        if facility is not None:
            doc["managingOrganization"] = {
                "identifier": {"system": FACILITY_SYSTEM, "value": facility.code},
                "display": facility.name}
    if p.case_manager_user_id is not None:
        user = session.get(User, p.case_manager_user_id)
        if user is not None:
            doc["careManager"] = {"display": user.full_name or user.username}
    return EpisodeOfCare.model_validate(doc)


def parse_observation_id(observation_id: str) -> tuple[int, str]:
    """``mat-<assessment>-<field>`` → ``(assessment id, field part)``.

    Raises
    ------
    NotFoundError
        For an id not of that form.
    """
    match = _OBSERVATION_ID.match(observation_id)
    if match is None:
        raise NotFoundError(f"Observation {observation_id}")
    return int(match.group(1)), observation_id[len(f"mat-{match.group(1)}-"):]


def _slug(text: str) -> str:
    return text.replace("_", "-").lower()


def observations(a: MaternalAssessment, *, resident_id: int | None = None
                 ) -> list[Observation]:
    """The findings of an assessment as FHIR ``Observation`` resources."""
    table = load_table()
    subject = {"reference": f"Patient/{resident_id}"} if resident_id is not None else None
    when = _aware(a.at).isoformat()
    out: list[Observation] = []
    for name, value in sorted(a.findings.items()):
        if name == "conditions" or value is None:
            continue
        spec = table.fields.get(name)
        unit = spec.unit if spec else ""
        quantity: dict[str, Any] = {"value": value, "unit": unit}
        if unit in _UCUM_UNITS:
            quantity.update({"system": UCUM, "code": _UCUM_UNITS[unit]})
        doc: dict[str, Any] = {
            "resourceType": "Observation", "id": f"mat-{a.id}-{_slug(name)}",
            "status": "final",
            "code": {"coding": [{"system": FINDING_SYSTEM, "code": name,
                                 "display": spec.en if spec else name}]},
            "effectiveDateTime": when, "valueQuantity": quantity,
        }
        if subject:
            doc["subject"] = subject
        out.append(Observation.model_validate(doc))
    for code in a.findings.get("conditions") or []:
        criterion = table.by_code.get(code)
        doc = {
            "resourceType": "Observation", "id": f"mat-{a.id}-cond-{_slug(code)}",
            "status": "final",
            "code": {"coding": [{"system": CRITERION_SYSTEM, "code": code,
                                 "display": criterion.en if criterion else code}]},
            "effectiveDateTime": when, "valueBoolean": True,
        }
        if subject:
            doc["subject"] = subject
        out.append(Observation.model_validate(doc))
    return out


def risk_assessment(session: Session, a: MaternalAssessment) -> RiskAssessment:
    """A stored assessment as a FHIR ``RiskAssessment`` with its Observations as basis."""
    p = session.get(Pregnancy, a.pregnancy_id)
    if p is None:
        raise NotFoundError(f"pregnancy {a.pregnancy_id}")
    result = GradeResult(
        colour=a.colour, purple=a.purple,
        reasons=tuple(Reason(r["code"], r["colour"], r["text"]) for r in a.reasons),
        management=tuple(ManagementAction(m["code"], m["colour"], m["text"])
                         for m in a.management),
        table_family=a.table_family, table_version=a.table_version, language="zh-CN")
    base = to_risk_assessment(result, subject=f"Patient/{p.resident_id}",
                              occurred_at=_aware(a.at), resource_id=str(a.id))
    doc = base.model_dump(mode="json", exclude_none=True)
    basis = [{"reference": f"Observation/{o.id}"} for o in observations(a)]
    if basis:
        doc["basis"] = basis
    doc["note"] = [{"text": f"{a.kind} at {a.on_date.isoformat()} by {a.username}"}]
    try:
        return RiskAssessment.model_validate(doc)
    except ValueError as exc:
        raise InputError.single(f"RiskAssessment does not validate: {exc}",
                                field="risk_assessment") from exc


def everything(session: Session, p: Pregnancy, *, actor: Actor) -> Bundle:
    """Patient, EpisodeOfCare, every RiskAssessment and Observation of a file as a Bundle."""
    resources: list[Any] = [patient(session, p.resident_id, actor=actor),
                            episode_of_care(session, p)]
    for a in session.scalars(select(MaternalAssessment).where(
            MaternalAssessment.pregnancy_id == p.id).order_by(MaternalAssessment.at,
                                                              MaternalAssessment.id)):
        resources.append(risk_assessment(session, a))
        resources.extend(observations(a, resident_id=p.resident_id))
    return Bundle.model_validate({
        "resourceType": "Bundle", "type": "searchset", "total": len(resources),
        "entry": [{"fullUrl": f"{r.get_resource_type()}/{r.id}",
                   "resource": r.model_dump(mode="json", exclude_none=True),
                   "search": {"mode": "match"}} for r in resources],
    })
