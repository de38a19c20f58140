"""The offline SVG map projection, the language choice and the layout's module links."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon

from tiercare.web.i18n import Translator, choose_language
from tiercare.web.maps import MapBuilder
from tiercare.web.pages import _exemption


def _rings(path: str) -> list[list[tuple[float, float]]]:
    """Parse the M/L/Z path data written by the map builder."""
    rings = []
    for part in path.split("Z"):
        if part:
            rings.append([(float(x), float(y))
                          for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", part)])
    return rings


def test_projection_scales_longitude_by_cos_latitude() -> None:
    square = {"type": "Polygon",
              "coordinates": [[[110, 59], [112, 59], [112, 61], [110, 61], [110, 59]]]}
    builder = MapBuilder()
    builder.polygon(square, css="c", label="square")
    svg = builder.render(width=1000, max_height=1000, padding=0)
    assert svg is not None
    (ring,) = _rings(svg.shapes[0].path)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    assert height == 1000  # 2° of latitude fill the frame
    assert width == round(1000 * math.cos(math.radians(60)), 1)  # 2° of longitude at 60° N
    assert min(ys) == 0 and ys[0] == 1000  # north is up: the first vertex (59° N) is at the bottom


@settings(max_examples=60, deadline=None)
@given(lon=st.floats(100, 101), lat=st.floats(30, 31),
       px=st.floats(0.01, 0.99), py=st.floats(0.01, 0.99))
def test_points_stay_inside_their_polygon(lon: float, lat: float, px: float, py: float) -> None:
    triangle = Polygon([(lon, lat), (lon + 0.5, lat + 0.1), (lon + 0.2, lat + 0.4)])
    inside = Point(lon + 0.5 * px * (1 - py) + 0.2 * py * (1 - px) * 0.5,
                   lat + 0.1 * px * (1 - py) + 0.4 * py * (1 - px) * 0.5)
    builder = MapBuilder()
    builder.polygon(triangle.__geo_interface__, css="c", label="t")
    builder.point(inside.x, inside.y, css="p", label="p")
    svg = builder.render(width=800, max_height=600)
    assert svg is not None
    projected = Polygon(_rings(svg.shapes[0].path)[0])
    point = Point(svg.points[0].x, svg.points[0].y)
    assert triangle.contains(inside) == projected.buffer(0.2).contains(point)
    assert 0 <= svg.points[0].x <= svg.width and 0 <= svg.points[0].y <= svg.height <= 600


def test_empty_and_degenerate_maps() -> None:
    assert MapBuilder().render() is None
    builder = MapBuilder()
    assert not builder.point(None, None, css="p", label="no coordinates")
    assert not builder.polygon(None, css="c", label="no boundary")
    assert builder.render() is None
    builder.point(113.0, 38.0, css="p", label="alone")
    svg = builder.render(width=400, max_height=400, padding=10)
    assert svg is not None and (svg.points[0].x, svg.points[0].y) == (200.0, 200.0)


def test_language_choice_order() -> None:
    assert choose_language(query=None, cookie=None, user_language=None, default="zh-CN") == "zh-CN"
    assert choose_language(query=None, cookie=None, user_language="en", default="zh-CN") == "en"
    assert choose_language(query=None, cookie="zh", user_language="en", default="en") == "zh-CN"
    assert choose_language(query="en-US", cookie="zh", user_language="zh", default="zh") == "en"
    assert choose_language(query="fr", cookie=None, user_language=None, default="en") == "en"


def test_labels_and_exemption_texts() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    assert zh.label("cadre", "nurse") == "注册护士" and en.label("cadre", "nurse") != "注册护士"
    assert zh.label("cadre", "herbalist") == "herbalist" and zh.label("cadre", None) == "—"
    assert _exemption("1.4 km from 甲镇卫生院 (≤ 2 km)", zh) == "距甲镇卫生院 1.4 公里（不超过 2 公里）"
    assert _exemption("12 min from the township health centre (≤ 15 min)", zh) == \
        "距乡镇卫生院 12 分钟（不超过 15 分钟）"
    assert _exemption("something new", zh) == "something new"


def test_module_links_only_for_served_pages() -> None:
    from fastapi import APIRouter, FastAPI

    from tiercare.web.pages import module_links

    app = FastAPI()
    sub = APIRouter(prefix="/maternal")
    sub.add_api_route("", lambda: {}, methods=["GET"])
    app.include_router(sub)
    app.add_api_route("/planning", lambda: {}, methods=["GET"])
    app.add_api_route("/referrals", lambda: {}, methods=["POST"])
    assert module_links(app) == (("/planning", "nav.planning"), ("/maternal", "nav.maternal"))
