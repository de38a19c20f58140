"""FHIR ``RiskAssessment`` (R4B, compatible with R4) for a pregnancy risk grade.

Mapping of a :class:`~tiercare.maternal.grading.GradeResult`:

================================  ==============================================================
RiskAssessment element            content
================================  ==============================================================
``status``                        ``final``
``subject``                       the woman (``Patient/…``)
``occurrenceDateTime``            when the grade was made
``code``                          ``pregnancy-risk-grading`` (TierCare code system)
``method``                        the assessment table, code ``<family>-<version>``
``prediction[0].qualitativeRisk`` the ranked colour (``green`` … ``red``)
``prediction[1].qualitativeRisk`` ``purple``, only when purple
``reasonCode[]``                  one per reason: criterion code and text, with the colour of
                                  the criterion as a second coding (colour system)
``mitigation``                    the management actions, joined
================================  ==============================================================

The code systems are TierCare's own (:data:`CODE_SYSTEM_BASE`); no national FHIR terminology
for the Chinese five-colour grading exists.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fhir.resources.R4B.riskassessment import RiskAssessment

from tiercare.errors import InputError
from tiercare.maternal.grading import GradeResult

__all__ = [
    "CODE_SYSTEM_BASE",
    "COLOUR_SYSTEM",
    "CRITERION_SYSTEM",
    "GRADING_CODE_SYSTEM",
    "TABLE_SYSTEM",
    "from_risk_assessment",
    "to_risk_assessment",
]

CODE_SYSTEM_BASE = "https://tiercare.example/fhir/CodeSystem"
"""Base of TierCare's code systems (a placeholder domain until the deployment names its own)."""
COLOUR_SYSTEM = f"{CODE_SYSTEM_BASE}/maternal-risk-colour"
CRITERION_SYSTEM = f"{CODE_SYSTEM_BASE}/maternal-risk-criterion"
TABLE_SYSTEM = f"{CODE_SYSTEM_BASE}/maternal-risk-table"
GRADING_CODE_SYSTEM = f"{CODE_SYSTEM_BASE}/assessment"

_TEXTS = {
    "zh": {"code": "孕产妇妊娠风险评估", "outcome": "妊娠风险分级", "purple": "传染性疾病",
           "joiner": "；"},
    "en": {"code": "Pregnancy risk grading", "outcome": "Pregnancy risk grade",
           "purple": "Infectious disease", "joiner": "; "},
}


def to_risk_assessment(
    result: GradeResult,
    *,
    subject: str,
    occurred_at: dt.datetime,
    resource_id: str | None = None,
    performer: str | None = None,
) -> RiskAssessment:
    """Map a grade to a validated FHIR ``RiskAssessment``.

    Parameters
    ----------
    result:
        The grade.
    subject:
        Reference to the woman, e.g. ``"Patient/42"``.
    occurred_at:
        When the grade was made (timezone-aware).
    resource_id:
        ``RiskAssessment.id``, if known.
    performer:
        Reference to the grading practitioner or organisation, if known.

    Returns
    -------
    fhir.resources.R4B.riskassessment.RiskAssessment
        Validated by ``fhir.resources``; ``.model_dump_json()`` gives the JSON.

    Raises
    ------
    InputError
        If ``occurred_at`` is naive or the resource does not validate.
    """
    if occurred_at.tzinfo is None:
        raise InputError.single("must carry a time zone", field="occurred_at")
    texts = _TEXTS["zh" if result.language.startswith("zh") else "en"]
    predictions: list[dict[str, Any]] = [{
        "outcome": {"text": texts["outcome"]},
        "qualitativeRisk": {"coding": [{"system": COLOUR_SYSTEM, "code": result.colour}],
                            "text": result.colour},
    }]
    if result.purple:
        predictions.append({
            "outcome": {"text": texts["purple"]},
            "qualitativeRisk": {"coding": [{"system": COLOUR_SYSTEM, "code": "purple"}],
                                "text": "purple"},
        })
    document: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": subject},
        "occurrenceDateTime": occurred_at.isoformat(),
        "code": {"coding": [{"system": GRADING_CODE_SYSTEM, "code": "pregnancy-risk-grading",
                             "display": texts["code"]}], "text": texts["code"]},
        "method": {"coding": [{"system": TABLE_SYSTEM,
                               "code": f"{result.table_family}-{result.table_version}"}]},
        "prediction": predictions,
        "reasonCode": [
            {"coding": [{"system": CRITERION_SYSTEM, "code": reason.code, "display": reason.text},
                        {"system": COLOUR_SYSTEM, "code": reason.colour}],
             "text": reason.text}
            for reason in result.reasons
        ],
        "mitigation": texts["joiner"].join(action.text for action in result.management),
    }
    if resource_id is not None:
        document["id"] = resource_id
    if performer is not None:
        document["performer"] = {"reference": performer}
    try:
        return RiskAssessment.model_validate(document)
    except ValueError as exc:
        raise InputError.single(f"RiskAssessment does not validate: {exc}",
                                field="risk_assessment") from exc


def from_risk_assessment(resource: RiskAssessment) -> tuple[str, bool, list[str]]:
    """Read back ``(colour, purple, reason codes)`` from a RiskAssessment made here.

    Parameters
    ----------
    resource:
        A resource produced by :func:`to_risk_assessment` (or following the same mapping).

    Returns
    -------
    tuple
        The ranked colour, the purple flag and the criterion codes in order.

    Raises
    ------
    InputError
        If the resource carries no colour prediction.
    """
    colours = [
        coding.code
        for prediction in resource.prediction or []
        if prediction.qualitativeRisk is not None
        for coding in prediction.qualitativeRisk.coding or []
        if coding.system == COLOUR_SYSTEM
    ]
    ranked = [c for c in colours if c != "purple"]
    if len(ranked) != 1:
        raise InputError.single("expected exactly one ranked colour prediction",
                                field="prediction")
    codes = [
        coding.code
        for reason in resource.reasonCode or []
        for coding in reason.coding or []
        if coding.system == CRITERION_SYSTEM
    ]
    return str(ranked[0]), "purple" in colours, [str(c) for c in codes]
