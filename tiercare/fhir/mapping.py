"""Map TierCare objects to FHIR resources, validated with ``fhir.resources``.

``fhir.resources`` 8 implements FHIR R5 (5.0.0) in its top-level package; TierCare uses its
``fhir.resources.R4B`` subpackage (FHIR 4.3.0, the R4 line), as the Chinese interoperability
specifications and most partner systems speak R4. Every function returns a validated model;
``.model_dump(mode="json", exclude_none=True)`` gives the JSON.

Code systems TierCare defines itself are URNs under ``urn:tiercare:`` (no external terminology
server is assumed in an isolated network).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.schedule import Schedule as FhirSchedule
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.slot import Slot as FhirSlot
from fhir.resources.R4B.task import Task

from tiercare.auth.service import Actor
from tiercare.referral.models import Referral
from tiercare.registry.models import Facility, StaffMember
from tiercare.residents.models import Resident
from tiercare.scheduling.models import Appointment, Schedule, Slot
from tiercare.scheduling.service import as_utc

FHIR_VERSION = "4.3.0"
ID_SYSTEM = "urn:tiercare:identifier:cn-resident-id"
FACILITY_SYSTEM = "urn:tiercare:identifier:facility-code"
STAFF_SYSTEM = "urn:tiercare:identifier:staff-code"
FACILITY_TYPE_SYSTEM = "urn:tiercare:codesystem:facility-type"
POOL_SYSTEM = "urn:tiercare:codesystem:slot-pool"
DIRECTION_SYSTEM = "urn:tiercare:codesystem:referral-direction"
CRITERIA_SYSTEM = "urn:tiercare:codesystem:referral-criteria"
STATUS_SYSTEM = "urn:tiercare:codesystem:referral-status"
DIVISION_SYSTEM = "urn:tiercare:codesystem:division-code"

APPOINTMENT_STATUS = {"booked": "booked", "checked_in": "arrived", "seen": "fulfilled",
                      "cancelled": "cancelled", "no_show": "noshow"}
SERVICE_REQUEST_STATUS = {"requested": "active", "accepted": "active", "scheduled": "active",
                          "arrived": "active", "completed": "completed",
                          "declined": "revoked", "cancelled": "revoked", "expired": "revoked"}
TASK_STATUS = {"requested": "requested", "accepted": "accepted", "scheduled": "accepted",
               "arrived": "in-progress", "completed": "completed", "declined": "rejected",
               "cancelled": "cancelled", "expired": "failed"}
PRIORITY = {"emergency": "stat", "urgent": "urgent", "routine": "routine"}


def _ts(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _ref(kind: str, ident: int | str | None) -> dict[str, str] | None:
    return {"reference": f"{kind}/{ident}"} if ident is not None else None


def patient(r: Resident, actor: Actor, *, facility: Facility | None = None) -> Patient:
    """A resident as Patient (identity number masked unless the actor may see it)."""
    number = r.id_number if actor.sees_identifiers else r.id_masked
    data: dict[str, Any] = {
        "resourceType": "Patient", "id": str(r.id), "active": r.active,
        "identifier": [{"use": "official", "system": ID_SYSTEM, "value": number}],
        "name": [{"use": "official", "text": r.name}],
        "gender": {"M": "male", "F": "female"}.get(r.sex, "unknown"),
        "birthDate": r.birth_date.isoformat(),
        "address": [{"use": "home", "district": r.village_code}],
    }
    if r.phone and actor.sees_identifiers:
        data["telecom"] = [{"system": "phone", "value": r.phone, "use": "mobile"}]
    if facility is not None:
        data["generalPractitioner"] = [{"reference": f"Organization/{facility.id}",
                                        "display": facility.name}]
    if r.merged_into_id is not None:
        data["link"] = [{"other": {"reference": f"Patient/{r.merged_into_id}"},
                         "type": "replaced-by"}]
    return Patient.model_validate(data)


def organization(f: Facility) -> Organization:
    """A facility as Organization."""
    data: dict[str, Any] = {
        "resourceType": "Organization", "id": str(f.id), "active": f.closed_on is None,
        "identifier": [{"system": FACILITY_SYSTEM, "value": f.code}], "name": f.name,
        "type": [{"coding": [{"system": FACILITY_TYPE_SYSTEM, "code": f.type_code}],
                  "text": f.level}],
    }
    if f.address:
        data["address"] = [{"text": f.address}]
    if f.parent_facility_id is not None:
        data["partOf"] = _ref("Organization", f.parent_facility_id)
    return Organization.model_validate(data)


def location(f: Facility) -> Location:
    """A facility's site as Location (WGS84 position)."""
    data: dict[str, Any] = {
        "resourceType": "Location", "id": str(f.id),
        "status": "inactive" if f.closed_on is not None else "active", "name": f.name,
        "identifier": [{"system": FACILITY_SYSTEM, "value": f.code}], "mode": "instance",
        "managingOrganization": _ref("Organization", f.id),
        "address": {"text": f.address or f.name, "district": f.division_prefix},
    }
    if f.lon is not None and f.lat is not None:
        data["position"] = {"longitude": f.lon, "latitude": f.lat}
    return Location.model_validate(data)


def practitioner(s: StaffMember) -> Practitioner:
    """A named member of staff as Practitioner."""
    data: dict[str, Any] = {
        "resourceType": "Practitioner", "id": str(s.id), "active": s.active,
        "identifier": [{"system": STAFF_SYSTEM, "value": s.code}], "name": [{"text": s.name}],
    }
    if s.sex in ("M", "F"):
        data["gender"] = "male" if s.sex == "M" else "female"
    if s.qualification:
        data["qualification"] = [{"code": {"text": s.qualification}}]
    return Practitioner.model_validate(data)


def healthcare_service(s: Schedule) -> HealthcareService:
    """A schedule's clinic (facility + department) as HealthcareService."""
    return HealthcareService.model_validate({
        "resourceType": "HealthcareService", "id": str(s.id), "active": s.active,
        "providedBy": _ref("Organization", s.facility_id), "name": f"{s.department} · {s.name}",
        "specialty": [{"text": s.department}], "location": [_ref("Location", s.facility_id)],
        "appointmentRequired": True,
        "comment": f"{round(s.referral_share * 100)} % of places reserved for referrals, "
                   f"released {s.referral_release_days} days ahead",
    })


def schedule(s: Schedule) -> FhirSchedule:
    """A schedule as Schedule (actors: the site, the clinician when named)."""
    actors = [_ref("Location", s.facility_id), _ref("HealthcareService", s.id)]
    if s.clinician_id is not None:
        actors.append(_ref("Practitioner", s.clinician_id))
    horizon: dict[str, str] = {"start": s.effective_from.isoformat()}
    if s.effective_to:
        horizon["end"] = s.effective_to.isoformat()
    return FhirSchedule.model_validate({
        "resourceType": "Schedule", "id": str(s.id), "active": s.active,
        "serviceType": [{"text": s.department}], "actor": actors, "planningHorizon": horizon,
        "comment": s.name,
    })


def slots(s: Slot, *, now: datetime | None = None) -> list[FhirSlot]:
    """One TierCare slot as one FHIR Slot per pool: ``<id>-g`` general, ``<id>-r`` reserved.

    A FHIR Slot has one status, so the reserved referral places are a Slot of their own with
    the pool as ``serviceType`` (DOMAIN.md §3). A pool without places (a slot wholly reserved,
    before its reserved places return) has no Slot.
    """
    now = as_utc(now or datetime.now(UTC))
    returned = as_utc(s.quota_returns_at) <= now
    free_total = s.capacity - s.booked
    general_free = min(free_total, (s.capacity if returned else s.capacity - s.referral_capacity)
                       - (s.booked if returned else s.booked - s.referral_booked))
    general_places = s.capacity if returned else s.capacity - s.referral_capacity
    pools = [("g", "general", general_free, general_places)] if general_places else []
    if s.referral_capacity:
        pools.append(("r", "referral", min(free_total, s.referral_capacity - s.referral_booked),
                      s.referral_capacity))
    out = []
    for suffix, pool, free, places in pools:
        out.append(FhirSlot.model_validate({
            "resourceType": "Slot", "id": f"{s.id}-{suffix}",
            "schedule": _ref("Schedule", s.schedule_id),
            "serviceType": [{"coding": [{"system": POOL_SYSTEM, "code": pool}]}],
            "specialty": [{"text": s.department}],
            "status": "free" if free > 0 and s.status == "open" else "busy",
            "start": _ts(s.start), "end": _ts(s.end), "overbooked": False,
            "comment": f"{max(free, 0)} of {places} places free",
        }))
    return out


def appointment(a: Appointment, *, slot: Slot) -> FhirAppointment:
    """An appointment as Appointment."""
    data: dict[str, Any] = {
        "resourceType": "Appointment", "id": str(a.id),
        "status": APPOINTMENT_STATUS[a.status], "start": _ts(a.start), "end": _ts(a.end),
        "minutesDuration": max(1, round((as_utc(a.end) - as_utc(a.start)).total_seconds() / 60)),
        "slot": [_ref("Slot", f"{a.slot_id}-{'r' if a.pool == 'referral' else 'g'}")],
        "serviceType": [{"coding": [{"system": POOL_SYSTEM, "code": a.pool}]}],
        "specialty": [{"text": a.department}], "created": _ts(a.booked_at),
        "participant": [
            {"actor": _ref("Patient", a.resident_id), "status": "accepted", "required":
             "required"},
            {"actor": _ref("Location", a.facility_id), "status": "accepted"},
        ],
    }
    if a.referral_id is not None:
        data["basedOn"] = [_ref("ServiceRequest", a.referral_id)]
    if a.cancel_reason:
        data["cancelationReason"] = {"text": a.cancel_reason}
    if slot.clinician_id is not None:
        data["participant"].append({"actor": _ref("Practitioner", slot.clinician_id),
                                    "status": "accepted"})
    return FhirAppointment.model_validate(data)


def service_request(r: Referral) -> ServiceRequest:
    """A referral as ServiceRequest (the order; its fulfilment is the :func:`task`)."""
    data: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": str(r.id),
        "identifier": [{"system": "urn:tiercare:identifier:referral", "value": r.number}],
        "status": SERVICE_REQUEST_STATUS[r.status], "intent": "order",
        "priority": PRIORITY[r.urgency],
        "category": [{"coding": [{"system": DIRECTION_SYSTEM, "code": r.direction}]}],
        "code": {"text": r.service or r.department or "referral"},
        "subject": _ref("Patient", r.resident_id), "authoredOn": _ts(r.requested_at),
        "requester": _ref("Organization", r.from_facility_id),
        "performer": [_ref("Organization", r.to_facility_id)],
        "reasonCode": [{"text": r.reason}] + [
            {"coding": [{"system": CRITERIA_SYSTEM, "code": c, "version": r.criteria_version}]}
            for c in r.criteria],
    }
    notes = [n for n in (r.summary, (r.follow_up_plan or {}).get("instructions")) if n]
    if notes:
        data["note"] = [{"text": n} for n in notes]
    if r.parent_id is not None:
        data["basedOn"] = [_ref("ServiceRequest", r.parent_id)]
    return ServiceRequest.model_validate(data)


def task(r: Referral) -> Task:
    """The fulfilment of a referral as Task (TierCare's own status as ``businessStatus``)."""
    data: dict[str, Any] = {
        "resourceType": "Task", "id": str(r.id), "status": TASK_STATUS[r.status],
        "businessStatus": {"coding": [{"system": STATUS_SYSTEM, "code": r.status}]},
        "intent": "order", "priority": PRIORITY[r.urgency],
        "focus": _ref("ServiceRequest", r.id), "for": _ref("Patient", r.resident_id),
        "authoredOn": _ts(r.requested_at),
        "lastModified": _ts(r.updated_at or r.requested_at),
        "requester": _ref("Organization", r.from_facility_id),
        "owner": _ref("Organization", r.to_facility_id),
        "restriction": {"period": {"end": _ts(r.acknowledge_by)}},
    }
    if r.decline_reason:
        data["statusReason"] = {"text": r.decline_reason}
    if r.appointment_id is not None:
        data["output"] = [{"type": {"text": "appointment"},
                           "valueReference": _ref("Appointment", r.appointment_id)}]
    return Task.model_validate(data)
