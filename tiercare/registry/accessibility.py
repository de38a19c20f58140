"""Access analyses of the registry's network: the bridge from the database to the planning engine.

Builds demand (villages with population) and supply (facilities by tier or specialised centre) as
GeoDataFrames from the registry, runs the pure planning engine on a road network, and returns
tables by tier, by township and by centre.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from tiercare.auth.service import Actor
from tiercare.errors import InputError
from tiercare.planning.access import coverage_table, enhanced_two_step_fca
from tiercare.planning.network import Network, nearest_facility, snap, travel_time_matrix
from tiercare.registry.models import Division, Facility

DEFAULT_THRESHOLDS = (15, 30, 60)


def _read_only(value: Any) -> Any:
    """``value`` with every dict turned into a read-only mapping and every list into a tuple."""
    if isinstance(value, dict):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_read_only(item) for item in value)
    return value


@cache
def tiers() -> Mapping[str, Any]:
    """The tier definitions (facility types per tier, specialised centres).

    ``tiers.json`` is read once per process; every caller shares that one copy, so it is
    read-only all the way down (mappings and tuples), and no caller can change another's.
    """
    text = (resources.files("tiercare.registry") / "data" / "tiers.json").read_text("utf-8")
    return _read_only(json.loads(text))


def demand_points(session: Session, actor: Actor, *, root_prefix: str = "") -> gpd.GeoDataFrame:
    """Villages and communities with population and a point, in the actor's scope."""
    prefix = root_prefix if root_prefix.startswith(actor.division_prefix) else actor.division_prefix
    rows = session.scalars(
        select(Division).where(Division.level == "village", Division.code.like(prefix + "%"),
                               Division.lon.is_not(None), Division.active.is_(True))
        .order_by(Division.code)
    ).all()
    return gpd.GeoDataFrame(
        {
            "code": [d.code for d in rows],
            "name": [d.name for d in rows],
            "township": [d.code[:9] + "000" for d in rows],
            "population": [float(d.population or 0) for d in rows],
        },
        geometry=[Point(d.lon, d.lat) for d in rows],
        crs="EPSG:4326",
    )


def facility_points(session: Session, actor: Actor, *, root_prefix: str = "",
                    as_of: date | None = None) -> gpd.GeoDataFrame:
    """Active, located facilities in scope with type, centres, beds and physicians."""
    as_of = as_of or date.today()
    prefix = root_prefix if root_prefix.startswith(actor.division_prefix) else actor.division_prefix
    query = (
        select(Facility)
        .where(Facility.division_prefix.like(prefix + "%"), Facility.lon.is_not(None),
               actor.facility_clause(Facility),
               or_(Facility.opened_on.is_(None), Facility.opened_on <= as_of),
               or_(Facility.closed_on.is_(None), Facility.closed_on > as_of))
        .options(selectinload(Facility.resources))
        .order_by(Facility.code)
    )
    rows = list(session.scalars(query))
    return gpd.GeoDataFrame(
        {
            "code": [f.code for f in rows],
            "name": [f.name for f in rows],
            "type": [f.type_code for f in rows],
            "centres": [list(f.centres or []) for f in rows],
            "beds": [sum(r.quantity for r in f.resources if r.category == "beds") for f in rows],
            "physicians": [f.resource("staff", "physician") + f.resource("staff",
                                                                           "assistant_physician")
                           for f in rows],
        },
        geometry=[Point(f.lon, f.lat) for f in rows],
        crs="EPSG:4326",
    )


def groups(facilities: gpd.GeoDataFrame) -> list[tuple[str, str, gpd.GeoDataFrame]]:
    """(kind, name, facilities) for every tier and every specialised centre."""
    out: list[tuple[str, str, gpd.GeoDataFrame]] = []
    for name, spec in tiers()["tiers"].items():
        out.append(("tier", name, facilities[facilities["type"].isin(spec["types"])]))
    for centre in tiers()["centres"]:
        out.append(("centre", centre,
                    facilities[facilities["centres"].map(lambda cs, c=centre: c in cs)]))
    return out


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    ok = np.isfinite(values) & (weights > 0)
    if not ok.any():
        return None
    order = np.argsort(values[ok])
    v, w = values[ok][order], weights[ok][order]
    cumulative = np.cumsum(w) / w.sum()
    return float(v[np.searchsorted(cumulative, q)])


def analyse(
    network: Network,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    catchment_min: float = 60.0,
) -> dict[str, Any]:
    """Travel time to every tier and centre, coverage by township, E2SFCA on physicians.

    Pure: ``demand`` has ``code, name, township, population``; ``facilities`` has ``code, type,
    centres, physicians`` (see :func:`demand_points`, :func:`facility_points`). Returns
    ``villages`` (one row per village: minutes and nearest facility per group), ``coverage``
    (group × township × threshold) and a JSON-ready ``summary`` per group: facilities,
    covered population, unreachable, population-weighted mean and 90th-percentile minutes,
    population served per facility, and the equity gap (best minus worst township share
    covered at the first threshold).
    """
    if demand.empty:
        raise InputError.single("no village with a location and population in scope",
                                field="division")
    population = demand["population"].to_numpy(dtype=float)
    snapped_demand = snap(network, demand)
    villages = pd.DataFrame({"code": demand["code"].to_numpy(), "name": demand["name"].to_numpy(),
                             "township": demand["township"].to_numpy(), "population": population})
    coverage_frames = []
    summary: dict[str, Any] = {"thresholds": list(thresholds),
                               "population_total": float(population.sum()),
                               "tiers": {}, "centres": {}}
    for kind, name, supply in groups(facilities):
        section = summary["tiers" if kind == "tier" else "centres"]
        if supply.empty:
            villages[f"minutes_{name}"] = np.nan
            villages[f"nearest_{name}"] = ""
            section[name] = {"facilities": 0}
            continue
        result = nearest_facility(network, snap(network, supply), snapped_demand)
        minutes = np.where(np.isfinite(result.seconds), result.seconds / 60.0, np.nan)
        villages[f"minutes_{name}"] = np.round(minutes, 2)
        villages[f"nearest_{name}"] = [supply["code"].iloc[i] if i >= 0 else ""
                                       for i in result.facility]
        table = coverage_table(result.seconds, population, thresholds,
                               divisions=demand["township"].to_numpy())
        table.insert(0, "group", name)
        coverage_frames.append(table)
        total = table.loc["total"]
        by_township = table.drop(index="total")
        first = f"covered_{_label(thresholds[0])}"
        shares = (by_township[first] / by_township["population"]).replace([np.inf], np.nan)
        served = pd.Series(population).groupby(result.facility).sum()
        served = served[served.index >= 0]
        reached = np.isfinite(minutes)
        section[name] = {
            "facilities": len(supply),
            "covered": {_label(t): float(total[f"covered_{_label(t)}"]) for t in thresholds},
            "unreachable": float(total["unreachable"]),
            "mean_minutes": float(np.sum(minutes[reached] * population[reached])
                                  / population[reached].sum()) if reached.any() else None,
            "p90_minutes": _weighted_percentile(minutes, population, 0.9),
            "population_per_facility": float(served.sum() / len(supply)),
            "equity_gap": float(shares.max() - shares.min()) if len(shares) else None,
        }
    if not facilities.empty:
        times = travel_time_matrix(network, snap(network, facilities), snapped_demand,
                                   cutoff_s=catchment_min * 60, direction="to_origins")
        score = enhanced_two_step_fca(times, population,
                                      facilities["physicians"].to_numpy(dtype=float),
                                      catchment_min=catchment_min)
        villages["e2sfca_physicians_per_1000"] = np.round(score * 1000, 4)
        summary["e2sfca_physicians_per_1000"] = {
            "catchment_min": catchment_min,
            "min": float(np.min(score) * 1000), "median": float(np.median(score) * 1000),
            "max": float(np.max(score) * 1000),
        }
    coverage = pd.concat(coverage_frames) if coverage_frames else pd.DataFrame()
    return {"villages": villages, "coverage": coverage, "summary": summary}


def _label(minutes: float) -> str:
    return f"{minutes:g}"


def access_report(
    session: Session,
    actor: Actor,
    network: Network,
    *,
    root_prefix: str = "",
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    catchment_min: float = 60.0,
) -> dict[str, Any]:
    """:func:`analyse` on the registry's villages and active facilities in scope."""
    return analyse(network, demand_points(session, actor, root_prefix=root_prefix),
                   facility_points(session, actor, root_prefix=root_prefix),
                   thresholds=thresholds, catchment_min=catchment_min)


def minutes_to_tier(session: Session, actor: Actor, network: Network, *, root_prefix: str = "",
                    tier: str = "township") -> dict[str, float]:
    """Travel minutes from every village to its nearest facility of a tier (by village code)."""
    demand = demand_points(session, actor, root_prefix=root_prefix)
    facilities = facility_points(session, actor, root_prefix=root_prefix)
    supply = next(g for kind, name, g in groups(facilities) if kind == "tier" and name == tier)
    if demand.empty or supply.empty:
        return {}
    result = nearest_facility(network, snap(network, supply), snap(network, demand))
    return {code: float(seconds / 60) for code, seconds in zip(demand["code"], result.seconds,
                                                                strict=True)
            if np.isfinite(seconds)}
