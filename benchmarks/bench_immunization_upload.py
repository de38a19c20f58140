"""Upload of vaccination records on PostgreSQL, next to a raw ``COPY`` of the same rows.

What it does (one run, one throw-away database ``tiercare_bench_<random>``):

1. migrates a new database, loads a one-township county with a vaccination site and registers
   children (bulk insert, not timed) with histories from the demo generator
   (:func:`tiercare.immunization.demo.simulate_history`) until there are R records
   (default 100,000; ``--small`` 10,000);
2. **TierCare**: :func:`tiercare.immunization.upload.upload_csv` of the CSV batch (parse,
   per-row checks of identity check digits and keyed digests, child look-up, dates, codes,
   stable keys, existing-key check, chunked insert, audit) and ``COMMIT`` — records per second;
3. the same batch again (idempotent: nothing inserted) — rows per second;
4. **peer**: ``COPY imm_records_copy FROM STDIN`` (psycopg 3, a table ``LIKE imm_records``
   with its indexes and unique key) of exactly the rows step 2 wrote, and ``COMMIT`` —
   the floor of a bulk load on this server. Reports the ratio.

Prints JSON with peak RSS of the process. Run:
``.venv/bin/python benchmarks/bench_immunization_upload.py [--small]`` (PostgreSQL at
``TIERCARE_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tiercare.auth.service import SYSTEM  # noqa: E402
from tiercare.db.engine import create_db_engine, session_factory  # noqa: E402
from tiercare.db.migrate import upgrade  # noqa: E402
from tiercare.identity import check_character, identity_digest  # noqa: E402
from tiercare.identity import mask_identity_number  # noqa: E402
from tiercare.immunization.demo import simulate_history  # noqa: E402
from tiercare.immunization.models import Child, ImmunizationRecord  # noqa: E402
from tiercare.immunization.schedule import default_schedules  # noqa: E402
from tiercare.immunization.sites import SiteIn, create_site  # noqa: E402
from tiercare.immunization.upload import upload_csv  # noqa: E402
from tiercare.registry.importing import import_rows  # noqa: E402
from tiercare.registry.reference import seed_reference_data  # noqa: E402

ADMIN_URL = os.environ.get("TIERCARE_BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret"
TODAY = dt.date(2026, 11, 20)
COLUMNS = ("record_key", "child_id", "vaccine", "dose_number", "given_on", "site_id",
           "vaccinator", "lot", "manufacturer", "route", "body_site", "batch_id",
           "recorded_at")
DIVISIONS = [
    {"code": "14", "name": "山西省"}, {"code": "1407", "name": "晋中市"},
    {"code": "140725", "name": "测试县"}, {"code": "140725100", "name": "甲镇"},
    {"code": "140725100201", "name": "东村", "population": "3000"},
]
FACILITIES = [{"code": "T1", "name": "甲镇卫生院", "type": "township_health_centre",
               "division_code": "140725100", "level": "primary"}]


def setup(url: str, records: int) -> tuple[bytes, int]:
    """Migrate, load the county and the children; returns the CSV batch and its row count."""
    engine = create_db_engine(url)
    upgrade(engine)
    book = default_schedules()
    rng = np.random.default_rng(11)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        import_rows(session, "divisions", DIVISIONS, actor=SYSTEM)
        import_rows(session, "facilities", FACILITIES, actor=SYSTEM)
        create_site(session, SYSTEM, SiteIn(code="VS1", name="接种门诊", kind="fixed",
                                            facility_code="T1", division_code="140725100"))
        site_id = session.execute(text("SELECT id FROM imm_sites")).scalar_one()
        lines = ["record_id,child_identity,vaccine,date,lot,route"]
        children = []
        serial = 0
        while len(lines) - 1 < records:
            birth = TODAY - dt.timedelta(days=int(rng.integers(0, 7 * 365)))
            serial += 1
            # a unique (address code, sequence) per child, whatever the birth date
            first17 = f"14{serial // 999 % 100:02d}25{birth:%Y%m%d}{serial % 999 + 1:03d}"
            number = first17 + check_character(first17)
            children.append({
                "name": f"儿童{serial}", "sex": "M" if int(number[16]) % 2 else "F",
                "birth_date": birth, "id_kind": "resident_id",
                "id_masked": mask_identity_number(number),
                "id_digest": identity_digest(number, secret=SECRET), "id_number": number,
                "village_code": "140725100201", "site_id": site_id, "registered_how": "birth",
                "registered_on": birth})
            for k, (vaccine, given) in enumerate(simulate_history(
                    rng, birth, TODAY, book.in_force(birth))):
                lines.append(f"{serial}-{k},{number},{vaccine},{given},L{given:%y%m},IM")
        for start in range(0, len(children), 5000):
            session.execute(insert(Child), children[start:start + 5000])
        session.commit()
    engine.dispose()
    lines = lines[:records + 1]
    return ("\n".join(lines) + "\n").encode(), len(lines) - 1


def timed_upload(url: str, content: bytes) -> tuple[float, dict[str, int]]:
    """Seconds and result of one upload, commit included."""
    engine = create_db_engine(url)
    with session_factory(engine)() as session:
        t0 = time.perf_counter()
        out = upload_csv(session, SYSTEM, content, site_code="VS1", secret=SECRET, today=TODAY)
        session.commit()
        seconds = time.perf_counter() - t0
    engine.dispose()
    return seconds, out


def timed_copy(url: str) -> tuple[float, int]:
    """Seconds of a raw COPY of the rows the upload wrote into a table like imm_records."""
    import psycopg

    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE imm_records_copy (LIKE imm_records INCLUDING ALL)"))
    with session_factory(engine)() as session:
        rows = session.execute(select(*[getattr(ImmunizationRecord, c) for c in COLUMNS])
                               .order_by(ImmunizationRecord.id)).all()
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    data = buffer.getvalue()
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    engine.dispose()
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                f"COPY imm_records_copy ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            copy.write(data)
        conn.commit()
        seconds = time.perf_counter() - t0
        count = conn.execute("SELECT count(*) FROM imm_records_copy").fetchone()[0]
    return seconds, int(count)


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10,000 records")
    args = parser.parse_args()
    records = 10_000 if args.small else 100_000
    name = f"tiercare_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        content, rows = setup(url, records)
        upload_s, out = timed_upload(url, content)
        again_s, again = timed_upload(url, content)
        copy_s, copied = timed_copy(url)
        engine = create_db_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(
                ImmunizationRecord.__table__)).scalar_one()
        engine.dispose()
        result = {
            "benchmark": "upload of vaccination records (CSV batch, PostgreSQL)",
            "records": rows, "csv_bytes": len(content),
            "tiercare_upload": {"seconds": round(upload_s, 3),
                                "records_per_s": round(rows / upload_s, 1),
                                "inserted": out["inserted"]},
            "tiercare_reupload_idempotent": {"seconds": round(again_s, 3),
                                             "rows_per_s": round(rows / again_s, 1),
                                             "inserted": again["inserted"],
                                             "already_present": again["already_present"]},
            "peer_raw_copy": {"seconds": round(copy_s, 3),
                              "records_per_s": round(copied / copy_s, 1), "rows": copied},
            "ratio_upload_to_copy": round((rows / upload_s) / (copied / copy_s), 3),
            "stored_records": int(stored),
            "checks": {"all_inserted_once": out["inserted"] == rows == stored,
                       "reupload_adds_nothing": again["inserted"] == 0},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine_cpus": os.cpu_count(),
        }
        print(json.dumps(result, ensure_ascii=False, indent=2))
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


if __name__ == "__main__":
    main()
