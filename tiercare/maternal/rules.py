"""Working rules of maternal case management as versioned data (``data/case_rules_*.json``).

The 2017 specification fixes the steps (screening, grading within two weeks, management by
colour, 42-day postpartum assessment); the intervals, alert thresholds, escalation times,
delivery-level requirements, travel assumptions and PMTCT steps are local working rules that a
health commission changes. They are read from a JSON file with an effective date and validated
here; :func:`load_case_rules` picks the version in force on a date.

Examples
--------
>>> rules = load_case_rules()
>>> rules.grading_within_days, rules.delivery.max_travel_minutes
(14, 60.0)
>>> rules.is_high_risk("yellow", purple=True), rules.is_high_risk("red", purple=False)
(True, True)
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tiercare.errors import InputError, Problem

__all__ = ["CaseRules", "DeliveryRule", "DeliveryRules", "PmtctStep", "load_case_rules"]

FACILITY_LEVELS = ("village", "primary", "secondary", "tertiary")
COLOURS = ("green", "yellow", "orange", "red", "purple")


@dataclass(frozen=True)
class DeliveryRule:
    """Which facilities may take a delivery: level in ``levels``, offering every one of
    ``services`` and hosting every one of ``centres`` (e.g. ``critical_maternal``)."""

    levels: tuple[str, ...]
    services: tuple[str, ...]
    centres: tuple[str, ...]

    def accepts(self, *, level: str, services: list[str] | tuple[str, ...],
                centres: list[str] | tuple[str, ...]) -> bool:
        """Whether a facility with this level, services and centres qualifies."""
        return (level in self.levels and set(self.services) <= set(services or ())
                and set(self.centres) <= set(centres or ()))


@dataclass(frozen=True)
class DeliveryRules:
    """Where women of each colour should deliver and how travel time is estimated."""

    max_travel_minutes: float
    road_factor: float
    straight_line_speed_kmh: float
    by_colour: Mapping[str, DeliveryRule]
    fallback: Mapping[str, DeliveryRule]


@dataclass(frozen=True)
class PmtctStep:
    """One step of the prevention of mother-to-child transmission."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class CaseRules:
    """A validated version of the case-management rules (immutable).

    Attributes
    ----------
    version, effective_from, source:
        Identify the rules.
    grading_within_days:
        A positive screen must be graded within this many days.
    grading_facility_levels:
        Facility levels allowed to grade (secondary or higher).
    tertiary_level:
        The level whose assessment a red case needs.
    high_risk_colours, purple_is_high_risk:
        Which results open a high-risk case file.
    follow_up_interval_days:
        Days between planned follow-ups by colour (``purple`` used when no ranked colour has
        an interval).
    postpartum_visit_days, postpartum_assessment_day:
        Postpartum visits (days after delivery) and the day of the closing assessment.
    reminder_days_ahead:
        Follow-ups due within this many days are listed as reminders.
    missed_follow_up_grace_days, due_date_warning_days, red_tertiary_assessment_days,
    no_case_manager_days:
        Alert thresholds in days.
    escalate_after_hours:
        Hours without acknowledgement before an alert goes up one level, by colour
        (``default`` otherwise).
    escalation_levels:
        Who is alerted at each level.
    delivery:
        :class:`DeliveryRules`.
    pmtct_steps:
        Steps by infection code (``default`` for other infections).
    """

    version: str
    effective_from: dt.date
    source: str
    grading_within_days: int
    grading_facility_levels: tuple[str, ...]
    tertiary_level: str
    high_risk_colours: tuple[str, ...]
    purple_is_high_risk: bool
    follow_up_interval_days: Mapping[str, int]
    postpartum_visit_days: tuple[int, ...]
    postpartum_assessment_day: int
    reminder_days_ahead: int
    missed_follow_up_grace_days: int
    due_date_warning_days: int
    red_tertiary_assessment_days: int
    no_case_manager_days: int
    escalate_after_hours: Mapping[str, float]
    escalation_levels: tuple[str, ...]
    delivery: DeliveryRules
    pmtct_steps: Mapping[str, tuple[PmtctStep, ...]]

    def is_high_risk(self, colour: str, *, purple: bool) -> bool:
        """Whether a grade opens a high-risk case file (orange, red, or purple)."""
        return colour in self.high_risk_colours or (purple and self.purple_is_high_risk)

    def interval_days(self, colour: str, *, purple: bool) -> int | None:
        """Follow-up interval of a case (the shortest applicable), None when none applies."""
        needs = (colour, "purple") if purple else (colour,)
        options = [self.follow_up_interval_days[c] for c in needs
                   if c in self.follow_up_interval_days]
        return min(options) if options else None

    def escalation_hours(self, colour: str) -> float:
        """Hours before an unacknowledged alert on a case of this colour escalates."""
        return self.escalate_after_hours.get(colour, self.escalate_after_hours["default"])

    def steps_for(self, infections: list[str]) -> tuple[PmtctStep, ...]:
        """PMTCT steps for the purple criteria of a case (``default`` for others), once each."""
        steps: list[PmtctStep] = []
        for code in infections:
            for step in self.pmtct_steps.get(code, self.pmtct_steps["default"]):
                if step not in steps:
                    steps.append(step)
        return tuple(steps)


def _positive_int(doc: Mapping[str, Any], key: str, problems: list[Problem],
                  *, where: str = "") -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        problems.append(Problem(reason=f"must be a whole number ≥ 0, got {value!r}",
                                field=where + key, code="invalid_rules"))
        return 0
    return value


def _positive_number(doc: Mapping[str, Any], key: str, problems: list[Problem],
                     *, where: str = "") -> float:
    value = doc.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        problems.append(Problem(reason=f"must be a number > 0, got {value!r}",
                                field=where + key, code="invalid_rules"))
        return 1.0
    return float(value)


def _levels(raw: Any, field: str, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or any(x not in FACILITY_LEVELS for x in raw):
        problems.append(Problem(reason=f"must be a non-empty list of {FACILITY_LEVELS}",
                                field=field, code="invalid_rules"))
        return ()
    return tuple(raw)


def _delivery_rule(raw: Any, field: str, problems: list[Problem]) -> DeliveryRule:
    if not isinstance(raw, Mapping):
        problems.append(Problem(reason="must be an object", field=field, code="invalid_rules"))
        return DeliveryRule((), (), ())
    lists = {}
    for key in ("services", "centres"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            problems.append(Problem(reason="must be a list of codes", field=f"{field}.{key}",
                                    code="invalid_rules"))
            value = []
        lists[key] = tuple(value)
    return DeliveryRule(_levels(raw.get("levels"), f"{field}.levels", problems),
                        lists["services"], lists["centres"])


def _build(doc: Mapping[str, Any]) -> CaseRules:
    problems: list[Problem] = []
    try:
        effective = dt.date.fromisoformat(str(doc.get("effective_from")))
    except ValueError:
        problems.append(Problem(reason="must be a date YYYY-MM-DD", field="effective_from",
                                code="invalid_rules"))
        effective = dt.date.min
    alerts = doc.get("alerts") if isinstance(doc.get("alerts"), Mapping) else {}
    delivery = doc.get("delivery") if isinstance(doc.get("delivery"), Mapping) else {}
    if not alerts:
        problems.append(Problem(reason="missing", field="alerts", code="invalid_rules"))
    if not delivery:
        problems.append(Problem(reason="missing", field="delivery", code="invalid_rules"))
    intervals = doc.get("follow_up_interval_days")
    if not isinstance(intervals, Mapping) or any(
            c not in COLOURS or not isinstance(v, int) or v < 1 for c, v in intervals.items()):
        problems.append(Problem(reason="must map colours to whole numbers of days ≥ 1",
                                field="follow_up_interval_days", code="invalid_rules"))
        intervals = {}
    escalate = alerts.get("escalate_after_hours")
    if not isinstance(escalate, Mapping) or "default" not in escalate or any(
            not isinstance(v, int | float) or v <= 0 for v in escalate.values()):
        problems.append(Problem(reason="must map colours (and 'default') to hours > 0",
                                field="alerts.escalate_after_hours", code="invalid_rules"))
        escalate = {"default": 24.0}
    levels = alerts.get("escalation_levels")
    if not isinstance(levels, list) or not levels:
        problems.append(Problem(reason="must be a non-empty list", code="invalid_rules",
                                field="alerts.escalation_levels"))
        levels = ["case_manager_and_county_mch"]
    visits = doc.get("postpartum_visit_days")
    if not isinstance(visits, list) or any(not isinstance(v, int) or v < 0 for v in visits):
        problems.append(Problem(reason="must be a list of days ≥ 0", code="invalid_rules",
                                field="postpartum_visit_days"))
        visits = []
    by_colour_raw = delivery.get("by_colour", {})
    by_colour = {c: _delivery_rule(r, f"delivery.by_colour.{c}", problems)
                 for c, r in (by_colour_raw.items() if isinstance(by_colour_raw, Mapping)
                              else ())}
    missing = [c for c in COLOURS if c not in by_colour]
    if missing:
        problems.append(Problem(reason=f"no rule for {', '.join(missing)}",
                                field="delivery.by_colour", code="invalid_rules"))
    fallback_raw = delivery.get("fallback", {})
    fallback = {c: _delivery_rule(r, f"delivery.fallback.{c}", problems)
                for c, r in (fallback_raw.items() if isinstance(fallback_raw, Mapping) else ())}
    steps: dict[str, tuple[PmtctStep, ...]] = {}
    raw_steps = doc.get("pmtct_steps")
    if not isinstance(raw_steps, Mapping) or "default" not in raw_steps:
        problems.append(Problem(reason="must map infection codes (and 'default') to steps",
                                field="pmtct_steps", code="invalid_rules"))
        raw_steps = {"default": []}
    for code, items in raw_steps.items():
        parsed = []
        for i, item in enumerate(items if isinstance(items, list) else [None], start=1):
            if not isinstance(item, Mapping) or not all(
                    isinstance(item.get(k), str) and item.get(k) for k in ("code", "zh", "en")):
                problems.append(Problem(reason="a step needs code, zh and en",
                                        field=f"pmtct_steps.{code}", row=i,
                                        code="invalid_rules"))
                continue
            parsed.append(PmtctStep(item["code"], item["zh"], item["en"]))
        steps[code] = tuple(parsed)
    rules = CaseRules(
        version=str(doc.get("version", "")),
        effective_from=effective,
        source=str(doc.get("source", "")),
        grading_within_days=_positive_int(doc, "grading_within_days", problems),
        grading_facility_levels=_levels(doc.get("grading_facility_levels"),
                                        "grading_facility_levels", problems),
        tertiary_level=str(doc.get("tertiary_level", "tertiary")),
        high_risk_colours=tuple(doc.get("high_risk_colours") or ()),
        purple_is_high_risk=bool(doc.get("purple_is_high_risk", True)),
        follow_up_interval_days=MappingProxyType(dict(intervals)),
        postpartum_visit_days=tuple(visits),
        postpartum_assessment_day=_positive_int(doc, "postpartum_assessment_day", problems),
        reminder_days_ahead=_positive_int(doc, "reminder_days_ahead", problems),
        missed_follow_up_grace_days=_positive_int(alerts, "missed_follow_up_grace_days",
                                                  problems, where="alerts."),
        due_date_warning_days=_positive_int(alerts, "due_date_warning_days", problems,
                                            where="alerts."),
        red_tertiary_assessment_days=_positive_int(alerts, "red_tertiary_assessment_days",
                                                   problems, where="alerts."),
        no_case_manager_days=_positive_int(alerts, "no_case_manager_days", problems,
                                           where="alerts."),
        escalate_after_hours=MappingProxyType({k: float(v) for k, v in escalate.items()}),
        escalation_levels=tuple(str(x) for x in levels),
        delivery=DeliveryRules(
            max_travel_minutes=_positive_number(delivery, "max_travel_minutes", problems,
                                                where="delivery."),
            road_factor=_positive_number(delivery, "road_factor", problems, where="delivery."),
            straight_line_speed_kmh=_positive_number(delivery, "straight_line_speed_kmh",
                                                     problems, where="delivery."),
            by_colour=MappingProxyType(by_colour),
            fallback=MappingProxyType(fallback),
        ),
        pmtct_steps=MappingProxyType(steps),
    )
    if rules.delivery.road_factor < 1:
        problems.append(Problem(reason="a road is never shorter than the straight line (≥ 1)",
                                field="delivery.road_factor", code="invalid_rules"))
    if problems:
        raise InputError(problems)
    return rules


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(f"no such file: {path}", field="rules") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.single(f"cannot read {path.name}: {exc}", field="rules") from exc
    if not isinstance(document, dict):
        raise InputError.single(f"{path.name} must hold a JSON object", field="rules")
    return document


@functools.lru_cache(maxsize=16)
def _load_cached(path: str | None, on: dt.date) -> CaseRules:
    if path is not None:
        return _build(_read(Path(path)))
    folder = resources.files("tiercare.maternal") / "data"
    versions = [_build(_read(Path(str(entry)))) for entry in folder.iterdir()
                if entry.name.startswith("case_rules_") and entry.name.endswith(".json")]
    in_force = [r for r in versions if r.effective_from <= on]
    if not in_force:
        raise InputError.single(f"no case-management rules in force on {on.isoformat()}",
                                field="rules")
    return max(in_force, key=lambda r: r.effective_from)


def load_case_rules(path: str | Path | None = None, *, on: dt.date | None = None) -> CaseRules:
    """Load and validate the case-management rules.

    Parameters
    ----------
    path:
        A rules file (JSON); default the packaged version in force on ``on``.
    on:
        Reference date (default today).

    Returns
    -------
    CaseRules
        Cached and immutable.

    Raises
    ------
    InputError
        Listing every problem of the file.
    """
    day = on if on is not None else dt.date.today()
    return _load_cached(None if path is None else str(Path(path).resolve()), day)
