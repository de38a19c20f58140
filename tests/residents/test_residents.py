"""Resident registration, masking, audit of reads, duplicates and merges (SQLite + PostgreSQL)."""

import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduling"))
from booking_helpers import SECRET, id_number, load_small_county  # noqa: E402

from tiercare.auth.models import AuditEntry  # noqa: E402
from tiercare.auth.service import SYSTEM, Actor  # noqa: E402
from tiercare.errors import ConflictError, InputError, NotFoundError  # noqa: E402
from tiercare.residents.models import ResidentMerge  # noqa: E402
from tiercare.residents.service import (  # noqa: E402
    ResidentIn,
    find_by_identity,
    get_resident,
    list_residents,
    merge_residents,
    register_resident,
    resident_dict,
)

PLANNER = Actor(user_id=7, username="planner", role="planner", division_prefix="140725")
DOCTOR = Actor(user_id=8, username="doc", role="village_doctor", division_prefix="140725100201")


@pytest.fixture
def county(session):
    load_small_county(session)
    return session


def _in(number, **kw):
    base = {"name": "王芳", "identity_number": number, "village_code": "140725100201",
            "phone": "13800001234"}
    base.update(kw)
    return ResidentIn(**base)


def test_register_mask_and_audit(county):
    s = county
    number = id_number(124, born="19900101")
    r = register_resident(s, SYSTEM, _in(number, signed_staff_code="S1"), secret=SECRET)
    s.commit()
    assert r.sex == "F" and r.id_masked == "140725********" + number[-4:]
    assert r.id_digest != number and number not in r.id_digest
    assert resident_dict(r, PLANNER)["identity_number"] == r.id_masked
    assert resident_dict(r, PLANNER)["phone"] == "138****1234"
    assert resident_dict(r, DOCTOR)["identity_number"] == number
    got = get_resident(s, DOCTOR, r.id, purpose="visit")
    assert got.id == r.id
    assert find_by_identity(s, DOCTOR, number.lower(), secret=SECRET).id == r.id
    total, items = list_residents(s, DOCTOR)
    assert total == 1 and items[0]["identity_number"] == r.id_masked
    s.commit()
    actions = [a.action for a in s.scalars(select(AuditEntry).where(
        AuditEntry.entity == "resident").order_by(AuditEntry.id))]
    assert actions == ["create", "read", "read", "list"]
    # outside the doctor's village: not visible
    other = Actor(user_id=9, username="v2", role="village_doctor",
                  division_prefix="140725200201")
    with pytest.raises(NotFoundError):
        get_resident(s, other, r.id)


def test_bad_input_names_every_field(county):
    with pytest.raises(InputError) as err:
        register_resident(county, SYSTEM, _in("140725199002301234", sex="M",
                                               village_code="999999999999"), secret=SECRET)
    fields = {(p.field, p.code) for p in err.value.problems}
    assert ("village_code", "unknown_division") in fields
    assert any(f == "identity_number" for f, _ in fields)
    with pytest.raises(InputError) as err:
        register_resident(county, SYSTEM, _in(id_number(123), sex="F"), secret=SECRET)
    assert [p.field for p in err.value.problems] == ["sex"]


def test_duplicates_and_merge(county):
    s = county
    a = register_resident(s, SYSTEM, _in(id_number(124, born="19900101")), secret=SECRET)
    with pytest.raises(ConflictError) as err:
        register_resident(s, SYSTEM, _in(id_number(124, born="19900101")), secret=SECRET)
    assert err.value.reason == "duplicate_identity"
    # same name, birth date and village, other number: possible duplicate
    with pytest.raises(ConflictError) as err:
        register_resident(s, SYSTEM, _in(id_number(126, born="19900101")), secret=SECRET)
    assert err.value.reason == "possible_duplicate"
    b = register_resident(s, SYSTEM, _in(id_number(126, born="19900101"), allow_similar=True),
                          secret=SECRET)
    s.commit()
    kept = merge_residents(s, SYSTEM, keep_id=a.id, merge_id=b.id, reason="same person")
    s.commit()
    assert kept.id == a.id
    merged = s.get(type(b), b.id)
    assert merged.active is False and merged.merged_into_id == a.id
    assert s.scalar(select(ResidentMerge)).reason == "same person"
    with pytest.raises(ConflictError):
        merge_residents(s, SYSTEM, keep_id=a.id, merge_id=b.id, reason="again")
