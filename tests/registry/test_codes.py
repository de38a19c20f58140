import pytest

from tiercare.coords import gcj02_to_wgs84, haversine_m, wgs84_to_gcj02
from tiercare.registry.codes import level_of, normalise_code, parent_code, prefix_of


@pytest.mark.parametrize(
    ("raw", "code12", "level", "parent"),
    [
        ("14", "140000000000", "province", None),
        ("1407", "140700000000", "city", "140000000000"),
        ("140725", "140725000000", "county", "140700000000"),
        ("140725100", "140725100000", "township", "140725000000"),
        ("140725100201", "140725100201", "village", "140725100000"),
        (140725.0, "140725000000", "county", "140700000000"),
    ],
)
def test_code_levels(raw, code12, level, parent):
    assert normalise_code(raw) == code12
    assert level_of(code12) == level
    assert parent_code(code12) == parent
    assert code12.startswith(prefix_of(code12))


@pytest.mark.parametrize("raw", ["1407251", "abc", "", "14-07"])
def test_bad_codes(raw):
    with pytest.raises(ValueError):
        normalise_code(raw)


def test_gcj02_round_trip_and_offset():
    lon, lat = 113.18, 37.90
    glon, glat = wgs84_to_gcj02(lon, lat)
    offset = haversine_m(lon, lat, glon, glat)
    assert 100 < offset < 1000  # the datum shift is a few hundred metres in China
    back = gcj02_to_wgs84(glon, glat)
    assert haversine_m(lon, lat, *back) < 0.01
    assert wgs84_to_gcj02(2.0, 48.0) == (2.0, 48.0)  # no shift outside China
