"""The indicator facts over immunisation records (``imm_dosed_<vaccine>_<dose>``,
``imm_doses_<vaccine>``) count doses, with or without a recorded dose number, and name
hyphenated vaccines with ``_``; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from immunization_helpers import setup

from tiercare.auth.service import SYSTEM
from tiercare.immunization.records import DoseIn, record_dose
from tiercare.indicators.analytics import resolve_unit
from tiercare.indicators.facts import FACTS
from tiercare.indicators.periods import parse_period


def _fact(session, name: str, unit: str, period: str) -> float:
    fact, params = FACTS.resolve(name)
    resolved = resolve_unit(session, unit, actor=SYSTEM)
    return fact.provider(session, [resolved], parse_period(period), **params)[resolved.code]


def test_dosed_counts_doses_without_numbers_and_hyphenated_codes(session):
    a, b, c = setup(session, children=3)  # villages 140725100201, …100202, 140725200201
    doses = [(a, "HepB", dt.date(2025, 3, 1), 1), (a, "HepB", dt.date(2025, 4, 1), None),
             (b, "HepB", dt.date(2025, 4, 8), None), (b, "JE-L", dt.date(2025, 11, 20), None),
             (c, "JE-I", dt.date(2025, 12, 1), 1)]
    for child, vaccine, given, number in doses:
        record_dose(session, SYSTEM, DoseIn(child_id=child, vaccine=vaccine, given_on=given,
                                            site_code="VS1", dose_number=number),
                    today=dt.date(2026, 1, 1))
    session.commit()
    county = "140725"
    assert _fact(session, "imm_dosed_hepb_1", county, "2025-12") == 2  # b's dose is unnumbered
    assert _fact(session, "imm_dosed_hepb_2", county, "2025-12") == 1
    assert _fact(session, "imm_dosed_hepb_1", county, "2025-03") == 1  # by the period's end
    assert _fact(session, "imm_dosed_je_l_1", county, "2025-12") == 1
    assert _fact(session, "imm_dosed_je_i_1", county, "2025-12") == 1
    assert _fact(session, "imm_dosed_je_l_1", "140725200", "2025-12") == 0  # c lives there
    assert _fact(session, "imm_doses_je_l", county, "2025-11") == 1
    assert _fact(session, "imm_doses_hepb", county, "2025-04") == 2
