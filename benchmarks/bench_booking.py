"""Flash crowd: concurrent booking attempts over HTTP against PostgreSQL, next to pgbench.

What it does (one run, one fresh PostgreSQL database):

1. migrates a new database, loads a one-hospital county, registers N residents and a schedule
   whose slots hold P places in total (default 5,000 attempts for 500 places, i.e. 50 slots of
   10 places, general pool);
2. starts ``uvicorn`` (uvloop event loop, httptools parser) with ``--workers`` processes
   (default 2, one per core of the 2-core reference machine) on 127.0.0.1 serving the real app,
   and warms each worker with authenticated reads that book nothing (mapper configuration,
   pooled connections, compiled statements);
3. fires every attempt as its own ``POST /api/v1/appointments`` (bearer token, unique
   ``Idempotency-Key``, attempt *i* aims at slot *i mod 50* so each slot is oversubscribed
   tenfold) from one ``aiohttp`` client on uvloop, at most ``--concurrency`` requests in flight
   (the rest wait in the client queue, like a gateway's connection limit); latency is measured
   per request from send to answer. The load generator shares the machine, so it has to be
   cheap: ``aiohttp`` costs about 0.3 ms of CPU per request here, ``httpx`` about 3.7 ms (more
   than the server spent on a booking);
4. checks in the database that exactly P appointments exist and no slot is oversold;
5. upper bound on the same stack: the same number of requests, same client and concurrency,
   to ``GET /healthz`` — a bare FastAPI endpoint that runs ``SELECT 1`` on the same pool — so
   the gap between the booking path and what any endpoint of this stack can do is printed;
6. the least work any Python HTTP endpoint here can do per request (so the highest rate it
   can reach): the same booking requests to a bare ASGI callable on the same uvicorn
   (``_minimal_booking_asgi.py``: no framework, no authentication, no rules, one ``SELECT``
   per request on async psycopg, books nothing; the crowd has filled the slots by then, so
   it answers 409);
7. runs ``pgbench`` on the same database with a single-row update script
   (``UPDATE bench_slot SET booked = booked + 1 WHERE id = :id``, ids over the same 50 rows,
   ``--concurrency / 2`` clients, two threads; on this machine 32 and 64 clients give the same
   rate within noise) — the ceiling of a one-statement transaction on this server — and reports
   each HTTP rate's ratio to it.

The server's CPU per request (all uvicorn processes, from ``/proc``) is printed for each
HTTP phase: unlike requests per second it barely depends on what else runs on a shared machine.

Prints JSON. ``--small``: 1,000 attempts for 100 places, shorter pgbench.

Run: ``.venv/bin/python benchmarks/bench_booking.py [--small]`` (PostgreSQL at
``TIERCARE_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tiercare.auth.models import AuditEntry  # noqa: E402
from tiercare.auth.service import SYSTEM, create_user, issue_token  # noqa: E402
from tiercare.db.engine import create_db_engine, session_factory  # noqa: E402
from tiercare.db.migrate import upgrade  # noqa: E402
from tiercare.identity import check_character, identity_digest, mask_identity_number  # noqa: E402
from tiercare.registry.importing import import_rows  # noqa: E402
from tiercare.registry.reference import seed_reference_data  # noqa: E402
from tiercare.residents.models import Resident  # noqa: E402
from tiercare.scheduling.models import Appointment, Slot  # noqa: E402
from tiercare.scheduling.service import (  # noqa: E402
    ScheduleIn,
    SessionIn,
    create_schedule,
    generate_slots,
)

ADMIN_URL = os.environ.get("TIERCARE_BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key"
SLOTS = 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setup(url: str, *, attempts: int, places: int) -> tuple[str, list[int], list[int]]:
    """County, residents, schedule and slots; returns (token, resident ids, slot ids)."""
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as s:
        seed_reference_data(s)
        import_rows(s, "divisions", [
            {"code": "14", "name": "山西省"}, {"code": "1407", "name": "晋中市"},
            {"code": "140725", "name": "寿阳县"},
            {"code": "140725100", "name": "朝阳镇", "lon": "113.18", "lat": "37.89"},
            {"code": "140725100201", "name": "东村", "urban_rural_class": "220",
             "population": str(attempts), "lon": "113.2", "lat": "37.9"}], actor=SYSTEM)
        import_rows(s, "facilities", [
            {"code": "H1", "name": "县人民医院", "type": "county_general_hospital",
             "division_code": "140725100", "lon": "113.18", "lat": "37.89"}], actor=SYSTEM)
        user = create_user(s, username="desk", password="bench-pass-1", role="facility_staff",
                           facility_code="H1")
        token = issue_token(s, user, hours=2, label="bench")
        rng = np.random.default_rng(1)
        rows = []
        for i in range(attempts):
            born = date(1940, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 80)))
            first17 = f"140725{born:%Y%m%d}{i % 1000:03d}"
            number = first17 + check_character(first17)
            rows.append(dict(name=f"居民{i}", sex="M" if i % 2 else "F", birth_date=born,
                             id_masked=mask_identity_number(number),
                             id_digest=identity_digest(number + str(i), secret=SECRET),
                             id_number=number, phone="", village_code="140725100201",
                             active=True, lock_version=0))
        s.execute(Resident.__table__.insert(), rows)
        day = date.today() + timedelta(days=1)
        per_slot = places // SLOTS
        sched = create_schedule(s, SYSTEM, ScheduleIn(
            facility_code="H1", department="内科", name="内科普通门诊", slot_minutes=5,
            capacity_per_slot=per_slot, referral_share=0.0,
            weekly=[SessionIn(weekday=day.weekday(), start="08:00", end="12:10")],
            effective_from=day - timedelta(days=10), follows_holidays=False))
        generate_slots(s, SYSTEM, sched.id, start=day, end=day)
        s.commit()
        residents = list(s.scalars(select(Resident.id).order_by(Resident.id)))
        slots = list(s.scalars(select(Slot.id).order_by(Slot.start)))
    engine.dispose()
    assert len(slots) == SLOTS and sum([per_slot] * SLOTS) == places
    return token, residents, slots


def _server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its children so far (Linux ``/proc``)."""
    try:
        pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text()
                                                                            .split()]
        ticks = 0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


async def _warm(client, token: str, concurrency: int) -> None:  # type: ignore[no-untyped-def]
    """Authenticated reads that book nothing, enough to reach every worker and connection."""
    headers = {"Authorization": f"Bearer {token}"}

    async def read() -> None:
        async with client.get("/api/v1/slots", params={"limit": "1"}, headers=headers) as r:
            await r.read()
            r.raise_for_status()

    for _ in range(3):
        await asyncio.gather(*(read() for _ in range(concurrency)))


async def _fire(base: str, token: str, requests: list[tuple[str, str, dict | None]], *,
                concurrency: int, server_pid: int) -> tuple[list[float], dict[int, int], float,
                                                           float | None, float]:
    """Warm up, then send ``(method, path, json)`` requests, at most ``concurrency`` in flight.

    Returns per-request latencies (send → answer read), status counts, the wall time, and the
    CPU seconds of the server and of this process spent after the warm-up.
    """
    import aiohttp

    latencies: list[float] = []
    codes: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    auth = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:
        await _warm(client, token, concurrency)

        async def attempt(i: int, method: str, path: str, body: dict | None) -> None:
            headers = {**auth, "Idempotency-Key": f"flash-{i:06d}-{uuid.uuid4().hex[:8]}"}
            async with gate:
                t0 = time.perf_counter()
                async with client.request(method, path, json=body, headers=headers) as r:
                    await r.read()
                latencies.append(time.perf_counter() - t0)
                codes[r.status] = codes.get(r.status, 0) + 1

        cpu0, client0 = _server_cpu_seconds(server_pid), time.process_time()
        t_start = time.perf_counter()
        await asyncio.gather(*(attempt(i, *req) for i, req in enumerate(requests)))
        wall = time.perf_counter() - t_start
        cpu1, client1 = _server_cpu_seconds(server_pid), time.process_time()
    server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return latencies, codes, wall, server_cpu, client1 - client0


def _phase(base: str, token: str, requests: list[tuple[str, str, dict | None]], *,
           concurrency: int, server_pid: int) -> dict:
    """Run one load phase on uvloop; rate, latency percentiles and CPU per request."""
    import uvloop

    latencies, codes, wall, server_cpu, client_cpu = uvloop.run(
        _fire(base, token, requests, concurrency=concurrency, server_pid=server_pid))
    lat = np.array(latencies)
    n = len(latencies)
    return {
        "requests": n, "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "wall_seconds": round(wall, 3), "req_per_s": round(n / wall, 1),
        "latency_ms": {q: round(float(np.percentile(lat, p)) * 1000, 1)
                       for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "server_cpu_ms_per_req": (round(server_cpu / n * 1000, 3)
                                  if server_cpu is not None else None),
        "client_cpu_ms_per_req": round(client_cpu / n * 1000, 3),
    }


def _pgbench(url: str, *, seconds: int, clients: int) -> dict[str, float | int | str]:
    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    u = make_url(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE bench_slot (id int PRIMARY KEY, booked int NOT NULL)"))
        conn.execute(text(f"INSERT INTO bench_slot SELECT g, 0 FROM generate_series(1, {SLOTS})"
                          " g"))
    engine.dispose()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(f"\\set id random(1, {SLOTS})\n"
                     "UPDATE bench_slot SET booked = booked + 1 WHERE id = :id;\n")
    cmd = [exe, "-n", "-f", script.name, "-c", str(clients), "-j", "2", "-T", str(seconds),
           "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres",
           u.database or "postgres"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, "PGPASSWORD": u.password or ""})
    Path(script.name).unlink()
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    return {"tps": tps, "clients": clients, "seconds": seconds,
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "script": "UPDATE bench_slot SET booked = booked + 1 WHERE id = random(1..50)"}


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1,000 attempts for 100 places")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="requests in flight at once (client connection limit)")
    args = parser.parse_args()
    attempts, places = (1000, 100) if args.small else (5000, 500)
    name = f"tiercare_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    server = None
    log = tempfile.NamedTemporaryFile("w+b", suffix=".log", delete=False)
    try:
        token, residents, slots = _setup(url, attempts=attempts, places=places)
        env = {**os.environ, "TIERCARE_DATABASE_URL": url, "TIERCARE_SECRET_KEY": SECRET,
               "TIERCARE_ENVIRONMENT": "test",
               "MINIMAL_ASGI_DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://")}
        server, base = _start_uvicorn(["tiercare.web.app:create_app", "--factory"],
                                      workers=args.workers, env=env, log=log)
        bookings = [("POST", "/api/v1/appointments",
                     {"slot_id": slots[i % len(slots)], "resident_id": residents[i]})
                    for i in range(len(residents))]
        crowd = _phase(base, token, bookings, concurrency=args.concurrency,
                       server_pid=server.pid)
        bare = _phase(base, token, [("GET", "/healthz", None)] * len(residents),
                      concurrency=args.concurrency, server_pid=server.pid)
        engine = create_db_engine(url)
        with session_factory(engine)() as s:
            confirmed = s.scalar(select(func.count()).select_from(Appointment)) or 0
            booked = s.scalar(select(func.sum(Slot.booked))) or 0
            oversold = s.scalar(select(func.count()).select_from(Slot).where(
                Slot.booked > Slot.capacity)) or 0
            audited = s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.entity == "appointment", AuditEntry.action == "create")) or 0
        engine.dispose()
        server.terminate()
        server.wait(timeout=30)
        server, base = _start_uvicorn(["--app-dir", str(ROOT / "benchmarks"),
                                       "_minimal_booking_asgi:app"],
                                      workers=args.workers, env=env, log=log)
        floor = _phase(base, token, bookings, concurrency=args.concurrency,
                       server_pid=server.pid)
        server.terminate()
        server.wait(timeout=30)
        server = None
        pg = _pgbench(url, seconds=5 if args.small else 10, clients=args.concurrency // 2)
        tps = float(pg["tps"])
        rate = crowd["req_per_s"]
        p99 = crowd["latency_ms"]["p99"]
        result = {
            "benchmark": "flash-crowd booking over HTTP (PostgreSQL)",
            "attempts": attempts, "places": places, "slots": SLOTS,
            "workers": args.workers, "client_concurrency": args.concurrency,
            "server": "uvicorn, uvloop + httptools", "client": "aiohttp on uvloop",
            "status_codes": crowd["status_codes"],
            "confirmed_in_db": int(confirmed), "booked_counter_sum": int(booked),
            "oversold_slots": int(oversold), "audit_rows_for_bookings": int(audited),
            "exactly_places_confirmed": confirmed == places,
            "wall_seconds": crowd["wall_seconds"], "throughput_req_per_s": rate,
            "latency_ms": crowd["latency_ms"],
            "server_cpu_ms_per_req": crowd["server_cpu_ms_per_req"],
            "client_cpu_ms_per_req": crowd["client_cpu_ms_per_req"],
            "peer_pgbench": pg,
            "ratio_http_to_pgbench": round(rate / tps, 3),
            "bound_bare_endpoint": {
                "what": "GET /healthz (FastAPI endpoint running SELECT 1), same server, "
                        "client and concurrency, same run",
                **bare, "ratio_to_pgbench": round(bare["req_per_s"] / tps, 3),
                "booking_rate_over_bare_rate": round(rate / bare["req_per_s"], 3)},
            "bound_minimal_asgi": {
                "what": "the same booking requests to a bare ASGI callable on the same uvicorn "
                        "(benchmarks/_minimal_booking_asgi.py: no framework, no auth, no rules, "
                        "one SELECT per request on async psycopg; books nothing), same run",
                **floor, "ratio_to_pgbench": round(floor["req_per_s"] / tps, 3),
                "booking_rate_over_floor_rate": round(rate / floor["req_per_s"], 3)},
            "targets": {"ratio_ge_0_25": rate / tps >= 0.25, "p99_lt_1s": p99 < 1000.0},
            "peak_rss_mb": {
                "client_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                        / 1024, 1),
                "largest_child (uvicorn worker or pgbench)": round(
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)},
            "machine_cpus": os.cpu_count(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result, ensure_ascii=False, indent=2))
    except BaseException:
        log.seek(0)
        sys.stderr.write("server log tail:\n" + log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        log.close()
        Path(log.name).unlink()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _start_uvicorn(target: list[str], *, workers: int, env: dict[str, str],
                   log: Any) -> tuple[subprocess.Popen[bytes], str]:
    """Start uvicorn (uvloop, httptools) on a free port; returns the process and base URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target,
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--loop", "uvloop", "--http", "httptools",
         "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "120",
         "--backlog", "4096"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base, server)
    return server, base


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("uvicorn exited")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("uvicorn did not become ready")


if __name__ == "__main__":
    main()
