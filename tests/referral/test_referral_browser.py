"""Refer → accept-and-book → arrive → down-refer in a real Chromium (Playwright).

A village doctor sends an up-referral from the form, the county hospital accepts it and books a
reserved slot in one step, records the arrival and sends the patient back to the township
centre with a follow-up plan; the centre acknowledges it. A county planner then sees both
referrals on the indicators dashboard's flow diagram (a Plotly Sankey). Screenshots go to
pytest's tmp dir and, when the folder exists, to ``/work/helper-notes/screenshots/referral_*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from browser_support import need_chromium, open_chromium, screenshot, serve_app
from referral_helpers import add_residents, load_small_county

from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.indicators.periods import local_today
from tiercare.registry.reference import seed_reference_data
from tiercare.scheduling.service import ScheduleIn, SessionIn, create_schedule, generate_slots
from tiercare.web.app import create_app

pytestmark = pytest.mark.browser
COUNTY = "140725"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    need_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('referral_browser') / 'tiercare.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
        load_small_county(session)
        add_residents(session, 2)
        s = create_schedule(session, SYSTEM, ScheduleIn(
            facility_code="H1", department="神经内科", name="卒中专家门诊", expert=True,
            capacity_per_slot=1, slot_minutes=15,
            weekly=[SessionIn(weekday=d, start="08:00", end="10:00") for d in range(7)],
            effective_from=date.today() - timedelta(days=1), follows_holidays=False))
        generate_slots(session, SYSTEM, s.id, start=date.today() + timedelta(days=1),
                       end=date.today() + timedelta(days=3))
        for name, role, fac in (("doc", "village_doctor", "V1"),
                                ("desk", "facility_staff", "H1"),
                                ("centre", "facility_staff", "T1")):
            create_user(session, username=name, password=f"{name}-pass-1", role=role,
                        facility_code=fac, full_name=name)
        create_user(session, username="planner", password="planner-pass-1", role="planner",
                    division_code=COUNTY, full_name="planner")
        session.commit()
    engine.dispose()
    with serve_app(create_app(Settings(database_url=url, environment="test"))) as base:
        yield base


def _login(page, base: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.context.clear_cookies()
    page.goto(base + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"{name}-pass-1")
    page.click("button[type=submit]")


def test_refer_accept_book_arrive_down_refer(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base = server
    expect.set_options(timeout=20_000)  # the machine is shared: be patient, never flaky
    with open_chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 900},
                                   locale="zh-CN").new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # the village doctor picks the resident, asks for suggestions and sends the referral
        _login(page, base, "doc")
        page.goto(base + "/referrals/new")
        page.select_option("#pick-resident", index=0)
        page.fill("input[name=service_code]", "stroke")
        page.click("text=推荐接收机构")
        expect(page.locator("#suggestions")).to_contain_text("县人民医院")
        page.check("input[value=stroke_4_5h]")
        page.select_option("select[name=urgency]", "urgent")
        page.fill("input[name=department]", "神经内科")
        page.fill("textarea[name=reason]", "右侧肢体无力2小时，疑似脑卒中")
        page.fill("textarea[name=summary]", "BP 170/100，NIHSS 6")
        screenshot(page, tmp_path, "referral_01_form")
        page.click("#referral-form button[type=submit]")
        expect(page.locator("#status")).to_have_attribute("data-status", "requested")
        number = page.locator("h1").inner_text().split()[1]
        screenshot(page, tmp_path, "referral_02_sent")

        # the hospital sees it in its inbox and accepts it, booking a reserved slot
        _login(page, base, "desk")
        page.goto(base + "/referrals")
        expect(page.locator("#inbox")).to_contain_text(number)
        screenshot(page, tmp_path, "referral_03_hospital_inbox")
        page.click(f"text={number}")
        page.click("#accept-form button[type=submit]")
        expect(page.locator("#status")).to_have_attribute("data-status", "scheduled")
        expect(page.locator("#appointment")).to_be_visible()
        screenshot(page, tmp_path, "referral_04_scheduled")
        page.click("#arrive")
        expect(page.locator("#status")).to_have_attribute("data-status", "arrived")
        page.fill("#down-form textarea[name=instructions]", "每两周随访血压，康复训练")
        page.select_option("#down-form select[name=to_facility_code]", label="甲镇卫生院")
        page.check("#down-form input[value=stable]")
        page.click("#down-form button[type=submit]")
        expect(page.locator("h1")).to_contain_text("D")
        expect(page.locator("#status")).to_have_attribute("data-status", "requested")
        screenshot(page, tmp_path, "referral_05_down_referral")

        # the township centre acknowledges the down-referral
        _login(page, base, "centre")
        page.goto(base + "/referrals")
        page.locator("#inbox a").first.click()
        page.click("text=确认接收")
        expect(page.locator("#status")).to_have_attribute("data-status", "accepted")
        screenshot(page, tmp_path, "referral_06_centre_acknowledged")
        page.goto(base + "/referrals/dashboard")
        screenshot(page, tmp_path, "referral_07_dashboard")

        # the hospital desk books a general place for another resident, then sees the day
        _login(page, base, "desk")
        tomorrow = (date.today() + timedelta(days=1)).isoformat()
        page.goto(base + f"/booking?facility=H1&day={tomorrow}")
        page.select_option("select[name=resident_id]", index=1)
        page.locator("#slots input[name=slot_id]:not([disabled])").first.check()
        screenshot(page, tmp_path, "referral_08_booking")
        page.click("#book-submit")
        expect(page.locator(".alert.success")).to_contain_text("已预约")
        page.goto(base + f"/calendar?facility=H1&day={tomorrow}")
        expect(page.locator("#calendar")).to_contain_text("居民1")
        screenshot(page, tmp_path, "referral_09_calendar")

        # a county planner sees this month's two flows drawn as a Sankey diagram
        _login(page, base, "planner")
        failed: list[str] = []
        page.on("requestfailed", lambda req: failed.append(req.url))
        page.goto(base + f"/indicators?unit={COUNTY}&period={local_today():%Y-%m}")
        sankey = page.locator("#flow-chart svg g.sankey")
        expect(sankey).to_have_count(1)
        links = sankey.locator("path.sankey-link")
        expect(links).to_have_count(2)  # V1 → H1 up, H1 → T1 down
        fills = links.evaluate_all("ls => ls.map(l => getComputedStyle(l).fill)")
        assert sorted(fills) == ["rgb(43, 108, 176)", "rgb(47, 133, 90)"]  # blue up, green down
        expect(sankey.locator("g.sankey-node")).to_have_count(4)  # senders left, receivers right
        labels = sankey.locator("g.sankey-node text.node-label")
        assert sorted(labels.all_text_contents()) == sorted(
            ["东村卫生室", "县人民医院", "县人民医院", "甲镇卫生院"])
        screenshot(page, tmp_path, "referral_10_indicator_flows")
        assert failed == [], failed
        assert errors == []
