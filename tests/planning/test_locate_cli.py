"""``tiercare plan locate`` end to end and the API's refusal of bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tiercare.cli import app
from tiercare.errors import InputError
from tiercare.planning.locate import LSCP, MCLP, PCenter, PMedian

runner = CliRunner()

# 3 villages, 3 sites; hand-solved: p-median p=1 -> site "s2" (cost 10*4 + 20*0 + 5*3 = 55)
PAIRS = """demand_id,candidate_id,cost
v1,s1,0
v1,s2,4
v2,s2,0
v2,s1,4
v2,s3,6
v3,s2,3
v3,s3,0
"""
DEMAND = "demand_id,weight\nv1,10\nv2,20\nv3,5\n"
CANDIDATES = "candidate_id,capacity\ns1,100\ns2,25\ns3,100\n"


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "costs.csv").write_text(PAIRS)
    (tmp_path / "demand.csv").write_text(DEMAND)
    (tmp_path / "candidates.csv").write_text(CANDIDATES)
    (tmp_path / "fixed.txt").write_text("s3\n")
    return tmp_path


def _run(files: Path, *args: str) -> tuple[int, dict | None, str]:
    out = files / "result.json"
    if out.exists():
        out.unlink()
    res = runner.invoke(app, ["plan", "locate", "--costs", str(files / "costs.csv"),
                              "--out", str(out), *args])
    data = json.loads(out.read_text()) if out.exists() else None
    return res.exit_code, data, res.output


def test_pmedian_by_hand(files: Path) -> None:
    code, data, _ = _run(files, "--model", "pmedian", "--demand", str(files / "demand.csv"),
                         "--p", "1")
    assert code == 0
    assert data["model"] == "pmedian"
    assert data["selected"] == ["s2"]
    assert data["objective"] == 55.0 and data["bound"] == 55.0 and data["gap"] == 0.0
    assert data["status"] == "optimal"
    assert data["assignment"] == {"v1": "s2", "v2": "s2", "v3": "s2"}
    assert data["covered_weight"] is None
    assert data["seconds"] >= 0


def test_capacity_and_fixed(files: Path) -> None:
    # s3 fixed, p=2. {s1, s3}: v1->s1 0, v2->s1 80, v3->s3 0 = 80. {s2, s3}: v1 can only use
    # s2, and s2 (capacity 25) cannot also take v2 (10 + 20 > 25), so v2->s3 120: 160.
    code, data, _ = _run(files, "--model", "pmedian", "--demand", str(files / "demand.csv"),
                         "--candidates", str(files / "candidates.csv"),
                         "--capacity-field", "capacity", "--fixed", str(files / "fixed.txt"),
                         "--p", "2")
    assert code == 0, data
    assert data["selected"] == ["s1", "s3"]
    assert data["objective"] == 80.0


def test_mclp_and_lscp(files: Path) -> None:
    code, data, _ = _run(files, "--model", "mclp", "--demand", str(files / "demand.csv"),
                         "--p", "1", "--threshold", "3")
    assert code == 0
    assert data["selected"] == ["s2"] and data["covered_weight"] == 25.0
    assert data["assignment"] == {"v2": "s2", "v3": "s2"}
    code, data, _ = _run(files, "--model", "lscp", "--threshold", "4")
    assert code == 0 and data["objective"] == 1.0 and data["covered_weight"] == 3.0
    code, data, _ = _run(files, "--model", "pcenter", "--p", "2")
    assert code == 0 and data["objective"] == 3.0


def test_spopt_format_with_weight_column(tmp_path: Path) -> None:
    (tmp_path / "costs.csv").write_text(
        "distance,name,DestinationName,demand\n5,A,t1,7\n1,B,t1,7\n2,A,t2,3\n9,B,t2,3\n")
    res = runner.invoke(app, [
        "plan", "locate", "--model", "pmedian", "--costs", str(tmp_path / "costs.csv"),
        "--demand-field", "DestinationName", "--candidate-field", "name",
        "--cost-field", "distance", "--weight-field", "demand", "--p", "1",
        "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["selected"] == ["B"] and data["objective"] == 7 * 1 + 3 * 9


@pytest.mark.parametrize(("text", "args", "needles"), [
    ("demand_id,candidate_id,cost\nv1,s1,-1\nv2,s1,abc\n", ["--p", "1"],
     ["row 1", "'cost'", "row 2", "'abc'"]),
    ("demand_id,candidate_id,cost\nv1,s1,1\nv1,s1,2\n", ["--p", "1"],
     ["row 2", "duplicate pair"]),
    ("demand_id,site,cost\nv1,s1,1\n", ["--p", "1"], ["no column 'candidate_id'"]),
    ("demand_id,candidate_id,cost\nv1,s1,1\nv2,s2,1\n", ["--p", "3"], ["p = 3", "larger"]),
    ("demand_id,candidate_id,cost\nv1,s1,1\nv9,s2,1\n", ["--p", "1", "--demand", "DEMAND"],
     ["row 2", "unknown demand id 'v9'"]),
    # a weight column that is named must exist (no silent weight 1)
    ("demand_id,candidate_id,cost\nv1,s1,1\n", ["--p", "1", "--demand", "DEMAND",
                                                  "--weight-field", "population"],
     ["demand.csv has no column 'population'"]),
    ("demand_id,candidate_id,cost\nv1,s1,1\n", ["--p", "1", "--weight-field", "population"],
     ["costs.csv has no column 'population'"]),
])
def test_bad_input_exits_2(tmp_path: Path, text: str, args: list[str],
                           needles: list[str]) -> None:
    (tmp_path / "costs.csv").write_text(text)
    (tmp_path / "demand.csv").write_text("demand_id,weight\nv1,1\nv2,1\n")
    args = [str(tmp_path / "demand.csv") if a == "DEMAND" else a for a in args]
    res = runner.invoke(app, ["plan", "locate", "--model", "pmedian", "--costs",
                              str(tmp_path / "costs.csv"), "--out", str(tmp_path / "r.json"),
                              *args])
    assert res.exit_code == 2
    flat = " ".join(res.output.split())
    for needle in needles:
        assert needle in flat
    assert not (tmp_path / "r.json").exists()


def test_infeasible_fixed_and_uncoverable_exit_2(files: Path) -> None:
    (files / "many.txt").write_text("s1\ns2\ns3\n")
    code, _, out = _run(files, "--model", "pmedian", "--p", "2", "--fixed",
                        str(files / "many.txt"))
    assert code == 2 and "smaller than the 3 fixed" in " ".join(out.split())
    (files / "closed.txt").write_text("s1\n")
    code, _, out = _run(files, "--model", "lscp", "--threshold", "2", "--forbidden",
                        str(files / "closed.txt"))
    assert code == 2 and "'v1'" in out  # without s1, v1's nearest site is 4 away


def test_api_collects_all_problems() -> None:
    costs = np.array([[1.0, -2.0], [np.nan, 3.0]])
    with pytest.raises(InputError) as info:
        PMedian.from_cost_matrix(costs, [1.0, -1.0, 2.0], p=5, fixed=["zz"])
    fields = {(p.field, p.row) for p in info.value.problems}
    assert ("costs", 1) in fields and ("costs", 2) in fields
    with pytest.raises(InputError) as info:
        PMedian.from_cost_matrix(np.ones((2, 2)), [1.0, -1.0], p=5, fixed=["zz"])
    reasons = " ".join(str(p) for p in info.value.problems)
    assert "weights" in reasons and "unknown candidate id 'zz'" in reasons
    with pytest.raises(InputError, match="threshold"):
        MCLP.from_cost_matrix(np.ones((2, 2)), p=1)
    with pytest.raises(InputError, match="not used by pcenter"):
        PCenter.from_cost_matrix(np.ones((2, 2)), p=1, capacities=[1, 1])
    with pytest.raises(InputError, match="costs_per_site"):
        MCLP.from_cost_matrix(np.ones((2, 2)), threshold=1.0, budget=3.0)
    with pytest.raises(InputError, match="both fixed and forbidden"):
        LSCP.from_cost_matrix(np.ones((2, 2)), threshold=1.0, fixed=[0], forbidden=[0])


def test_result_is_frozen_and_json_ready() -> None:
    res = PMedian.from_cost_matrix(np.array([[1.0, 2.0]]), p=1).solve()
    with pytest.raises(AttributeError):
        res.objective = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        res.assignment[0] = 1  # type: ignore[index]
    data = res.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert math.isclose(data["objective"], 1.0)


def test_from_engine_on_a_line_road() -> None:
    gpd = pytest.importorskip("geopandas")
    network = pytest.importorskip("tiercare.planning.network")
    # one road 0 — 1000 — 2000 m, 100 s per segment both ways
    net = network.Network.from_arrays(np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]]),
                                      u=[0, 1], v=[1, 2], time_uv=[100.0, 100.0],
                                      time_vu=[100.0, 100.0], crs="EPSG:32649")
    demand = gpd.GeoDataFrame({"pop": [2.0, 1.0, 1.0]}, index=["a", "b", "c"],
                              geometry=gpd.points_from_xy([0, 1000, 2000], [0, 0, 0]),
                              crs="EPSG:32649")
    sites = gpd.GeoDataFrame({"cap": [5.0, 5.0]}, index=["west", "east"],
                             geometry=gpd.points_from_xy([0, 2000], [0, 0]), crs="EPSG:32649")
    model = PMedian.from_engine(net, demand, sites, cutoff_s=150.0, weight_field="pop", p=2)
    # within 150 s: a-west 0, b-west 100, b-east 100, c-east 0
    assert model.instance.costs.nnz == 4
    result = model.solve()
    assert result.objective == pytest.approx(100.0, abs=1.0)
    assert result.assignment["a"] == "west" and result.assignment["c"] == "east"
    cover = MCLP.from_engine(net, demand, sites, cutoff_s=150.0, weight_field="pop",
                             threshold=50.0, p=1).solve()
    assert cover.selected == ("west",) and cover.covered_weight == 2.0
