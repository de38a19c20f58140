"""``tiercare plan locate-tiers`` (two-tier cover from CSV files) end to end.

The instance is solved by hand. Upper tier (threshold 30): u1 reaches v1 (10) and v2 (20),
u2 reaches v3 (10) and v4 (25); with weights 10, 20, 50, 5 one upgrade covers 30 (u1) or 55
(u2), so u2. Lower tier (threshold 15, c1 existing): c1 serves v1 and v2; v3 needs c2 (10) or
c3 (12); v4 needs c3 (5) or c4 (8) — c2 is 20 away. The fewest new clinics: c3 alone; with a
budget of 3 and site costs c2 = 1, c3 = 5, c4 = 1: c2 and c4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiercare.cli import app

runner = CliRunner()

UPPER = "demand_id,candidate_id,cost\nv1,u1,10\nv2,u1,20\nv3,u2,10\nv4,u2,25\n"
LOWER = ("demand_id,candidate_id,cost\nv1,c1,5\nv2,c1,10\nv3,c2,10\nv3,c3,12\nv4,c3,5\n"
         "v4,c2,20\nv4,c4,8\n")
DEMAND = "demand_id,weight\nv1,10\nv2,20\nv3,50\nv4,5\n"
LOWER_CANDIDATES = "candidate_id,site_cost\nc1,0\nc2,1\nc3,5\nc4,1\n"


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    for name, text in (("upper.csv", UPPER), ("lower.csv", LOWER), ("demand.csv", DEMAND),
                       ("lower_candidates.csv", LOWER_CANDIDATES), ("clinics.txt", "c1\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _run(files: Path, *args: str) -> tuple[int, dict | None, str]:
    out = files / "result.json"
    out.unlink(missing_ok=True)
    res = runner.invoke(app, [
        "plan", "locate-tiers", "--upper-costs", str(files / "upper.csv"),
        "--lower-costs", str(files / "lower.csv"), "--demand", str(files / "demand.csv"),
        "--upper-threshold", "30", "--lower-threshold", "15", "--upgrades", "1",
        "--lower-fixed", str(files / "clinics.txt"), "--out", str(out), *args])
    data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    return res.exit_code, data, res.output


def test_two_tier_by_hand(files: Path) -> None:
    code, data, output = _run(files)
    assert code == 0, output
    assert data == {**data, "model": "two-tier", "objective": 55.0, "bound": 55.0, "gap": 0.0,
                    "status": "optimal", "upper_selected": ["u2"], "upper_new": ["u2"],
                    "lower_selected": ["c1", "c3"], "lower_new": ["c3"]}
    assert json.loads(output)["out"] == str(files / "result.json")


def test_budget_and_same_place(files: Path) -> None:
    code, data, output = _run(files, "--lower-candidates", str(files / "lower_candidates.csv"),
                              "--site-cost-field", "site_cost", "--budget", "3")
    assert code == 0, output
    assert data["lower_new"] == ["c2", "c4"] and data["upper_new"] == ["u2"]
    # u2 stands where c2 would: upgrading it keeps c2 open, so v4 still needs c3 or c4
    (files / "upper_candidates.csv").write_text("candidate_id,clinic\nu1,\nu2,c2\n")
    code, data, output = _run(files, "--upper-candidates", str(files / "upper_candidates.csv"),
                              "--lower-id-field", "clinic")
    assert code == 0, output
    assert data["upper_new"] == ["u2"] and data["objective"] == 55.0
    assert len(data["lower_new"]) == 2 and "c2" in data["lower_new"]


@pytest.mark.parametrize(("lower", "args", "needles"), [
    (LOWER.replace("v3,c2,10", "v3,c2,abc"), [],
     ["row 3", "field 'cost'", "lower.csv", "'abc'"]),
    (LOWER + "v9,c1,1\n", [], ["row 8", "field 'demand_id'", "unknown demand id 'v9'"]),
    (LOWER + "v1,c1,7\n", [], ["row 8", "duplicate pair (same as row 1)"]),
    (LOWER.replace("candidate_id", "site"), [], ["lower.csv has no column 'candidate_id'"]),
    (LOWER, ["--budget", "3"], ["field 'budget'", "--site-cost-field"]),
    ("demand_id,candidate_id,cost\n", [], ["field 'lower-costs'", "no pair"]),
    (LOWER, ["--lower-candidates", "dup.csv"],
     ["row 3, field 'lower-candidates': duplicate id 'c1' (first at row 1)"]),
    (LOWER, ["--new-lower", "0"], ["cannot keep every demand point within 15"]),
    (LOWER, ["--weight-field", "population"], ["no column 'population'"]),
    (LOWER.replace("v4,c3,5\n", "").replace("v4,c4,8\n", ""), [],
     ["1 demand point(s) have no usable lower-tier site within 15", "v4"]),
])
def test_bad_input_exits_2(files: Path, lower: str, args: list[str],
                           needles: list[str]) -> None:
    (files / "lower.csv").write_text(lower, encoding="utf-8")
    (files / "dup.csv").write_text("candidate_id\nc1\nc2\nc1\nc3\nc4\n", encoding="utf-8")
    args = [str(files / a) if a == "dup.csv" else a for a in args]
    code, data, output = _run(files, *args)
    assert code == 2, output
    assert data is None
    for needle in needles:
        assert needle in output, (needle, output)


def test_unknown_fixed_id_names_the_option(files: Path) -> None:
    (files / "clinics.txt").write_text("c1\nc7\n", encoding="utf-8")
    code, _, output = _run(files)
    assert code == 2
    assert "row 2, field 'lower-fixed': unknown candidate id 'c7'" in output
    # the row is the line of the file, blank lines included
    (files / "clinics.txt").write_text("c1\n\nc7\n", encoding="utf-8")
    code, _, output = _run(files)
    assert code == 2
    assert "row 3, field 'lower-fixed': unknown candidate id 'c7'" in output
