"""CLI shape and exit codes; FHIR mapping validated by fhir.resources."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.immunization import Immunization
from typer.testing import CliRunner

from tiercare.cli import app
from tiercare.errors import InputError
from tiercare.immunization.fhir import (
    VACCINE_SYSTEM,
    dose_from_immunization,
    immunization_resource,
    recommendation_resource,
)
from tiercare.immunization.forecast import Child, HistoryDose, forecast

D = dt.date.fromisoformat
runner = CliRunner()


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "child.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_cli_forecast_shape(tmp_path: Path) -> None:
    child = {"birth_date": "2025-01-10", "sex": "F", "mother_hbsag": "negative",
             "birth_weight_g": 3100,
             "history": [{"vaccine": "HepB", "date": "2025-01-10"},
                         {"vaccine": "BCG", "date": "2025-01-11"},
                         {"vaccine": "HepB", "date": "2025-01-20"}]}
    out = runner.invoke(app, ["immunization", "forecast", "--child", str(write(tmp_path, child)),
                              "--as-of", "2025-03-10"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert list(data) == ["as_of", "schedule_version", "series", "invalid_doses"]
    assert data["as_of"] == "2025-03-10" and data["schedule_version"] == "NIP-2025-DTaP"
    assert data["series"][0] == {"vaccine": "HepB", "next_dose": 2, "status": "due",
                                 "earliest": "2025-02-10", "overdue_after": None}
    assert all(list(s) == ["vaccine", "next_dose", "status", "earliest", "overdue_after"]
               for s in data["series"])
    assert [(d["index"], d["reason"]) for d in data["invalid_doses"]] == [(2, "min_age")]


@pytest.mark.parametrize(("history", "field"), [
    ([{"vaccine": "HepC", "date": "2025-01-10"}], "history[0].vaccine"),
    ([{"vaccine": "HepB", "date": "2025-02-30"}], "history[0].date"),
    ([{"vaccine": "HepB", "date": "2024-12-31"}], "history[0].date"),
])
def test_cli_bad_input_exits_2(tmp_path: Path, history: list[dict[str, str]], field: str) -> None:
    path = write(tmp_path, {"birth_date": "2025-01-10", "history": history})
    out = runner.invoke(app, ["immunization", "forecast", "--child", str(path),
                              "--as-of", "2025-03-10"])
    assert out.exit_code == 2
    assert field in out.output


def test_cli_bad_as_of_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, {"birth_date": "2025-01-10", "history": []})
    out = runner.invoke(app, ["immunization", "forecast", "--child", str(path),
                              "--as-of", "10/03/2025"])
    assert out.exit_code == 2 and "as_of" in out.output


def test_cli_fhir_output(tmp_path: Path) -> None:
    path = write(tmp_path, {"birth_date": "2025-01-10", "history": []})
    out = runner.invoke(app, ["immunization", "forecast", "--child", str(path), "--as-of",
                              "2025-03-10", "--fhir", "--patient", "Patient/7"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["resourceType"] == "ImmunizationRecommendation"
    assert data["patient"] == {"reference": "Patient/7"}


def test_recommendation_date_criteria() -> None:
    child = Child(birth_date=D("2022-01-15"), history=(HistoryDose("HepB", D("2022-01-15")),))
    result = forecast(child, as_of=D("2023-03-01"))
    resource = recommendation_resource(result, patient_reference="Patient/1")
    again = type(resource).model_validate(resource.model_dump(mode="json"))
    recs = {r.series: r for r in again.recommendation}
    assert len(recs) == len(result.series)
    mmr = recs["MMR"]
    assert mmr.doseNumberPositiveInt == 1
    criteria = {c.code.coding[0].code: str(c.value) for c in mmr.dateCriterion}
    assert criteria == {"30981-5": "2022-09-15", "30980-7": "2022-09-15",
                        "59778-1": "2023-01-15"}  # overdue from the day after 2023-01-14
    assert {c.code for c in mmr.forecastStatus.coding} == {"overdue"}
    assert recs["HepB"].dateCriterion is not None and len(recs["HepB"].dateCriterion) == 2
    assert recs["JE-I"].dateCriterion is None
    assert recs["JE-I"].forecastStatus.coding[0].code == "not_applicable"


def test_immunization_round_trip() -> None:
    dose = HistoryDose("MMR", D("2024-02-01"))
    resource = immunization_resource(dose, patient_reference="Patient/9", dose_number=1,
                                     lot_number="L42")
    assert resource.status == "completed"
    assert resource.vaccineCode.coding[0].system == VACCINE_SYSTEM
    assert resource.protocolApplied[0].doseNumberPositiveInt == 1
    assert dose_from_immunization(resource) == dose
    assert dose_from_immunization(resource.model_dump(mode="json")) == dose
    stamped = resource.model_dump(mode="json")
    stamped["occurrenceDateTime"] = "2024-02-01T23:30:00+08:00"
    assert dose_from_immunization(stamped) == dose


def test_immunization_refused_when_not_a_given_dose() -> None:
    data = immunization_resource(HistoryDose("MMR", D("2024-02-01")),
                                 patient_reference="Patient/9").model_dump(mode="json")
    data["status"] = "not-done"
    data["vaccineCode"]["coding"][0]["code"] = "Polio9"
    with pytest.raises(InputError) as info:
        dose_from_immunization(Immunization.model_validate(data))
    assert {p.field for p in info.value.problems} == {"status", "vaccineCode"}
    with pytest.raises(InputError):
        dose_from_immunization({"resourceType": "Immunization", "status": "completed"})
    data = immunization_resource(HistoryDose("MMR", D("2024-02-01")),
                                 patient_reference="Patient/9").model_dump(mode="json")
    data["occurrenceDateTime"] = "2024-02"
    with pytest.raises(InputError, match="full date"):
        dose_from_immunization(data)
