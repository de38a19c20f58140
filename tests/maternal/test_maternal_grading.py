"""Pregnancy risk grading, case by case from the assessment table (DOMAIN.md §5)."""

from __future__ import annotations

from typing import Any

import pytest

from tiercare.errors import InputError
from tiercare.maternal.criteria import load_table
from tiercare.maternal.grading import compute_bmi, grade

TABLE = load_table()

ISSUE_CODES = {
    "scarred_uterus": "yellow",
    "central_placenta_praevia": "yellow",
    "suspected_placenta_accreta": "yellow",
    "pernicious_placenta_praevia": "red",
    "placental_abruption": "red",
    "assisted_reproduction": "yellow",
    "gestational_hypertension": "yellow",
    "severe_preeclampsia": "orange",
    "chronic_hypertension_with_preeclampsia": "orange",
    "asthma": "orange",
    "diabetes_no_drugs": "yellow",
    "diabetes_on_drugs": "orange",
    "thyroid_disease_no_drugs": "yellow",
    "thyroid_disease_on_drugs": "orange",
    "hbv_carrier_normal_liver": "yellow",
    "rh_incompatibility": "orange",
    "cardiomyopathy": "red",
    "generalised_epilepsy": "red",
    "drug_abuse": "red",
    "malignancy_found_in_pregnancy": "red",
    "thromboembolic_disease": "red",
    "aplastic_anaemia": "red",
    "syphilis": "purple",
    "hiv": "purple",
    "active_viral_hepatitis": "purple",
    "tuberculosis": "purple",
    "severe_infectious_pneumonia": "purple",
    "twin_pregnancy": "yellow",
    "fever_of_unknown_cause": "orange",
    "macrosomia": "yellow",
    "fetal_growth_restriction": "yellow",
}


def codes(findings: dict[str, Any]) -> tuple[str, list[str]]:
    result = grade(findings, table=TABLE)
    return result.colour, [r.code for r in result.reasons]


@pytest.mark.parametrize(("code", "colour"), sorted(ISSUE_CODES.items()))
def test_every_issue_code_exists_with_its_colour(code: str, colour: str) -> None:
    assert TABLE.by_code[code].colour == colour
    result = grade({"conditions": [code]}, table=TABLE)
    assert [r.code for r in result.reasons] == [code]
    if colour == "purple":
        assert (result.colour, result.purple) == ("green", True)
    else:
        assert (result.colour, result.purple) == (colour, False)


def test_every_criterion_has_both_languages_and_a_valid_colour() -> None:
    for criterion in TABLE.criteria:
        assert criterion.zh and criterion.en
        assert criterion.colour in {"yellow", "orange", "red", "purple"}


def test_green_when_nothing_is_found() -> None:
    normal = {"age": 28, "bmi": 22.0, "hb_g_l": 125, "platelets_1e9_l": 210,
              "pulmonary_artery_pressure_mmhg": 22, "nyha_class": 1,
              "ejection_fraction_pct": 62, "fetuses": 1, "previous_uterine_surgeries": 0,
              "abortions": 1, "creatinine_ratio_to_uln": 0.7, "conditions": []}
    result = grade(normal, table=TABLE)
    assert (result.colour, result.purple, result.reasons) == ("green", False, ())
    assert [m.code for m in result.management] == ["routine_antenatal_care"]
    assert grade({}, table=TABLE).colour == "green"


@pytest.mark.parametrize(
    ("findings", "colour", "reasons"),
    [
        # age: "≥ 35 or ≤ 18" yellow, "≥ 40" orange
        ({"age": 34.9}, "green", []),
        ({"age": 35}, "yellow", ["advanced_maternal_age"]),
        ({"age": 39.9}, "yellow", ["advanced_maternal_age"]),
        ({"age": 40}, "orange", ["age_40_or_over"]),
        ({"age": 18}, "yellow", ["adolescent_pregnancy"]),
        ({"age": 18.5}, "green", []),
        # BMI: "> 25 or < 18.5" yellow, "≥ 28" orange
        ({"bmi": 25}, "green", []),
        ({"bmi": 25.1}, "yellow", ["overweight_bmi"]),
        ({"bmi": 27.9}, "yellow", ["overweight_bmi"]),
        ({"bmi": 28}, "orange", ["obesity_bmi_28"]),
        ({"bmi": 18.5}, "green", []),
        ({"bmi": 18.4}, "yellow", ["underweight_bmi"]),
        # Hb: 60–110 yellow (both ends out), 40–60 orange (60 in), ≤ 40 red
        ({"hb_g_l": 110}, "green", []),
        ({"hb_g_l": 109.9}, "yellow", ["anaemia_hb_60_110"]),
        ({"hb_g_l": 60.1}, "yellow", ["anaemia_hb_60_110"]),
        ({"hb_g_l": 60}, "orange", ["severe_anaemia_hb_40_60"]),
        ({"hb_g_l": 40.1}, "orange", ["severe_anaemia_hb_40_60"]),
        ({"hb_g_l": 40}, "red", ["very_severe_anaemia_hb_40"]),
        # platelets: 50–100 yellow (50 in, 100 out), 30–50 orange (30 in), < 30 red
        ({"platelets_1e9_l": 100}, "green", []),
        ({"platelets_1e9_l": 99.9}, "yellow", ["thrombocytopenia_50_100"]),
        ({"platelets_1e9_l": 50}, "yellow", ["thrombocytopenia_50_100"]),
        ({"platelets_1e9_l": 49.9}, "orange", ["thrombocytopenia_30_50"]),
        ({"platelets_1e9_l": 30}, "orange", ["thrombocytopenia_30_50"]),
        ({"platelets_1e9_l": 29.9}, "red", ["thrombocytopenia_under_30"]),
        # pulmonary artery pressure: mild (30 to < 50) orange, ≥ 50 red
        ({"pulmonary_artery_pressure_mmhg": 29.9}, "green", []),
        ({"pulmonary_artery_pressure_mmhg": 30}, "orange", ["mild_pulmonary_hypertension"]),
        ({"pulmonary_artery_pressure_mmhg": 49.9}, "orange", ["mild_pulmonary_hypertension"]),
        ({"pulmonary_artery_pressure_mmhg": 50}, "red", ["severe_pulmonary_hypertension"]),
        # heart: NYHA II or EF 40–50 % orange
        ({"nyha_class": 1, "ejection_fraction_pct": 50.1}, "green", []),
        ({"nyha_class": 2}, "orange", ["heart_disease_mild_dysfunction"]),
        ({"ejection_fraction_pct": 50}, "orange", ["heart_disease_mild_dysfunction"]),
        ({"ejection_fraction_pct": 40}, "orange", ["heart_disease_mild_dysfunction"]),
        # fetuses: 2 twin (yellow), ≥ 3 orange
        ({"fetuses": 1}, "green", []),
        ({"fetuses": 2}, "yellow", ["twin_pregnancy"]),
        ({"fetuses": 3}, "orange", ["triplets_or_more"]),
        # uterine surgery
        ({"previous_uterine_surgeries": 1}, "yellow", ["scarred_uterus"]),
        ({"previous_uterine_surgeries": 2}, "orange",
         ["two_or_more_uterine_surgeries", "scarred_uterus"]),
        ({"previous_uterine_surgeries": 1, "months_since_uterine_surgery": 17.9}, "orange",
         ["scarred_uterus_within_18_months", "scarred_uterus"]),
        ({"previous_uterine_surgeries": 1, "months_since_uterine_surgery": 18}, "yellow",
         ["scarred_uterus"]),
        ({"months_since_uterine_surgery": 6}, "green", []),
        ({"months_since_uterine_surgery": 6, "conditions": ["scarred_uterus"]}, "orange",
         ["scarred_uterus_within_18_months", "scarred_uterus"]),
        # abortions ≥ 3 yellow
        ({"abortions": 2}, "green", []),
        ({"abortions": 3}, "yellow", ["three_or_more_abortions"]),
        # creatinine: over ULN to 1.5× orange, > 1.5× red
        ({"creatinine_ratio_to_uln": 1.0}, "green", []),
        ({"creatinine_ratio_to_uln": 1.5}, "orange", ["ckd_compensated_renal_insufficiency"]),
        ({"creatinine_ratio_to_uln": 1.51}, "red", ["renal_insufficiency_creatinine_1_5_uln"]),
    ],
)
def test_numeric_boundaries(findings: dict[str, Any], colour: str, reasons: list[str]) -> None:
    assert codes(findings) == (colour, reasons)


@pytest.mark.parametrize(
    ("height", "weight", "bmi", "colour"),
    [
        # 64 / 1.6² = 25.0 -> not > 25 -> green
        (160, 64, 25.0, "green"),
        # 64.1 / 2.56 = 25.04 -> rounded 25.0 -> green
        (160, 64.1, 25.0, "green"),
        # 65 / 2.56 = 25.39 -> 25.4 -> yellow
        (160, 65, 25.4, "yellow"),
        # 71.7 / 2.56 = 28.008 -> 28.0 -> orange
        (160, 71.7, 28.0, "orange"),
        # 45 / 1.6² = 17.58 -> 17.6 -> yellow (under 18.5)
        (160, 45, 17.6, "yellow"),
    ],
)
def test_bmi_from_height_and_weight(height: float, weight: float, bmi: float,
                                    colour: str) -> None:
    assert compute_bmi(height, weight) == bmi
    assert grade({"height_cm": height, "weight_kg": weight}, table=TABLE).colour == colour


def test_combinations() -> None:
    # scarred uterus with central placenta praevia: orange, and both parts listed (yellow)
    assert codes({"conditions": ["scarred_uterus", "central_placenta_praevia"]}) == (
        "orange",
        ["scarred_uterus_with_central_placenta_praevia", "scarred_uterus",
         "central_placenta_praevia"],
    )
    # the scar can come from the surgery count
    assert codes({"previous_uterine_surgeries": 1,
                  "conditions": ["suspected_placenta_accreta"]})[0] == "orange"
    # highest colour wins; reasons highest first
    assert codes({"age": 36, "conditions": ["asthma", "macrosomia"]}) == (
        "orange", ["asthma", "advanced_maternal_age", "macrosomia"])
    # a twin asserted and implied by fetuses = 2 is one reason
    assert codes({"fetuses": 2, "conditions": ["twin_pregnancy"]}) == (
        "yellow", ["twin_pregnancy"])
    # a red among many
    assert codes({"age": 41, "bmi": 30, "hb_g_l": 100,
                  "conditions": ["placental_abruption", "diabetes_on_drugs"]})[0] == "red"


def test_purple_with_red() -> None:
    result = grade({"conditions": ["hiv", "cardiomyopathy", "asthma"]}, table=TABLE)
    assert result.colour == "red"
    assert result.purple is True
    assert [(r.code, r.colour) for r in result.reasons] == [
        ("cardiomyopathy", "red"), ("asthma", "orange"), ("hiv", "purple")]
    management = [(m.code, m.colour) for m in result.management]
    assert management[:6] == [(code, "red") for code in TABLE.management["red"]]
    assert management[6:] == [("infectious_disease_management", "purple"), ("pmtct", "purple")]
    assert len({code for code, _ in management}) == len(management)


def test_purple_alone_keeps_the_ranked_colour() -> None:
    result = grade({"age": 37, "conditions": ["tuberculosis"]}, table=TABLE)
    assert (result.colour, result.purple) == ("yellow", True)
    assert [m.code for m in result.management] == [
        "care_at_secondary_or_higher", "transfer_to_tertiary_if_abnormal",
        "high_risk_case_management", "infectious_disease_management", "pmtct"]


def test_management_by_colour() -> None:
    assert [m.code for m in grade({"conditions": ["asthma"]}, table=TABLE).management] == list(
        TABLE.management["orange"])
    red = [m.code for m in grade({"conditions": ["drug_abuse"]}, table=TABLE).management]
    assert "tertiary_assessment_asap" in red


def test_texts_in_chinese_by_default_and_english() -> None:
    zh = grade({"age": 40}, table=TABLE)
    en = grade({"age": 40}, table=TABLE, language="en")
    assert zh.reasons[0].text == "年龄≥40岁"
    assert en.reasons[0].text == "Age 40 years or over"
    assert en.management[0].text.startswith("High-risk case management")
    with pytest.raises(InputError) as info:
        grade({}, table=TABLE, language="fr")
    assert info.value.problems[0].field == "language"


def test_to_dict_shape() -> None:
    data = grade({"conditions": ["syphilis"], "age": 19}, table=TABLE).to_dict()
    assert list(data) == ["colour", "purple", "reasons", "management"]
    assert data["reasons"] == [{"code": "syphilis", "colour": "purple", "text": "梅毒"}]
    assert all(set(m) == {"code", "colour", "text"} for m in data["management"])


@pytest.mark.parametrize(
    ("findings", "field"),
    [
        ({"age": 3}, "age"),
        ({"platelets_1e9_l": -5}, "platelets_1e9_l"),
        ({"bmi": 200}, "bmi"),
        ({"height_cm": 100, "weight_kg": 200}, "bmi"),  # computed BMI 200
        ({"bmi": 22, "height_cm": 160, "weight_kg": 80}, "bmi"),  # 31.2 vs 22
        ({"height_cm": 160}, "weight_kg"),
        ({"fetuses": 2.5}, "fetuses"),
        ({"nyha_class": 5}, "nyha_class"),
        ({"hb_g_l": "95"}, "hb_g_l"),
        ({"hb_g_l": True}, "hb_g_l"),
        ({"hb_g_l": float("nan")}, "hb_g_l"),
        ({"haemoglobin": 95}, "haemoglobin"),
        ({"conditions": ["covid_19"]}, "conditions"),
        ({"conditions": "asthma"}, "conditions"),
        ({"conditions": ["advanced_maternal_age"]}, "conditions"),
    ],
)
def test_bad_findings_refused_naming_the_field(findings: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        grade(findings, table=TABLE)
    assert [p.field for p in info.value.problems] == [field]


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(InputError) as info:
        grade({"age": 3, "platelets_1e9_l": -5, "bmi": 200, "conditions": ["nope", "hiv"]},
              table=TABLE)
    assert [p.field for p in info.value.problems] == [
        "age", "platelets_1e9_l", "bmi", "conditions"]
    assert "nope" in info.value.problems[-1].reason
    assert "3" in info.value.problems[0].reason


def test_none_means_not_given() -> None:
    assert grade({"age": None, "hb_g_l": None, "conditions": None}, table=TABLE).colour == "green"
