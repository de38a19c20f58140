"""The module's pages through the HTTP client: vaccinator records a dose, manager, planner map,
work list slips, and a family looking up and booking, on both databases.
"""

from __future__ import annotations

import datetime as dt
import html

import pytest
from fastapi.testclient import TestClient
from immunization_helpers import SECRET, identity, setup
from sqlalchemy import func, select

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.immunization.common import as_utc
from tiercare.immunization.models import (
    Booking,
    Child,
    ImmunizationRecord,
    Release,
    VaccinationSession,
)
from tiercare.immunization.releases import ReleaseIn, create_release
from tiercare.immunization.sites import BookingIn, SessionIn, book, open_session
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
    grouped = client.get("/immunization/coverage", params={"vaccine": "JE", "dose": "1"})
    assert grouped.status_code == 200 and "<option selected>JE</option>" in grouped.text
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


def _release_form(**changes: str) -> dict[str, str]:
    form = {"code": "HPV-W1", "vaccine": "HPV", "doses": "30", "opens_at": "2030-03-01T09:00",
            "closes_at": "", "mode": "arrival", "seed": "", "offer_hours": "24", "sex": "F",
            "min_age": "9", "max_age": "45"}
    return {**form, **changes}


def test_site_manager_creates_releases_from_the_page(client, session):
    """The manager's release form: each bad field named with its reason and nothing written;
    good forms create an arrival release and a lottery with a published seed (local times)."""

    def written() -> tuple[int, int]:
        session.rollback()
        return (session.scalar(select(func.count()).select_from(Release)),
                session.scalar(select(func.count()).select_from(AuditEntry)))

    _login(client)
    page = client.get("/immunization/sites/VS1")
    assert page.status_code == 200 and 'id="create-release"' in page.text
    assert "创建放号" in page.text  # Chinese first
    before = written()
    refused = {
        # text that is not a number or a time, a missing opening time
        "parse": (_release_form(doses="thirty", opens_at="", seed="x"),
                  {"doses": "不是整数", "opens_at": "必填项为空", "seed": "不是整数"}),
        # the model's bounds and choices
        "model": (_release_form(doses="0", mode="raffle", offer_hours="999"),
                  {"doses": "低于允许的最小值", "mode": "不在可选值中",
                   "offer_hours": "高于允许的最大值"}),
        # the eligibility rule: each problem on its own form field
        "eligibility": (_release_form(min_age="50", max_age="45"),
                        {"max_age": "最小年龄大于最大年龄"}),
        "ages": (_release_form(min_age="-1", max_age="121", sex="X"),
                 {"min_age": "低于允许的最小值", "max_age": "高于允许的最大值",
                  "sex": "不在可选值中"}),
        # the service's checks: catalogue, lottery closing time
        "service": (_release_form(vaccine="NOPE", mode="lottery", closes_at="2030-03-01T08:00"),
                    {"vaccine": "未知疫苗", "closes_at": "截止时间必须晚于放号时间"}),
    }
    for case, (form, expected) in refused.items():
        r = client.post("/immunization/sites/VS1/releases", data=form)
        text = html.unescape(r.text)
        assert r.status_code == 422, case
        assert "表单有误" in text, case
        for field, reason in expected.items():
            assert f'id="problem-{field}" role="alert">⚠ {reason}<' in text, (case, field)
        assert f'value="{form["code"]}"' in text  # the form keeps what was typed
        assert written() == before, case
    # the same reasons in English on the English page
    form, _ = refused["service"]
    r = client.post("/immunization/sites/VS1/releases?lang=en", data=form)
    text = html.unescape(r.text)
    assert r.status_code == 422 and "The form was refused" in text
    assert 'id="problem-vaccine" role="alert">⚠ Unknown vaccine<' in text
    assert 'id="problem-closes_at" role="alert">⚠ Must be after the opening time<' in text
    form, _ = refused["eligibility"]
    text = html.unescape(client.post("/immunization/sites/VS1/releases?lang=en", data=form).text)
    assert 'id="problem-max_age" role="alert">⚠ Minimum age above maximum age<' in text
    client.get("/immunization/sites/VS1?lang=zh-CN")
    # an arrival release, times in the site's local time (Asia/Shanghai, UTC+8)
    made = client.post("/immunization/sites/VS1/releases", data=_release_form(),
                       follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"].startswith(
        "/immunization/sites/VS1?msg=")
    session.rollback()
    first = session.scalar(select(Release).where(Release.code == "HPV-W1"))
    assert (first.vaccine, first.doses, first.mode, first.closes_at) == ("HPV", 30, "arrival",
                                                                          None)
    assert as_utc(first.opens_at) == dt.datetime(2030, 3, 1, 1, 0, tzinfo=dt.UTC)
    assert first.eligibility == {"sex": "F", "min_age": 9, "max_age": 45}
    # the same code again is refused, naming the field
    again = client.post("/immunization/sites/VS1/releases", data=_release_form(doses="5"))
    assert again.status_code == 422 and 'id="problem-code" role="alert">⚠ 编码重复<' in again.text
    # a lottery with a published seed, open to everyone
    lottery = client.post("/immunization/sites/VS1/releases", data=_release_form(
        code="HPV-L1", mode="lottery", closes_at="2030-03-03T18:00", seed="20300301",
        sex="", min_age="", max_age="", offer_hours="48"))
    assert lottery.status_code == 200 and "HPV-L1" in lottery.text
    session.rollback()
    drawn = session.scalar(select(Release).where(Release.code == "HPV-L1"))
    assert (drawn.mode, drawn.seed, drawn.offer_hours, drawn.eligibility) == (
        "lottery", 20300301, 48, {})
    assert as_utc(drawn.closes_at) == dt.datetime(2030, 3, 3, 10, 0, tzinfo=dt.UTC)
    assert written()[0] == before[0] + 2
    public = client.get("/immunization/releases/HPV-L1", params={"lang": "en"})
    assert public.status_code == 200 and "published lottery (seed 20300301)" in public.text
    # a planner sees the releases but may not create one
    create_user(session, username="planner", password="planner-pass-1", role="planner",
                division_code="140725")
    session.commit()
    client.get("/logout", follow_redirects=False)
    r = client.post("/login", data={"username": "planner", "password": "planner-pass-1",
                                    "next": "/immunization"}, follow_redirects=False)
    assert r.status_code == 303
    seen = client.get("/immunization/sites/VS1")
    assert seen.status_code == 200 and "HPV-L1" in seen.text
    assert 'id="create-release"' not in seen.text
    denied = client.post("/immunization/sites/VS1/releases",
                         data=_release_form(code="HPV-X"))
    assert denied.status_code == 403 and written()[0] == before[0] + 2


def test_reminders_page_and_export(client, session):
    """The reminders list through the page, the JSON API and CSV; masked phones for a role
    that does not see identifiers."""
    target = session.scalar(select(VaccinationSession))
    book(session, SYSTEM, BookingIn(session_id=target.id, vaccines=["HepB"],
                                    child_id=client.ids[0]), secret=SECRET)
    session.commit()
    _login(client)
    page = client.get("/immunization/reminders", params={"site": "VS1", "lang": "en"})
    assert page.status_code == 200 and 'id="reminders"' in page.text
    # every child is overdue; the nurse's scope (township 140725100) holds four of the six
    assert page.text.count('class="reminder"') == 4
    assert page.text.count('class="booking"') == 1 and "(booked)" in page.text
    assert client.get("/immunization/reminders").status_code == 200
    start = dt.date.today().isoformat()
    data = client.get("/api/v1/immunization/reminders/families",
                      params={"site": "VS1", "start": start}).json()
    assert data["families"] == 4 and data["end"] == (
        dt.date.today() + dt.timedelta(days=7)).isoformat()
    first = next(e for e in data["items"] if e["child_id"] == client.ids[0])
    assert first["bookings"][0]["on_date"] == target.on_date.isoformat()
    assert first["phone"] == session.get(Child, client.ids[0]).guardian_phone
    csv = client.get("/api/v1/immunization/reminders/families",
                     params={"site": "VS1", "start": start, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    rows = csv.text.strip().splitlines()
    assert rows[0] == "name,guardian,phone,village_code,bookings,due" and len(rows) == 5
    bad = client.get("/api/v1/immunization/reminders/families",
                     params={"site": "VS1", "start": start, "end": "2000-01-01"})
    assert bad.status_code == 422
    # a group manager of the county may list all six but sees masked phones
    session.rollback()  # end the read snapshot before writing (SQLite)
    create_user(session, username="manager", password="manager-pass-1", role="group_manager",
                division_code="140725")
    session.commit()
    client.get("/logout", follow_redirects=False)
    client.post("/login", data={"username": "manager", "password": "manager-pass-1",
                                "next": "/immunization"}, follow_redirects=False)
    masked = client.get("/api/v1/immunization/reminders/families",
                        params={"site": "VS1", "start": start}).json()
    assert masked["families"] == 6 and all("****" in e["phone"] for e in masked["items"])


def test_today_page_lists_the_chosen_sites_bookings(client, session):
    """The day's bookings of the chosen site only, counted in the heading."""
    day = dt.date.today() + dt.timedelta(days=2)
    other = open_session(session, SYSTEM, "SL1", SessionIn(on_date=day))
    target = session.scalar(select(VaccinationSession).where(
        VaccinationSession.on_date == day, VaccinationSession.id != other.id))
    for child_id in client.ids[:2]:
        book(session, SYSTEM, BookingIn(session_id=target.id, vaccines=["HepB"],
                                        child_id=child_id), secret=SECRET)
    book(session, SYSTEM, BookingIn(session_id=other.id, vaccines=["Flu"], slot_start="09:00",
                                    child_id=client.ids[2]), secret=SECRET, self_paid=True)
    session.commit()
    _login(client)
    page = client.get("/immunization/today", params={"site": "VS1", "day": day.isoformat(),
                                                     "lang": "en"})
    assert page.status_code == 200 and "Bookings (2)" in page.text
    bookings = page.text.split('id="bookings"')[1].split("</table>")[0]
    assert bookings.count("<tr><td>") == 2 and 'id="bookings-truncated"' not in page.text
