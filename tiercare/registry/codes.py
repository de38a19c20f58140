"""Administrative division codes (GB/T 2260 and the NBS 12-digit statistical codes)."""

from __future__ import annotations

import re

from tiercare.registry.models import DIVISION_LEVELS

#: Significant digits of a code at each level.
LEVEL_DIGITS = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}
_DIGITS_LEVEL = {v: k for k, v in LEVEL_DIGITS.items()}
_CODE_RE = re.compile(r"^\d+$")
_SCIENTIFIC_RE = re.compile(r"^\d(\.\d+)?[eE][+]?\d+$")


def normalise_code(raw: str | int | float) -> str:
    """Return the 12-digit form of a division code given with 2, 4, 6, 9 or 12 digits.

    Raises
    ------
    ValueError
        When the code is not numeric or has another length.

    Examples
    --------
    >>> normalise_code("140725")
    '140725000000'
    >>> normalise_code(140725100.0)
    '140725100000'
    """
    text = str(raw).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if _SCIENTIFIC_RE.match(text):
        raise ValueError(f"division code '{raw}' is in scientific notation and has lost digits: "
                         "format the column as text in Excel and type the full code")
    if not _CODE_RE.match(text):
        raise ValueError(f"division code '{raw}' is not numeric")
    if len(text) not in _DIGITS_LEVEL:
        raise ValueError(f"division code '{raw}' must have 2, 4, 6, 9 or 12 digits")
    return text.ljust(12, "0")


def level_of(code12: str) -> str:
    """Level of a 12-digit code: the shortest prefix after which only zeros follow."""
    for level in DIVISION_LEVELS:
        digits = LEVEL_DIGITS[level]
        if set(code12[digits:]) <= {"0"}:
            return level
    return "village"


def prefix_of(code12: str) -> str:
    """Significant part of a 12-digit code (its subtree prefix)."""
    return code12[: LEVEL_DIGITS[level_of(code12)]]


def parent_code(code12: str) -> str | None:
    """12-digit code of the parent division, or None for a province.

    Municipalities and county-level units directly under a province keep a city level
    (e.g. ``419001`` → city ``419000``); the importer creates missing intermediate levels only
    when the file contains them.
    """
    level = level_of(code12)
    index = DIVISION_LEVELS.index(level)
    if index == 0:
        return None
    digits = LEVEL_DIGITS[DIVISION_LEVELS[index - 1]]
    return code12[:digits].ljust(12, "0")


def county_segment_kind(code12: str) -> str:
    """Kind of a county-level unit from its 5th–6th digits (district, county or city)."""
    segment = int(code12[4:6])
    if segment <= 20:
        return "district"
    if segment <= 80:
        return "county"
    return "county_level_city"
