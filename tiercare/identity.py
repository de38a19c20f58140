"""Resident identity numbers (GB 11643-1999): validation, masking and keyed look-up digests.

An 18-character number is a 6-digit address code, an 8-digit birth date ``YYYYMMDD``, a 3-digit
sequence (odd = male, even = female) and a check character. The check character is computed from
the first 17 digits :math:`d_1 … d_{17}` with the weights :math:`w = (7, 9, 10, 5, 8, 4, 2, 1, 6,
3, 7, 9, 10, 5, 8, 4, 2)`:

.. math:: r = \\Big(\\sum_{i=1}^{17} w_i d_i\\Big) \\bmod 11,

and ``r = 0 … 10`` maps to ``1 0 X 9 8 7 6 5 4 3 2``.

The number is personal information. TierCare stores three things: the masked form (shown in
lists), a keyed HMAC-SHA256 digest (for exact look-up and duplicate detection without reading the
number) and the number itself in a separate column that only roles allowed to see identifiers get.

Examples
--------
>>> check_character("11010519491231002")
'X'
>>> parse_identity_number("11010519491231002X").sex
'F'
>>> mask_identity_number("140725199001011234")
'140725********1234'
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date

from tiercare.errors import InputError, Problem

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
_FORMAT = re.compile(r"^\d{17}[\dX]$")
#: Earliest birth year accepted (anything before is a typing error, not a resident).
EARLIEST_BIRTH_YEAR = 1880


@dataclass(frozen=True)
class IdentityNumber:
    """A validated resident identity number and what it encodes.

    Attributes
    ----------
    number:
        The 18 characters, check character upper-case.
    address_code:
        The 6-digit address code (county of first registration).
    birth_date:
        Date of birth encoded in the number.
    sex:
        ``"M"`` (odd sequence) or ``"F"`` (even sequence).
    """

    number: str
    address_code: str
    birth_date: date
    sex: str

    @property
    def masked(self) -> str:
        """The masked form, e.g. ``140725********1234``."""
        return mask_identity_number(self.number)


def check_character(first17: str) -> str:
    """The GB 11643-1999 check character of the first 17 digits.

    Parameters
    ----------
    first17:
        Exactly 17 decimal digits.

    Returns
    -------
    str
        One of ``0-9`` or ``X``.
    """
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def identity_problems(text: str, *, today: date | None = None,
                      field: str = "identity_number", row: int | None = None) -> list[Problem]:
    """Every reason ``text`` is not a valid identity number (empty list when valid).

    Codes: ``bad_format`` (not 17 digits + digit/X), ``impossible_birth_date`` (e.g. 19900230),
    ``future_birth_date`` (after ``today``), ``bad_check_digit``.
    """
    today = today or date.today()
    value = text.strip().upper()
    if not _FORMAT.match(value):
        return [Problem(reason=f"'{text}' is not 17 digits followed by a digit or X "
                        f"({len(value)} characters)", field=field, row=row, code="bad_format")]
    problems: list[Problem] = []
    digits = value[6:14]
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        problems.append(Problem(reason=f"birth date {digits} does not exist", field=field,
                                row=row, code="impossible_birth_date"))
    else:
        if born > today:
            problems.append(Problem(reason=f"birth date {born.isoformat()} is in the future",
                                    field=field, row=row, code="future_birth_date"))
        elif born.year < EARLIEST_BIRTH_YEAR:
            problems.append(Problem(reason=f"birth date {born.isoformat()} is before "
                                    f"{EARLIEST_BIRTH_YEAR}", field=field, row=row,
                                    code="impossible_birth_date"))
    expected = check_character(value[:17])
    if value[17] != expected:
        problems.append(Problem(reason=f"check character is {value[17]}, expected {expected}",
                                field=field, row=row, code="bad_check_digit"))
    return problems


def parse_identity_number(text: str, *, today: date | None = None,
                          field: str = "identity_number", row: int | None = None
                          ) -> IdentityNumber:
    """Validate ``text`` and return what it encodes.

    Raises
    ------
    InputError
        With every problem found (format, birth date, check character).
    """
    problems = identity_problems(text, today=today, field=field, row=row)
    if problems:
        raise InputError(problems)
    value = text.strip().upper()
    digits = value[6:14]
    return IdentityNumber(
        number=value,
        address_code=value[:6],
        birth_date=date(int(digits[:4]), int(digits[4:6]), int(digits[6:])),
        sex="M" if int(value[16]) % 2 == 1 else "F",
    )


def mask_identity_number(number: str) -> str:
    """Keep the address code and the last four characters: ``140725********1234``."""
    value = number.strip().upper()
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def identity_digest(number: str, *, secret: str) -> str:
    """Keyed HMAC-SHA256 digest (hex) of a normalised number, for look-ups and duplicates.

    Without the secret key the digest cannot be reversed by enumerating the (small) space of
    valid numbers, unlike a plain hash.
    """
    value = number.strip().upper()
    return hmac.new(secret.encode(), b"gb11643:" + value.encode(), hashlib.sha256).hexdigest()
