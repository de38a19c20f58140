"""Page tests through the HTTP client, on SQLite and on PostgreSQL.

One database per backend is built for the whole module; the only writes here (an assessment, a
user's language, restored afterwards) change nothing the other tests look at. Expected
figures — counts, blank spots, supply ratios — are recomputed in this file from the county's
input rows, independently of the code under test.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_county import COUNTY_DATA, PASSWORD, TOWNSHIP_NAMES, load

from tiercare.auth.models import User
from tiercare.config import Settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.registry.models import Assessment
from tiercare.registry.reference import (
    blank_spot_rules,
    norms,
    shipped_checklists,
)
from tiercare.web.app import create_app
from tiercare.web.i18n import LANGUAGES, catalogue

TEMPLATES = Path(__file__).resolve().parents[2] / "tiercare" / "web" / "templates"
FACILITIES = COUNTY_DATA["facilities"]
ACTIVE = [f for f in FACILITIES if not f.get("closed_on")]
VILLAGES = COUNTY_DATA["villages"]
TOWNSHIPS = COUNTY_DATA["townships"]


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, databases) -> Iterator[tuple[FastAPI, str]]:
    """The app on the test county (built once per backend) and the planner's session cookie."""
    url = databases.new(request.param)
    engine = create_db_engine(url)
    with session_factory(engine)() as session:
        load(session)
    engine.dispose()
    app = create_app(Settings(database_url=url, environment="test"))
    with TestClient(app, follow_redirects=False) as client:
        response = client.post("/login", data={"username": "planner", "password": PASSWORD})
        assert response.status_code == 303
        cookie = response.cookies["tiercare_session"]
    yield app, cookie
    app.state.engine.dispose()


@pytest.fixture
def client(site: tuple[FastAPI, str]) -> Iterator[TestClient]:
    """A client logged in as the county planner."""
    app, cookie = site
    with TestClient(app, follow_redirects=False, cookies={"tiercare_session": cookie}) as c:
        yield c


def _text(html: str) -> str:
    """Visible text with tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _rows(html: str) -> list[list[str]]:
    """Cell texts of every table body row."""
    return [[_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S)]


def _row_of(html: str, name: str) -> list[str]:
    """Cells of the first table row with a cell equal to ``name``."""
    for cells in _rows(html):
        if any(cell == name or cell.endswith(" " + name) for cell in cells):
            return cells
    raise AssertionError(f"no row with {name}")


# --------------------------------------------------------------------------- login


def test_pages_redirect_to_login_and_back(site: tuple[FastAPI, str]) -> None:
    app, _ = site
    with TestClient(app, follow_redirects=False) as anonymous:
        for path in ("/", "/facilities?type=village_clinic", "/divisions/140725", "/import",
                     "/standards", "/reports/blank-spots", "/reports/supply", "/facilities/H001"):
            response = anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=/"), path
        assert anonymous.get("/login").status_code == 200
        wrong = anonymous.post("/login", data={"username": "planner", "password": "nope-nope"})
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        assert "tiercare_session" not in wrong.cookies
        right = anonymous.post("/login", data={"username": "planner", "password": PASSWORD,
                                               "next": "/facilities?type=village_clinic"})
        assert right.status_code == 303
        assert right.headers["location"] == "/facilities?type=village_clinic"
        assert anonymous.get("/login").status_code == 303  # already logged in
        foreign = anonymous.post("/login", data={"username": "planner", "password": PASSWORD,
                                                 "next": "//evil.example/"})
        assert foreign.headers["location"] == "/"
        page = anonymous.get("/")
        assert "王规划" in page.text and "规划分析人员" in page.text
        assert anonymous.get("/logout").status_code == 303
        assert anonymous.get("/").status_code == 303
        anonymous.cookies.set("tiercare_session", "eyJ1aWQiOjF9.forged.signature")
        assert anonymous.get("/").status_code == 303


# --------------------------------------------------------------------------- home / divisions


def test_home_tree_counts(client: TestClient) -> None:
    html = client.get("/").text
    county = _row_of(html, "示范县")
    assert county[2] == f"{sum(int(v['population']) for v in VILLAGES):,}"
    assert county[3] == str(len(VILLAGES))
    assert county[4] == str(len(ACTIVE))
    for township in TOWNSHIPS:
        cells = _row_of(html, township["name"])
        inside = [f for f in ACTIVE if f["division_code"].startswith(township["code"][:9])]
        assert cells[3] == "9" and cells[4] == str(len(inside)), township["name"]
    assert html.count('class="child"') == len(TOWNSHIPS)  # the county map shows its townships


def test_division_page(client: TestClient) -> None:
    township = TOWNSHIPS[1]
    html = client.get(f"/divisions/{township['code']}").text
    names = [v["name"] for v in VILLAGES if v["township"] == township["code"]]
    assert all(name in html for name in names)
    assert html.count('class="child"') == len(names)
    listed = {f["name"] for f in FACILITIES if f["division_code"].startswith(township["code"])}
    assert all(name in html for name in listed)
    # circles: the active facilities with coordinates
    active_here = [f for f in ACTIVE if f["division_code"].startswith(township["code"])]
    assert html.count("<circle") == len(active_here)
    clinic = next(f for f in ACTIVE if f["type"] == "village_clinic")
    village = client.get(f"/divisions/{clinic['division_code']}").text
    assert clinic["name"] in village and "<circle" in village
    assert client.get("/divisions/999999").status_code == 404
    assert client.get("/divisions/notacode").status_code == 404


def test_township_user_sees_only_the_township(site: tuple[FastAPI, str]) -> None:
    app, _ = site
    with TestClient(app, follow_redirects=False) as c:
        c.post("/login", data={"username": "township", "password": PASSWORD})
        own, other = TOWNSHIPS[0], TOWNSHIPS[1]
        assert c.get(f"/divisions/{own['code']}").status_code == 200
        assert c.get(f"/divisions/{other['code']}").status_code == 404
        outside = next(f for f in FACILITIES if f["division_code"].startswith(other["code"]))
        assert c.get(f"/facilities/{outside['code']}").status_code == 404
        home = _text(c.get("/").text)
        assert own["name"] in home and other["name"] not in home
        listing = c.get("/facilities").text
        expected = sum(f["division_code"].startswith(own["code"][:9]) for f in FACILITIES)
        assert f"共 {expected} 家" in listing


# --------------------------------------------------------------------------- facilities


def test_facility_list_filters_and_pages(client: TestClient) -> None:
    clinics = client.get("/facilities?type=village_clinic").text
    n_clinics = sum(f["type"] == "village_clinic" for f in FACILITIES)
    assert f"共 {n_clinics} 家" in clinics
    closed = client.get("/facilities?status=closed").text
    closed_names = [f["name"] for f in FACILITIES if f.get("closed_on")]
    assert f"共 {len(closed_names)} 家" in closed and closed_names[0] in closed
    search = client.get("/facilities?q=卫生院").text
    assert f"共 {sum('卫生院' in f['name'] for f in FACILITIES)} 家" in search
    level = client.get("/facilities?level=secondary").text
    assert f"共 {sum(f.get('level') == 'secondary' for f in FACILITIES)} 家" in level
    total = len(FACILITIES)
    first = client.get("/facilities").text
    assert f"共 {total} 家" in first
    assert first.count('href="/facilities/') == 50
    assert 'rel="next"' in first
    second = client.get("/facilities?page=2").text
    assert second.count('href="/facilities/') == total - 50
    assert 'rel="prev"' in second and 'rel="next"' not in second
    township = TOWNSHIPS[2]["code"]
    scoped = client.get(f"/facilities?division={township}").text
    assert f"共 {sum(f['division_code'].startswith(township[:9]) for f in FACILITIES)} 家" \
        in scoped
    assert client.get("/facilities?level=bogus&status=bogus&page=x&type=?").status_code == 200


def test_facility_detail(client: TestClient) -> None:
    row = next(f for f in FACILITIES if f["code"] == "H001")
    html = client.get("/facilities/H001").text
    text_ = _text(html)
    for expected in (row["name"], "县人民医院", "二级", "二级甲等", "公立", "卒中中心",
                     "胸痛中心", "创伤中心", row["opened_on"], row["address"], "普通床位",
                     "重症监护床位", "注册护士", "CT"):
        assert expected in text_, expected
    assert _row_of(html, "普通床位")[1] == f"{int(row['beds_general']):,}"
    assert _row_of(html, "执业医师")[1] == row["staff_physician"]
    staff_rows = [_row_of(html, label)[0] for label in ("执业医师", "执业助理医师", "注册护士")]
    positions = [html.index(f"<td>{label}</td>") for label in staff_rows]
    assert positions == sorted(positions)  # reporting order, not alphabetical
    assert html.count("circle") >= 1 and 'class="fac-secondary focus"' in html
    doctor = next(s for s in COUNTY_DATA["staff"] if not s["qualification"])
    clinic = client.get(f"/facilities/{doctor['facility_code']}").text
    assert doctor["name"] in clinic and "无执业资格" in clinic
    assert client.get("/facilities/NOPE").status_code == 404


# --------------------------------------------------------------------------- language


def test_language_switch(client: TestClient) -> None:
    assert "医疗卫生机构" in client.get("/facilities").text
    english = client.get("/facilities?lang=en")
    assert "Health facilities" in english.text and english.cookies.get("lang") == "en"
    assert "Township health centre" in english.text
    assert "Health facilities" in client.get("/facilities").text  # the cookie is kept
    assert 'href="/facilities?lang=zh-CN"' in english.text
    assert 'href="/facilities?type=cdc&amp;lang=zh-CN"' in client.get("/facilities?type=cdc").text
    refused = client.post("/standards/assess", data={"checklist_code": "nope"})
    assert refused.status_code == 422 and 'href="/standards?lang=zh-CN"' in refused.text
    assert "医疗卫生机构" in client.get("/facilities?lang=zh-CN").text
    assert "Log out" in client.get("/?lang=en").text


def test_catalogues_complete() -> None:
    keys = [set(catalogue(lang)) for lang in LANGUAGES]
    assert all(k == keys[0] for k in keys)
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]*[a-z])["']""", template.read_text()))
    assert len(used) > 50 and used <= keys[0], used - keys[0]


# --------------------------------------------------------------------------- import / standards


def test_import_and_standards_pages(client: TestClient) -> None:
    page = client.get("/import").text
    for kind in ("divisions", "facilities", "staff", "medical_groups", "group_members"):
        assert f'href="/api/v1/templates/{kind}.xlsx"' in page
    template = client.get("/api/v1/templates/facilities.xlsx")
    assert template.status_code == 200 and template.content[:2] == b"PK"
    empty = client.post("/import", data={"kind": "facilities"},
                        files={"file": ("empty.csv", b"", "text/csv")})
    assert empty.status_code == 422 and "请选择要上传的文件" in empty.text
    standards = client.get("/standards").text
    assert "村卫生室标准化建设" in standards
    form = client.get("/standards?checklist=village_clinic").text
    clinics = [f["name"] for f in ACTIVE if f["type"] == "village_clinic"]
    assert form.count("<option") == len(clinics) and 'name="met"' in form


def test_record_assessment(site: tuple[FastAPI, str], client: TestClient) -> None:
    app, _ = site
    clinic = next(f for f in ACTIVE if f["type"] == "village_clinic")
    checklist = next(c for c in shipped_checklists() if c["code"] == "village_clinic")
    items = checklist["items"]
    met = [item["code"] for item in items[::3]]
    weights = {item["code"]: item.get("weight", 1) for item in items}
    expected = round(100 * sum(weights[c] for c in met) / sum(weights.values()), 1)
    response = client.post("/standards/assess", data={
        "checklist_code": "village_clinic", "facility_code": clinic["code"],
        "assessed_on": "2026-01-15", "assessor": "检查组", "met": met})
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert f"得分 {expected} 分" in page
    assert all(item["text_zh"] in page for item in items if item["code"] not in met)
    with app.state.sessions() as session:
        stored = session.scalar(select(Assessment))
        assert stored is not None and stored.score == expected
        assert set(stored.unmet) == set(weights) - set(met)
    detail = client.get(f"/facilities/{clinic['code']}").text
    assert "2026-01-15" in detail and "检查组" in detail
    hospital = next(f for f in FACILITIES if f["code"] == "H001")
    refused = client.post("/standards/assess", data={
        "checklist_code": "village_clinic", "facility_code": hospital["code"],
        "assessed_on": "2026-01-15", "assessor": "x"})
    assert refused.status_code == 422 and "does not apply" in refused.text
    bad_date = client.post("/standards/assess", data={
        "checklist_code": "village_clinic", "facility_code": clinic["code"],
        "assessed_on": "2026-13-45", "assessor": "x"})
    assert bad_date.status_code == 422
    with app.state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Assessment)) == 1


def test_user_language_preference(site: tuple[FastAPI, str]) -> None:
    app, _ = site

    def set_language(lang: str) -> None:
        with app.state.sessions() as session:
            user = session.scalar(select(User).where(User.username == "township"))
            assert user is not None
            user.language = lang
            session.commit()

    with TestClient(app, follow_redirects=False) as c:
        c.post("/login", data={"username": "township", "password": PASSWORD})
        assert "医疗卫生机构" in c.get("/facilities").text
        set_language("en")
        try:
            assert "Health facilities" in c.get("/facilities").text
            assert "医疗卫生机构" in c.get("/facilities?lang=zh-CN").text  # explicit choice wins
        finally:
            set_language("zh-CN")


# --------------------------------------------------------------------------- reports


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine, R = 6371.0088 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def test_blank_spot_report(client: TestClient) -> None:
    rules = blank_spot_rules()
    html = client.get("/reports/blank-spots").text
    clinic_villages = {f["division_code"] for f in ACTIVE if f["type"] == "village_clinic"}
    centres = [f for f in ACTIVE if f["type"] in rules["township_centre_types"]]
    expected_open, expected_exempt = set(), set()
    for v in VILLAGES:
        if v["urban_rural_class"] not in rules["village_urban_rural_classes"]:
            continue
        if v["code"] in clinic_villages:
            continue
        near = [c for c in centres if c["division_code"][:9] == v["code"][:9]
                and _km(float(v["lon"]), float(v["lat"]), float(c["lon"]), float(c["lat"]))
                <= rules["exempt_within_km"]]
        (expected_exempt if near else expected_open).add(v["name"])
    rows = _rows(html)
    villages_open = {r[2] for r in rows if r and r[0] == "无村卫生室的行政村" and "需整改" in r[5]}
    villages_exempt = {r[2] for r in rows if r and r[0] == "无村卫生室的行政村" and "已豁免" in r[5]}
    assert villages_open == expected_open and villages_exempt == expected_exempt
    assert all("公里" in r[5] for r in rows if r and "已豁免" in r[5])
    townships = {r[2] for r in rows if r and r[0] == "无政府办卫生院的乡镇"}
    assert townships == {TOWNSHIP_NAMES[4]}
    unqualified = {f"{s['facility_code']}" for s in COUNTY_DATA["staff"] if not s["qualification"]}
    clinic_names = {f["name"] for f in ACTIVE if f["code"] in unqualified}
    assert {r[3] for r in rows if r and r[0] == "无合格村医的村卫生室"} == clinic_names
    assert len(re.findall(r'<circle[^>]*class="spot"', html)) == len(expected_open)
    assert len(re.findall(r'<circle[^>]*class="spot-exempt"', html)) == len(expected_exempt)
    wide = client.get("/reports/blank-spots?km=50").text
    exempt_wide = {r[2] for r in _rows(wide) if r and "已豁免" in r[5]}
    assert exempt_wide > villages_exempt  # a larger radius exempts more villages
    assert client.get("/reports/blank-spots?km=-1").status_code == 200


def test_supply_report(client: TestClient) -> None:
    html = client.get("/reports/supply").text
    assert '<script src="/static/vendor/plotly.min.js"' in html
    data = json.loads(re.search(r'id="supply-data">(.*?)</script>', html, re.S).group(1))
    beds_norm = next(n for n in norms() if n.indicator == "beds_per_1000")
    beds = next(c for c in data if c["id"] == "chart-beds_per_1000")
    expected = {}
    for township in TOWNSHIPS:
        total = sum(int(v) for f in ACTIVE if f["division_code"].startswith(township["code"][:9])
                    for k, v in f.items() if k.startswith("beds_") and v)
        expected[township["name"]] = total / int(township["population"]) * 1000
    assert dict(zip(beds["names"], beds["values"])) == pytest.approx(expected, abs=1e-3)
    assert beds["passes"] == [expected[n] >= beds_norm.target for n in beds["names"]]
    county_row = re.search(r'<tr class="lvl-county">(.*?)</tr>', html, re.S).group(1)
    county_beds = sum(expected[t["name"]] * int(t["population"]) for t in TOWNSHIPS) / 1000
    population = sum(int(t["population"]) for t in TOWNSHIPS)
    state = "pass" if county_beds / population * 1000 >= beds_norm.target else "fail"
    first_ratio = re.findall(r'<td class="num (pass|fail|na)"', county_row)[0]
    assert first_ratio == state
    assert client.get("/static/vendor/plotly.min.js").status_code == 200
    assert client.get("/static/charts.js").status_code == 200
