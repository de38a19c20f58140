"""Where to deliver: the nearest facility of the level a colour requires, by travel time.

Two ways of estimating the time from a village to a facility:

* with a road network (:class:`tiercare.planning.network.Network`): the planning engine's
  multi-source Dijkstra (:func:`tiercare.planning.network.nearest_facility`), village and
  facility points joined to the nearest road segment;
* without one: the great-circle distance ``d`` (WGS84 ellipsoid, :class:`pyproj.Geod`) times a
  road factor ``k`` (roads are longer than the straight line) at a speed ``v``:
  ``t = k · d / v``. ``k`` and ``v`` are data (``delivery.road_factor``,
  ``delivery.straight_line_speed_kmh`` in the case rules).

Which facilities qualify for a colour is data too (:class:`~tiercare.maternal.rules.DeliveryRule`:
levels, services, centres). Villages whose nearest qualifying facility is farther than
``max_travel_minutes`` are listed for the planners.

Examples
--------
>>> import pandas as pd
>>> from tiercare.maternal.rules import load_case_rules
>>> villages = pd.DataFrame({"code": ["v1"], "lon": [113.0], "lat": [38.0]})
>>> fac = pd.DataFrame({"id": [7], "lon": [113.0], "lat": [38.1], "level": ["tertiary"],
...                     "services": [["delivery"]], "centres": [[]]})
>>> out = nearest_qualifying(villages, fac, load_case_rules().delivery.by_colour["red"],
...                          delivery=load_case_rules().delivery)
>>> int(out.loc[0, "facility_id"]), round(float(out.loc[0, "minutes"]), 1)
(7, 23.3)
"""

from __future__ import annotations

from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from tiercare.maternal.rules import DeliveryRule, DeliveryRules
from tiercare.planning.network import Network, nearest_facility

__all__ = ["GEOD", "nearest_qualifying", "qualifying", "straight_line_seconds"]

GEOD = pyproj.Geod(ellps="WGS84")
"""Ellipsoid used for straight-line distances."""


def straight_line_seconds(origin_lonlat: np.ndarray, dest_lonlat: np.ndarray, *,
                          delivery: DeliveryRules) -> np.ndarray:
    """Estimated travel seconds between every origin and every destination without roads.

    Parameters
    ----------
    origin_lonlat, dest_lonlat:
        ``(n, 2)`` and ``(m, 2)`` WGS84 longitude/latitude arrays.
    delivery:
        Supplies ``road_factor`` and ``straight_line_speed_kmh``.

    Returns
    -------
    numpy.ndarray
        ``(n, m)`` seconds: ``road_factor · geodesic metres / (speed_kmh / 3.6)``.
    """
    o = np.asarray(origin_lonlat, dtype=float).reshape(-1, 2)
    d = np.asarray(dest_lonlat, dtype=float).reshape(-1, 2)
    lon1 = np.repeat(o[:, 0], len(d))
    lat1 = np.repeat(o[:, 1], len(d))
    lon2 = np.tile(d[:, 0], len(o))
    lat2 = np.tile(d[:, 1], len(o))
    _az, _baz, metres = GEOD.inv(lon1, lat1, lon2, lat2)
    speed_mps = delivery.straight_line_speed_kmh / 3.6
    return (np.asarray(metres) * delivery.road_factor / speed_mps).reshape(len(o), len(d))


def qualifying(facilities: pd.DataFrame, rule: DeliveryRule) -> pd.DataFrame:
    """The facilities (rows with ``level``, ``services``, ``centres``) that ``rule`` accepts."""
    if facilities.empty:
        return facilities
    keep = [rule.accepts(level=r.level, services=r.services, centres=r.centres)
            for r in facilities.itertuples()]
    return facilities[np.asarray(keep, dtype=bool)]


def nearest_qualifying(
    villages: pd.DataFrame,
    facilities: pd.DataFrame,
    rule: DeliveryRule,
    *,
    delivery: DeliveryRules,
    network: Network | None = None,
) -> pd.DataFrame:
    """Nearest qualifying facility and travel minutes of every village.

    Parameters
    ----------
    villages:
        Columns ``code``, ``lon``, ``lat`` (WGS84).
    facilities:
        Columns ``id``, ``lon``, ``lat``, ``level``, ``services``, ``centres``.
    rule:
        Which facilities qualify.
    delivery:
        Travel assumptions and the time limit.
    network:
        A road network; without one the straight-line estimate is used.

    Returns
    -------
    pandas.DataFrame
        ``code``, ``facility_id`` (``-1`` when none is reachable), ``minutes`` (``inf`` when
        none), ``beyond_limit`` (minutes above ``max_travel_minutes``) and ``method``
        (``"network"`` or ``"straight_line"``), one row per village in input order.
    """
    method: Literal["network", "straight_line"] = "network" if network is not None \
        else "straight_line"
    ok = qualifying(facilities, rule)
    n = len(villages)
    fac_id = np.full(n, -1, dtype=np.int64)
    seconds = np.full(n, np.inf)
    if n and len(ok):
        v_xy = villages[["lon", "lat"]].to_numpy(dtype=float)
        f_xy = ok[["lon", "lat"]].to_numpy(dtype=float)
        if network is None:
            matrix = straight_line_seconds(v_xy, f_xy, delivery=delivery)
            best = np.argmin(matrix, axis=1)
            seconds = matrix[np.arange(n), best]
            fac_id = ok["id"].to_numpy(dtype=np.int64)[best]
        else:
            fac_points = gpd.GeoSeries(gpd.points_from_xy(f_xy[:, 0], f_xy[:, 1]),
                                       crs="EPSG:4326")
            dem_points = gpd.GeoSeries(gpd.points_from_xy(v_xy[:, 0], v_xy[:, 1]),
                                       crs="EPSG:4326")
            result = nearest_facility(network, fac_points, dem_points)
            seconds = np.asarray(result.seconds, dtype=float)
            reached = result.facility >= 0
            ids = ok["id"].to_numpy(dtype=np.int64)
            fac_id = np.where(reached, ids[np.clip(result.facility, 0, None)], -1)
    minutes = seconds / 60.0
    return pd.DataFrame({
        "code": villages["code"].to_numpy(),
        "facility_id": fac_id,
        "minutes": minutes,
        "beyond_limit": minutes > delivery.max_travel_minutes,
        "method": method,
    })
