"""The planning pages in a real Chromium (Playwright): run an access analysis and read its
maps and charts, optimise, save the result as a scenario, compare scenarios, switch language.

The app runs under uvicorn in a background thread on a free local port, on a SQLite copy of the
small test county with the roads of planning_county.py. Screenshots go to pytest's tmp dir and,
when the folder exists, to ``/work/helper-notes/screenshots/planning_browser_*.png``.
Without ``/usr/bin/chromium`` the test is skipped — except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import need_chromium, open_chromium, screenshot, serve_app
from planning_county import PASSWORD, prepare

from tiercare.auth.service import SYSTEM
from tiercare.config import Settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.registry.importing import import_rows
from tiercare.registry.reference import seed_reference_data
from tiercare.web.app import create_app

pytestmark = pytest.mark.browser


def _registry_helpers():  # type: ignore[no-untyped-def]
    import importlib.util

    path = Path(__file__).parents[1] / "registry" / "registry_helpers.py"
    spec = importlib.util.spec_from_file_location("registry_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running app on the small county with roads and a second health centre."""
    need_chromium()
    url = f"sqlite:///{tmp_path_factory.mktemp('planning') / 'tiercare.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
        _registry_helpers().load_small_county(session)
        import_rows(session, "facilities", [
            {"code": "T2", "name": "乙乡卫生院", "type": "township_health_centre",
             "division_code": "140725200", "lon": "113.3", "lat": "37.9"}], actor=SYSTEM)
        prepare(session)
    engine.dispose()
    with serve_app(create_app(Settings(database_url=url, environment="test"))) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium driven by Playwright."""
    with open_chromium() as chromium:
        yield chromium


def test_plan_optimise_save_and_compare(server: str, browser: object, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))

    page.goto(server + "/login?next=/")
    page.fill("input[name=username]", "planner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name="规划分析").first.click()
    expect(page.locator("h1")).to_contain_text("就医可达性分析")

    # access analysis: progress, then the results with the surface and the chart drawn
    page.fill("input[name=thresholds]", "15, 30, 60")
    page.select_option("select[name=surface_tier]", "county")
    page.get_by_role("button", name="开始分析").click()
    expect(page.locator("#headline")).to_be_visible(timeout=30000)
    expect(page.locator("#surface-map .main-svg").first).to_be_visible()
    expect(page.locator("#coverage-chart .main-svg").first).to_be_visible()
    expect(page.locator("#coverage-chart .bars path")).to_have_count(6)  # 2 townships × 3
    expect(page.locator("#headline")).to_contain_text("50.0 %")  # county hospital ≤ 15 min
    screenshot(page, tmp_path, "planning_browser_01_access")
    page.select_option("#view-form select[name=tier]", "county")
    page.select_option("#view-form select[name=threshold]", "15")
    page.locator("#view-form button").click()
    unreached = page.locator("table.unreached-table tbody tr")
    expect(unreached).to_have_count(2)  # 南村 and 西村
    expect(page.locator("table.unreached-table")).to_contain_text("西村")
    expect(page.locator("#unreached svg circle.village-out")).to_have_count(2)
    screenshot(page, tmp_path, "planning_browser_02_unreached")

    # optimise: the model choice switches the fields it does not use off
    page.locator(".subnav").get_by_role("link", name="选址优化").click()
    page.locator("input[name=model][value=pmedian]").check()
    expect(page.locator("input[name=threshold]")).to_be_disabled()
    page.locator("input[name=model][value=lscp]").check()
    expect(page.locator("input[name=new_sites]")).to_be_disabled()
    expect(page.locator("input[name=sites_file]")).to_be_hidden()
    page.select_option("select[name=candidates]", "sites")
    expect(page.locator("input[name=sites_file]")).to_be_visible()
    page.select_option("select[name=candidates]", "township_centres")
    page.locator("input[name=model][value=mclp]").check()
    page.select_option("select[name=tier]", "county")
    page.fill("input[name=threshold]", "15")
    page.fill("input[name=new_sites]", "1")
    page.get_by_role("button", name="开始优化").click()
    expect(page.locator("#solution")).to_contain_text("覆盖 9,000 人", timeout=30000)
    expect(page.locator("#chosen-sites")).to_contain_text("乙乡卫生院")
    expect(page.locator("svg circle.site-new")).to_have_count(1)
    screenshot(page, tmp_path, "planning_browser_03_optimise")

    # save as scenario → its page, evaluated, with the gains on the map
    page.fill("input[name=name]", "升级乙乡卫生院")
    page.get_by_role("button", name="保存并评估").click()
    expect(page.locator("#saved")).to_be_visible(timeout=30000)
    expect(page.locator("h1")).to_contain_text("升级乙乡卫生院")
    expect(page.locator("svg circle.village-gain")).to_have_count(1)  # 南村
    expect(page.locator("table.matrix-table")).to_contain_text("5,000 → 9,000")
    screenshot(page, tmp_path, "planning_browser_04_scenario")

    # scenario list → comparison, exports linked, then English
    page.locator(".subnav").get_by_role("link", name="规划方案").click()
    expect(page.locator("table.scenario-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name="比较所选方案").click()
    expect(page.locator("h1")).to_contain_text("方案比较")
    expect(page.locator("#compare-tiers td.better").first).to_be_visible()
    expect(page.locator("a", has_text="导出 Excel")).to_have_attribute(
        "href", "/api/v1/scenario-comparison?names=%E5%8D%87%E7%BA%A7%E4%B9%99%E4%B9%A1%E5"
                "%8D%AB%E7%94%9F%E9%99%A2&format=xlsx")
    screenshot(page, tmp_path, "planning_browser_05_comparison")
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_contain_text("Compare scenarios")
    page.locator(".subnav").get_by_role("link", name="Access analysis").click()
    expect(page.locator("h1")).to_contain_text("Access to care")

    assert errors == [], errors
    assert failed == [], failed
    context.close()


def test_two_tier_model_in_the_optimise_form(server: str, browser: object,
                                             tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server + "/login?next=/planning/optimise")
    page.fill("input[name=username]", "planner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    # the two-tier fields are on only for the two-tier model
    expect(page.locator("input[name=lower_threshold]")).to_be_disabled()
    page.locator("input[name=model][value=two-tier]").check()
    expect(page.locator("input[name=lower_threshold]")).to_be_enabled()
    expect(page.locator("input[name=new_clinics]")).to_be_enabled()
    expect(page.locator("input[name=budget]")).to_be_disabled()
    page.select_option("select[name=candidates]", "township_centres")
    page.fill("input[name=threshold]", "15")
    page.fill("input[name=new_sites]", "1")
    page.fill("input[name=lower_threshold]", "15")
    screenshot(page, tmp_path, "planning_browser_06_two_tier_form")
    page.get_by_role("button", name="开始优化").click()
    # T2 upgraded (9,000 within 15 min of a county-level site); 西村 gets a new clinic
    expect(page.locator("#solution")).to_contain_text("覆盖 9,000 人", timeout=30000)
    expect(page.locator("#chosen-sites")).to_contain_text("乙乡卫生院")
    expect(page.locator("#chosen-sites")).to_contain_text("西村")
    expect(page.locator("svg circle.site-new")).to_have_count(1)
    expect(page.locator("svg circle.site-new-clinic")).to_have_count(1)
    expect(page.locator("svg circle.clinic-existing")).to_have_count(2)  # V1, V2
    screenshot(page, tmp_path, "planning_browser_07_two_tier_result")
    assert errors == [], errors
    context.close()
