"""Same optimal objectives as spopt (solved exactly with HiGHS through PuLP) on spopt's
San Francisco instance (205 census tracts × 16 candidate stores, network distances in metres),
which ships inside the installed spopt package (spopt/tests/test_locate/data)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiercare.planning.locate import LSCP, MCLP, LocateInfeasibleError, PCenter, PMedian

spopt = pytest.importorskip("spopt")
pulp = pytest.importorskip("pulp")
from spopt.locate import LSCP as SpLSCP  # noqa: E402
from spopt.locate import MCLP as SpMCLP  # noqa: E402
from spopt.locate import PCenter as SpPCenter  # noqa: E402
from spopt.locate import PMedian as SpPMedian  # noqa: E402

DATA = Path(spopt.__file__).parent / "tests" / "test_locate" / "data"
PAIRS = DATA / "SF_network_distance_candidateStore_16_censusTract_205_new.csv"


@pytest.fixture(scope="module")
def sf() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    if not PAIRS.exists():
        pytest.skip(f"spopt's San Francisco test data is not installed ({PAIRS})")
    pairs = pd.read_csv(PAIRS)
    piv = pairs.pivot_table(values="distance", index="DestinationName", columns="name")
    weights = pairs.groupby("DestinationName")["demand"].first().loc[piv.index]
    return (piv.to_numpy(), weights.to_numpy(dtype=float), list(piv.index),
            list(piv.columns))


def _solver() -> object:
    if "HiGHS" not in pulp.listSolvers(onlyAvailable=True):
        pytest.skip("PuLP's HiGHS interface (highspy) is not available")
    return pulp.HiGHS(msg=False)


def _spopt_objective(model: object) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.solve(_solver())
    assert model.problem.status == pulp.LpStatusOptimal
    return float(model.problem.objective.value())


@pytest.mark.parametrize("p", [4, 7])
def test_pmedian_matches_spopt(sf, p: int) -> None:
    costs, w, _, _ = sf
    expected = _spopt_objective(SpPMedian.from_cost_matrix(costs, w, p))
    result = PMedian.from_cost_matrix(costs, w, p=p).solve()
    assert result.status == "optimal"
    assert result.objective == pytest.approx(expected, rel=1e-9)
    assert result.bound <= result.objective + 1e-6


@pytest.mark.parametrize(("threshold", "p"), [(5000.0, 4), (2000.0, 6), (1000.0, 3)])
def test_mclp_matches_spopt(sf, threshold: float, p: int) -> None:
    costs, w, _, _ = sf
    expected = _spopt_objective(SpMCLP.from_cost_matrix(costs, w, threshold, p))
    result = MCLP.from_cost_matrix(costs, w, threshold=threshold, p=p).solve()
    assert result.status == "optimal"
    assert result.objective == pytest.approx(expected)
    assert result.covered_weight == pytest.approx(expected)


@pytest.mark.parametrize("threshold", [5000.0, 3000.0])
def test_lscp_matches_spopt(sf, threshold: float) -> None:
    costs, w, tracts, _ = sf
    unreachable = [tracts[i] for i in np.flatnonzero(costs.min(axis=1) > threshold)]
    if unreachable:
        with pytest.raises(RuntimeError, match="Infeasible"):
            _spopt_objective(SpLSCP.from_cost_matrix(costs, threshold))
        with pytest.raises(LocateInfeasibleError) as info:
            LSCP.from_cost_matrix(costs, w, threshold=threshold, demand_ids=tracts).solve()
        assert list(info.value.demand_ids) == unreachable
        return
    expected = _spopt_objective(SpLSCP.from_cost_matrix(costs, threshold))
    result = LSCP.from_cost_matrix(costs, w, threshold=threshold).solve()
    assert result.status == "optimal"
    assert result.objective == expected
    assert len(result.selected) == expected
    assert result.covered_weight == pytest.approx(w.sum())


@pytest.mark.parametrize("p", [4])
def test_pcenter_matches_spopt(sf, p: int) -> None:
    costs, w, _, _ = sf
    expected = _spopt_objective(SpPCenter.from_cost_matrix(costs, p))
    result = PCenter.from_cost_matrix(costs, w, p=p).solve()
    assert result.status == "optimal"
    assert result.objective == pytest.approx(expected, rel=1e-9)


def test_fixed_sites_match_spopt_predefined(sf) -> None:
    costs, w, _, stores = sf
    predefined = np.zeros(len(stores), dtype=bool)
    predefined[[0, 9]] = True
    expected = _spopt_objective(SpMCLP.from_cost_matrix(
        costs, w, 2000.0, 5, predefined_facilities_arr=predefined))
    result = MCLP.from_cost_matrix(costs, w, threshold=2000.0, p=5, fixed=[0, 9]).solve()
    assert result.objective == pytest.approx(expected)
    assert {0, 9} <= set(result.selected)
    expected_pm = _spopt_objective(SpPMedian.from_cost_matrix(
        costs, w, 5, predefined_facilities_arr=predefined))
    result_pm = PMedian.from_cost_matrix(costs, w, p=5, fixed=[0, 9]).solve()
    assert result_pm.objective == pytest.approx(expected_pm, rel=1e-9)


def test_ids_and_frame(sf) -> None:
    costs, w, tracts, stores = sf
    result = PMedian.from_cost_matrix(costs, w, p=4, demand_ids=tracts,
                                      candidate_ids=stores).solve()
    assert set(result.selected) <= set(stores)
    assert set(result.assignment) == set(tracts)
    frame = result.to_frame()
    assert list(frame.columns) == ["demand_id", "weight", "candidate_id", "cost", "covered"]
    assert (frame["weight"] * frame["cost"]).sum() == pytest.approx(result.objective, rel=1e-9)
    assert set(frame["candidate_id"]) == set(result.selected)
