"""Demo data: the immunisation register of the demo county.

:func:`seed_demo_immunization` registers the children a county of the loaded population has
(0 to 6 years), gives them vaccination histories with realistic delays and gaps, creates a
vaccination clinic at every township health centre, a vaccination vehicle touring the most
remote villages of the largest township, a temporary autumn influenza point, their vaccine lots
and receipts, sessions for the coming two weeks and a scarce HPV release.

Calibration (parameters, defaults documented here):

* births: ``births_per_1000`` per year (default 6.5) times the population of the villages, for
  each of the last ``years`` (default 7) birth cohorts, spread over villages by population;
* a dose is given ``delay`` days after its earliest date, drawn from a log-normal with median
  ``delay_median_days`` (default 6) and a long tail (σ = 1.1), later doses later; each dose is
  missed with probability ``gap`` (default 4 %, doubled for doses due after 2 years), and
  about 0.5 % of doses are given a few days too early (so the engine rejects them);
* children of the JE and HepA groups get the live vaccine (80 % and 70 %) or the
  inactivated alternative; 2 % of children are registered with a birth-certificate number.

All rows are written with bulk inserts in the caller's transaction (commit at the end).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM, audit
from tiercare.config import get_settings
from tiercare.demo._names import NameMaker
from tiercare.errors import InputError
from tiercare.identity import check_character, identity_digest, mask_identity_number
from tiercare.immunization.common import keyed_digest, phone_digest
from tiercare.immunization.models import (
    Child,
    ImmunizationRecord,
    StockMove,
    VaccinationSite,
    VaccineLot,
)
from tiercare.immunization.records import record_key
from tiercare.immunization.releases import ReleaseIn, create_release
from tiercare.immunization.schedule import ScheduleVersion, default_schedules
from tiercare.immunization.sites import SessionIn, SiteIn, StopIn, create_site, open_session
from tiercare.registry.models import Division, Facility

__all__ = ["seed_demo_immunization", "simulate_history"]

ALTERNATIVE_SHARE = {"JE-L": 0.8, "HepA-L": 0.7}
DAILY_CAPACITY = {"HepB": 30, "BCG": 10, "IPV": 30, "bOPV": 30, "DTaP": 40, "MMR": 30,
                  "JE-L": 20, "JE-I": 10, "MPSV-A": 20, "MPSV-AC": 20, "HepA-L": 20,
                  "HepA-I": 10, "HPV": 10, "Flu": 40, "VarV": 10}
MANUFACTURERS = ("北京生物", "长春生物", "成都生物", "武汉生物", "兰州生物", "上海生物")


def simulate_history(rng: np.random.Generator, birth: dt.date, today: dt.date,
                     version: ScheduleVersion, *, delay_median_days: float = 6.0,
                     gap: float = 0.04) -> list[tuple[str, dt.date]]:
    """Doses of one child up to ``today`` (see the module docstring for the model).

    Each series of the programme (one product of each alternative group) is walked dose by
    dose: earliest = max(birth + minimum age, previous dose + minimum interval); given on
    earliest + a log-normal delay unless missed; a series stops at its first gap with
    probability 1/2 (drop-out), else continues later (catch-up).
    """
    out: list[tuple[str, dt.date]] = []
    visit_delay: dict[dt.date, int] = {}
    given: dict[str, list[dt.date]] = {}
    chosen = {group: rng.random() < share for group, share in ALTERNATIVE_SHARE.items()}
    for series in version.series:
        if not series.programme:
            continue
        if series.alternatives is not None:
            preferred = series.id if series.preferred else next(
                s.id for s in version.series if s.alternatives == series.alternatives
                and s.preferred)
            wants_preferred = chosen.get(preferred, True)
            if series.preferred != wants_preferred:
                continue
        previous: dt.date | None = None
        for rule in series.regimens[-1].doses:
            earliest = rule.min_age.after(birth)
            if previous is not None and rule.min_interval is not None:
                earliest = max(earliest, rule.min_interval.after(previous))
            for after in rule.after:  # e.g. bOPV 1 at least 28 days after the last IPV
                done = given.get(after.series, [])
                ref = done[-1] if after.dose is None and done else (
                    done[after.dose - 1] if after.dose is not None and len(done) >= after.dose
                    else None)
                if ref is not None:
                    earliest = max(earliest, after.interval.after(ref))
            if earliest > today:
                break
            late = (earliest - birth).days > 730
            if rng.random() < gap * (2 if late else 1):
                if rng.random() < 0.5:
                    break
                continue
            if earliest not in visit_delay:  # doses due the same day share the visit
                visit_delay[earliest] = int(rng.lognormal(
                    np.log(delay_median_days * (1.5 if late else 1)), 1.1))
            delay = visit_delay[earliest]
            if rng.random() < 0.005:
                delay = -int(rng.integers(1, 6))  # too early: not valid
            day = max(birth, earliest + dt.timedelta(days=delay))
            if day > today:
                break
            out.append((rule.products[0] if rule.products else series.products[0], day))
            given.setdefault(series.id, []).append(day)
            previous = day
    out.sort(key=lambda item: item[1])
    return out


def _sites(session: Session, county: str, villages: list[Division], today: dt.date
           ) -> tuple[dict[str, str], list[str]]:
    """Create the sites; returns village → fixed site code, and every site code."""
    centres = list(session.scalars(select(Facility).where(
        Facility.type_code.like("township_health_centre%"), Facility.closed_on.is_(None),
        Facility.division_prefix.like(county + "%")).order_by(Facility.code)))
    if not centres:
        raise InputError.single("the county has no township health centre", field="facilities")
    by_township: dict[str, str] = {}
    codes: list[str] = []
    for i, centre in enumerate(centres):
        township = centre.division_prefix[:9]
        if township in by_township:
            continue
        code = f"VS{i + 1:02d}"
        create_site(session, SYSTEM, SiteIn(
            code=code, name=f"{centre.name}预防接种门诊", kind="fixed",
            facility_code=centre.code, division_code=township + "000", lon=centre.lon,
            lat=centre.lat, capacity=DAILY_CAPACITY, slot_minutes=30 if i == 0 else 0))
        by_township[township] = code
        codes.append(code)
    fixed = {v.code: by_township.get(v.code[:9], codes[0]) for v in villages}
    # the vehicle tours the five villages of the largest township furthest from its centre
    largest = max(by_township, key=lambda t: sum(v.population or 0 for v in villages
                                                 if v.code.startswith(t)))
    own = [v for v in villages if v.code.startswith(largest) and v.lon is not None]
    centre = next(c for c in centres if c.division_prefix.startswith(largest))
    own.sort(key=lambda v: -((v.lon - (centre.lon or v.lon)) ** 2 +
                             (v.lat - (centre.lat or v.lat)) ** 2))
    stops = own[:5] or [v for v in villages if v.code.startswith(largest)][:5]
    if stops:
        create_site(session, SYSTEM, SiteIn(
            code="MV01", name="流动预防接种车", kind="mobile", facility_code=centre.code,
            division_code=largest + "000",
            capacity={"HepB": 10, "IPV": 10, "bOPV": 10, "DTaP": 10, "MMR": 10},
            route=[StopIn(weekday=day, village_code=v.code, place=f"{v.name}村委会",
                          lon=v.lon, lat=v.lat, start="09:00", end="15:00")
                   for day, v in enumerate(stops)]))
        codes.append("MV01")
    start = dt.date(today.year, 10, 1) if today.month >= 10 else dt.date(today.year - 1, 10, 1)
    create_site(session, SYSTEM, SiteIn(
        code="TF01", name="秋季流感疫苗临时接种点", kind="temporary", facility_code=centre.code,
        division_code=largest + "000", capacity={"Flu": 200}, active_from=start,
        active_until=start + dt.timedelta(days=150)))
    codes.append("TF01")
    return fixed, codes


def seed_demo_immunization(session: Session, *, seed: int, today: dt.date | None = None,
                           births_per_1000: float = 6.5, years: int = 7,
                           delay_median_days: float = 6.0, gap: float = 0.04,
                           secret: str | None = None) -> dict[str, int]:
    """Generate the demo county's immunisation register (see the module docstring).

    Parameters
    ----------
    session:
        A session on a database holding the demo county (villages with population and
        township health centres).
    seed:
        Seed of the random generator; the same seed and ``today`` give the same data.
    today:
        Reference date (default today).
    births_per_1000, years, delay_median_days, gap:
        Calibration (module docstring).
    secret:
        Key of the identity digests (default the settings' secret key).

    Returns
    -------
    dict
        Counts: ``children``, ``births_per_year``, ``records``, ``sites``, ``sessions``,
        ``lots``, ``releases``.

    Raises
    ------
    InputError
        No village with population or no township health centre.
    """
    today = today or dt.date.today()
    secret = secret or get_settings().secret_key
    book = default_schedules()
    villages = list(session.scalars(select(Division).where(
        Division.level == "village", Division.population > 0).order_by(Division.code)))
    if not villages:
        raise InputError.single("no village with a population in the database",
                                field="divisions")
    county = villages[0].code[:6]
    fixed, site_codes = _sites(session, county, villages, today)
    site_ids = dict(session.execute(select(VaccinationSite.code, VaccinationSite.id)).all())
    rng = np.random.default_rng(seed)
    names = NameMaker(np.random.default_rng(seed + 1))
    population = np.array([v.population or 0 for v in villages], dtype=float)
    births_per_year = int(round(population.sum() * births_per_1000 / 1000))
    n = births_per_year * years
    village_of = rng.choice(len(villages), size=n, p=population / population.sum())
    age_days = rng.integers(0, years * 365, size=n)
    used_seq: set[str] = set()
    children: list[dict[str, Any]] = []
    histories: list[list[tuple[str, dt.date]]] = []
    for i in range(n):
        birth = today - dt.timedelta(days=int(age_days[i]))
        village = villages[int(village_of[i])]
        male = bool(rng.random() < 0.53)
        if rng.random() < 0.02 and (today - birth).days < 120:
            number = f"{'ABCDEFGHJKLMNPQRST'[int(rng.integers(18))]}{rng.integers(10**9):09d}"
            kind, masked = "birth_certificate", number[:2] + "****" + number[-4:]
            digest = keyed_digest("birthcert", number, secret=secret)
        else:
            while True:
                seq = int(rng.integers(0, 499)) * 2 + (1 if male else 2)
                first17 = f"{county}{birth:%Y%m%d}{seq:03d}"
                if first17 not in used_seq:
                    used_seq.add(first17)
                    break
            number = first17 + check_character(first17)
            kind, masked = "resident_id", mask_identity_number(number)
            digest = identity_digest(number, secret=secret)
        phone = f"1{int(rng.choice([38, 39, 58, 59, 87, 88]))}{rng.integers(10**8):08d}"
        weight = float(np.clip(rng.normal(3250, 480), 1200, 5200))
        children.append({
            "name": names.person(male=male), "sex": "M" if male else "F", "birth_date": birth,
            "id_kind": kind, "id_masked": masked, "id_digest": digest, "id_number": number,
            "guardian_name": names.person(male=False), "guardian_relation": "mother",
            "guardian_phone": phone, "guardian_phone_digest": phone_digest(phone, secret=secret),
            "village_code": village.code, "site_id": site_ids[fixed[village.code]],
            "registered_how": "birth" if rng.random() < 0.9 else "arrival",
            "registered_on": birth + dt.timedelta(days=int(rng.integers(0, 30))),
            "mother_hbsag": "positive" if rng.random() < 0.06 else "negative",
            "birth_weight_g": round(weight), "active": True,
        })
        histories.append(simulate_history(rng, birth, today, book.in_force(birth),
                                          delay_median_days=delay_median_days, gap=gap))
    for row in children:
        row["registered_on"] = min(row["registered_on"], today)
    # lots: two per site and vaccine, one of them close to expiry
    lots: dict[tuple[int, str], list[str]] = {}
    lot_rows = []
    for code in site_codes:
        for vaccine in DAILY_CAPACITY:
            for k in range(2):
                lot = f"{vaccine[:3].upper()}{today:%y}{int(rng.integers(1000, 9999))}{k}"
                lots.setdefault((site_ids[code], vaccine), []).append(lot)
                expiry = today + dt.timedelta(days=40 if k == 0 else 400)
                lot_rows.append({"site_id": site_ids[code], "vaccine": vaccine, "lot": lot,
                                 "manufacturer": MANUFACTURERS[int(rng.integers(6))],
                                 "expires_on": expiry})
    session.execute(insert(VaccineLot), lot_rows)
    lot_ids = {(r.site_id, r.vaccine, r.lot): r.id for r in session.scalars(select(VaccineLot))}
    for start in range(0, len(children), 2000):
        session.execute(insert(Child), children[start:start + 2000])
    child_ids = dict(session.execute(select(Child.id_digest, Child.id)).all())
    records: list[dict[str, Any]] = []
    used: dict[tuple[int, str, str], int] = {}
    for row, history in zip(children, histories, strict=True):
        cid = child_ids[row["id_digest"]]
        number: dict[str, int] = {}  # the dose number a vaccinator writes: nth of the product
        for vaccine, day in sorted(history, key=lambda item: item[1]):
            number[vaccine] = number.get(vaccine, 0) + 1
            site_id = row["site_id"]
            options = lots.get((site_id, vaccine)) or [""]
            lot = options[-1] if (today - day).days > 30 else options[0]
            used[(site_id, vaccine, lot)] = used.get((site_id, vaccine, lot), 0) + 1
            records.append({
                "record_key": record_key(site_code="", source_id=None,
                                         child_digest=row["id_digest"], vaccine=vaccine,
                                         given_on=day), "child_id": cid,
                "vaccine": vaccine, "dose_number": number[vaccine], "given_on": day,
                "site_id": site_id,
                "vaccinator": "", "lot": lot, "manufacturer": "",
                "route": "PO" if vaccine == "bOPV" else ("ID" if vaccine == "BCG" else "IM"),
                "body_site": "mouth" if vaccine == "bOPV" else "left_arm", "aefi": None})
    for start in range(0, len(records), 5000):
        session.execute(insert(ImmunizationRecord), records[start:start + 5000])
    moves = []
    for (site_id, vaccine, lot), lot_id in lot_ids.items():
        need = used.get((site_id, vaccine, lot), 0)
        receipt = need + int(rng.integers(0 if rng.random() < 0.05 else 20, 120))
        moves.append({"lot_id": lot_id, "kind": "receipt", "doses": max(receipt, 1),
                      "on_date": today - dt.timedelta(days=365), "reason": "demo",
                      "username": "system"})
        if receipt > need + 5 and rng.random() < 0.3:
            moves.append({"lot_id": lot_id, "kind": "wastage",
                          "doses": int(rng.integers(1, 4)), "on_date": today,
                          "reason": "opened vial", "username": "system"})
    session.execute(insert(StockMove), moves)
    sessions = 0
    for code in site_codes:
        for offset in range(1, 15):
            day = today + dt.timedelta(days=offset)
            if code.startswith("VS") and day.weekday() not in (1, 3):
                continue
            if code == "MV01" and day.weekday() > 4:
                continue
            if code == "TF01" and day.weekday() != 5:
                continue
            try:
                open_session(session, SYSTEM, code, SessionIn(on_date=day))
                sessions += 1
            except InputError:
                continue  # the temporary point is closed that day
    opens = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(1, 0), tzinfo=dt.UTC)
    create_release(session, SYSTEM, ReleaseIn(
        code=f"HPV-{today:%Y%m}", vaccine="HPV", site_code=site_codes[0], doses=200,
        opens_at=opens, mode="arrival", eligibility={"sex": "F", "min_age": 9,
                                                     "max_age": 45}))
    audit(session, SYSTEM, "seed", "imm_demo", "", detail=f"{len(children)} children")
    session.commit()
    return {"children": len(children), "births_per_year": births_per_year,
            "records": len(records), "sites": len(site_codes), "sessions": sessions,
            "lots": len(lot_rows), "releases": 1}
