"""Case-by-case engine tests, expected values computed by hand from DOMAIN.md §4 tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from tiercare.errors import InputError
from tiercare.immunization.forecast import (
    Child,
    Forecast,
    HistoryDose,
    SeriesForecast,
    TbTest,
    forecast,
    parse_child,
)

D = dt.date.fromisoformat


def kid(birth: str, history: Sequence[tuple[str, str]] = (), **extra: Any) -> Child:
    return Child(birth_date=D(birth), history=tuple(HistoryDose(v, D(d)) for v, d in history),
                 **extra)


def run(child: Child, as_of: str, **options: Any) -> tuple[Forecast, dict[str, SeriesForecast]]:
    result = forecast(child, as_of=D(as_of), **options)
    return result, {s.vaccine: s for s in result.series}


def expect(item: SeriesForecast, next_dose: int | None, status: str, earliest: str | None,
           overdue_after: str | None) -> None:
    assert (item.next_dose, item.status, item.earliest, item.overdue_after) == (
        next_dose, status, D(earliest) if earliest else None,
        D(overdue_after) if overdue_after else None), item


def invalid(result: Forecast) -> list[tuple[int, int | None, str]]:
    return [(d.index, d.dose, d.reason) for d in result.invalid_doses]


# ---------------------------------------------------------------- timely child


def test_timely_child_born_2025() -> None:
    child = kid("2025-03-10", [
        ("HepB", "2025-03-10"), ("BCG", "2025-03-10"), ("HepB", "2025-04-10"),
        ("IPV", "2025-05-10"), ("DTaP", "2025-05-10"), ("IPV", "2025-06-10"),
        ("bOPV", "2025-07-10"), ("DTaP", "2025-07-10"), ("HepB", "2025-09-10"),
        ("DTaP", "2025-09-10"), ("MPSV-A", "2025-09-10"), ("MMR", "2025-11-10"),
        ("JE-L", "2025-11-10"), ("MPSV-A", "2025-12-10"),
    ], mother_hbsag="negative", birth_weight_g=3300.0)
    result, s = run(child, "2026-03-10")
    assert result.schedule_version == "NIP-2025-DTaP"
    assert invalid(result) == []
    assert [x.vaccine for x in result.series] == [
        "HepB", "BCG", "IPV", "bOPV", "DTaP", "MMR", "JE-L", "JE-I", "MPSV-A", "MPSV-AC",
        "HepA-L", "HepA-I"]
    for done in ("HepB", "BCG", "IPV", "MPSV-A"):
        expect(s[done], None, "complete", None, None)
    expect(s["bOPV"], 2, "upcoming", "2029-03-10", "2030-03-09")
    expect(s["DTaP"], 4, "upcoming", "2026-09-10", "2027-03-09")
    expect(s["MMR"], 2, "upcoming", "2026-09-10", "2027-03-09")
    expect(s["JE-L"], 2, "upcoming", "2027-03-10", "2028-03-09")
    expect(s["MPSV-AC"], 1, "upcoming", "2028-03-10", "2029-03-09")
    expect(s["HepA-L"], 1, "upcoming", "2026-09-10", "2027-03-09")
    expect(s["JE-I"], None, "not_applicable", None, None)
    expect(s["HepA-I"], None, "not_applicable", None, None)


def test_newborn_due_list() -> None:
    _, s = run(kid("2025-06-01"), "2025-06-01")
    expect(s["HepB"], 1, "due", "2025-06-01", None)
    expect(s["BCG"], 1, "due", "2025-06-01", "2025-08-31")
    expect(s["IPV"], 1, "upcoming", "2025-08-01", None)
    expect(s["DTaP"], 1, "upcoming", "2025-08-01", None)


# ---------------------------------------------------------------- late child catching up


def test_late_child_catching_up_without_restart() -> None:
    history = [("HepB", "2022-01-15"), ("BCG", "2022-01-15")]
    result, s = run(kid("2022-01-15", history), "2023-03-01")
    assert result.schedule_version == "NIP-2021"
    expect(s["HepB"], 2, "due", "2022-02-15", None)
    expect(s["IPV"], 1, "due", "2022-03-15", None)
    expect(s["DTaP"], 1, "due", "2022-04-15", None)
    expect(s["MMR"], 1, "overdue", "2022-09-15", "2023-01-14")
    expect(s["JE-L"], 1, "overdue", "2022-09-15", "2023-01-14")
    expect(s["MPSV-A"], 1, "due", "2022-07-15", None)
    expect(s["DT"], 1, "upcoming", "2028-01-15", "2029-01-14")
    # catch-up visit: the missing doses, not a restart; minimum intervals kept
    history += [("HepB", "2023-03-01"), ("IPV", "2023-03-01"), ("DTaP", "2023-03-01"),
                ("MMR", "2023-03-01"), ("MPSV-A", "2023-03-01")]
    result, s = run(kid("2022-01-15", history), "2023-03-02")
    assert invalid(result) == []
    expect(s["HepB"], 3, "upcoming", "2023-04-30", "2023-01-14")  # 60 days after dose 2
    expect(s["IPV"], 2, "upcoming", "2023-03-29", None)
    expect(s["DTaP"], 2, "upcoming", "2023-03-29", None)
    expect(s["MMR"], 2, "upcoming", "2023-07-15", "2024-01-14")
    expect(s["JE-L"], 1, "upcoming", "2023-03-29", "2023-01-14")  # 28 days after MMR
    expect(s["MPSV-A"], 2, "upcoming", "2023-06-01", "2023-07-14")  # 3 months after dose 1
    # three months later the doses are due or overdue
    _, s = run(kid("2022-01-15", history), "2023-06-10")
    expect(s["HepB"], 3, "overdue", "2023-04-30", "2023-01-14")
    expect(s["IPV"], 2, "due", "2023-03-29", None)
    expect(s["MPSV-A"], 2, "due", "2023-06-01", "2023-07-14")


# ---------------------------------------------------------------- alternatives


def test_je_inactivated_chosen() -> None:
    child = kid("2020-05-01", [("JE-I", "2021-01-01"), ("JE-I", "2021-01-08")])
    result, s = run(child, "2021-06-01")
    assert invalid(result) == []
    expect(s["JE-I"], 3, "upcoming", "2022-05-01", None)
    expect(s["JE-L"], None, "not_applicable", None, None)
    # a later JE-L dose does not switch series and does not count
    child = kid("2020-05-01", [("JE-I", "2021-01-01"), ("JE-L", "2021-03-01")])
    result, s = run(child, "2021-06-01")
    assert invalid(result) == [(1, None, "alternative_not_chosen")]
    expect(s["JE-I"], 2, "due", "2021-01-08", None)
    expect(s["JE-L"], None, "not_applicable", None, None)


def test_je_inactivated_second_dose_too_soon() -> None:
    result, s = run(kid("2020-05-01", [("JE-I", "2021-01-01"), ("JE-I", "2021-01-05")]),
                    "2021-02-01")
    assert invalid(result) == [(1, 2, "min_interval")]
    expect(s["JE-I"], 2, "due", "2021-01-08", None)


def test_hepa_inactivated_chosen() -> None:
    result, s = run(kid("2019-03-01", [("HepA-I", "2020-09-01")]), "2021-02-01")
    assert invalid(result) == []
    expect(s["HepA-I"], 2, "upcoming", "2021-03-01", None)
    expect(s["HepA-L"], None, "not_applicable", None, None)
    _, s = run(kid("2019-03-01", [("HepA-I", "2020-09-01"), ("HepA-I", "2021-03-01")]),
               "2021-04-01")
    expect(s["HepA-I"], None, "complete", None, None)


def test_without_any_dose_the_preferred_alternative_is_forecast() -> None:
    _, s = run(kid("2019-03-01"), "2021-02-01")
    expect(s["HepA-L"], 1, "due", "2020-09-01", "2021-02-28")
    expect(s["HepA-I"], None, "not_applicable", None, None)


# ---------------------------------------------------------------- special HepB regimen


@pytest.mark.parametrize("hbsag", ["positive", "unknown", None])
def test_special_hepb_regimen(hbsag: str | None) -> None:
    history = [("HepB", "2025-02-10"), ("HepB", "2025-03-10"), ("HepB", "2025-04-10")]
    result, s = run(kid("2025-02-10", history, mother_hbsag=hbsag, birth_weight_g=1800.0),
                    "2025-06-01")
    assert invalid(result) == []
    expect(s["HepB"], 4, "upcoming", "2025-09-10", "2026-02-09")
    _, s = run(kid("2025-02-10", history[:1], mother_hbsag=hbsag, birth_weight_g=1800.0),
               "2025-03-10")
    expect(s["HepB"], 2, "due", "2025-03-10", None)


@pytest.mark.parametrize(("hbsag", "weight"), [("negative", 1800.0), ("positive", 2000.0),
                                               ("positive", None)])
def test_standard_hepb_regimen_otherwise(hbsag: str, weight: float | None) -> None:
    history = [("HepB", "2025-02-10"), ("HepB", "2025-03-10"), ("HepB", "2025-04-10")]
    result, s = run(kid("2025-02-10", history, mother_hbsag=hbsag, birth_weight_g=weight),
                    "2025-06-01")
    # the standard third dose is at 6 months: the one at 2 months is too early
    assert invalid(result) == [(2, 3, "min_age")]
    expect(s["HepB"], 3, "upcoming", "2025-08-10", "2026-02-09")


def test_special_regimen_complete_after_four_doses() -> None:
    history = [("HepB", "2025-02-10"), ("HepB", "2025-03-10"), ("HepB", "2025-04-10"),
               ("HepB", "2025-09-10")]
    _, s = run(kid("2025-02-10", history, mother_hbsag="positive", birth_weight_g=1500.0),
               "2025-10-01")
    expect(s["HepB"], None, "complete", None, None)


# ---------------------------------------------------------------- BCG


def test_bcg_at_two_months_is_direct() -> None:
    _, s = run(kid("2025-01-10"), "2025-03-10")
    expect(s["BCG"], 1, "due", "2025-01-10", "2025-04-09")
    _, s = run(kid("2025-01-10"), "2025-04-09")  # last day before 3 months
    expect(s["BCG"], 1, "due", "2025-01-10", "2025-04-09")


def test_bcg_at_two_years_needs_a_test() -> None:
    _, s = run(kid("2023-03-01"), "2025-03-01")
    expect(s["BCG"], 1, "needs_test", "2023-03-01", "2023-05-31")
    _, s = run(kid("2023-03-01"), "2023-06-01")  # from exactly 3 months
    expect(s["BCG"], 1, "needs_test", "2023-03-01", "2023-05-31")


def test_bcg_at_two_years_after_negative_test() -> None:
    child = kid("2023-03-01", tb_test=TbTest(D("2025-02-20"), "negative"))
    _, s = run(child, "2025-03-01")
    expect(s["BCG"], 1, "overdue", "2025-02-20", "2023-05-31")


def test_bcg_at_two_years_after_positive_test() -> None:
    child = kid("2023-03-01", tb_test=TbTest(D("2025-02-20"), "positive"))
    _, s = run(child, "2025-03-01")
    expect(s["BCG"], None, "not_applicable", None, None)


def test_bcg_at_five_years_not_applicable() -> None:
    _, s = run(kid("2020-01-01", tb_test=TbTest(D("2024-12-01"), "negative")), "2025-01-01")
    expect(s["BCG"], None, "not_applicable", None, None)
    _, s = run(kid("2021-01-01"), "2025-01-01")  # exactly 4 years
    expect(s["BCG"], None, "not_applicable", None, None)
    _, s = run(kid("2021-01-01"), "2024-12-31")
    expect(s["BCG"], 1, "needs_test", "2021-01-01", "2021-03-31")


def test_bcg_given_is_complete_at_any_age() -> None:
    _, s = run(kid("2020-01-01", [("BCG", "2020-01-02")]), "2025-01-01")
    expect(s["BCG"], None, "complete", None, None)


# ---------------------------------------------------------------- live-vaccine spacing


def test_injectable_live_vaccines_28_days_apart() -> None:
    child = kid("2022-06-01", [("MMR", "2024-02-01"), ("JE-L", "2024-02-15")])
    result, s = run(child, "2024-03-01")
    assert invalid(result) == [(1, 1, "live_spacing")]
    # the invalid JE-L dose still interferes: every live vaccine waits 28 days after it
    expect(s["JE-L"], 1, "upcoming", "2024-03-14", "2023-05-31")
    expect(s["HepA-L"], 1, "upcoming", "2024-03-14", "2024-05-31")
    expect(s["MMR"], 2, "upcoming", "2024-03-14", "2024-05-31")
    _, s = run(child, "2024-03-14")
    expect(s["MMR"], 2, "due", "2024-03-14", "2024-05-31")


def test_live_vaccines_same_day_are_fine() -> None:
    child = kid("2023-01-01", [("MMR", "2024-02-01"), ("JE-L", "2024-02-01")])
    result, s = run(child, "2024-03-01")
    assert invalid(result) == []
    expect(s["JE-L"], 2, "upcoming", "2025-02-01", "2025-12-31")


def test_inactivated_and_oral_vaccines_are_not_spaced() -> None:
    child = kid("2022-01-01", [("MMR", "2023-09-01"), ("HepA-I", "2023-09-05"),
                               ("bOPV", "2023-09-05")])
    result, _ = run(child, "2023-10-01")
    assert invalid(result) == []


# ---------------------------------------------------------------- invalid early doses


def test_doses_before_minimum_age_or_interval_do_not_count() -> None:
    history = [("HepB", "2024-01-01"), ("HepB", "2024-01-20"),  # 19 days: before 1 month
               ("DTaP", "2024-02-15"),                          # 2021 edition: 3 months
               ("HepB", "2024-05-15"), ("HepB", "2024-07-05"),  # 51 days < 60
               ("BCG", "2024-01-01"), ("BCG", "2024-01-02")]    # extra dose
    result, s = run(kid("2024-01-01", history), "2024-07-20")
    assert invalid(result) == [(1, 2, "min_age"), (2, 1, "min_age"), (4, 3, "min_interval"),
                               (6, 2, "extra_dose")]
    expect(s["HepB"], 3, "due", "2024-07-14", "2024-12-31")
    expect(s["DTaP"], 1, "due", "2024-04-01", None)


def test_bopv_too_soon_after_ipv() -> None:
    history = [("IPV", "2024-03-01"), ("IPV", "2024-05-01"), ("bOPV", "2024-05-10")]
    result, s = run(kid("2024-01-01", history), "2024-05-20")
    assert invalid(result) == [(2, 1, "after_other_series")]
    expect(s["bOPV"], 1, "upcoming", "2024-05-29", "2024-12-31")


def test_mpsv_ac_waits_a_year_after_mpsv_a() -> None:
    history = [("MPSV-A", "2020-01-01"), ("MPSV-A", "2023-06-01")]
    _, s = run(kid("2019-07-01", history), "2023-07-01")
    expect(s["MPSV-AC"], 1, "upcoming", "2024-06-01", "2023-06-30")


# ---------------------------------------------------------------- the 2025 DTaP revision


def test_child_born_after_the_dtap_change() -> None:
    result, s = run(kid("2025-02-01"), "2025-04-01")
    assert result.schedule_version == "NIP-2025-DTaP"
    assert "DT" not in s
    expect(s["DTaP"], 1, "due", "2025-04-01", None)
    history = [("DTaP", "2025-04-01"), ("DTaP", "2025-06-01"), ("DTaP", "2025-08-01"),
               ("DTaP", "2026-08-01")]
    result, s = run(kid("2025-02-01", history), "2026-09-01")
    assert invalid(result) == []
    expect(s["DTaP"], 5, "upcoming", "2031-02-01", "2032-01-31")


def test_child_born_before_keeps_doses_valid_under_2021() -> None:
    history = [("DTaP", "2024-04-15"), ("DTaP", "2024-05-15"), ("DTaP", "2024-06-15")]
    result, s = run(kid("2024-01-15", history), "2025-03-01")
    assert invalid(result) == []  # dose 3 at 5 months was valid when given
    expect(s["DTaP"], 4, "upcoming", "2025-07-15", "2026-01-14")


def test_mid_series_child_switches_to_the_new_ages() -> None:
    history = [("DTaP", "2024-12-01"), ("DTaP", "2025-01-01"), ("DTaP", "2025-02-01")]
    result, s = run(kid("2024-09-01", history), "2025-02-15")
    assert invalid(result) == [(2, 3, "min_age")]  # 5 months, given under the 2025 rules
    expect(s["DTaP"], 3, "upcoming", "2025-03-01", "2025-08-31")


def test_six_year_olds_get_dtap_instead_of_dt() -> None:
    four = [("DTaP", "2018-08-01"), ("DTaP", "2018-09-01"), ("DTaP", "2018-10-01"),
            ("DTaP", "2019-11-01")]
    result, s = run(kid("2018-05-01", four), "2024-06-01")
    assert result.schedule_version == "NIP-2021"
    expect(s["DTaP"], None, "complete", None, None)
    expect(s["DT"], 1, "due", "2024-05-01", "2025-04-30")
    result, s = run(kid("2018-05-01", four), "2025-01-02")
    assert "DT" not in s
    expect(s["DTaP"], 5, "due", "2024-05-01", "2025-04-30")
    # a DT dose already given under the 2021 edition counts as DTaP dose 5
    result, s = run(kid("2018-05-01", [*four, ("DT", "2024-06-01")]), "2025-06-01")
    assert invalid(result) == []
    expect(s["DTaP"], None, "complete", None, None)
    # a version can be forced
    result, s = run(kid("2018-05-01", four), "2025-01-02", version="NIP-2021")
    assert result.schedule_version == "NIP-2021"
    expect(s["DT"], 1, "due", "2024-05-01", "2025-04-30")


# ---------------------------------------------------------------- limits, self-paid


def test_programme_catch_up_ends_at_18() -> None:
    _, s = run(kid("2005-01-01"), "2024-01-01")
    assert {x.status for x in s.values()} == {"not_applicable"}


def test_self_paid_vaccines_only_on_request_and_never_overdue() -> None:
    child = kid("2014-05-01", [("Rabies", "2025-03-01")], sex="F")
    result, s = run(child, "2025-03-02")
    assert "HPV" not in s
    result, s = run(child, "2025-03-02", include_self_paid=True)
    expect(s["HPV"], 1, "due", "2023-05-01", None)
    expect(s["VarV"], 1, "due", "2015-05-01", None)
    expect(s["Flu"], 1, "due", "2014-11-01", None)
    expect(s["Rabies"], 2, "upcoming", "2025-03-04", None)
    _, s = run(kid("2014-05-01"), "2025-03-02", include_self_paid=True)
    expect(s["Rabies"], None, "not_applicable", None, None)


# ---------------------------------------------------------------- input checks


def test_parse_child_reports_every_problem() -> None:
    data = {"birth_date": "2024-06-15", "sex": "X", "mother_hbsag": "maybe",
            "birth_weight_g": -3, "colour": "blue",
            "tb_test": {"date": "2024-01-01", "result": "unclear"},
            "history": [{"vaccine": "HepB", "date": "2024-06-15"},
                        {"vaccine": "HepC", "date": "2024-06-16"},
                        {"vaccine": "HepB", "date": "2024-02-30"},
                        {"vaccine": "BCG", "date": "2024-01-01"},
                        {"vaccine": "MMR", "date": "15/06/2024"}]}
    with pytest.raises(InputError) as info:
        parse_child(data)
    fields = sorted(p.field or "" for p in info.value.problems)
    assert fields == sorted(["sex", "mother_hbsag", "birth_weight_g", "colour", "tb_test.date",
                             "tb_test.result", "history[1].vaccine", "history[2].date",
                             "history[3].date", "history[4].date"])


def test_parse_child_accepts_the_issue_shape() -> None:
    data = {"birth_date": "2024-06-15", "sex": "F", "mother_hbsag": "positive",
            "birth_weight_g": 1900, "tb_test": {"date": "2024-10-01", "result": "negative"},
            "history": [{"vaccine": "HepB", "date": "2024-06-15", "lot": "A1"}]}
    child = parse_child(data)
    assert child.history == (HistoryDose("HepB", D("2024-06-15")),)
    assert child.tb_test == TbTest(D("2024-10-01"), "negative")
    assert child.birth_weight_g == 1900.0


def test_dates_after_as_of_refused() -> None:
    with pytest.raises(InputError) as info:
        forecast(kid("2024-01-01", [("HepB", "2024-01-01"), ("HepB", "2024-03-01")]),
                 as_of=D("2024-02-01"))
    assert [p.field for p in info.value.problems] == ["history[1].date"]
    with pytest.raises(InputError):
        forecast(kid("2024-01-01"), as_of=D("2023-12-31"))
