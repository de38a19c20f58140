"""In a real Chromium (Playwright): a vaccinator records a dose from today's list; a family looks
up its child and books a session.

The app runs under uvicorn in a background thread on a free local port, on a SQLite copy of the
small test county with sites and children. Without ``/usr/bin/chromium`` the test is skipped —
except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import need_chromium, open_chromium, screenshot, serve_app
from immunization_helpers import SECRET, setup
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.immunization.models import Booking, Child, ImmunizationRecord
from tiercare.immunization.records import DoseIn, record_dose
from tiercare.immunization.sites import SessionIn, open_session
from tiercare.registry.reference import seed_reference_data
from tiercare.web.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Base URL of a running app and its database URL."""
    need_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('imm_browser') / 'tiercare.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    today = dt.date.today()
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
        ids = setup(session, children=4)
        create_user(session, username="nurse", password="nurse-pass-1", role="facility_staff",
                    facility_code="T1")
        # the first child is 3 months old with its birth doses: DTaP/IPV due today
        child = session.get(Child, ids[0])
        child.birth_date = today - dt.timedelta(days=100)
        child.id_kind, child.id_number = "birth_certificate", "B000000001"
        from tiercare.immunization.common import person_identity

        _, _, child.id_masked, child.id_digest = person_identity("B000000001", secret=SECRET)
        for vaccine in ("HepB", "BCG"):
            record_dose(session, SYSTEM, DoseIn(child_id=child.id, vaccine=vaccine,
                                                given_on=child.birth_date, site_code="VS1"))
        open_session(session, SYSTEM, "VS1", SessionIn(on_date=today + dt.timedelta(days=1)))
        session.commit()
    engine.dispose()
    app = create_app(Settings(database_url=url, environment="test", secret_key=SECRET))
    with serve_app(app) as base:
        yield base, url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium driven by Playwright."""
    with open_chromium() as chromium:
        yield chromium


def _query(url: str, statement):  # type: ignore[no-untyped-def]
    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:
            return list(session.scalars(statement))
    finally:
        engine.dispose()


def test_immunization_vaccinator_records_and_family_books(server, browser, tmp_path: Path):
    from playwright.sync_api import expect

    base, url = server
    context = browser.new_context(viewport={"width": 1300, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/immunization/today?site=VS1&lang=en")
    page.fill("input[name=username]", "nurse")
    page.fill("input[name=password]", "nurse-pass-1")
    page.click("button[type=submit]")
    expect(page.locator("#due")).to_contain_text("DTaP")
    screenshot(page, tmp_path, "imm_01_today")
    page.locator("#due tr", has_text="DTaP").first.locator("a").click()
    expect(page.locator("#record-dose")).to_be_visible()
    page.select_option("#record-dose select[name=vaccine]", "DTaP")
    page.fill("#record-dose input[name=lot]", "D2026")
    page.select_option("#record-dose select[name=route]", "IM")
    page.click("#record-dose button[type=submit]")
    expect(page.locator(".alert.success")).to_contain_text("Recorded: DTaP")
    expect(page.locator("#history")).to_contain_text("D2026")
    screenshot(page, tmp_path, "imm_02_recorded")
    lots = [r.lot for r in _query(url, select(ImmunizationRecord).where(
        ImmunizationRecord.vaccine == "DTaP"))]
    assert lots == ["D2026"]

    family = browser.new_context(viewport={"width": 420, "height": 900}, locale="zh-CN")
    fpage = family.new_page()
    fpage.goto(base + "/immunization/family?lang=en")
    fpage.fill("input[name=identity_number]", "B000000001")
    fpage.fill("input[name=guardian_phone]", "13800000000")
    fpage.click("#family-lookup button[type=submit]")
    expect(fpage.locator("#family-due")).to_contain_text("IPV")
    screenshot(fpage, tmp_path, "imm_03_family")
    fpage.click("#family-book button[type=submit]")
    expect(fpage.locator(".alert.success")).to_contain_text("Booked")
    screenshot(fpage, tmp_path, "imm_04_booked")
    bookings = _query(url, select(Booking))
    assert len(bookings) == 1 and bookings[0].status == "booked"
    assert not errors
