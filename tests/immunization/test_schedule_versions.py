"""Schedule data: the shipped versions, a further version without code changes, validation."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from tiercare.errors import InputError
from tiercare.immunization.forecast import Child, HistoryDose, forecast
from tiercare.immunization.schedule import (
    DATA_DIR,
    Duration,
    add_months,
    default_schedules,
    load_schedules,
)

D = dt.date.fromisoformat


def test_shipped_versions() -> None:
    book = default_schedules()
    assert [(v.id, v.effective_from) for v in book.versions] == [
        ("NIP-2021", D("2021-01-01")), ("NIP-2025-DTaP", D("2025-01-01"))]
    assert book.in_force(D("2024-12-31")).id == "NIP-2021"
    assert book.in_force(D("2025-01-01")).id == "NIP-2025-DTaP"
    assert book.in_force(D("2019-01-01")).id == "NIP-2021"
    new = book.get("NIP-2025-DTaP")
    assert "DT" not in new.series_by_id and "DT" in book.get("NIP-2021").series_by_id
    assert [str(d.min_age) for d in new.series_by_id["DTaP"].regimens[0].doses] == [
        "2m", "4m", "6m", "1y6m", "6y"]
    assert new.product_series["DT"] == "DTaP"
    assert {s.id for s in new.series if not s.programme} == {"HPV", "Flu", "Rabies", "VarV"}
    with pytest.raises(InputError):
        book.get("NIP-1999")


@pytest.mark.parametrize(("text", "months", "days"), [("0d", 0, 0), ("18m", 18, 0),
                                                     ("4y", 48, 0), ("1y6m", 18, 0),
                                                     ("28d", 0, 28), ("1m7d", 1, 7)])
def test_duration_parse(text: str, months: int, days: int) -> None:
    assert Duration.parse(text) == Duration(months, days)


def test_month_arithmetic_clamps_to_month_end() -> None:
    assert add_months(D("2024-01-31"), 1) == D("2024-02-29")
    assert add_months(D("2023-01-31"), 1) == D("2023-02-28")
    assert add_months(D("2024-02-29"), 12) == D("2025-02-28")
    assert add_months(D("2024-08-31"), -2) == D("2024-06-30")
    assert Duration.parse("1m3d").after(D("2024-01-31")) == D("2024-03-03")


HPV_2026 = {
    "format": 1, "version": "NIP-2026-example", "extends": "NIP-2025-DTaP",
    "effective_from": "2026-09-01", "title": "example of a further edition (unverified)",
    "vaccines": [{"code": "HPV2", "name": "Bivalent HPV vaccine", "live_injectable": False}],
    "series": [{"id": "HPV2", "name": "HPV, bivalent, girls", "programme": True,
                "products": ["HPV2"], "max_age": "18y",
                "when": {"field": "sex", "in": ["F"]},
                "regimens": [{"id": "standard", "doses": [
                    {"min_age": "13y"},
                    {"min_age": "13y", "min_interval": "6m", "complete_before": "15y"}]}]}],
}


def test_a_further_version_needs_no_code_change(tmp_path: Path) -> None:
    for path in DATA_DIR.glob("schedule-*.json"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "schedule-2026-hpv.json").write_text(json.dumps(HPV_2026), encoding="utf-8")
    book = load_schedules(directory=tmp_path)
    assert [v.id for v in book.versions][-1] == "NIP-2026-example"
    girl = Child(birth_date=D("2013-05-01"), sex="F",
                 history=(HistoryDose("HPV2", D("2026-09-02")),))
    result = forecast(girl, as_of=D("2026-10-01"), book=book)
    assert result.schedule_version == "NIP-2026-example"
    hpv = {s.vaccine: s for s in result.series}["HPV2"]
    assert (hpv.next_dose, hpv.status, hpv.earliest, hpv.overdue_after) == (
        2, "upcoming", D("2027-03-02"), D("2028-04-30"))
    assert "DT" not in {s.vaccine for s in result.series}  # the 2025 change is inherited
    boy = Child(birth_date=D("2013-05-01"), sex="M")
    hpv = {s.vaccine: s for s in forecast(boy, as_of=D("2026-10-01"), book=book).series}["HPV2"]
    assert hpv.status == "not_applicable"
    before = forecast(girl.__class__(birth_date=D("2013-05-01"), sex="F"),
                      as_of=D("2026-08-31"), book=book)
    assert "HPV2" not in {s.vaccine for s in before.series}


def test_validation_reports_every_problem(tmp_path: Path) -> None:
    raw = json.loads((DATA_DIR / "schedule-2021.json").read_text(encoding="utf-8"))
    raw["series"][0]["regimens"][1]["doses"][1]["min_interval"] = "four weeks"
    raw["series"][2]["products"] = ["IPV", "Polio9"]
    raw["series"][3]["regimens"][0]["doses"][0]["after"] = [{"series": "MMR",
                                                             "interval": "28d"}]
    raw["series"][4]["colour"] = "blue"
    raw["series"][13]["regimens"][0]["doses"][0]["complete_before"] = "10y"
    (tmp_path / "schedule-2021.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_schedules(directory=tmp_path)
    fields = sorted(p.field or "" for p in info.value.problems)
    assert fields == sorted([
        "series[0].regimens[1].doses[1].min_interval", "series[2].products",
        "series[3].regimens[0].doses[0].after[0].series", "series[4].colour",
        "series[13].regimens[0].doses[0].complete_before"])


def test_extends_must_name_an_earlier_version(tmp_path: Path) -> None:
    shutil.copy(DATA_DIR / "schedule-2021.json", tmp_path / "schedule-2021.json")
    bad = {**HPV_2026, "extends": "NIP-2030"}
    (tmp_path / "schedule-x.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(InputError, match="extends unknown"):
        load_schedules(directory=tmp_path)


def test_alternatives_group_may_not_take_a_series_id(tmp_path: Path) -> None:
    """Coverage reports a group under its name next to the series' rows: names must differ."""
    raw = json.loads((DATA_DIR / "schedule-2021.json").read_text(encoding="utf-8"))
    for series in raw["series"]:
        if series.get("alternatives") == "JE":
            series["alternatives"] = "MMR"
    (tmp_path / "schedule-2021.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InputError, match="alternatives group 'MMR' has the id of a series"):
        load_schedules(directory=tmp_path)
