"""The booking request path over HTTP: who the token is, what one request writes or leaves.

Runs on SQLite and on PostgreSQL. The token → user → scope lookup is one joined query; it must
give the same actor (and the same refusals) as reading the user and then its scope. A booking
request commits its appointment, counter and audit row together, or nothing at all.
"""

from datetime import date, timedelta

import pytest
from booking_helpers import add_residents, add_schedule, load_small_county
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tiercare.auth.models import AuditEntry, User
from tiercare.auth.service import actor_for, actor_for_token, create_user, issue_token
from tiercare.config import Settings
from tiercare.errors import NotFoundError
from tiercare.residents.models import Resident
from tiercare.scheduling.models import Appointment, Slot
from tiercare.web.app import create_app


@pytest.fixture
def users(session):
    load_small_county(session)
    made = {
        "admin": create_user(session, username="admin", password="admin-pass-1", role="admin"),
        "desk": create_user(session, username="desk", password="desk-pass-1",
                            role="facility_staff", facility_code="H1"),
        "planner": create_user(session, username="planner", password="planner-pass",
                               role="planner", division_code="140725"),
    }
    tokens = {name: issue_token(session, user, hours=1) for name, user in made.items()}
    session.commit()
    return made, tokens


def test_token_gives_the_users_actor(session, users):
    made, tokens = users
    prefixes = set()
    for name, user in made.items():
        actor = actor_for_token(session, tokens[name])
        assert actor == actor_for(session, user)
        prefixes.add(actor.division_prefix)
    # three different scopes: everything, the hospital's township, the county
    assert len(prefixes) == 3 and "" in prefixes


def test_token_refusals(session, users):
    made, tokens = users
    with pytest.raises(NotFoundError, match="unknown token"):
        actor_for_token(session, tokens["desk"] + "x")
    expired = issue_token(session, made["desk"], hours=-1)
    session.commit()
    with pytest.raises(NotFoundError, match="token expired"):
        actor_for_token(session, expired)
    session.execute(update(User).where(User.id == made["desk"].id).values(active=False))
    session.commit()
    with pytest.raises(NotFoundError, match="user inactive"):
        actor_for_token(session, tokens["desk"])
    assert actor_for_token(session, tokens["admin"]).role == "admin"


@pytest.fixture
def api(db_url, engine, session, users):
    _, tokens = users
    residents = add_residents(session, 4)
    day = date.today() + timedelta(days=2)
    add_schedule(session, day=day, capacity=2, share=0.5, minutes=30, start="08:00",
                 end="09:00")
    slots = list(session.scalars(select(Slot).order_by(Slot.start)))
    app = create_app(Settings(database_url=db_url, secret_key="booking-api-secret"))
    with TestClient(app) as client:
        yield client, tokens, residents, slots
    app.state.engine.dispose()


def _count(session, model, *where):
    session.rollback()  # a fresh snapshot: see what the requests committed
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_booking_requests_commit_everything_or_nothing(api, session):
    client, tokens, residents, slots = api
    desk = {"Authorization": f"Bearer {tokens['desk']}"}
    # each slot: 2 places, 1 of them reserved for referrals -> 1 general place
    slot = next(s for s in slots if s.referral_capacity == 1)

    def post(resident, key):
        return client.post("/api/v1/appointments", headers={**desk, "Idempotency-Key": key},
                           json={"slot_id": slot.id, "resident_id": resident})

    won = post(residents[0], "api-test-0001")
    assert won.status_code == 201, won.text
    assert _count(session, Appointment) == 1
    assert _count(session, AuditEntry, AuditEntry.entity == "appointment",
                  AuditEntry.action == "create",
                  AuditEntry.entity_id == str(won.json()["id"])) == 1
    again = post(residents[0], "api-test-0001")
    assert again.status_code == 200 and again.json()["id"] == won.json()["id"]
    # the general place is gone: refused after the resident's row was locked, so the whole
    # transaction (lock counter included) must be rolled back
    before = session.scalar(select(Resident.lock_version).where(Resident.id == residents[1]))
    lost = post(residents[1], "api-test-0002")
    assert lost.status_code == 409 and lost.json()["detail"]["reason"] == "slot_full"
    assert session.scalar(select(Resident.lock_version)
                          .where(Resident.id == residents[1])) == before
    assert _count(session, Appointment) == 1
    assert _count(session, AuditEntry, AuditEntry.entity == "appointment",
                  AuditEntry.action == "create") == 1
    booked = session.scalar(select(Slot.booked).where(Slot.id == slot.id))
    assert booked == 1
    reused = post(residents[2], "api-test-0001")
    assert reused.status_code == 409
    assert reused.json()["detail"]["reason"] == "idempotency_key_reused"


def test_booking_request_authentication(api, session, users):
    client, tokens, residents, slots = api
    body = {"slot_id": slots[0].id, "resident_id": residents[0]}
    missing = client.post("/api/v1/appointments", json=body)
    assert missing.status_code == 401
    wrong = client.post("/api/v1/appointments", json=body,
                        headers={"Authorization": f"Bearer {tokens['desk']}x"})
    assert wrong.status_code == 401 and "unknown token" in wrong.json()["detail"]
    made, _ = users
    expired = issue_token(session, made["desk"], hours=-1)
    session.commit()
    late = client.post("/api/v1/appointments", json=body,
                       headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401 and "token expired" in late.json()["detail"]
    assert _count(session, Appointment) == 0


def test_booking_request_authenticates_before_validating_the_body(api, session, users):
    client, tokens, residents, slots = api
    bad_bodies = [{"slot_id": "first", "resident_id": residents[0]}, {}, [1, 2]]
    for body in bad_bodies:
        missing = client.post("/api/v1/appointments", json=body)
        assert missing.status_code == 401, missing.text
        assert missing.json() == {"detail": "not authenticated"}
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = client.post("/api/v1/appointments", json=body,
                            headers={"Authorization": f"Bearer {tokens['desk']}x"})
        assert wrong.status_code == 401 and "unknown token" in wrong.json()["detail"]
    not_json = client.post("/api/v1/appointments", content=b'{"slot_id": ',
                           headers={"Content-Type": "application/json"})
    assert not_json.status_code == 401
    desk = {"Authorization": f"Bearer {tokens['desk']}"}
    refused = client.post("/api/v1/appointments", headers=desk,
                          json={"slot_id": "first"})
    assert refused.status_code == 422
    problems = {p["field"]: p for p in refused.json()["detail"]}
    assert problems.keys() == {"slot_id", "resident_id"}
    assert problems["slot_id"]["code"] == "int_parsing" and problems["slot_id"]["row"] is None
    assert problems["resident_id"]["code"] == "missing" and problems["resident_id"]["reason"]
    assert _count(session, Appointment) == 0
    booked = client.post("/api/v1/appointments", headers=desk,
                         json={"slot_id": slots[0].id, "resident_id": residents[0]})
    assert booked.status_code == 201, booked.text
