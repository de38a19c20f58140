"""Aggregation up the division tree and over periods, against brute-force sums (both DBs)."""

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from indicators_helpers import load_county_with_catalogue
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, create_user
from tiercare.errors import InputError, NotFoundError
from tiercare.identity import check_character
from tiercare.indicators.analytics import (
    analytics,
    rebuild_analytics,
    referral_flows,
    resolve_unit,
)
from tiercare.indicators.catalogue import save_indicator
from tiercare.indicators.facts import store_access_coverage
from tiercare.indicators.models import AnalyticsValue, DataValue
from tiercare.indicators.periods import parse_period
from tiercare.indicators.reporting import store_values
from tiercare.referral.models import Referral
from tiercare.registry.models import Division, Facility
from tiercare.residents.service import ResidentIn, register_resident

# facility -> (12-digit division code when reported, tier)
FACILITIES = {"H1": ("140725100000", "secondary"), "T1": ("140725100000", "primary"),
              "V1": ("140725100201", "village"), "V2": ("140725200201", "village")}
TODAY = date(2026, 12, 1)


def _values(session, codes_units_periods):
    out = analytics(session, SYSTEM, indicators=["opd_total", "primary_opd_share"],
                    units=codes_units_periods[0], periods=codes_units_periods[1])
    return {(v.indicator, v.unit, v.period): v for v in out}


def _brute(records, unit, period):
    """Sum of opd visits (all, primary-care tiers) inside a unit and a period."""
    p = parse_period(period)
    total = primary = 0.0
    found = False
    for r in records:
        inside_unit = r["unit"] == unit if unit in FACILITIES else r["division"].startswith(
            unit.rstrip("0") if len(unit) == 12 else unit)
        q = parse_period(r["period"])
        if inside_unit and p.contains(q):
            found = True
            total += r["value"]
            primary += r["value"] if r["tier"] in ("primary", "village") else 0.0
    return found, total, primary


def test_tree_and_period_roll_ups_reorganisation_and_facts(session):
    load_county_with_catalogue(session)
    save_indicator(session, SYSTEM, {"code": "opd_total", "name_zh": "门诊", "name_en": "OPD",
                                     "numerator": "opd_visits", "denominator": "1"})
    rng = np.random.default_rng(7)
    records, rows = [], []
    for month in range(1, 13):
        for code, (division, tier) in FACILITIES.items():
            if rng.random() < 0.15:  # some reports missing
                continue
            value = int(rng.integers(0, 5000))
            period = f"2026-{month:02d}"
            rows.append({"element": "opd_visits", "unit": code, "period": period,
                         "value": value})
            records.append({"unit": code, "division": division, "tier": tier,
                            "period": period, "value": value})
    for day in range(1, 15):  # daily values of H1 roll up to weeks and months too
        value = int(rng.integers(0, 50))
        rows.append({"element": "opd_visits", "unit": "H1", "period": f"2026-12-{day:02d}",
                     "value": value})
        records.append({"unit": "H1", "division": "140725100000", "tier": "secondary",
                        "period": f"2026-12-{day:02d}", "value": value})
    store_values(session, SYSTEM, rows, source="test", today=TODAY)
    session.commit()

    units = ["14", "1407", "140725", "140725100", "140725200", "140725100201", "H1", "V2"]
    periods = ["2026-03", "2026Q1", "2026Q4", "2026", "2026W49", "2026-12-07", "2026-12"]
    got = _values(session, (units, periods))
    for unit in units:
        key_unit = unit if unit in FACILITIES else unit.ljust(12, "0")
        prefix = unit
        for period in periods:
            found, total, primary = _brute(records, prefix, period)
            value = got[("opd_total", key_unit, parse_period(period).text)]
            share = got[("primary_opd_share", key_unit, parse_period(period).text)]
            if not found:
                assert value.status == "no_data" and value.sources == ("reports",)
                continue
            assert value.status == "ok" and value.value == pytest.approx(total)
            if total:
                assert share.value == pytest.approx(100 * primary / total)
                assert share.met == (100 * primary / total >= 65)

    # reorganisation: V2 moves to a village of 甲镇 at the start of 2027; V1 closes
    village = session.scalar(select(Division).where(Division.code == "140725100202"))
    v2 = session.scalar(select(Facility).where(Facility.code == "V2"))
    v2.division_id, v2.division_prefix = village.id, village.prefix
    session.scalar(select(Facility).where(Facility.code == "V1")).closed_on = date(2026, 12, 31)
    session.flush()
    store_values(session, SYSTEM, [{"element": "opd_visits", "unit": "V2", "period": "2027-01",
                                    "value": 77}], source="test", today=date(2027, 2, 1))
    # a township abolished since: its old values keep their code and still resolve
    session.add(DataValue(element_code="opd_visits", unit_kind="facility", unit_code="OLD1",
                          division_code="140725300201", tier="village", period="2026-06",
                          period_type="month", start_date=date(2026, 6, 1),
                          end_date=date(2026, 6, 30), year=2026, quarter=2, month=6,
                          value=500))
    session.commit()
    after = _values(session, (["140725200", "140725100", "140725", "140725300"],
                              ["2026", "2027-01"]))
    assert after[("opd_total", "140725200000", "2026")].value == pytest.approx(
        _brute(records, "140725200", "2026")[1])
    assert after[("opd_total", "140725200000", "2027-01")].status == "no_data"
    assert after[("opd_total", "140725100000", "2027-01")].value == 77
    assert after[("opd_total", "140725100000", "2026")].value == pytest.approx(
        _brute(records, "140725100", "2026")[1])
    assert after[("opd_total", "140725300000", "2026")].value == 500
    assert after[("opd_total", "140725000000", "2026")].value == pytest.approx(
        _brute(records, "140725", "2026")[1] + 500)
    with pytest.raises(NotFoundError):
        resolve_unit(session, "140725400")

    # the SQL re-aggregation agrees with the brute force at every level
    rebuild_analytics(session)
    stored = pd.DataFrame(session.execute(select(
        AnalyticsValue.division_prefix, AnalyticsValue.period, AnalyticsValue.tier,
        AnalyticsValue.value).where(AnalyticsValue.element_code == "opd_visits")).all(),
        columns=["prefix", "period", "tier", "value"])
    for prefix, period in [("14", "2026"), ("140725", "2026Q1"), ("140725100", "2026-12"),
                           ("140725200", "2026Q4")]:
        total = stored[(stored.prefix == prefix) & (stored.period == period)]["value"].sum()
        expected = _brute(records, prefix, period)[1] + (
            500 if prefix in ("14", "140725") and period in ("2026", "2026Q2") else 0)
        assert total == pytest.approx(expected)


def test_registry_planning_and_missing_sources(session):
    load_county_with_catalogue(session)
    frame = pd.DataFrame({
        "division": ["total", "140725100001", "140725100201", "140725200201"],
        "group": ["all"] * 4,
        "population": [9000, 4000, 1000, 4000],
        "covered_15": [5900, 3000, 900, 2000],
        "covered_30": [8000, 4000, 1000, 3000],
        "covered_60": [9000, 4000, 1000, 4000],
        "unreachable": [0, 0, 0, 0],
    })
    out = {(v.indicator, v.unit): v for v in analytics(
        session, SYSTEM, indicators=["beds_per_1000", "physicians_per_1000", "nurses_per_1000",
                                     "access_15_share", "referrals_up", "vaccination_coverage"],
        units=["140725", "140725200", "H1"], periods=["2026-10"])}
    # county: 300 + 20 beds, 20 + 5 + 4 physicians, 30 + 4 nurses, population 10,000
    assert out[("beds_per_1000", "140725000000")].value == pytest.approx(32.0)
    assert out[("physicians_per_1000", "140725000000")].value == pytest.approx(2.9)
    assert out[("physicians_per_1000", "140725000000")].met is False
    assert out[("nurses_per_1000", "140725000000")].value == pytest.approx(3.4)
    assert out[("beds_per_1000", "140725200000")].value == 0.0
    assert out[("beds_per_1000", "H1")].status == "no_value"  # no population of a facility
    assert out[("access_15_share", "140725000000")].status == "no_data"
    assert out[("access_15_share", "140725000000")].sources == ("planning",)
    assert out[("referrals_up", "140725000000")].sources == ("referral",)
    assert out[("vaccination_coverage", "140725000000")].sources == ("reports",)

    store_access_coverage(session, frame, run_label="test run")
    session.commit()
    out = {(v.indicator, v.unit): v for v in analytics(
        session, SYSTEM, indicators=["access_15_share", "access_30_share"],
        units=["140725", "140725200"], periods=["2026-10"])}
    assert out[("access_15_share", "140725000000")].value == pytest.approx(100 * 5900 / 9000)
    assert out[("access_30_share", "140725200000")].value == pytest.approx(75.0)

    # referral facts and flows once the referral module has data
    resident = register_resident(session, SYSTEM, ResidentIn(
        name="王五", identity_number="14072519800101001" + check_character("14072519800101001"),
        village_code="140725100201"), secret="test-secret")
    ids = {f.code: f.id for f in session.scalars(select(Facility))}
    when = datetime(2026, 10, 5, 3, tzinfo=UTC)
    for number, (direction, source, target, status) in enumerate([
            ("up", "V1", "H1", "completed"), ("up", "V1", "H1", "requested"),
            ("down", "H1", "T1", "requested"), ("up", "V2", "H1", "requested")]):
        session.add(Referral(number=f"R{number}", direction=direction, resident_id=resident.id,
                             from_facility_id=ids[source], to_facility_id=ids[target],
                             urgency="routine", reason="test", status=status,
                             requested_at=when, acknowledge_by=when, expires_at=when))
    session.commit()
    out = {(v.indicator, v.unit): v for v in analytics(
        session, SYSTEM, indicators=["referrals_up", "down_up_referral_ratio",
                                     "referral_completion_rate"],
        units=["140725", "140725100", "V2"], periods=["2026-10"])}
    assert out[("referrals_up", "140725000000")].value == 3
    assert out[("referrals_up", "140725100000")].value == 2
    assert out[("referrals_up", "V2")].value == 1
    assert out[("down_up_referral_ratio", "140725100000")].value == pytest.approx(50.0)
    assert out[("referral_completion_rate", "140725000000")].value == pytest.approx(25.0)
    flows = referral_flows(session, SYSTEM, unit="140725200", period="2026-10")
    assert [(f["from"], f["to"], f["referrals"]) for f in flows] == [("V2", "H1", 1)]
    flows = referral_flows(session, SYSTEM, unit="140725", period="2026Q4")
    assert [(f["from"], f["to"], f["direction"], f["referrals"], f["completed"])
            for f in flows] == [("V1", "H1", "up", 2, 1), ("H1", "T1", "down", 1, 0),
                                ("V2", "H1", "up", 1, 0)]
    assert referral_flows(session, SYSTEM, unit="140725", period="2026-09") == []

    # immunisation records: coverage by village of residence, children old enough
    from tiercare.immunization.models import Child, ImmunizationRecord, VaccinationSite

    assert out[("referrals_up", "V2")].status == "ok"
    site = VaccinationSite(code="S1", name="甲镇接种门诊", kind="fixed", facility_id=ids["T1"],
                           division_prefix="140725100")
    session.add(site)
    session.flush()
    children = []
    for k, (born, village) in enumerate([(date(2025, 1, 10), "140725100201"),
                                         (date(2025, 6, 1), "140725100201"),
                                         (date(2026, 9, 1), "140725100201"),
                                         (date(2025, 3, 3), "140725200201")]):
        child = Child(name=f"孩{k}", sex="F", birth_date=born, id_kind="birth_certificate",
                      id_masked="x", id_digest=f"d{k}", id_number=f"n{k}", village_code=village,
                      site_id=site.id, registered_on=born)
        session.add(child)
        children.append(child)
    session.flush()
    for k, (child, vaccine, dose, given) in enumerate([
            (0, "MMR", 1, date(2025, 9, 12)), (1, "MMR", 1, date(2026, 11, 2)),
            (0, "HepB", 1, date(2025, 1, 10)), (2, "HepB", 1, date(2026, 9, 1)),
            (3, "HepB", 1, date(2025, 3, 3))]):
        session.add(ImmunizationRecord(record_key=f"k{k}", child_id=children[child].id,
                                       vaccine=vaccine, dose_number=dose, given_on=given,
                                       site_id=site.id))
    session.commit()
    out = {(v.indicator, v.unit): v for v in analytics(
        session, SYSTEM, indicators=["mmr1_coverage_recorded", "hepb1_coverage_recorded"],
        units=["140725", "140725100", "140725200"], periods=["2026-10"])}
    # born by 2026-02-28 (8 months before 31 Oct): children 0, 1 (甲镇) and 3 (乙乡); only
    # child 0 had MMR 1 by the end of October
    assert out[("mmr1_coverage_recorded", "140725100000")].value == pytest.approx(50.0)
    assert out[("mmr1_coverage_recorded", "140725000000")].value == pytest.approx(100 / 3)
    assert out[("hepb1_coverage_recorded", "140725100000")].value == pytest.approx(200 / 3)
    assert out[("hepb1_coverage_recorded", "140725200000")].value == pytest.approx(100.0)

    # maternal case management: high-risk pregnancies open in the period, with a case manager
    from tiercare.maternal.models import Pregnancy

    manager = create_user(session, username="mch", password="mch-password", role="admin")
    for k, (risk, managed, closed) in enumerate([(True, True, None), (True, False, None),
                                                 (False, False, None),
                                                 (True, False, datetime(2026, 9, 1, tzinfo=UTC))]):
        first17 = f"14072519900101{k + 1:02d}2"
        woman = register_resident(session, SYSTEM, ResidentIn(
            name=f"孕妇{k}", identity_number=first17 + check_character(first17),
            village_code="140725100201"), secret="test-secret")
        session.add(Pregnancy(resident_id=woman.id, village_code="140725100201",
                              registered_on=date(2026, 6, 1), registered_by="test",
                              edd=date(2027, 2, 1), status="closed" if closed else "graded",
                              high_risk=risk, closed_at=closed,
                              case_manager_user_id=manager.id if managed else None))
    session.commit()
    out = {(v.indicator, v.unit): v for v in analytics(
        session, SYSTEM, indicators=["hr_pregnancy_case_managed_records"],
        units=["140725", "140725200"], periods=["2026-10"])}
    assert out[("hr_pregnancy_case_managed_records", "140725000000")].value == pytest.approx(50)
    assert out[("hr_pregnancy_case_managed_records", "140725200000")].status == "no_value"

    bad = frame.copy()
    bad.loc[1, "covered_15"] = 5000  # more than the population
    bad.loc[2, "division"] = "14072"
    with pytest.raises(InputError) as info:
        store_access_coverage(session, bad, run_label="bad")
    assert {(p.field, p.row) for p in info.value.problems} == {("covered_15", 2),
                                                                ("division", 3)}
