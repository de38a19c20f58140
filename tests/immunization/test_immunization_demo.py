"""Demo register on the small county: births follow the population, histories are plausible
(high but incomplete coverage, some delays and gaps), and everything the module computes runs."""

from __future__ import annotations

import datetime as dt

from immunization_helpers import load_small_county
from sqlalchemy import func, select

from tiercare.auth.service import SYSTEM
from tiercare.immunization.demo import seed_demo_immunization
from tiercare.immunization.models import Child, ImmunizationRecord, VaccinationSite
from tiercare.immunization.stock import stock_report
from tiercare.immunization.worklists import coverage, work_list
from tiercare.registry.models import Division

TODAY = dt.date(2026, 6, 1)


def test_immunization_demo_register(session):
    load_small_county(session)
    population = session.scalar(select(func.sum(Division.population)).where(
        Division.level == "village", Division.population > 0))
    counts = seed_demo_immunization(session, seed=3, today=TODAY, births_per_1000=12.0,
                                    secret="demo")
    assert counts["births_per_year"] == round(population * 12.0 / 1000)
    assert counts["children"] == counts["births_per_year"] * 7
    assert session.scalar(select(func.count()).select_from(Child)) == counts["children"]
    assert session.scalar(select(func.count()).select_from(ImmunizationRecord)) == \
        counts["records"]
    kinds = set(session.scalars(select(VaccinationSite.kind)))
    assert kinds == {"fixed", "mobile", "temporary"}
    table = coverage(session, SYSTEM, as_of=TODAY, level="township")
    pooled = table.groupby(["vaccine", "dose"])[["eligible", "vaccinated"]].sum()
    share = pooled["vaccinated"] / pooled["eligible"]
    assert 0.85 < share.loc[("HepB", 1)] < 1.0
    assert 0.6 < share.loc[("MMR", 2)] < share.loc[("MMR", 1)]
    timely = table[(table["vaccine"] == "DTaP") & (table["dose"] == 3)]
    assert (timely["timely"] <= timely["vaccinated"]).all()
    lines = work_list(session, SYSTEM, start=TODAY, end=TODAY + dt.timedelta(days=14),
                      site="VS01")
    assert {"due", "overdue"} <= set(lines["status"])
    report = stock_report(session, SYSTEM, "VS01", today=TODAY)
    assert all(lot["on_hand"] >= 0 for lot in report["lots"])
    assert any(a["kind"] == "near_expiry" for a in report["alerts"])
    # alternatives: JE dose 1 counts the children given JE-L or JE-I first (the products' own
    # rows count only valid doses, and a product not chosen never counts)
    je = pooled.loc[("JE", 1)]
    assert je["eligible"] == pooled.loc[("JE-L", 1), "eligible"]
    assert je["vaccinated"] == pooled.loc[("JE-L", 1), "vaccinated"] + \
        pooled.loc[("JE-I", 1), "vaccinated"]
    assert pooled.loc[("JE-I", 1), "vaccinated"] > 0 and pooled.loc[("HepA", 1), "vaccinated"] > 0
    # the indicators' recorded-dose facts (imm_dosed_hepb_1: a HepB record numbered 1) agree with
    # the coverage numerator, the demo's doses being valid
    numbered = session.scalar(select(func.count(func.distinct(ImmunizationRecord.child_id)))
                              .where(ImmunizationRecord.vaccine == "HepB",
                                     ImmunizationRecord.dose_number == 1,
                                     ImmunizationRecord.given_on <= TODAY))
    assert numbered == pooled.loc[("HepB", 1), "vaccinated"]
