"""The import page, which writes registry rows, on a fresh database per test (SQLite and
PostgreSQL, from the shared ``engine``/``db_url`` fixtures)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from web_county import COUNTY_DATA, PASSWORD, load

from tiercare.auth.models import AuditEntry
from tiercare.config import Settings
from tiercare.db.engine import session_factory
from tiercare.registry.models import Facility
from tiercare.web.app import create_app


@pytest.fixture
def client(engine: Engine, db_url: str) -> Iterator[TestClient]:
    """The planner, logged in, on a fresh copy of the test county."""
    with session_factory(engine)() as session:
        load(session)
    app = create_app(Settings(database_url=db_url, environment="test"))
    with TestClient(app, follow_redirects=False) as c:
        assert c.post("/login", data={"username": "planner",
                                      "password": PASSWORD}).status_code == 303
        yield c
    app.state.engine.dispose()


def _count(engine: Engine, model: type) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_import_error_report_writes_nothing(client: TestClient, engine: Engine) -> None:
    village = COUNTY_DATA["villages"][1]
    header = "code,name,type,division_code,lon,lat,beds_general\n"
    good = f"N1,新卫生室,village_clinic,{village['code']},{village['lon']},{village['lat']},0\n"
    bad = ("N2,坏行甲,village_clinic,140725999999,,,1\n"
           f"N3,坏行乙,no_such_type,{village['code']},120.5,30.2,-4\n")
    facilities, audits = _count(engine, Facility), _count(engine, AuditEntry)
    response = client.post("/import", data={"kind": "facilities"},
                           files={"file": ("bad.csv", (header + good + bad).encode(), "text/csv")})
    assert response.status_code == 422
    html = response.text
    assert "未写入任何数据" in html and "有 4 处错误" in html
    found = set(re.findall(r'<tr><td class="num">(\d+)</td><td><code>([a-z_]+)</code>', html))
    assert found == {("3", "division_code"), ("4", "type"), ("4", "lon"), ("4", "beds_general")}
    assert "未知区划代码" in html and "数量为负" in html and "坐标不在所属区划内" in html
    assert _count(engine, Facility) == facilities and _count(engine, AuditEntry) == audits
    ok = client.post("/import", data={"kind": "facilities"},
                     files={"file": ("good.csv", (header + good).encode(), "text/csv")})
    assert ok.status_code == 200 and "导入成功" in ok.text and "新增 1" in ok.text
    assert _count(engine, Facility) == facilities + 1
    again = client.post("/import", data={"kind": "facilities"},
                        files={"file": ("good.csv", (header + good).encode(), "text/csv")})
    assert "未变化 1" in again.text and _count(engine, Facility) == facilities + 1
