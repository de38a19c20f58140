"""FHIR RiskAssessment mapping and the ``tiercare maternal`` commands."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment
from typer.testing import CliRunner

from tiercare.errors import InputError
from tiercare.maternal.cli import app
from tiercare.maternal.criteria import load_table
from tiercare.maternal.fhir import (
    COLOUR_SYSTEM,
    CRITERION_SYSTEM,
    from_risk_assessment,
    to_risk_assessment,
)
from tiercare.maternal.grading import grade

SHANGHAI_TZ = dt.timezone(dt.timedelta(hours=8))
WHEN = dt.datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI_TZ)


def test_risk_assessment_red_with_purple() -> None:
    result = grade({"platelets_1e9_l": 25, "conditions": ["syphilis", "asthma"]},
                   table=load_table())
    resource = to_risk_assessment(result, subject="Patient/42", occurred_at=WHEN,
                                  resource_id="ra-1", performer="Practitioner/7")
    document = json.loads(resource.model_dump_json())
    assert document["resourceType"] == "RiskAssessment"
    assert document["status"] == "final"
    assert document["subject"] == {"reference": "Patient/42"}
    assert document["performer"] == {"reference": "Practitioner/7"}
    assert document["method"]["coding"][0]["code"] == "national-2017.1"
    colours = [p["qualitativeRisk"]["coding"][0] for p in document["prediction"]]
    assert colours == [{"system": COLOUR_SYSTEM, "code": "red"},
                       {"system": COLOUR_SYSTEM, "code": "purple"}]
    reasons = [r["coding"][0] for r in document["reasonCode"]]
    assert [r["code"] for r in reasons] == ["thrombocytopenia_under_30", "asthma", "syphilis"]
    assert all(r["system"] == CRITERION_SYSTEM for r in reasons)
    assert document["reasonCode"][1]["coding"][1] == {"system": COLOUR_SYSTEM,
                                                       "code": "orange"}
    assert "母婴传播" in document["mitigation"]
    # the JSON validates again as a RiskAssessment and reads back to the same grade
    again = RiskAssessment.model_validate_json(resource.model_dump_json())
    assert from_risk_assessment(again) == (
        "red", True, ["thrombocytopenia_under_30", "asthma", "syphilis"])


def test_risk_assessment_green_english() -> None:
    result = grade({}, table=load_table(), language="en")
    resource = to_risk_assessment(result, subject="Patient/1", occurred_at=WHEN)
    assert from_risk_assessment(resource) == ("green", False, [])
    assert resource.code.text == "Pregnancy risk grading"
    with pytest.raises(InputError):
        to_risk_assessment(result, subject="Patient/1", occurred_at=dt.datetime(2026, 1, 1))


runner = CliRunner()


def test_cli_grade_prints_the_exact_json(tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"age": 35, "hb_g_l": 60, "conditions": ["hiv"]}),
                        encoding="utf-8")
    out = runner.invoke(app, ["grade", "--findings", str(findings), "--lang", "en"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert list(data) == ["colour", "purple", "reasons", "management"]
    assert (data["colour"], data["purple"]) == ("orange", True)
    assert data["reasons"] == [
        {"code": "severe_anaemia_hb_40_60", "colour": "orange",
         "text": "Severe anaemia, haemoglobin 40–60 g/L"},
        {"code": "advanced_maternal_age", "colour": "yellow", "text": "Age 35 years or over"},
        {"code": "hiv", "colour": "purple", "text": "HIV infection or AIDS"},
    ]
    assert data["management"][0]["code"] == "high_risk_case_management"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"age": 3, "platelets_1e9_l": -5}, "platelets_1e9_l"),
        ({"conditions": ["unknown_thing"]}, "unknown_thing"),
        ("not json", "JSON"),
    ],
)
def test_cli_grade_bad_input_exits_2(tmp_path: Path, content: object, message: str) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(content if isinstance(content, str) else json.dumps(content),
                        encoding="utf-8")
    out = runner.invoke(app, ["grade", "--findings", str(findings)])
    assert out.exit_code == 2
    assert message in out.output


def test_cli_grade_other_table_and_date(tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"conditions": ["severe_preeclampsia"]}), encoding="utf-8")
    out = runner.invoke(app, ["grade", "--findings", str(findings),
                              "--family", "example-six-colour", "--on", "2025-01-01"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["colour"] == "pink"
    out = runner.invoke(app, ["grade", "--findings", str(findings),
                              "--on", "yesterday"])
    assert out.exit_code == 2


def test_cli_grade_batch(tmp_path: Path) -> None:
    source = tmp_path / "pregnancies.csv"
    pd.DataFrame({
        "id": ["a", "b", "c"],
        "age": [25, 41, 30],
        "height_cm": [160, None, 158],
        "weight_kg": [55, None, 50],
        "conditions": ["", "syphilis;asthma", "placental_abruption"],
    }).to_csv(source, index=False)
    output = tmp_path / "graded.csv"
    out = runner.invoke(app, ["grade-batch", "--input", str(source),
                              "--output", str(output)])
    assert out.exit_code == 0, out.output
    graded = pd.read_csv(output)
    assert graded["id"].tolist() == ["a", "b", "c"]
    assert graded["colour"].tolist() == ["green", "orange", "red"]
    assert graded["purple"].tolist() == [False, True, False]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"age": [3, 30]}).to_csv(bad, index=False)
    out = runner.invoke(app, ["grade-batch", "--input", str(bad),
                              "--output", str(output)])
    assert out.exit_code == 2
    assert "row 1" in out.output
