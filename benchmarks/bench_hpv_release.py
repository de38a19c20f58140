"""Flash crowd on a scarce HPV release over HTTP: exactly N confirmed, latency percentiles.

What it does (one run, one throw-away database ``tiercare_bench_<random>``):

1. migrates a new database, loads a one-township county with a vaccination site and creates
   a release of D doses (default 500) in arrival mode, open since a minute ago;
2. starts ``uvicorn`` with several worker processes on 127.0.0.1 serving the real app;
3. fires R requests (default 10,000; every one a different person, plus 1 % repeats of an
   earlier person) as ``POST /api/v1/immunization/releases/{code}/requests`` from an
   ``httpx`` async client, at most ``--concurrency`` in flight; latency per request from send
   to answer;
4. checks in the database: exactly D confirmed, places 1…D each held once, ``taken`` = D,
   the repeats refused (409 ``already_requested``);
5. **peer**: the same number of ``GET /healthz`` (one ``SELECT 1``) through the same server
   and client — the cost of the HTTP stack and a database round trip without any queueing
   logic — and the ratio of throughputs.

Prints JSON. ``--small``: 1,000 requests for 50 doses. Run:
``.venv/bin/python benchmarks/bench_hpv_release.py [--small]`` (PostgreSQL at
``TIERCARE_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tiercare.auth.service import SYSTEM  # noqa: E402
from tiercare.db.engine import create_db_engine, session_factory  # noqa: E402
from tiercare.db.migrate import upgrade  # noqa: E402
from tiercare.identity import check_character  # noqa: E402
from tiercare.immunization.models import Release, ReleaseRequest  # noqa: E402
from tiercare.immunization.releases import ReleaseIn, create_release  # noqa: E402
from tiercare.immunization.sites import SiteIn, create_site  # noqa: E402
from tiercare.registry.importing import import_rows  # noqa: E402
from tiercare.registry.reference import seed_reference_data  # noqa: E402

ADMIN_URL = os.environ.get("TIERCARE_BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret"
CODE = "HPV-BENCH"
DIVISIONS = [
    {"code": "14", "name": "山西省"}, {"code": "1407", "name": "晋中市"},
    {"code": "140725", "name": "测试县"}, {"code": "140725100", "name": "甲镇"},
]
FACILITIES = [{"code": "T1", "name": "甲镇卫生院", "type": "township_health_centre",
               "division_code": "140725100", "level": "primary"}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setup(url: str, doses: int) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        import_rows(session, "divisions", DIVISIONS, actor=SYSTEM)
        import_rows(session, "facilities", FACILITIES, actor=SYSTEM)
        create_site(session, SYSTEM, SiteIn(code="VS1", name="接种门诊", kind="fixed",
                                            facility_code="T1", division_code="140725100"))
        create_release(session, SYSTEM, ReleaseIn(
            code=CODE, vaccine="HPV", site_code="VS1", doses=doses,
            opens_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        session.commit()
    engine.dispose()


def _people(n: int) -> list[str]:
    """n different women's identity numbers, then 1 % repeats of earlier ones."""
    out = []
    for i in range(n):
        birth = dt.date(1985, 1, 1) + dt.timedelta(days=i % 7000)
        first17 = f"14{i // 7000 % 100:02d}25{birth:%Y%m%d}{(i % 499) * 2 + 2:03d}"
        out.append(first17 + check_character(first17))
    return out + out[: max(1, n // 100)]


async def _crowd(base: str, paths: list[tuple[str, str, dict | None]], concurrency: int
                 ) -> tuple[list[float], Counter, Counter, float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    codes: Counter = Counter()
    outcomes: Counter = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0) as client:
        async def one(method: str, path: str, body: dict | None) -> None:
            async with gate:
                t0 = time.perf_counter()
                r = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - t0)
            codes[r.status_code] += 1
            if r.status_code == 201:
                outcomes[r.json()["status"]] += 1
            elif r.status_code == 409:
                outcomes[r.json()["detail"]["reason"]] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(m, p, b) for m, p, b in paths))
        wall = time.perf_counter() - t0
    return latencies, codes, outcomes, wall


def _ms(lat: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.percentile(lat, 50)) * 1000, 1),
            "p90": round(float(np.percentile(lat, 90)) * 1000, 1),
            "p99": round(float(np.percentile(lat, 99)) * 1000, 1),
            "max": round(float(lat.max()) * 1000, 1)}


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


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1,000 requests for 50 doses")
    parser.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="requests in flight at once (client connection limit)")
    args = parser.parse_args()
    requests, doses = (1000, 50) if args.small else (10_000, 500)
    name = f"tiercare_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    server = None
    log = tempfile.NamedTemporaryFile("w+b", suffix=".log", delete=False)
    try:
        _setup(url, doses)
        port = _free_port()
        env = {**os.environ, "TIERCARE_DATABASE_URL": url, "TIERCARE_SECRET_KEY": SECRET,
               "TIERCARE_ENVIRONMENT": "test"}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tiercare.web.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
             "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "120",
             "--backlog", "4096"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, server)
        people = _people(requests)
        crowd = [("POST", f"/api/v1/immunization/releases/{CODE}/requests",
                  {"identity_number": p}) for p in people]
        latencies, codes, outcomes, wall = asyncio.run(_crowd(base, crowd, args.concurrency))
        peer = [("GET", "/healthz", None)] * len(crowd)
        peer_lat, peer_codes, _, peer_wall = asyncio.run(_crowd(base, peer, args.concurrency))
        server.terminate()
        server.wait(timeout=30)
        server = None
        engine = create_db_engine(url)
        with session_factory(engine)() as s:
            release = s.scalar(select(Release).where(Release.code == CODE))
            confirmed = s.scalar(select(func.count()).select_from(ReleaseRequest).where(
                ReleaseRequest.status == "confirmed")) or 0
            places = sorted(s.scalars(select(ReleaseRequest.place).where(
                ReleaseRequest.place.is_not(None))))
            taken = release.taken
        engine.dispose()
        lat, plat = np.array(latencies), np.array(peer_lat)
        rate, peer_rate = len(latencies) / wall, len(peer_lat) / peer_wall
        result = {
            "benchmark": "flash crowd on a scarce HPV release over HTTP (PostgreSQL)",
            "requests": len(crowd), "distinct_people": requests, "doses": doses,
            "workers": args.workers, "client_concurrency": args.concurrency,
            "status_codes": {str(k): v for k, v in sorted(codes.items())},
            "outcomes": dict(outcomes),
            "confirmed_in_db": int(confirmed), "taken_counter": int(taken),
            "places_each_held_once": places == list(range(1, doses + 1)),
            "exactly_doses_confirmed": confirmed == doses == taken,
            "wall_seconds": round(wall, 3), "throughput_req_per_s": round(rate, 1),
            "latency_ms": _ms(lat),
            "peer_healthz": {"throughput_req_per_s": round(peer_rate, 1),
                             "latency_ms": _ms(plat),
                             "status_codes": {str(k): v for k, v in peer_codes.items()}},
            "ratio_release_to_healthz_throughput": round(rate / peer_rate, 3),
            "peak_rss_mb": {
                "client_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                        / 1024, 1),
                "largest_uvicorn_worker": round(
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)},
            "machine_cpus": os.cpu_count(),
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


if __name__ == "__main__":
    main()
