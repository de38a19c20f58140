"""The assessment table as data: versions, the six-colour variant, validation of table files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tiercare.errors import InputError
from tiercare.maternal.criteria import Interval, available_tables, load_table
from tiercare.maternal.grading import grade

DATA = Path(__file__).resolve().parents[2] / "tiercare" / "maternal" / "data"


def test_packaged_tables_and_versions() -> None:
    families = {(family, version) for family, version, _ in available_tables()}
    assert ("national", "2017.1") in families
    assert ("example-six-colour", "2024.1") in families
    assert load_table(on=dt.date(2020, 1, 1)).version == "2017.1"
    with pytest.raises(InputError) as info:
        load_table(on=dt.date(2016, 12, 31))
    assert info.value.problems[0].field == "table"
    assert load_table() is load_table()  # cached, immutable


def test_every_numeric_criterion_documents_its_boundaries() -> None:
    document = json.loads((DATA / "criteria_national_2017.json").read_text(encoding="utf-8"))
    for item in document["criteria"]:
        if item.get("when"):
            assert item.get("note"), f"{item['code']} does not document its boundaries"


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("[35, 40)", [35, 39.99], [34.99, 40]),
        ("(-inf, 18]", [-1e9, 18], [18.01]),
        ("(25, 28)", [25.01, 27.99], [25, 28]),
        ("[2, 2]", [2], [1.99, 2.01]),
    ],
)
def test_interval_notation(text: str, inside: list[float], outside: list[float]) -> None:
    interval = Interval.parse(text)
    assert all(interval.contains(v) for v in inside)
    assert not any(interval.contains(v) for v in outside)
    assert str(interval) == text


@pytest.mark.parametrize("text", ["[inf, 3)", "(5, 3)", "(2, 2)", "35-40", "[1, inf]"])
def test_bad_interval(text: str) -> None:
    with pytest.raises(ValueError):
        Interval.parse(text)


def test_six_colour_variant() -> None:
    six = load_table(family="example-six-colour")
    assert six.ranked_colours == ("green", "yellow", "orange", "pink", "red")
    result = grade({"conditions": ["severe_preeclampsia", "asthma"]}, table=six, language="en")
    assert result.colour == "pink"
    assert [m.code for m in result.management][-1] == "tertiary_care_and_delivery"
    assert grade({"conditions": ["severe_preeclampsia", "cardiomyopathy"]},
                 table=six).colour == "red"
    # inherited rows and the local addition
    assert grade({"age": 40}, table=six).colour == "orange"
    assert grade({"conditions": ["previous_postpartum_haemorrhage"]}, table=six).colour == "yellow"
    # the national table does not know the local code
    with pytest.raises(InputError):
        grade({"conditions": ["previous_postpartum_haemorrhage"]}, table=load_table())


def test_a_table_file_can_be_loaded_from_a_path(tmp_path: Path) -> None:
    document = json.loads((DATA / "criteria_national_2017.json").read_text(encoding="utf-8"))
    document.update(family="province-x", version="2025.1", effective_from="2025-03-01")
    for item in document["criteria"]:
        if item["code"] == "asthma":
            item["colour"] = "red"
    path = tmp_path / "province.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    table = load_table(path)
    assert (table.family, table.version) == ("province-x", "2025.1")
    assert grade({"conditions": ["asthma"]}, table=table).colour == "red"


def test_every_problem_of_a_bad_table_is_reported(tmp_path: Path) -> None:
    document = json.loads((DATA / "criteria_national_2017.json").read_text(encoding="utf-8"))
    document["version"] = "broken"
    document["effective_from"] = "someday"
    document["criteria"][0]["when"][0]["in"] = "[35, 40"
    document["criteria"][1]["colour"] = "blue"
    document["criteria"][2]["code"] = "Advanced-Age"
    document["criteria"][3]["code"] = document["criteria"][4]["code"]
    document["criteria"][5]["requires"] = ["does_not_exist"]
    document["criteria"][6]["when"] = [{"field": "shoe_size", "in": "[1, 2]"}]
    document["management"]["yellow"] = ["unknown_action"]
    del document["management"]["purple"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_table(path)
    fields = [p.field for p in info.value.problems]
    for expected in ("effective_from", "when", "colour", "code", "requires",
                     "management.yellow", "management.purple"):
        assert expected in fields, expected
    rows = {p.row for p in info.value.problems if p.field in {"when", "colour", "code"}}
    assert {1, 2, 3, 5, 7} <= rows


def test_unreadable_table_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError):
        load_table(path)
    with pytest.raises(InputError):
        load_table(tmp_path / "missing.json")
