"""Referral rule data: validation of every version, travel estimate against pyproj's geodesic."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from tiercare.errors import InputError
from tiercare.referral.rules import (
    URGENCIES,
    TravelModel,
    criteria_on,
    parse_criteria,
    parse_time_limits,
    parse_travel,
    time_limits_on,
)


def test_shipped_versions():
    version = criteria_on(date(2026, 6, 1))
    assert len(version.up) == 8 and "stroke_4_5h" in version.codes("up")
    assert "rehabilitation" in version.codes("down")
    limits = time_limits_on(date(2026, 6, 1)).limits
    assert set(limits) == set(URGENCIES)
    assert limits["emergency"].acknowledge_minutes < limits["urgent"].acknowledge_minutes < \
        limits["routine"].acknowledge_minutes
    with pytest.raises(InputError):
        criteria_on(date(2000, 1, 1))


def test_every_bad_row_reported():
    with pytest.raises(InputError) as err:
        parse_criteria([{"version": "a", "effective_from": "2025-01-01",
                         "up": [{"code": "x", "zh": "甲", "en": "A"},
                                {"code": "x", "zh": "甲", "en": "A"},
                                {"code": "y", "zh": "乙"}], "down": []},
                        {"version": "b", "effective_from": "soon", "up": [], "down": []}])
    assert [(p.row, p.field) for p in err.value.problems] == [
        (1, "up"), (1, "up"), (2, "effective_from")]
    with pytest.raises(InputError) as err:
        parse_time_limits([{"effective_from": "2025-01-01", "limits": {
            "emergency": {"acknowledge_minutes": 30, "expire_minutes": 10},
            "urgent": {"acknowledge_minutes": 60, "expire_minutes": 120}}}])
    assert {p.field for p in err.value.problems} == {"emergency", "routine"}
    with pytest.raises(InputError) as err:
        parse_travel([{"effective_from": "2025-01-01", "road_factor": 0.8, "speed_kmh": 0}])
    assert {p.field for p in err.value.problems} == {"road_factor", "speed_kmh"}


@given(st.floats(110, 116), st.floats(34, 41), st.floats(110, 116), st.floats(34, 41))
@settings(max_examples=60)
def test_travel_time_matches_geodesic(lon1, lat1, lon2, lat2):
    model = TravelModel("t", date(2025, 1, 1), road_factor=1.35, speed_kmh=40.0)
    _, _, metres = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    expected = metres * 1.35 / (40 / 3.6)
    # a sphere vs the WGS84 ellipsoid: within 0.6 %
    assert model.seconds(lon1, lat1, lon2, lat2) == pytest.approx(expected, rel=6e-3, abs=1e-6)
