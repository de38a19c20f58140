"""The module's pages through the HTTP client: vaccinator records a dose, manager, planner map,
work list slips, and a family looking up and booking, on both databases.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from immunization_helpers import SECRET, identity, setup
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.immunization.models import (
    Booking,
    Child,
    ImmunizationRecord,
    VaccinationSession,
)
from tiercare.immunization.releases import ReleaseIn, create_release
from tiercare.immunization.sites import SessionIn, open_session
from tiercare.web.app import create_app


@pytest.fixture
def client(db_url, engine, session):
    ids = setup(session, children=6)
    create_user(session, username="nurse", password="nurse-pass-1", role="facility_staff",
                facility_code="T1")
    open_session(session, SYSTEM, "VS1", SessionIn(on_date=dt.date.today() +
                                                   dt.timedelta(days=2)))
    session.commit()
    app = create_app(Settings(database_url=db_url, secret_key=SECRET))
    with TestClient(app) as test_client:
        test_client.ids = ids
        yield test_client
    app.state.engine.dispose()


def _login(client) -> None:
    r = client.post("/login", data={"username": "nurse", "password": "nurse-pass-1",
                                    "next": "/immunization"}, follow_redirects=False)
    assert r.status_code == 303


def test_immunization_pages_staff_and_family(client, session):
    assert client.get("/immunization/today", follow_redirects=False).status_code == 303
    _login(client)
    today = client.get("/immunization/today", params={"site": "VS1", "lang": "en"})
    assert today.status_code == 200 and "Due and overdue" in today.text
    cid = client.ids[0]
    page = client.get(f"/immunization/children/{cid}")
    assert page.status_code == 200 and 'id="record-dose"' in page.text
    posted = client.post(f"/immunization/children/{cid}/doses", data={
        "vaccine": "HepB", "dose_number": "1", "given_on": dt.date.today().isoformat(),
        "site_code": "VS1", "lot": "P1", "route": "IM", "body_site": "left_arm"})
    assert posted.status_code == 200 and "Recorded" in posted.text
    rec = session.scalar(select(ImmunizationRecord).where(ImmunizationRecord.child_id == cid))
    assert (rec.vaccine, rec.lot, rec.body_site) == ("HepB", "P1", "left_arm")
    bad = client.post(f"/immunization/children/{cid}/doses", data={
        "vaccine": "NOPE", "given_on": dt.date.today().isoformat(), "site_code": "VS1"})
    assert "unknown vaccine" in bad.text
    site = client.get("/immunization/sites/VS1")
    assert site.status_code == 200 and 'id="sessions"' in site.text
    slips = client.get("/immunization/worklist", params={"site": "VS1"})
    assert slips.status_code == 200 and slips.text.count('class="slip"') >= 1
    cov = client.get("/immunization/coverage", params={"vaccine": "HepB", "dose": "1"})
    assert cov.status_code == 200 and "<svg" in cov.text
    # the family page (no account)
    child = session.get(Child, client.ids[1])
    wrong = client.post("/immunization/family", data={"identity_number": child.id_number,
                                                      "guardian_phone": "13000000000"})
    assert wrong.status_code == 404
    view = client.post("/immunization/family", data={"identity_number": child.id_number,
                                                     "guardian_phone": child.guardian_phone,
                                                     "lang": "en"})
    assert view.status_code == 200 and 'id="family-book"' in view.text
    assert session.execute(select(Booking.id)).first() is None
    target = session.scalar(select(VaccinationSession))
    booked = client.post("/immunization/family/book", data={
        "identity_number": child.id_number, "guardian_phone": child.guardian_phone,
        "session_id": str(target.id), "vaccine": ["HepB"]})
    assert booked.status_code == 200, booked.text
    session.rollback()
    b = session.scalar(select(Booking))
    assert (b.child_id, b.vaccines, b.status) == (child.id, ["HepB"], "booked")
    # a scarce-vaccine release page under the public's eyes
    create_release(session, SYSTEM, ReleaseIn(
        code="HPV-P", vaccine="HPV", site_code="VS1", doses=1,
        opens_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    session.commit()
    page = client.get("/immunization/releases/HPV-P", params={"lang": "en"})
    assert page.status_code == 200 and "first come, first served" in page.text
    first = identity(dt.date(1990, 1, 1), 1, sex="F")
    one = client.post("/immunization/releases/HPV-P", data={"identity_number": first,
                                                            "action": "request"})
    two = client.post("/immunization/releases/HPV-P", data={
        "identity_number": identity(dt.date(1991, 1, 1), 1, sex="F"), "action": "request"})
    again = client.post("/immunization/releases/HPV-P", data={"identity_number": first,
                                                              "action": "request"})
    mine = client.post("/immunization/releases/HPV-P", data={"identity_number": first,
                                                             "action": "status"})
    assert "Confirmed" in one.text and "On the waiting list" in two.text
    assert again.status_code == 409 and "already_requested" in again.text
    assert "Confirmed" in mine.text and "place 1" in mine.text
