"""Accessibility scores against PySAL ``access``; coverage, catchments, capacity by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from access import Access, weights
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.planning.access import (
    GaussianWeights,
    StepWeights,
    capacity_coverage,
    catchment_population,
    coverage_table,
    enhanced_two_step_fca,
    floating_catchment,
    gravity_access,
    two_step_fca,
)


def _instance(seed: int, nd: int = 60, nf: int = 8, density: float = 0.5):
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0, 90 * 60, (nf, nd)).round(0)  # seconds, whole numbers hit the steps
    mask = rng.random((nf, nd)) < density
    times = sp.csr_matrix((dense[mask], np.nonzero(mask)[1], np.concatenate(
        [[0], np.cumsum(mask.sum(axis=1))])), shape=(nf, nd))
    pop = rng.integers(1, 5000, nd).astype(float)
    supply = rng.integers(0, 50, nf).astype(float)
    return times, pop, supply


def _pysal(times: sp.csr_matrix, pop: np.ndarray, supply: np.ndarray, *, max_cost: float,
           weight_fn=None) -> np.ndarray:
    coo = times.tocoo()
    cost = pd.DataFrame({"origin": [f"d{j}" for j in coo.col],
                         "dest": [f"f{i}" for i in coo.row], "minutes": coo.data / 60.0})
    demand = pd.DataFrame({"did": [f"d{j}" for j in range(len(pop))], "pop": pop})
    supply_df = pd.DataFrame({"sid": [f"f{i}" for i in range(len(supply))], "beds": supply})
    model = Access(demand_df=demand, demand_index="did", demand_value="pop",
                   supply_df=supply_df, supply_index="sid", supply_value="beds",
                   cost_df=cost, cost_origin="origin", cost_dest="dest", cost_name="minutes")
    out = model.two_stage_fca(name="x", max_cost=max_cost, weight_fn=weight_fn)
    series = out["x_beds"].reindex([f"d{j}" for j in range(len(pop))])
    return series.fillna(0.0).to_numpy()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), catchment=st.sampled_from([30, 45, 60]))
def test_2sfca_and_e2sfca_equal_pysal_access(seed: int, catchment: int) -> None:
    times, pop, supply = _instance(seed)
    ours = two_step_fca(times, pop, supply, catchment_min=catchment)
    np.testing.assert_allclose(ours, _pysal(times, pop, supply, max_cost=catchment),
                               rtol=1e-9, atol=1e-12)
    c = float(catchment)
    step = weights.step_fn({c / 3: 1.0, 2 * c / 3: 0.68, c: 0.22})
    ours = enhanced_two_step_fca(times, pop, supply, catchment_min=catchment)
    np.testing.assert_allclose(ours, _pysal(times, pop, supply, max_cost=c, weight_fn=step),
                               rtol=1e-9, atol=1e-12)
    ours = enhanced_two_step_fca(times, pop, supply, catchment_min=catchment,
                                 weights=GaussianWeights(20.0))
    theirs = _pysal(times, pop, supply, max_cost=c, weight_fn=weights.gaussian(20.0))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    ours = gravity_access(times, pop, supply, beta=1.5, min_minutes=2.0, catchment_min=c)
    theirs = _pysal(times, pop, supply, max_cost=c,
                    weight_fn=weights.gravity(scale=1.0, alpha=-1.5, min_dist=2.0))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_2sfca_conserves_supply() -> None:
    # every facility's supply is fully shared out: sum_i P_i A_i = sum of supply with demand
    times, pop, supply = _instance(7, density=0.9)
    score = two_step_fca(times, pop, supply, catchment_min=60)
    within = (sp.csr_matrix(times).data <= 3600).astype(float)
    has_demand = sp.csr_matrix((within, times.indices, times.indptr), shape=times.shape) @ pop > 0
    assert float(pop @ score) == pytest.approx(float(supply[has_demand].sum()), rel=1e-12)


def test_step_weights_boundaries_inclusive() -> None:
    w = StepWeights.luo_qi(30)
    assert w(np.array([0.0, 10.0, 10.0001, 20.0, 30.0, 30.0001])).tolist() == \
        [1.0, 1.0, 0.68, 0.68, 0.22, 0.0]
    with pytest.raises(InputError):
        StepWeights((10, 5), (1.0, 0.5))


def test_coverage_threshold_is_inclusive_and_by_division() -> None:
    secs = np.array([900.0, 900.0000001, 1800.0, 3600.0, np.inf])
    pop = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    table = coverage_table(secs, pop, [15, 30, 60], divisions=np.array(["a", "a", "b", "b", "b"]))
    assert table.loc["total"].tolist() == [31.0, 3.0, 7.0, 15.0, 16.0]
    assert table.loc["a", "covered_15"] == 3.0
    assert table.loc["b"].tolist() == [28.0, 0.0, 4.0, 12.0, 16.0]


def test_catchments_and_capacity_by_hand() -> None:
    # facility 0 reaches demand 0 (5 min) and 1 (20 min); facility 1 reaches demand 1 (10 min)
    times = sp.csr_matrix((np.array([300.0, 1200.0, 600.0]), np.array([0, 1, 1]),
                           np.array([0, 2, 3])), shape=(2, 3))
    pop = np.array([100.0, 300.0, 50.0])
    assert catchment_population(times, pop, [15, 30]).tolist() == [[100.0, 400.0],
                                                                  [300.0, 300.0]]
    res = capacity_coverage(times, pop, np.array([250.0, 100.0]), threshold_min=30,
                            zones=np.array(["x", "x", "y"]))
    # facility 0 first: 100 from demand 0 then 150 of demand 1; facility 1 takes 100 more
    assert res.served.tolist() == [250.0, 100.0]
    assert res.covered.tolist() == [100.0, 250.0, 0.0]
    assert res.by_zone.loc["total"].tolist() == [450.0, 350.0, 100.0]
    assert res.by_zone.loc["y", "uncovered"] == 50.0
    cap = np.array([250.0, 300.0])
    assert capacity_coverage(times, pop, cap, threshold_min=30).served.tolist() == [250.0, 150.0]
    res = capacity_coverage(times, pop, cap, threshold_min=30, order=[1, 0])
    assert res.served.tolist() == [100.0, 300.0]  # 1 takes all of demand 1 first
    assert res.covered.tolist() == [100.0, 300.0, 0.0]


def test_bad_vectors_refused() -> None:
    times, pop, supply = _instance(1)
    with pytest.raises(InputError):
        floating_catchment(times, pop[:-1], supply, catchment_min=30)
    with pytest.raises(InputError):
        two_step_fca(times, -pop, supply, catchment_min=30)


def test_docstring_examples_run() -> None:
    import doctest

    from tiercare.planning import access, geo, network, roads

    for module in (geo, roads, network, access):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
