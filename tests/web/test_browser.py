"""The page flow in a real Chromium (Playwright): log in, browse to a township, open a
facility, run an import with errors and read the report, then the reports and a language switch.

The app runs under uvicorn in a background thread on a free local port, on a SQLite copy of the
test county. Screenshots go to pytest's tmp dir and, when the folder exists, to
``/work/helper-notes/screenshots/`` for people to look at.
Without ``/usr/bin/chromium`` the test is skipped — except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import need_chromium, open_chromium, screenshot, serve_app
from sqlalchemy import func, select
from web_county import PASSWORD, TOWNSHIP_NAMES, load

from tiercare.config import Settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.registry.models import Facility
from tiercare.registry.reference import seed_reference_data
from tiercare.web.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Base URL of a running app on the test county, and its database URL."""
    need_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'tiercare.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
        load(session)
    engine.dispose()
    with serve_app(create_app(Settings(database_url=url, environment="test"))) as base:
        yield base, url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium driven by Playwright."""
    with open_chromium() as chromium:
        yield chromium


def _facility_count(url: str) -> int:
    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:
            return session.scalar(select(func.count()).select_from(Facility)) or 0
    finally:
        engine.dispose()


def test_browse_and_import(server: tuple[str, str], browser: object,
                           tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, db_url = server
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))

    # not logged in: the login form; a wrong password is refused
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/")
    page.fill("input[name=username]", "planner")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator(".alert.error")).to_contain_text("用户名或密码错误")
    screenshot(page, tmp_path, "01_login_error")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    expect(page.locator("h1")).to_contain_text("总览")
    expect(page.locator(".userbox")).to_contain_text("王规划")
    expect(page.locator("svg.svgmap path")).to_have_count(len(TOWNSHIP_NAMES) + 1)
    screenshot(page, tmp_path, "02_home")

    # browse: county → township (via the tree) → a facility
    township = TOWNSHIP_NAMES[1]
    page.locator("table.tree").get_by_role("link", name=township, exact=True).click()
    expect(page.locator("h1")).to_contain_text(township)
    expect(page.locator(".crumbs")).to_contain_text("示范县")
    expect(page.locator("svg.svgmap path.child")).to_have_count(9)
    screenshot(page, tmp_path, "03_township")
    page.get_by_role("link", name=f"{township}卫生院", exact=True).first.click()
    expect(page.locator("h1")).to_contain_text(f"{township}卫生院")
    expect(page.locator("dl.facts")).to_contain_text("中心乡镇卫生院")
    expect(page.locator("svg.svgmap circle")).to_have_count(1)
    screenshot(page, tmp_path, "04_facility")

    # an import with errors: the report lists every bad row and nothing is written
    before = _facility_count(db_url)
    bad_csv = ("code,name,type,division_code,lon,lat,beds_general\n"
               "N001,新建卫生室,village_clinic,140725200202,,,0\n"
               "N002,错误区划,village_clinic,140725999999,,,1\n"
               "N003,坐标错误,village_clinic,140725200203,120.5,30.2,-3\n")
    page.get_by_role("link", name="数据导入").click()
    page.select_option("select[name=kind]", "facilities")
    page.set_input_files("input[type=file]", files=[{
        "name": "bad_facilities.csv", "mimeType": "text/csv", "buffer": bad_csv.encode()}])
    page.get_by_role("button", name="校验并导入").click()
    expect(page.locator("#import-errors")).to_contain_text("未写入任何数据")
    rows = page.locator("table.problems tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("3")
    expect(rows.nth(0)).to_contain_text("division_code")
    expect(page.locator("table.problems")).to_contain_text("beds_general")
    expect(page.locator("table.problems")).to_contain_text("坐标不在所属区划内")
    screenshot(page, tmp_path, "05_import_errors")
    assert _facility_count(db_url) == before

    # the reports and the other pages render without script errors
    page.get_by_role("link", name="空白点").click()
    expect(page.locator("table.grid tbody tr").first).to_be_visible()
    screenshot(page, tmp_path, "06_blank_spots")
    page.get_by_role("link", name="资源配置").click()
    expect(page.locator("#supply-charts .main-svg").first).to_be_visible()
    screenshot(page, tmp_path, "07_supply")
    page.get_by_role("link", name="标准化建设").click()
    page.get_by_role("link", name="评估 ›").first.click()
    page.locator("input[name=met]").nth(0).check()
    page.locator("input[name=met]").nth(2).check()
    page.get_by_role("button", name="保存评估").click()
    expect(page.locator("#assessment-result")).to_contain_text("得分")
    screenshot(page, tmp_path, "08_standards")
    page.get_by_role("link", name="医疗机构").click()
    page.fill("input[name=q]", "卫生院")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("table.grid tbody tr")).to_have_count(5)
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_contain_text("Health facilities")
    screenshot(page, tmp_path, "09_facilities_en")
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("h1")).to_contain_text("Divisions and service network")
    assert not errors, errors
    assert not failed, failed
    context.close()
