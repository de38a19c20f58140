"""Location-allocation on the registry: which facilities to upgrade, as a scenario in one step.

The model runs on the planning engine's travel times from every village to every candidate
(:meth:`tiercare.planning.locate.LocationModel.from_engine`); existing facilities of the target
tier are kept open (``fixed``), candidates are the facilities of the chosen types.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor
from tiercare.errors import InputError
from tiercare.planning.locate import LSCP, MCLP, PCenter, PMedian
from tiercare.planning.network import Network
from tiercare.registry.accessibility import demand_points, facility_points, tiers
from tiercare.registry.codes import normalise_code, prefix_of
from tiercare.scenarios.models import Scenario
from tiercare.scenarios.service import create_scenario

MODELS = {"lscp": LSCP, "mclp": MCLP, "pmedian": PMedian, "pcenter": PCenter}


def optimise_upgrades(
    session: Session,
    actor: Actor,
    network: Network,
    *,
    division_code: str,
    model: str = "mclp",
    tier: str = "county",
    candidate_types: tuple[str, ...] = ("township_health_centre_central", "township_health_centre"),
    threshold_min: float | None = 30.0,
    new_sites: int | None = 2,
    time_limit: float = 30.0,
    gap: float = 0.0,
) -> dict[str, Any]:
    """Choose which candidates to upgrade so the tier best serves the villages.

    Existing facilities of ``tier`` are fixed open; ``new_sites`` more are chosen among the
    facilities of ``candidate_types`` (``p`` = existing + new; LSCP ignores it and finds the
    fewest additions). Weights are the villages' populations. Returns the solver result
    (objective, bound, gap, status…) and the list of chosen new sites with names.
    """
    if model not in MODELS:
        raise InputError.single(f"unknown model '{model}' (one of {', '.join(MODELS)})",
                                field="model")
    spec = tiers()["tiers"].get(tier)
    if spec is None:
        raise InputError.single(f"unknown tier '{tier}'", field="tier")
    try:
        prefix = prefix_of(normalise_code(division_code))
    except ValueError as exc:
        raise InputError.single(str(exc), field="division_code") from exc
    demand = demand_points(session, actor, root_prefix=prefix).set_index("code")
    facilities = facility_points(session, actor, root_prefix=prefix)
    existing = facilities[facilities["type"].isin(spec["types"])]
    candidates = facilities[facilities["type"].isin(candidate_types)
                            & ~facilities["code"].isin(existing["code"])]
    if candidates.empty:
        raise InputError.single("no candidate facility of the chosen types in scope",
                                field="candidate_types")
    pool = pd.concat([existing, candidates]).set_index("code")
    cutoff_min = max(threshold_min or 0.0, 60.0) * 2
    p = None if model == "lscp" else len(existing) + (new_sites or 0)
    threshold = None if model in {"pmedian", "pcenter"} else (threshold_min or 30.0) * 60
    built = MODELS[model].from_engine(
        network, demand, pool, cutoff_s=cutoff_min * 60, weight_field="population",
        threshold=threshold, p=p, fixed=list(existing["code"]))
    result = built.solve(time_limit=time_limit, gap=gap)
    names = dict(zip(pool.index, pool["name"], strict=True))
    chosen = [code for code in result.selected if code not in set(existing["code"])]
    return {"result": result.to_dict(), "tier": tier, "existing": list(existing["code"]),
            "new_sites": [{"code": c, "name": names[c]} for c in chosen],
            "population_total": float(demand["population"].sum())}


def scenario_from_optimisation(
    session: Session, actor: Actor, optimisation: dict[str, Any], *, name: str,
    division_code: str, road_network: str, upgrade_to: str = "county_sub_centre",
) -> Scenario:
    """Turn an optimisation's new sites into a saved scenario of upgrades (one action)."""
    changes = [{"action": "upgrade", "code": site["code"], "type": upgrade_to}
               for site in optimisation["new_sites"]]
    result = optimisation["result"]
    description = (f"{result['model'].upper()} optimum ({result['status']}, gap "
                   f"{(result['gap'] or 0) * 100:.2f} %): upgrade "
                   + ", ".join(s["name"] for s in optimisation["new_sites"]))
    return create_scenario(session, actor, name=name, division_code=division_code,
                           road_network=road_network, changes=changes, description=description,
                           source=f"optimisation:{result['model']}")
