"""Analytics over ~10 million data values on PostgreSQL: TierCare's services vs hand-written SQL.

Creates a throw-away database ``tiercare_bench_<random>`` on the local server
(``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, or ``--admin-url``), migrates it,
loads 3,000 facilities × 36 months × 90 data elements (9.72 million values) with ``COPY``, and
measures in the same run:

* **full re-aggregation** — :func:`tiercare.indicators.analytics.rebuild_analytics` (portable
  ``INSERT … SELECT … GROUP BY`` per division level and month/quarter/year) next to one
  hand-written PostgreSQL ``GROUPING SETS`` statement computing the same totals;
* **typical dashboard query** — six indicators for a county and its townships for one month
  through :func:`tiercare.indicators.analytics.compute` next to the same indicators in one
  hand-written SQL query; both results are compared.

Prints JSON (seconds, ratios, Python peak memory per phase via ``tracemalloc``, the process's
``ru_maxrss``). ``--small`` loads 300 facilities × 12 months × 30 elements. The database is
dropped at the end.

Run: ``.venv/bin/python benchmarks/bench_analytics.py [--small]``
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import time
import tracemalloc
import uuid
from contextlib import contextmanager
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.indicators.analytics import compute, load_indicators, rebuild_analytics
from tiercare.indicators.catalogue import seed_catalogue
from tiercare.indicators.facts import Unit
from tiercare.indicators.models import DataElement
from tiercare.indicators.periods import parse_period, period_of
from tiercare.registry.models import Division

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DASHBOARD = ["primary_opd_share", "day_surgery_share", "cost_per_opd_visit",
             "essential_medicine_share", "advance_appointment_share", "mean_wait_minutes"]
TIERS = np.array(["secondary", "primary", "village"])


@contextmanager
def measured(results: dict, name: str):  # type: ignore[no-untyped-def]
    """Record seconds and Python peak memory of a block."""
    tracemalloc.start()
    start = time.perf_counter()
    yield
    results[name] = {"seconds": round(time.perf_counter() - start, 3),
                     "python_peak_mb": round(tracemalloc.get_traced_memory()[1] / 2**20, 1)}
    tracemalloc.stop()


def build_divisions(n_facilities: int, rng: np.random.Generator) -> pd.DataFrame:
    """Facilities spread over 10 cities × 10 counties × 10 townships of province 14."""
    rows = []
    for k in range(n_facilities):
        city, county, township = 1 + k % 10, 21 + (k // 10) % 10, 100 + (k // 100) % 10
        village = 1 + k // 1000
        rows.append({"unit": f"F{k:05d}", "division": f"14{city:02d}{county:02d}"
                     f"{township:03d}{village:03d}",
                     "tier": TIERS[rng.integers(0, 3)]})
    return pd.DataFrame(rows)


def seed_division_rows(session, facilities: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    """Division rows for the province, cities, counties and townships (for drill-down)."""
    codes = set()
    for code in facilities["division"]:
        codes |= {code[:2], code[:4], code[:6], code[:9]}
    ids: dict[str, int] = {}
    for prefix in sorted(codes, key=len):
        level = {2: "province", 4: "city", 6: "county", 9: "township"}[len(prefix)]
        parent = ids.get(prefix[: {2: 0, 4: 2, 6: 4, 9: 6}[len(prefix)]])
        row = Division(code=prefix.ljust(12, "0"), prefix=prefix, name=f"D{prefix}",
                       level=level, parent_id=parent)
        session.add(row)
        session.flush()
        ids[prefix] = row.id
    session.commit()


def load_values(url: str, facilities: pd.DataFrame, months: list, elements: list[str],
                rng: np.random.Generator) -> int:
    """COPY every facility × month × element value into ``data_values`` (indexes after)."""
    raw = create_engine(url).raw_connection()
    n = 0
    try:
        cur = raw.cursor()
        cur.execute("DROP INDEX IF EXISTS ix_data_values_division_period")
        cur.execute("DROP INDEX IF EXISTS ix_data_values_element_start")
        cur.execute("ALTER TABLE data_values DROP CONSTRAINT IF EXISTS "
                    "uq_data_values_element_code_unit_code_period")
        columns = ("element_code, unit_kind, unit_code, division_code, tier, period, "
                   "period_type, start_date, end_date, year, quarter, month, value, comment, "
                   "stored_by, created_at, updated_at")
        n_f, n_e = len(facilities), len(elements)
        unit = np.repeat(facilities["unit"].to_numpy(), n_e)
        division = np.repeat(facilities["division"].to_numpy(), n_e)
        tier = np.repeat(facilities["tier"].to_numpy(), n_e)
        element = np.tile(np.array(elements), n_f)
        for p in months:
            frame = pd.DataFrame({
                "element_code": element, "unit_kind": "facility", "unit_code": unit,
                "division_code": division, "tier": tier, "period": p.text,
                "period_type": "month", "start_date": p.start.isoformat(),
                "end_date": p.end.isoformat(), "year": p.start.year,
                "quarter": (p.start.month - 1) // 3 + 1, "month": p.start.month,
                "value": rng.integers(0, 5000, size=len(unit)), "comment": "",
                "stored_by": "bench", "created_at": "2026-11-01T00:00:00+00",
                "updated_at": "2026-11-01T00:00:00+00"})
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False, header=False)
            sql = (f"COPY data_values ({columns}) FROM STDIN "
                   "WITH (FORMAT csv, FORCE_NOT_NULL (comment))")
            with cur.copy(sql) as copy:
                copy.write(buffer.getvalue())
            n += len(frame)
        cur.execute("CREATE INDEX ix_data_values_division_period ON data_values "
                    "(division_code, start_date)")
        cur.execute("CREATE INDEX ix_data_values_element_start ON data_values "
                    "(element_code, start_date)")
        cur.execute("ALTER TABLE data_values ADD CONSTRAINT "
                    "uq_data_values_element_code_unit_code_period UNIQUE "
                    "(element_code, unit_code, period)")
        cur.execute("ANALYZE data_values")
        raw.commit()
    finally:
        raw.close()
    return n


GROUPING_SQL = """
SELECT element_code, tier, substr(division_code, 1, {digits}) AS prefix, year, quarter, month,
       SUM(value) AS total
FROM data_values
GROUP BY GROUPING SETS ((element_code, tier, substr(division_code, 1, {digits}), year, month),
                        (element_code, tier, substr(division_code, 1, {digits}), year, quarter),
                        (element_code, tier, substr(division_code, 1, {digits}), year))
"""

DASHBOARD_SQL = """
WITH t AS (
  SELECT substr(division_code, 1, 9) AS township, element_code, tier, SUM(value) AS v
  FROM data_values
  WHERE division_code LIKE :prefix AND start_date >= :s AND end_date <= :e
    AND element_code IN ('opd_visits', 'day_surgeries', 'surgeries', 'opd_cost_fen',
                         'essential_prescriptions', 'prescriptions', 'appointments_advance',
                         'appointments', 'wait_minutes_total', 'appointments_seen')
  GROUP BY 1, 2, 3)
SELECT COALESCE(township, 'county') AS unit,
  100.0 * COALESCE(SUM(v) FILTER (WHERE element_code = 'opd_visits'
                                    AND tier IN ('primary', 'village')), 0)
        / NULLIF(SUM(v) FILTER (WHERE element_code = 'opd_visits'), 0) AS primary_opd_share,
  100.0 * SUM(v) FILTER (WHERE element_code = 'day_surgeries')
        / NULLIF(SUM(v) FILTER (WHERE element_code = 'surgeries'), 0) AS day_surgery_share,
  0.01 * SUM(v) FILTER (WHERE element_code = 'opd_cost_fen')
       / NULLIF(SUM(v) FILTER (WHERE element_code = 'opd_visits'), 0) AS cost_per_opd_visit,
  100.0 * SUM(v) FILTER (WHERE element_code = 'essential_prescriptions')
        / NULLIF(SUM(v) FILTER (WHERE element_code = 'prescriptions'), 0)
        AS essential_medicine_share,
  100.0 * SUM(v) FILTER (WHERE element_code = 'appointments_advance')
        / NULLIF(SUM(v) FILTER (WHERE element_code = 'appointments'), 0)
        AS advance_appointment_share,
  1.0 * SUM(v) FILTER (WHERE element_code = 'wait_minutes_total')
      / NULLIF(SUM(v) FILTER (WHERE element_code = 'appointments_seen'), 0) AS mean_wait_minutes
FROM t GROUP BY GROUPING SETS ((township), ())
"""


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="300 × 12 × 30 values")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n_fac, n_months, n_elem = (300, 12, 30) if args.small else (3000, 36, 90)
    rng = np.random.default_rng(args.seed)
    name = f"tiercare_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    results: dict = {"values": 0, "facilities": n_fac, "months": n_months, "elements": n_elem}
    try:
        engine = create_db_engine(url)
        upgrade(engine)
        session = session_factory(engine)()
        seed_catalogue(session)
        existing = [e.code for e in session.query(DataElement).order_by(DataElement.id)]
        extra = [f"bench_e{k:02d}" for k in range(len(existing), n_elem)]
        for code in extra:
            session.add(DataElement(code=code, name_zh=code, name_en=code))
        session.commit()
        elements = (existing + extra)[:n_elem]
        facilities = build_divisions(n_fac, rng)
        seed_division_rows(session, facilities)
        last = period_of(date(2026, 10, 1), "month")
        months = [last]
        while len(months) < n_months:
            months.insert(0, period_of(date.fromordinal(months[0].start.toordinal() - 1),
                                       "month"))
        start = time.perf_counter()
        results["values"] = load_values(url, facilities, months, elements, rng)
        results["load_copy_and_index_seconds"] = round(time.perf_counter() - start, 1)

        with measured(results, "reaggregation_tiercare"):
            results["reaggregation_tiercare_rows"] = rebuild_analytics(session)
            session.commit()
        with measured(results, "reaggregation_sql_grouping_sets"):
            with engine.begin() as conn:
                union = " UNION ALL ".join(GROUPING_SQL.format(digits=d) for d in (2, 4, 6, 9))
                conn.execute(text(f"CREATE TEMP TABLE peer_totals AS {union}"))
                results["reaggregation_sql_rows"] = conn.execute(
                    text("SELECT COUNT(*) FROM peer_totals")).scalar()

        county = facilities["division"].iloc[0][:6]
        month = parse_period(last.text)
        indicators = load_indicators(session, DASHBOARD)
        root = Unit("division", county.ljust(12, "0"), f"D{county}", county, level="county")
        townships = sorted({d[:9] for d in facilities["division"] if d.startswith(county)})
        units = [root, *[Unit("division", t.ljust(12, "0"), f"D{t}", t, level="township")
                         for t in townships]]
        compute(session, indicators=indicators, units=units, periods=[month])  # warm cache
        with measured(results, "dashboard_tiercare"):
            service = compute(session, indicators=indicators, units=units, periods=[month])
        with measured(results, "dashboard_sql"):
            with engine.connect() as conn:
                direct = conn.execute(text(DASHBOARD_SQL), {
                    "prefix": county + "%", "s": month.start, "e": month.end}).mappings().all()
        by_unit = {("county" if r["unit"] == "county" else r["unit"]): r for r in direct}
        worst, disagreements = 0.0, 0
        for v in service:
            key = "county" if v.unit == root.code else v.unit[:9]
            expected = by_unit[key][v.indicator] if key in by_unit else None
            if expected is None or v.value is None:
                disagreements += (expected is None) != (v.value is None)
                continue
            worst = max(worst, abs(float(expected) - v.value) / max(abs(float(expected)), 1e-9))
        results["dashboard_missing_disagreements"] = disagreements
        results["dashboard_values"] = len(service)
        results["dashboard_max_relative_difference"] = worst
        for measure in ("reaggregation", "dashboard"):
            mine = results[f"{measure}_tiercare"]["seconds"]
            peer = results[f"{measure}_sql" if measure == "dashboard"
                           else "reaggregation_sql_grouping_sets"]["seconds"]
            results[f"{measure}_ratio_tiercare_over_sql"] = round(mine / peer, 2) if peer else None
        session.close()
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    results["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["peer"] = "hand-written PostgreSQL SQL (GROUPING SETS / FILTER) in the same run"
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
