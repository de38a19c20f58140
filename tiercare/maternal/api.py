"""REST API of maternal safety under ``/api/v1/maternal`` and its FHIR read endpoints.

Resources: ``grade`` (stateless grading), ``pregnancies`` (registration with screening, the
file), ``assessments`` (grading history), ``cases`` (high-risk case management), ``follow-ups``,
``alerts`` (early warning), ``reports`` (to the county MCH institution) and
``where-to-deliver``. The clock of a request is the server's; administrators may pass ``at`` to
the alert run (tests, replays). FHIR: ``/fhir/EpisodeOfCare/{id}``, ``/fhir/RiskAssessment/{id}``,
``/fhir/Observation/{id}`` (the woman herself is ``/fhir/Patient/{id}`` of tiercare.fhir) and
``/fhir/EpisodeOfCare/{id}/$everything`` (a Bundle, whose Patient comes from
:func:`tiercare.maternal.fhir_case.patient`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from tiercare.db.base import utcnow
from tiercare.errors import NotFoundError
from tiercare.maternal import fhir_case, service
from tiercare.maternal.criteria import load_table
from tiercare.maternal.fhir import to_risk_assessment
from tiercare.maternal.grading import grade
from tiercare.maternal.models import MaternalAssessment
from tiercare.maternal.places import centre_catchments, planner_gaps
from tiercare.maternal.rules import load_case_rules
from tiercare.maternal.schemas import (
    AcknowledgeIn,
    BookingIn,
    DeliveryIn,
    FollowUpDoneIn,
    FollowUpIn,
    GradingIn,
    ManagerIn,
    PlanIn,
    PostpartumIn,
    PregnancyIn,
    StepIn,
    TertiaryAssessmentIn,
)
from tiercare.registry.schemas import Page
from tiercare.scenarios.service import network_covering
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/maternal", tags=["maternal"])
fhir_router = APIRouter(prefix="/fhir", tags=["fhir"])

FHIR_JSON = "application/fhir+json"


# _committed: write endpoints commit before they answer. The session dependency's own commit
# runs after the response has been sent, so a client's next request could otherwise miss the
# write; committing here keeps one transaction per request (the dependency's commit is then a
# no-op, and an exception still rolls everything back).


def _page(total: int, items: list[dict[str, Any]], offset: int, limit: int) -> Page:
    return Page(total=total, offset=offset, limit=limit, items=items)


def now_of(request: Request) -> dt.datetime:
    """The clock of a request: the server's, unless the app was given another one
    (``app.state.maternal_clock``, a callable returning an aware datetime — tests, replays)."""
    clock = getattr(request.app.state, "maternal_clock", None)
    return clock() if clock is not None else utcnow()


ClockDep = Annotated[dt.datetime, Depends(now_of)]


def _file(session: SessionDep, actor: ActorDep, pregnancy_id: int,
          now: dt.datetime) -> dict[str, Any]:
    p = service.get_pregnancy(session, actor, pregnancy_id, purpose="api read")
    return service.pregnancy_detail(session, actor, p, now=now)


# --------------------------------------------------------------------------- grading


@router.post("/grade", summary="Grade findings (stateless)",
             description="The grading engine on its own: nothing is stored. "
             "`format=fhir` answers a FHIR RiskAssessment.")
def grade_findings(now: ClockDep, findings: dict[str, Any], actor: ActorDep,
                   lang: Annotated[str, Query(description="zh-CN or en")] = "zh-CN",
                   format: Annotated[Literal["json", "fhir"], Query()] = "json",  # noqa: A002
                   ) -> Any:
    """``{"colour","purple","reasons","management"}`` or a RiskAssessment."""
    result = grade(findings, table=load_table(), language=lang)
    if format == "fhir":
        resource = to_risk_assessment(result, subject="Patient/unknown", occurred_at=now)
        return JSONResponse(resource.model_dump(mode="json", exclude_none=True),
                            media_type=FHIR_JSON)
    return result.to_dict()


# --------------------------------------------------------------------------- pregnancies


@router.post("/pregnancies", status_code=201, summary="Register a pregnancy (建册) with screening",
             description="At the first antenatal visit. A positive screen (non-green or purple) "
             "creates the task 'grade at a secondary-or-higher hospital within 14 days'. 409 "
             "`open_pregnancy_exists` when the woman already has an open file.")
def register(now: ClockDep, data: PregnancyIn, session: SessionDep, actor: ActorDep,
             settings: SettingsDep) -> dict[str, Any]:
    """The new file."""
    p = service.register_pregnancy(session, actor, data, secret=settings.secret_key, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return service.pregnancy_detail(session, actor, p, now=now)


@router.get("/pregnancies", response_model=Page, summary="List pregnancy files (masked)")
def list_pregnancies(
    session: SessionDep, actor: ActorDep,
    status_: Annotated[str | None, Query(alias="status",
                                         description="screened, awaiting_grading, graded, "
                                         "delivered, closed")] = None,
    colour: Annotated[str | None, Query(description="green … red, or purple")] = None,
    township: Annotated[str | None, Query(description="9-digit township code")] = None,
    high_risk: bool | None = None, mine: bool = False, open_only: bool = False,
    offset: Offset = 0, limit: Limit = 50,
) -> Page:
    """Files in scope, newest first; names and identity numbers masked."""
    total, items = service.list_pregnancies(
        session, actor, status=status_, colour=colour, township=township, high_risk=high_risk,
        managed_by_me=mine, open_only=open_only, offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.get("/pregnancies/{pregnancy_id}", summary="Read a pregnancy file (audited)")
def read_pregnancy(now: ClockDep, pregnancy_id: int, session: SessionDep,
                   actor: ActorDep) -> dict[str, Any]:
    """The whole file with history, follow-ups, reports, alerts and where to deliver."""
    return _file(session, actor, pregnancy_id, now)


@router.post("/pregnancies/{pregnancy_id}/assessments", status_code=201,
             summary="Grade or re-grade (secondary-or-higher hospital)",
             description="409 `grading_needs_hospital`, `case_closed`, `already_delivered`.")
def grade_pregnancy(now: ClockDep, pregnancy_id: int, data: GradingIn, session: SessionDep,
                    actor: ActorDep) -> dict[str, Any]:
    """The stored assessment (colour, reasons, management, previous colour)."""
    a = service.grade_pregnancy(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return service.assessment_dict(a)


@router.get("/pregnancies/{pregnancy_id}/assessments", response_model=Page,
            summary="Assessment history of a pregnancy")
def assessment_history(pregnancy_id: int, session: SessionDep, actor: ActorDep,
                       offset: Offset = 0, limit: Limit = 50) -> Page:
    """Screening, grading and postpartum assessments, oldest first (the read is audited)."""
    total, items = service.assessment_history(session, actor, pregnancy_id, offset=offset,
                                              limit=limit)
    return _page(total, items, offset, limit)


@router.get("/assessments/{assessment_id}", summary="Read one assessment")
def read_assessment(assessment_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """One assessment (the file read is audited)."""
    a = session.get(MaternalAssessment, assessment_id)
    if a is None:
        raise NotFoundError(f"assessment {assessment_id}")
    service.get_pregnancy(session, actor, a.pregnancy_id, purpose="assessment")
    return service.assessment_dict(a)


# --------------------------------------------------------------------------- cases


@router.get("/cases", response_model=Page, summary="High-risk case files",
            description="Orange, red and purple cases; `mine=true` for the caller's own.")
def list_cases(session: SessionDep, actor: ActorDep, mine: bool = False,
               colour: str | None = None, open_only: bool = True,
               offset: Offset = 0, limit: Limit = 50) -> Page:
    """High-risk files in scope."""
    total, items = service.list_pregnancies(session, actor, high_risk=True, colour=colour,
                                            managed_by_me=mine, open_only=open_only,
                                            offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.put("/cases/{pregnancy_id}/manager", summary="Name the case manager")
def set_manager(now: ClockDep, pregnancy_id: int, data: ManagerIn, session: SessionDep,
                actor: ActorDep) -> dict[str, Any]:
    """409 `not_high_risk` for a file without a high-risk case."""
    service.assign_case_manager(session, actor, pregnancy_id, data.username, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.put("/cases/{pregnancy_id}/plan",
            summary="Personalised plans agreed with the critical maternal care centre")
def set_plan(now: ClockDep, pregnancy_id: int, data: PlanIn, session: SessionDep,
             actor: ActorDep) -> dict[str, Any]:
    """Management, treatment and emergency plans; the centre must be a critical maternal
    care centre."""
    service.record_plan(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.put("/cases/{pregnancy_id}/tertiary-assessment",
            summary="Record the tertiary hospital's assessment of a red case")
def set_tertiary(now: ClockDep, pregnancy_id: int, data: TertiaryAssessmentIn, session: SessionDep,
                 actor: ActorDep) -> dict[str, Any]:
    """Whether to continue the pregnancy."""
    service.record_tertiary_assessment(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.put("/pregnancies/{pregnancy_id}/delivery-booking",
            summary="Book the delivery facility (must be of the required level)")
def set_booking(now: ClockDep, pregnancy_id: int, data: BookingIn, session: SessionDep,
                actor: ActorDep) -> dict[str, Any]:
    """409 `facility_level_insufficient` when below the colour's requirement."""
    service.book_delivery(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.post("/cases/{pregnancy_id}/pmtct/{step}",
             summary="Mark a step of the prevention of mother-to-child transmission done")
def pmtct_step(now: ClockDep, pregnancy_id: int, step: str, data: StepIn, session: SessionDep,
               actor: ActorDep) -> dict[str, Any]:
    """Purple cases only (422 names an unknown step)."""
    service.complete_pmtct_step(session, actor, pregnancy_id, step, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.post("/pregnancies/{pregnancy_id}/delivery", summary="Record the delivery outcome")
def delivery(now: ClockDep, pregnancy_id: int, data: DeliveryIn, session: SessionDep,
             actor: ActorDep) -> dict[str, Any]:
    """Plans the postpartum visits; 409 `already_delivered`, `case_closed`."""
    service.record_delivery(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.post("/pregnancies/{pregnancy_id}/postpartum",
             summary="42-day postpartum assessment (closes the file)",
             description="A red case not yet stable stays open. 409 `not_delivered`, "
             "`too_early`.")
def postpartum(now: ClockDep, pregnancy_id: int, data: PostpartumIn, session: SessionDep,
               actor: ActorDep) -> dict[str, Any]:
    """The file after the assessment."""
    service.record_postpartum(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return _file(session, actor, pregnancy_id, now)


@router.get("/pregnancies/{pregnancy_id}/where-to-deliver",
            summary="Nearest facility of the required level")
def where(pregnancy_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """By travel time on the stored road network covering the woman's village, or by
    straight-line distance × road factor when none is stored (``method`` says which)."""
    from tiercare.maternal.places import where_to_deliver

    p = service.get_pregnancy(session, actor, pregnancy_id, purpose="where to deliver")
    return where_to_deliver(session, p, rules=load_case_rules(),
                            network=network_covering(session, p.village_code))


# --------------------------------------------------------------------------- follow-ups


@router.get("/follow-ups", response_model=Page, summary="Open follow-ups and reminders")
def follow_ups(now: ClockDep, session: SessionDep, actor: ActorDep,
               due_within_days: Annotated[int | None, Query(ge=0, le=365)] = None,
               overdue: bool = False, mine: bool = False,
               offset: Offset = 0, limit: Limit = 50) -> Page:
    """Open follow-ups in scope, soonest first."""
    total, items = service.list_follow_ups(session, actor, now=now,
                                           due_within_days=due_within_days, overdue=overdue,
                                           managed_by_me=mine, offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.post("/pregnancies/{pregnancy_id}/follow-ups", status_code=201,
             summary="Plan an extra follow-up")
def add_follow_up(now: ClockDep, pregnancy_id: int, data: FollowUpIn, session: SessionDep,
                  actor: ActorDep) -> dict[str, Any]:
    """The new follow-up."""
    f = service.add_follow_up(session, actor, pregnancy_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return service.follow_up_dict(f)


@router.post("/follow-ups/{follow_up_id}/done", summary="Record a follow-up as done")
def follow_up_done(now: ClockDep, follow_up_id: int, data: FollowUpDoneIn, session: SessionDep,
                   actor: ActorDep) -> dict[str, Any]:
    """409 `follow_up_not_open` when already done or cancelled."""
    f = service.complete_follow_up(session, actor, follow_up_id, data, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return service.follow_up_dict(f)


# --------------------------------------------------------------------------- alerts, reports


@router.get("/alerts", response_model=Page, summary="Early-warning alerts")
def alerts(session: SessionDep, actor: ActorDep, open_only: bool = True, mine: bool = False,
           kind: str | None = None, min_level: Annotated[int | None, Query(ge=0)] = None,
           offset: Offset = 0, limit: Limit = 50) -> Page:
    """Most escalated first."""
    total, items = service.list_alerts(session, actor, open_only=open_only,
                                       managed_by_me=mine, kind=kind, min_level=min_level,
                                       offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert")
def acknowledge(now: ClockDep, alert_id: int, data: AcknowledgeIn, session: SessionDep,
                actor: ActorDep) -> dict[str, Any]:
    """Stops the escalation; 409 `already_acknowledged`, `alert_resolved`."""
    a = service.acknowledge_alert(session, actor, alert_id, note=data.note, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return service.alert_dict(a)


@router.post("/alerts/run", summary="Evaluate the early-warning rules now",
             description="Raises, resolves and escalates alerts in the caller's scope. Normally "
             "run by a scheduler; `at` (administrators only) evaluates at another instant.")
def run_alerts(now: ClockDep, session: SessionDep, actor: ActorDep,
               at: Annotated[dt.datetime | None, Query(description="ISO instant")] = None
               ) -> dict[str, int]:
    """Counts raised / resolved / escalated / open."""
    if at is not None and actor.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only administrators may set the clock")
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    counts = service.generate_alerts(session, now=at or now,
                                     prefix=service.scope_prefix(session, actor))
    session.commit()  # visible to the client's next request (see _committed)
    return counts


@router.get("/reports", response_model=Page,
            summary="What was reported to the county MCH institution, and when")
def reports(session: SessionDep, actor: ActorDep, event: str | None = None,
            unreceived: bool = False, offset: Offset = 0, limit: Limit = 50) -> Page:
    """Newest first."""
    total, items = service.list_reports(session, actor, event=event, unreceived=unreceived,
                                        offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.post("/reports/{report_id}/receive", summary="Confirm receipt of a report")
def receive(now: ClockDep, report_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """409 `already_received`."""
    x = service.receive_report(session, actor, report_id, now=now)
    session.commit()  # visible to the client's next request (see _committed)
    return service.report_dict(x)


@router.get("/overview", summary="Open files by township and colour")
def overview(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """For the county MCH institution."""
    return service.county_overview(session, actor)


@router.get("/where-to-deliver", summary="Villages beyond reach of the required level",
            description="For planners: villages whose nearest facility of a colour's required "
            "level is beyond `max_travel_minutes` (case rules), and the critical maternal care "
            "centres' catchments; travel times on the stored road network covering your area, "
            "else straight-line estimates (`method`).")
def gaps(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """``{"limit_minutes", "villages": [...], "catchments": {...}}``."""
    rules = load_case_rules()
    prefix = service.scope_prefix(session, actor)
    network = network_covering(session, prefix)
    return {"limit_minutes": rules.delivery.max_travel_minutes,
            "method": "network" if network is not None else "straight_line",
            "villages": planner_gaps(session, prefix=prefix, rules=rules, network=network),
            "catchments": centre_catchments(session, prefix=prefix, rules=rules,
                                            network=network)}


# --------------------------------------------------------------------------- FHIR


def _fhir(resource: Any) -> JSONResponse:
    return JSONResponse(resource.model_dump(mode="json", exclude_none=True),
                        media_type=FHIR_JSON)


@fhir_router.get("/EpisodeOfCare/{pregnancy_id}", summary="A pregnancy file as EpisodeOfCare")
def fhir_episode(pregnancy_id: int, session: SessionDep, actor: ActorDep) -> JSONResponse:
    """FHIR R4 EpisodeOfCare."""
    p = service.get_pregnancy(session, actor, pregnancy_id, purpose="fhir")
    return _fhir(fhir_case.episode_of_care(session, p))


@fhir_router.get("/EpisodeOfCare/{pregnancy_id}/$everything",
                 summary="The file as a Bundle (Patient, EpisodeOfCare, RiskAssessment, "
                 "Observation)")
def fhir_everything(pregnancy_id: int, session: SessionDep, actor: ActorDep) -> JSONResponse:
    """A searchset Bundle."""
    p = service.get_pregnancy(session, actor, pregnancy_id, purpose="fhir")
    return _fhir(fhir_case.everything(session, p, actor=actor))


@fhir_router.get("/RiskAssessment/{assessment_id}", summary="An assessment as RiskAssessment")
def fhir_risk(assessment_id: int, session: SessionDep, actor: ActorDep) -> JSONResponse:
    """FHIR R4 RiskAssessment."""
    a = session.get(MaternalAssessment, assessment_id)
    if a is None:
        raise NotFoundError(f"RiskAssessment {assessment_id}")
    service.get_pregnancy(session, actor, a.pregnancy_id, purpose="fhir")
    return _fhir(fhir_case.risk_assessment(session, a))


@fhir_router.get("/Observation/{observation_id}", summary="One finding as Observation",
                 description="Ids are `mat-<assessment>-<field>` (e.g. `mat-12-hb-g-l`).")
def fhir_observation(observation_id: str, session: SessionDep, actor: ActorDep) -> JSONResponse:
    """FHIR R4 Observation."""
    assessment_id, field = fhir_case.parse_observation_id(observation_id)
    a = session.get(MaternalAssessment, assessment_id)
    if a is None:
        raise NotFoundError(f"Observation {observation_id}")
    service.get_pregnancy(session, actor, a.pregnancy_id, purpose="fhir")
    observations = {o.id: o for o in fhir_case.observations(a)}
    if observation_id not in observations:
        raise NotFoundError(f"Observation {observation_id} ({field})")
    return _fhir(observations[observation_id])

