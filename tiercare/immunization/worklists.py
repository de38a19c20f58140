"""Work lists (due and overdue doses) and coverage, computed for a whole population at once.

Both load the children in scope and their records as flat arrays (:func:`load_population`) and
run the vectorised engine :func:`~tiercare.immunization.batch.forecast_batch` once.

*Work list* for a period ``[start, end]``: the forecast as of ``start`` (records after ``start``
left out); a line per child and series whose status is ``due`` or ``overdue``, or ``upcoming``
with ``earliest ≤ end``.

*Coverage* on an as-of date, by division (township or village), birth cohort (year), vaccine
series and dose ``k`` (the series' default regimen):

* ``eligible`` = children of the cohort registered in the division whose age on the as-of date
  has reached the minimum age of dose ``k``; ``vaccinated`` = those of them with a *valid* dose
  ``k`` (doses the engine rejects do not count); ``coverage = vaccinated / eligible``.
* *timeliness* for doses with a "complete before" age ``a``: ``timely_eligible`` = children aged
  at least ``a``; ``timely`` = those whose valid dose ``k`` was given before ``birth + a``;
  ``timeliness = timely / timely_eligible``.
* *alternatives* (series sharing an ``alternatives`` group in the schedule data, e.g. JE-L and
  JE-I as ``JE``, HepA-L and HepA-I as ``HepA``) are one series for coverage: rows named after
  the group judge each child by the series it follows — the product given first, else the
  preferred one, as the engine decides — so ``JE`` dose 1 counts a child whichever product it
  got, and dose ``k`` uses the chosen series' dose ``k`` (its minimum age, its "complete
  before" age; children whose series has fewer than ``k`` doses are not eligible for dose
  ``k``). The rows of each product stay: children of the cohort given that product's dose.

Monitoring targets (share by series-dose, a default, the near-expiry and stock-cover days) are
versioned data in ``data/coverage-targets.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.errors import InputError
from tiercare.immunization.batch import (
    NO_DATE,
    BatchForecast,
    Population,
    category_code,
    encode_vaccines,
    forecast_batch,
)
from tiercare.immunization.common import mask_phone, require_site, site_by_code
from tiercare.immunization.models import (
    Booking,
    Child,
    ImmunizationRecord,
    SessionSlot,
    VaccinationSession,
    VaccinationSite,
)
from tiercare.immunization.schedule import (
    DoseRule,
    Duration,
    ScheduleBook,
    ScheduleVersion,
    Series,
    default_schedules,
)
from tiercare.registry.models import Division, StaffMember

TARGETS_FILE = Path(__file__).with_name("data") / "coverage-targets.json"
WORK_STATUSES = ("due", "overdue", "upcoming")


@dataclass(frozen=True)
class Targets:
    """Monitoring targets in force (see ``data/coverage-targets.json``)."""

    version: str
    default_target: float
    targets: dict[str, float]
    near_expiry_days: int
    stock_cover_days: int

    def target(self, vaccine: str, dose: int) -> float:
        """Target share for a series dose (``"HepB-1"``) or the default."""
        return self.targets.get(f"{vaccine}-{dose}", self.default_target)


@lru_cache(maxsize=4)
def _targets_raw(path: str) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    versions = data.get("versions")
    if not isinstance(versions, list) or not versions:
        raise InputError.single("no versions", field=path)
    return versions


def targets_in_force(on: dt.date, *, path: Path = TARGETS_FILE) -> Targets:
    """The target version in force on a date (the first version for earlier dates)."""
    versions = sorted(_targets_raw(str(path)), key=lambda v: v["effective_from"])
    chosen = versions[0]
    for v in versions:
        if dt.date.fromisoformat(v["effective_from"]) <= on:
            chosen = v
    return Targets(version=str(chosen["version"]), default_target=float(chosen["default_target"]),
                   targets={k: float(x) for k, x in chosen.get("targets", {}).items()},
                   near_expiry_days=int(chosen["near_expiry_days"]),
                   stock_cover_days=int(chosen["stock_cover_days"]))


def _scope_query(actor: Actor, *, site_id: int | None, villages: list[str] | None,
                 division: str | None) -> Select:
    query = select(Child.id, Child.name, Child.sex, Child.birth_date, Child.village_code,
                   Child.site_id, Child.guardian_name, Child.guardian_phone, Child.mother_hbsag,
                   Child.birth_weight_g, Child.tb_test_date, Child.tb_test_result).where(
        Child.active.is_(True), actor.division_clause(Child.village_code))
    if site_id is not None:
        query = query.where(Child.site_id == site_id)
    if villages is not None:
        query = query.where(Child.village_code.in_(villages))
    if division:
        query = query.where(Child.village_code.like(division.rstrip("0") + "%"))
    return query.order_by(Child.id)


def load_population(session: Session, actor: Actor, *, as_of: dt.date,
                    site_id: int | None = None, villages: list[str] | None = None,
                    division: str | None = None, book: ScheduleBook | None = None
                    ) -> tuple[pd.DataFrame, Population, pd.DataFrame]:
    """Children in scope born by ``as_of`` and their records up to ``as_of`` as flat arrays.

    Returns
    -------
    tuple
        ``(children, population, doses)``: the children's table (row ``i`` = child ``i`` of the
        population), the :class:`~tiercare.immunization.batch.Population`, and the history
        rows (``child`` index, ``vaccine``, ``given_on``) in the population's order.
    """
    book = book or default_schedules()
    query = _scope_query(actor, site_id=site_id, villages=villages, division=division).where(
        Child.birth_date <= as_of)
    children = pd.DataFrame(session.execute(query).all(), columns=[
        "id", "name", "sex", "birth_date", "village_code", "site_id", "guardian_name",
        "guardian_phone", "mother_hbsag", "birth_weight_g", "tb_test_date", "tb_test_result"])
    ids = query.with_only_columns(Child.id).order_by(None).subquery()
    doses = pd.DataFrame(session.execute(
        select(ImmunizationRecord.child_id, ImmunizationRecord.vaccine,
               ImmunizationRecord.given_on)
        .where(ImmunizationRecord.child_id.in_(select(ids.c.id)),
               ImmunizationRecord.given_on <= as_of)
        .order_by(ImmunizationRecord.child_id, ImmunizationRecord.given_on,
                  ImmunizationRecord.id)).all(), columns=["child_id", "vaccine", "given_on"])
    position = pd.Series(np.arange(len(children)), index=children["id"].to_numpy())
    doses["child"] = doses["child_id"].map(position).astype("int64")

    def days(values: pd.Series) -> np.ndarray:
        stamp = pd.to_datetime(values)
        out = ((stamp - pd.Timestamp("1970-01-01")).dt.days).to_numpy(dtype="float64")
        return np.where(np.isnan(out), NO_DATE, out).astype(np.int32)

    tb_result = children["tb_test_result"].map({"negative": 1, "positive": 2}).fillna(0)
    pop = Population(
        birth=days(children["birth_date"]),
        sex=np.array([category_code("sex", s) for s in children["sex"]], dtype=np.int8),
        mother_hbsag=np.array([category_code("mother_hbsag", h) if h else 0
                               for h in children["mother_hbsag"]], dtype=np.int8),
        birth_weight_g=children["birth_weight_g"].astype("float32").to_numpy(),
        tb_test_date=days(children["tb_test_date"]),
        tb_test_result=tb_result.to_numpy(dtype=np.int8),
        dose_child=doses["child"].to_numpy(dtype=np.int32),
        dose_vaccine=encode_vaccines(doses["vaccine"].to_numpy(dtype=object), book=book),
        dose_date=days(doses["given_on"]),
    )
    return children, pop, doses


def _staff_villages(session: Session, staff_code: str) -> list[str]:
    staff = session.scalar(select(StaffMember).where(StaffMember.code == staff_code))
    if staff is None:
        raise InputError.single(f"unknown staff member '{staff_code}'", field="staff",
                                code="unknown_staff")
    return [v.code for v in staff.villages]


def work_list(session: Session, actor: Actor, *, start: dt.date, end: dt.date,
              site: str | None = None, staff: str | None = None,
              village: str | None = None) -> pd.DataFrame:
    """Due, overdue and soon-due doses of the children of a site, a village doctor or a village.

    Returns
    -------
    pandas.DataFrame
        One row per child and series: child_id, name, birth_date, village_code, guardian,
        phone (masked unless the actor sees identifiers), vaccine, next_dose, status, earliest,
        overdue_after; overdue first, then by village and earliest date. The read is audited.
    """
    if end < start:
        raise InputError.single("end before start", field="end")
    site_id = None
    if site:
        s = site_by_code(session, site)
        require_site(actor, s)
        site_id = s.id
    villages = _staff_villages(session, staff) if staff else None
    children, pop, _ = load_population(session, actor, as_of=start, site_id=site_id,
                                       villages=villages, division=village)
    columns = ["child_id", "name", "birth_date", "village_code", "guardian", "phone", "vaccine",
               "next_dose", "status", "earliest", "overdue_after"]
    if pop.size == 0:
        return pd.DataFrame(columns=columns)
    result = forecast_batch(pop, as_of=start)
    frame = result.to_frame(statuses=list(WORK_STATUSES))
    frame = frame[(frame["status"] != "upcoming") | (frame["earliest"] <= pd.Timestamp(end))]
    kids = children.iloc[frame["child"].to_numpy()].reset_index(drop=True)
    phones = kids["guardian_phone"] if actor.sees_identifiers else \
        kids["guardian_phone"].map(mask_phone)
    out = pd.DataFrame({
        "child_id": kids["id"].to_numpy(), "name": kids["name"].to_numpy(),
        "birth_date": kids["birth_date"].to_numpy(), "village_code": kids["village_code"],
        "guardian": kids["guardian_name"].to_numpy(), "phone": phones.to_numpy(),
        "vaccine": frame["vaccine"].astype(str).to_numpy(),
        "next_dose": frame["next_dose"].to_numpy(),
        "status": frame["status"].astype(str).to_numpy(),
        "earliest": frame["earliest"].dt.date.to_numpy(),
        "overdue_after": frame["overdue_after"].dt.date.to_numpy(),
    })
    order = out["status"].map({"overdue": 0, "due": 1, "upcoming": 2})
    out = out.assign(_o=order).sort_values(["_o", "village_code", "earliest", "child_id"]) \
        .drop(columns="_o").reset_index(drop=True)
    audit(session, actor, "list", "imm_worklist", site or staff or village or "",
          detail=f"{start}..{end}: {out['child_id'].nunique()} children, {len(out)} lines")
    return out


REMINDER_MAX_DAYS = 62
"""Longest period of a reminders list (days)."""


def reminder_list(session: Session, actor: Actor, *, start: dt.date, end: dt.date,
                  site: str | None = None, staff: str | None = None,
                  village: str | None = None) -> list[dict[str, Any]]:
    """Families to remind for ``[start, end]``: a booking standing then, or a dose due.

    A list to phone or message from (nothing is sent). One entry per child — and per
    self-paid person booked without a child record, when a site is given — with ``bookings``
    (date, time, site, place, vaccines) in the period and ``due`` (the :func:`work_list` lines:
    overdue, due, or upcoming by ``end``; ``booked`` when a booking of the period covers the
    vaccine). Scope as :func:`work_list`; phones masked unless the actor sees identifiers.
    Entries are ordered by their first date (a booking's day, a due dose's earliest date or
    ``start`` when it is already due), then name.
    """
    if end < start:
        raise InputError.single("end before start", field="end")
    if (end - start).days > REMINDER_MAX_DAYS:
        raise InputError.single(f"at most {REMINDER_MAX_DAYS} days", field="end")
    table = work_list(session, actor, start=start, end=end, site=site, staff=staff,
                      village=village)
    query = (select(Booking, VaccinationSession, VaccinationSite, Child, SessionSlot.start)
             .join(VaccinationSession, VaccinationSession.id == Booking.session_id)
             .join(VaccinationSite, VaccinationSite.id == VaccinationSession.site_id)
             .outerjoin(Child, Child.id == Booking.child_id)
             .outerjoin(SessionSlot, SessionSlot.id == Booking.slot_id)
             .where(Booking.status == "booked", VaccinationSession.on_date >= start,
                    VaccinationSession.on_date <= end))
    if site:
        query = query.where(VaccinationSite.code == site)  # checked by work_list
    else:
        query = query.where(Child.id.is_not(None), actor.division_clause(Child.village_code))
    if staff:
        query = query.where(Child.village_code.in_(_staff_villages(session, staff)))
    if village:
        query = query.where(Child.village_code.like(village.rstrip("0") + "%"))
    shown = (lambda phone: phone) if actor.sees_identifiers else mask_phone
    families: dict[Any, dict[str, Any]] = {}

    def family(key: Any, **fields: Any) -> dict[str, Any]:
        return families.setdefault(key, {**fields, "bookings": [], "due": []})

    for b, s, where, c, slot_start in session.execute(
            query.order_by(VaccinationSession.on_date, VaccinationSession.start, Booking.id)):
        entry = family(("child", c.id) if c is not None else ("booking", b.id),
                       child_id=c.id if c is not None else None,
                       name=c.name if c is not None else b.person_name,
                       guardian=c.guardian_name if c is not None else "",
                       phone=shown((c.guardian_phone if c is not None else "") or b.phone),
                       village_code=c.village_code if c is not None else None)
        entry["bookings"].append({"booking_id": b.id, "on_date": s.on_date,
                                  "time": slot_start or s.start, "site_code": where.code,
                                  "place": s.place or "", "vaccines": list(b.vaccines)})
    for line in table.itertuples():
        entry = family(("child", int(line.child_id)), child_id=int(line.child_id),
                       name=line.name, guardian=line.guardian, phone=line.phone,
                       village_code=line.village_code)
        booked = {v for bk in entry["bookings"] for v in bk["vaccines"]}
        entry["due"].append({"vaccine": line.vaccine, "next_dose": int(line.next_dose),
                             "status": line.status,
                             "earliest": None if pd.isna(line.earliest) else line.earliest,
                             "booked": line.vaccine in booked})

    def first_day(entry: dict[str, Any]) -> dt.date:
        days = [bk["on_date"] for bk in entry["bookings"]]
        days += [max(d["earliest"] or start, start) for d in entry["due"]]
        return min(days)

    out = sorted(families.values(), key=lambda e: (first_day(e), e["name"]))
    audit(session, actor, "list", "imm_reminders", site or staff or village or "",
          detail=f"{start}..{end}: {len(out)} families")
    return out


def reminders_csv(items: list[dict[str, Any]]) -> str:
    """Write the reminders list as CSV, one line per family (bookings and due doses as text)."""
    frame = pd.DataFrame({
        "name": [e["name"] for e in items], "guardian": [e["guardian"] for e in items],
        "phone": [e["phone"] for e in items],
        "village_code": [e["village_code"] or "" for e in items],
        "bookings": ["; ".join(f"{b['on_date']} {b['time']} {b['site_code']} "
                               f"{'+'.join(b['vaccines'])}" for b in e["bookings"])
                     for e in items],
        "due": ["; ".join(f"{d['vaccine']}-{d['next_dose']} {d['status']} {d['earliest'] or ''}"
                          .rstrip() for d in e["due"]) for e in items]})
    return frame.to_csv(index=False)


def _valid_doses(pop: Population, doses: pd.DataFrame, as_of: dt.date,
                 book: ScheduleBook) -> tuple[pd.DataFrame, BatchForecast]:
    """Valid history rows with their series and dose number, and the batch forecast."""
    result = forecast_batch(pop, as_of=as_of, book=book)
    valid = np.ones(len(doses), dtype=bool)
    valid[result.invalid_row] = False
    version = book.in_force(as_of)
    rows = doses[valid].copy()
    rows["series"] = rows["vaccine"].map(version.product_series)
    rows = rows.dropna(subset=["series"])
    rows["dose"] = rows.groupby(["child", "series"]).cumcount() + 1
    return rows, result


def _shift(birth: pd.Series, age: Duration) -> pd.Series:
    """``birth + age`` in calendar months and days, computed once per distinct birth date."""
    days = birth.dt.normalize()
    table = {b: pd.Timestamp(age.after(b.date())) for b in days.unique()}
    return days.map(table)


def _dose_counts(children: pd.DataFrame, birth: pd.Series, keep: NDArray[np.bool_],
                 as_of: pd.Timestamp,
                 parts: list[tuple[NDArray[np.bool_], DoseRule, pd.Series]]) -> pd.DataFrame:
    """Count one coverage row (a series dose) per division and cohort.

    Each part is ``(followers, rule, given)``: the children judged by ``rule`` (a dose of the
    series they follow) and the date each child was given that valid dose (indexed by child
    position). A child belongs to one part at most.
    """
    n = len(children)
    eligible = np.zeros(n, dtype=bool)
    vaccinated = np.zeros(n, dtype=bool)
    timely_eligible = np.zeros(n, dtype=bool)
    timely = np.zeros(n, dtype=bool)
    for followers, rule, given in parts:
        mine = keep & followers
        reached = mine & (_shift(birth, rule.min_age) <= as_of).to_numpy()
        got = np.zeros(n, dtype=bool)
        got[given.index.to_numpy()] = True
        eligible |= reached
        vaccinated |= reached & got
        if rule.complete_before is not None:
            limit = _shift(birth, rule.complete_before)
            due_by = mine & (limit <= as_of).to_numpy()
            when = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
            when.iloc[given.index.to_numpy()] = pd.to_datetime(given.to_numpy())
            timely_eligible |= due_by
            timely |= due_by & (when < limit).to_numpy()
    frame = pd.DataFrame({
        "division_code": children["division_code"], "cohort": children["cohort"],
        "eligible": eligible, "vaccinated": vaccinated,
        "timely_eligible": timely_eligible, "timely": timely})
    return frame.groupby(["division_code", "cohort"], as_index=False).sum()


def alternative_groups(version: ScheduleVersion) -> dict[str, list[Series]]:
    """Programme alternatives groups of a schedule version (``{"JE": [JE-L, JE-I], ...}``)."""
    groups: dict[str, list[Series]] = {}
    for series in version.series:
        if series.programme and series.alternatives is not None:
            groups.setdefault(series.alternatives, []).append(series)
    return groups


def coverage(session: Session, actor: Actor, *, as_of: dt.date, level: str = "village",
             division: str | None = None, cohorts: list[int] | None = None,
             vaccines: list[str] | None = None) -> pd.DataFrame:
    """Coverage and timeliness by division, birth cohort, series and dose (see the module doc).

    Parameters
    ----------
    level:
        ``village`` (12-digit code) or ``township`` (first 9 digits).
    division:
        Limit to a division's subtree (code, e.g. a township).
    cohorts:
        Birth years (default: every year present).
    vaccines:
        Series ids or alternatives groups such as ``JE`` (default: every programme series
        and every group).
    """
    if level not in ("village", "township"):
        raise InputError.single("level must be village or township", field="level")
    book = default_schedules()
    version = book.in_force(as_of)
    children, pop, doses = load_population(session, actor, as_of=as_of, division=division,
                                           book=book)
    columns = ["division_code", "cohort", "vaccine", "dose", "eligible", "vaccinated",
               "coverage", "timely_eligible", "timely", "timeliness", "target", "below_target"]
    if pop.size == 0:
        return pd.DataFrame(columns=columns)
    birth = pd.to_datetime(children["birth_date"])
    children = children.assign(
        cohort=birth.dt.year,
        division_code=children["village_code"] if level == "village"
        else children["village_code"].str[:9] + "000")
    if cohorts:
        keep = children["cohort"].isin(cohorts).to_numpy()
    else:
        keep = np.ones(len(children), dtype=bool)
    valid, result = _valid_doses(pop, doses, as_of, book)
    targets = targets_in_force(as_of)
    as_of_ts = pd.Timestamp(as_of)
    everyone = np.ones(len(children), dtype=bool)

    def given(series_id: str, number: int) -> pd.Series:
        rows = valid[(valid["series"] == series_id) & (valid["dose"] == number)]
        return rows.set_index("child")["given_on"]

    parts = []

    def add(name: str, number: int, counted: pd.DataFrame) -> None:
        counted.insert(2, "vaccine", name)
        counted.insert(3, "dose", number)
        counted["target"] = targets.target(name, number)
        parts.append(counted)

    for series in version.series:
        if not series.programme or (vaccines and series.id not in vaccines):
            continue
        for rule in series.regimens[-1].doses:
            add(series.id, rule.number, _dose_counts(
                children, birth, keep, as_of_ts,
                [(everyone, rule, given(series.id, rule.number))]))
    position = {s.id: i for i, s in enumerate(version.series)}
    for group, members in alternative_groups(version).items():
        if vaccines and group not in vaccines:
            continue
        chosen = result.chosen[group]
        longest = max(len(m.regimens[-1].doses) for m in members)
        for number in range(1, longest + 1):
            add(group, number, _dose_counts(children, birth, keep, as_of_ts, [
                (chosen == position[m.id], m.regimens[-1].doses[number - 1],
                 given(m.id, number))
                for m in members if number <= len(m.regimens[-1].doses)]))
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out = out[out["eligible"] > 0].copy()
    out["coverage"] = out["vaccinated"] / out["eligible"]
    out["timeliness"] = np.where(out["timely_eligible"] > 0,
                                 out["timely"] / out["timely_eligible"].where(
                                     out["timely_eligible"] > 0, 1), np.nan)
    out["below_target"] = out["coverage"] < out["target"]
    audit(session, actor, "report", "imm_coverage", division or "",
          detail=f"as of {as_of}, level {level}")
    return out[columns].sort_values(["division_code", "cohort", "vaccine", "dose"]) \
        .reset_index(drop=True)


def villages_below_target(session: Session, actor: Actor, *, as_of: dt.date, vaccine: str,
                          dose: int, cohorts: list[int] | None = None,
                          division: str | None = None) -> list[dict[str, Any]]:
    """Villages whose coverage of one dose (cohorts pooled) is below its target, with lon/lat."""
    table = coverage(session, actor, as_of=as_of, level="village", division=division,
                     cohorts=cohorts, vaccines=[vaccine])
    table = table[table["dose"] == dose]
    if table.empty:
        return []
    pooled = table.groupby("division_code", as_index=False)[["eligible", "vaccinated"]].sum()
    pooled["coverage"] = pooled["vaccinated"] / pooled["eligible"]
    target = targets_in_force(as_of).target(vaccine, dose)
    divisions = {d.code: d for d in session.scalars(select(Division).where(
        Division.code.in_(pooled["division_code"].tolist())))}
    out = []
    for row in pooled.itertuples():
        d = divisions.get(row.division_code)
        out.append({"code": row.division_code, "name": d.name if d else row.division_code,
                    "lon": d.lon if d else None, "lat": d.lat if d else None,
                    "boundary": d.boundary if d else None,
                    "eligible": int(row.eligible), "vaccinated": int(row.vaccinated),
                    "coverage": float(row.coverage), "target": target,
                    "below_target": bool(row.coverage < target)})
    return sorted(out, key=lambda r: r["coverage"])

