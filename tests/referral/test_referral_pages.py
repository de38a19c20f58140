"""Every referral / appointment page renders with data, and the forms drive the workflow."""

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from referral_helpers import add_residents, load_small_county
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.referral.models import Referral
from tiercare.scheduling.service import ScheduleIn, SessionIn, create_schedule, generate_slots
from tiercare.web.app import create_app


@pytest.fixture
def app_client(db_url, engine, session):
    load_small_county(session)
    add_residents(session, 3)
    day = date.today() + timedelta(days=2)
    s = create_schedule(session, SYSTEM, ScheduleIn(
        facility_code="H1", department="神经内科", name="卒中门诊", capacity_per_slot=2,
        weekly=[SessionIn(weekday=d, start="08:00", end="09:00") for d in range(7)],
        effective_from=date.today() - timedelta(days=1), follows_holidays=False))
    generate_slots(session, SYSTEM, s.id, start=day, end=day)
    for name, role, fac in (("doc", "village_doctor", "V1"), ("desk", "facility_staff", "H1"),
                            ("centre", "facility_staff", "T1")):
        create_user(session, username=name, password=f"{name}-pass-1", role=role,
                    facility_code=fac)
    create_user(session, username="boss", password="boss-pass-1", role="admin")
    session.commit()
    app = create_app(Settings(database_url=db_url, secret_key="pages-secret"))
    with TestClient(app) as c:
        yield c, day
    app.state.engine.dispose()


def _login(client, name):
    client.cookies.clear()
    r = client.post("/login", data={"username": name, "password": f"{name}-pass-1"},
                    follow_redirects=False)
    assert r.status_code == 303


def test_pages_flow(app_client, session):
    client, day = app_client
    _login(client, "doc")
    form = client.get("/referrals/new", params={"resident_id": 1, "service_code": "stroke"})
    assert form.status_code == 200 and "县人民医院" in form.text and "suggestions" in form.text
    sent = client.post("/referrals/new", data={
        "resident_id": "1", "to_facility_code": "H1", "urgency": "urgent",
        "reason": "疑似卒中", "criteria": ["stroke_4_5h"], "department": "神经内科",
        "attachment_text": "NIHSS 6"}, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    rid = int(re.search(r"/referrals/(\d+)", sent.headers["location"]).group(1))
    bad = client.post("/referrals/new", data={"resident_id": "1", "to_facility_code": "V2",
                                              "reason": "x"})
    assert bad.status_code == 422 and "higher tier" in bad.text
    number = session.get(Referral, rid).number
    session.rollback()
    assert number in client.get("/referrals?box=outgoing").text
    _login(client, "desk")
    inbox = client.get("/referrals")
    assert inbox.status_code == 200 and number in inbox.text
    detail = client.get(f"/referrals/{rid}")
    assert "accept-form" in detail.text
    slot_id = re.search(r'name="slot_id" required><option value="(\d+)"', detail.text).group(1)
    done = client.post(f"/referrals/{rid}/accept-and-book", data={"slot_id": slot_id})
    assert done.status_code == 200 and "scheduled" in done.text
    assert client.post(f"/referrals/{rid}/arrive").status_code == 200
    down = client.post(f"/referrals/{rid}/down-refer", data={
        "to_facility_code": "T1", "reason": "病情稳定", "criteria": ["stable"],
        "kind": "rehabilitation", "instructions": "康复训练", "interval_days": "14",
        "visits": "4"}, follow_redirects=False)
    assert down.status_code == 303
    assert "双向转诊单" in client.get(f"/referrals/{rid}/slip").text
    cal = client.get("/calendar", params={"facility": "H1", "day": day.isoformat()})
    assert cal.status_code == 200 and "checked_in" in cal.text
    assert client.get("/schedules").status_code == 200
    booking = client.get("/booking", params={"facility": "H1", "day": day.isoformat()})
    assert booking.status_code == 200 and 'name="slot_id"' in booking.text
    _login(client, "boss")
    board = client.get("/referrals/dashboard")
    assert board.status_code == 200 and "indicators" in board.text
    statuses = [r.status for r in session.scalars(select(Referral).order_by(Referral.id))]
    session.rollback()
    assert statuses == ["arrived", "requested"]
