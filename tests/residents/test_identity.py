"""GB 11643-1999 identity numbers against an independent ISO 7064 MOD 11-2 implementation."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.identity import (
    check_character,
    identity_digest,
    identity_problems,
    mask_identity_number,
    parse_identity_number,
)


def iso7064_check(first17: str) -> str:
    """ISO 7064 MOD 11-2: weights 2^(17-i) mod 11, check value (12 - sum) mod 11."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def make(first17: str) -> str:
    return first17 + iso7064_check(first17)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
@settings(max_examples=200)
def test_check_character_matches_iso7064(first17):
    assert check_character(first17) == iso7064_check(first17)


def test_published_example():
    ident = parse_identity_number("11010519491231002x")
    assert ident.number == "11010519491231002X"
    assert ident.birth_date == date(1949, 12, 31)
    assert ident.sex == "F"
    assert ident.address_code == "110105"
    assert ident.masked == "110105********002X"


def test_sex_from_sequence():
    assert parse_identity_number(make("14072519900101123")).sex == "M"
    assert parse_identity_number(make("14072519900101124")).sex == "F"


@pytest.mark.parametrize(("text", "code"), [
    ("14072519900101123", "bad_format"),
    ("1407251990010112345", "bad_format"),
    ("14072519900101123Y", "bad_format"),
    (make("14072519900230123"), "impossible_birth_date"),
    (make("14072518000101123"), "impossible_birth_date"),
    (make("14072530000101123"), "future_birth_date"),
])
def test_reasons(text, code):
    problems = identity_problems(text, today=date(2026, 11, 23))
    assert code in [p.code for p in problems]
    with pytest.raises(InputError) as err:
        parse_identity_number(text, today=date(2026, 11, 23))
    assert err.value.problems[0].field == "identity_number"


def test_bad_check_digit_every_wrong_character():
    good = make("14072519900101123")
    for wrong in "0123456789X":
        if wrong == good[-1]:
            continue
        codes = [p.code for p in identity_problems(good[:-1] + wrong)]
        assert codes == ["bad_check_digit"]


def test_future_and_bad_check_reported_together():
    text = "14072530000101123" + ("0" if iso7064_check("14072530000101123") != "0" else "1")
    codes = {p.code for p in identity_problems(text, today=date(2026, 1, 1))}
    assert codes == {"future_birth_date", "bad_check_digit"}


def test_mask_and_digest():
    number = make("14072519900101123")
    assert mask_identity_number(number) == "140725********" + number[-4:]
    a = identity_digest(number, secret="k1")
    assert a == identity_digest(number.lower(), secret="k1")
    assert a != identity_digest(number, secret="k2")
    assert number not in a and len(a) == 64
