"""Where to deliver, from the database: a woman's recommendation, the planners' list of villages
beyond reach, and the catchments of the critical maternal care centres.

The computation is :mod:`tiercare.maternal.delivery` (pure); this module reads villages and
facilities from the registry. A purple case must meet both its colour's requirement and
purple's. When no facility meeting the requirement is within ``max_travel_minutes``, the
nearest facility meeting the colour's *fallback* rule (data) is proposed instead, marked as such.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.maternal.delivery import nearest_qualifying, qualifying
from tiercare.maternal.models import Pregnancy
from tiercare.maternal.rules import CaseRules, DeliveryRule
from tiercare.planning.network import Network
from tiercare.registry.models import Division, Facility

__all__ = ["centre_catchments", "facility_frame", "planner_gaps", "village_frame",
           "where_to_deliver"]

CENTRE = "critical_maternal"


def facility_frame(session: Session) -> pd.DataFrame:
    """Open facilities with coordinates: ``id, code, name, level, services, centres, lon, lat``."""
    rows = session.scalars(select(Facility).where(
        Facility.closed_on.is_(None), Facility.lon.is_not(None), Facility.lat.is_not(None))
        .order_by(Facility.id))
    return pd.DataFrame(
        [{"id": f.id, "code": f.code, "name": f.name, "level": f.level,
          "services": list(f.services or []), "centres": list(f.centres or []),
          "lon": f.lon, "lat": f.lat} for f in rows],
        columns=["id", "code", "name", "level", "services", "centres", "lon", "lat"])


def village_frame(session: Session, prefix: str) -> pd.DataFrame:
    """Villages under ``prefix`` with coordinates: ``code, name, population, lon, lat``."""
    rows = session.execute(select(Division.code, Division.name, Division.population,
                                  Division.lon, Division.lat).where(
        Division.level == "village", Division.code.like(prefix + "%"),
        Division.lon.is_not(None), Division.lat.is_not(None)).order_by(Division.code)).all()
    return pd.DataFrame([tuple(r) for r in rows],
                        columns=["code", "name", "population", "lon", "lat"])


def _needs(colour: str, purple: bool) -> list[str]:
    return [colour] + (["purple"] if purple else [])


def _filter_all(facilities: pd.DataFrame, rules: list[DeliveryRule]) -> pd.DataFrame:
    out = facilities
    for rule in rules:
        out = qualifying(out, rule)
    return out


def _nearest(villages: pd.DataFrame, facilities: pd.DataFrame, rule_list: list[DeliveryRule],
             rules: CaseRules, network: Network | None) -> pd.DataFrame:
    """Nearest facility accepted by every rule of ``rule_list``."""
    candidates = _filter_all(facilities, rule_list[1:])
    return nearest_qualifying(villages, candidates, rule_list[0], delivery=rules.delivery,
                              network=network)


def where_to_deliver(session: Session, p: Pregnancy, *, rules: CaseRules,
                     network: Network | None = None,
                     facilities: pd.DataFrame | None = None) -> dict[str, Any]:
    """The recommended delivery facility for a pregnancy, from the woman's village.

    Returns
    -------
    dict
        ``colour``, ``purple``, ``required`` (levels/services/centres per need),
        ``facility`` (id, code, name, level or None), ``minutes``, ``method``,
        ``within_limit``, ``fallback`` (the fallback rule was used), ``limit_minutes``.
    """
    needs = _needs(p.colour, p.purple)
    required = {n: {"levels": list(rules.delivery.by_colour[n].levels),
                    "services": list(rules.delivery.by_colour[n].services),
                    "centres": list(rules.delivery.by_colour[n].centres)} for n in needs}
    out: dict[str, Any] = {"colour": p.colour, "purple": p.purple, "required": required,
                           "facility": None, "minutes": None, "method": None,
                           "within_limit": False, "fallback": False,
                           "limit_minutes": rules.delivery.max_travel_minutes}
    village = village_frame(session, p.village_code)
    village = village[village["code"] == p.village_code]
    if village.empty:
        return out
    facilities = facility_frame(session) if facilities is None else facilities
    primary = [rules.delivery.by_colour[n] for n in needs]
    best = _nearest(village, facilities, primary, rules, network).iloc[0]
    used_fallback = False
    if best["beyond_limit"] and any(n in rules.delivery.fallback for n in needs):
        fallback = [rules.delivery.fallback.get(n, rules.delivery.by_colour[n]) for n in needs]
        alternative = _nearest(village, facilities, fallback, rules, network).iloc[0]
        if alternative["facility_id"] >= 0 and (best["facility_id"] < 0 or
                                                alternative["minutes"] < best["minutes"]):
            best, used_fallback = alternative, True
    if best["facility_id"] < 0:
        return out
    row = facilities[facilities["id"] == best["facility_id"]].iloc[0]
    out.update({
        "facility": {"id": int(row["id"]), "code": row["code"], "name": row["name"],
                     "level": row["level"]},
        "minutes": round(float(best["minutes"]), 1), "method": best["method"],
        "within_limit": not bool(best["beyond_limit"]), "fallback": used_fallback,
    })
    return out


def planner_gaps(session: Session, *, prefix: str, rules: CaseRules,
                 network: Network | None = None) -> list[dict[str, Any]]:
    """Villages where a colour's required facility is beyond ``max_travel_minutes``.

    One row per (village, colour) beyond the limit, with the nearest qualifying facility (if
    any) and the number of open pregnancies of that colour living there.
    """
    villages = village_frame(session, prefix)
    facilities = facility_frame(session)
    if villages.empty:
        return []
    open_counts: dict[tuple[str, str], int] = {}
    for code, colour, purple in session.execute(select(
            Pregnancy.village_code, Pregnancy.colour, Pregnancy.purple).where(
            Pregnancy.village_code.like(prefix + "%"), Pregnancy.status != "closed")):
        open_counts[(code, colour)] = open_counts.get((code, colour), 0) + 1
        if purple:
            open_counts[(code, "purple")] = open_counts.get((code, "purple"), 0) + 1
    names = dict(zip(facilities["id"], facilities["name"], strict=True))
    out: list[dict[str, Any]] = []
    for colour, rule in rules.delivery.by_colour.items():
        result = nearest_qualifying(villages, facilities, rule, delivery=rules.delivery,
                                    network=network)
        for i in np.flatnonzero(result["beyond_limit"].to_numpy()):
            v = villages.iloc[i]
            fid = int(result["facility_id"].iloc[i])
            minutes = float(result["minutes"].iloc[i])
            out.append({
                "village_code": v["code"], "village": v["name"],
                "population": None if pd.isna(v["population"]) else int(v["population"]),
                "colour": colour, "nearest_facility": names.get(fid) if fid >= 0 else None,
                "minutes": round(minutes, 1) if np.isfinite(minutes) else None,
                "method": result["method"].iloc[i],
                "open_pregnancies": open_counts.get((v["code"], colour), 0),
            })
    return out


def centre_catchments(session: Session, *, prefix: str, rules: CaseRules,
                      network: Network | None = None) -> dict[str, Any]:
    """Each village's nearest critical maternal care centre (its catchment) and the minutes.

    Returns
    -------
    dict
        ``centres``: ``[{id, code, name, lon, lat, villages}]``; ``villages``:
        ``[{code, name, lon, lat, centre_id, minutes}]``.
    """
    villages = village_frame(session, prefix)
    facilities = facility_frame(session)
    centres = facilities[[CENTRE in c for c in facilities["centres"]]] if len(facilities) \
        else facilities
    rule = DeliveryRule(levels=("primary", "secondary", "tertiary"), services=(),
                        centres=(CENTRE,))
    result = nearest_qualifying(villages, centres, rule, delivery=rules.delivery,
                                network=network)
    served = result["facility_id"].value_counts().to_dict()
    return {
        "centres": [{"id": int(c["id"]), "code": c["code"], "name": c["name"],
                     "lon": float(c["lon"]), "lat": float(c["lat"]),
                     "villages": int(served.get(c["id"], 0))} for _, c in centres.iterrows()],
        "villages": [{"code": v["code"], "name": v["name"], "lon": float(v["lon"]),
                      "lat": float(v["lat"]), "centre_id": int(r["facility_id"]),
                      "minutes": round(float(r["minutes"]), 1)
                      if np.isfinite(r["minutes"]) else None}
                     for (_, v), (_, r) in zip(villages.iterrows(), result.iterrows(),
                                               strict=True)],
    }
