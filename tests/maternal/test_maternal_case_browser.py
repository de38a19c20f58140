"""The maternal page flow in a real Chromium (Playwright), with the app's clock fixed and moved
on by the test: the village doctor registers a pregnancy with a positive screen, the hospital
grades it red and names the case manager, the case manager acknowledges the alert, then the
delivery and the 42-day postpartum assessment close the file.

The app runs under uvicorn in a background thread on a free local port (SQLite). Screenshots go
to pytest's tmp dir and, when the folder exists, to ``/work/helper-notes/screenshots/``.
Without ``/usr/bin/chromium`` the test is skipped — except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import need_chromium, open_chromium, screenshot, serve_app
from maternal_case_helpers import PASSWORD, identity_number, load_maternal_county
from sqlalchemy import select

from tiercare.config import Settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.maternal.models import CaseReport, MaternalAlert, Pregnancy
from tiercare.registry.reference import seed_reference_data
from tiercare.web.app import create_app

pytestmark = pytest.mark.browser

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


class Clock:
    """The app's clock, moved on by the test."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Clock]]:
    """Base URL of the app on the maternal test county, its database URL and its clock."""
    need_chromium()
    url = f"sqlite:///{tmp_path / 'maternal.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
        load_maternal_county(session)
    engine.dispose()
    app = create_app(Settings(database_url=url, environment="test"))
    clock = Clock(START)
    app.state.maternal_clock = clock
    with serve_app(app) as base:
        yield base, url, clock


def _login(page: object, base: str, username: str) -> None:
    page.goto(base + "/logout")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def _file(url: str, pregnancy_id: int) -> tuple[Pregnancy, list[MaternalAlert],
                                                list[CaseReport]]:
    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:
            p = session.get(Pregnancy, pregnancy_id)
            assert p is not None
            alerts = list(session.scalars(select(MaternalAlert).where(
                MaternalAlert.pregnancy_id == pregnancy_id)))
            reports = list(session.scalars(select(CaseReport).where(
                CaseReport.pregnancy_id == pregnancy_id).order_by(CaseReport.id)))
            return p, alerts, reports
    finally:
        engine.dispose()


def test_register_grade_red_alert_ack_delivery_close(server: tuple[str, str, Clock],
                                                    tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, db_url, clock = server
    with open_chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 1000},
                                   locale="zh-CN").new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # 1. village doctor: register with a positive screen (age 36 → yellow)
        _login(page, base, "vdoc")
        page.goto(base + "/maternal/register")
        page.fill("#name", "李春梅")
        page.fill("#identity_number", identity_number(77))
        page.fill("#phone", "13912345678")
        page.select_option("#village_code", "140725100201")
        page.fill("#lmp", (START.date() - dt.timedelta(days=70)).isoformat())
        page.fill("#s-age", "36")
        screenshot(page, tmp_path, "maternal_01_register_form")
        page.click("#register-submit")
        expect(page).to_have_url(re.compile(r"/maternal/pregnancies/\d+\?msg=registered"))
        expect(page.locator("#file-status")).to_have_text("待评估")
        expect(page.locator("#file-colour")).to_contain_text("黄色")
        pregnancy_id = int(re.search(r"/pregnancies/(\d+)", page.url).group(1))
        screenshot(page, tmp_path, "maternal_02_registered")

        # 2. hospital, three days later: grade red, name the case manager
        clock.at = START + dt.timedelta(days=3)
        _login(page, base, "hosp")
        page.goto(f"{base}/maternal/pregnancies?status=awaiting_grading")
        expect(page.locator("#files tbody tr")).to_have_count(1)
        page.click(f"#files a[href='/maternal/pregnancies/{pregnancy_id}'] >> nth=0")
        page.fill("#g-age", "36")
        page.check("#grade-form input[name=conditions][value=cardiomyopathy]")
        page.click("#grade-submit")
        expect(page.locator("#file-colour")).to_contain_text("红色")
        expect(page.locator("#file-status")).to_have_text("已评估")
        expect(page.locator("#file-alerts")).to_contain_text("风险升级")
        expect(page.locator("#history tbody tr")).to_have_count(2)
        page.fill("#manager-username", "mch")
        page.click("#manager-submit")
        expect(page.locator("#manager")).to_contain_text("mch")
        screenshot(page, tmp_path, "maternal_03_graded_red")

        # 3. case manager: the alert, acknowledged
        _login(page, base, "mch")
        page.goto(base + "/maternal/cases")
        expect(page.locator("#cases tbody tr")).to_have_count(1)
        page.goto(base + "/maternal/alerts")
        row = page.locator("#alerts tr[data-kind=colour_rising]")
        expect(row).to_have_count(1)
        screenshot(page, tmp_path, "maternal_04_alert")
        row.locator("button.ack").click()
        expect(page.locator(".alert.success")).to_contain_text("预警已确认")
        expect(page.locator("#alerts tr[data-kind=colour_rising]")).to_have_count(0)
        screenshot(page, tmp_path, "maternal_05_acknowledged")

        # 4. delivery near the due date (edd = LMP + 280 = START + 210 days)
        delivered = START.date() + dt.timedelta(days=205)
        clock.at = START + dt.timedelta(days=206)
        page.goto(f"{base}/maternal/pregnancies/{pregnancy_id}")
        page.fill("#delivery-on", delivered.isoformat())
        page.fill("#delivery-facility", "M1")
        page.click("#delivery-submit")
        expect(page.locator("#file-status")).to_have_text("已分娩")
        screenshot(page, tmp_path, "maternal_06_delivered")

        # 5. the 42-day postpartum assessment closes the file
        clock.at = START + dt.timedelta(days=206 + 45)
        page.goto(f"{base}/maternal/pregnancies/{pregnancy_id}")
        page.fill("#postpartum-on", (delivered + dt.timedelta(days=43)).isoformat())
        page.select_option("#postpartum-stable", "yes")
        page.click("#postpartum-submit")
        expect(page.locator("#file-status")).to_have_text("已结案")
        expect(page.locator("#closed")).to_be_visible()
        screenshot(page, tmp_path, "maternal_07_closed")
        page.goto(base + "/maternal/county")
        expect(page.locator("#by-township")).to_be_visible()
        screenshot(page, tmp_path, "maternal_08_county")
        page.goto(base + "/maternal/map")
        screenshot(page, tmp_path, "maternal_09_map")
    assert errors == []
    p, alerts, reports = _file(db_url, pregnancy_id)
    assert (p.status, p.colour, p.close_reason) == ("closed", "red", "postpartum_assessed")
    rising = [a for a in alerts if a.kind == "colour_rising"]
    assert len(rising) == 1 and rising[0].acknowledged_by == "mch"
    assert all(a.resolved_at is not None or a.acknowledged_at is not None for a in alerts)
    assert [r.event for r in reports] == ["case_opened", "delivered", "closed"]
