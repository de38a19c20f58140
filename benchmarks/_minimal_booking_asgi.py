"""The least a Python HTTP endpoint can do per booking attempt: the floor for bench_booking.

A bare ASGI callable (no framework, no authentication, no booking rules) served by the same
uvicorn as the product: read the JSON body, run one ``SELECT`` of the slot's counters on a
pooled asynchronous psycopg connection, answer 409 ``slot_full`` when it is full and 200
otherwise. It books nothing. Its rate, next to pgbench in the same run, shows how far any
Python HTTP endpoint can get on this machine.

Database: ``MINIMAL_ASGI_DATABASE_URL`` (a libpq URL). Run by ``bench_booking.py`` only.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import psycopg

POOL_SIZE = 8
_SLOT = "SELECT booked, capacity FROM slots WHERE id = %s"
_pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()


async def _open_pool() -> None:
    """Open the worker's connections (autocommit, prepared statements)."""
    for _ in range(POOL_SIZE):
        _pool.put_nowait(await psycopg.AsyncConnection.connect(
            os.environ["MINIMAL_ASGI_DATABASE_URL"], autocommit=True, prepare_threshold=0))


async def _close_pool() -> None:
    """Close the worker's connections."""
    while not _pool.empty():
        await _pool.get_nowait().close()


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI entry point: ``POST`` any path with ``{"slot_id": …}``."""
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await _open_pool()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await _close_pool()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] != "POST":
        await _answer(send, 200, {"status": "ok"})
        return
    conn = await _pool.get()
    try:
        row = await (await conn.execute(_SLOT, (json.loads(body)["slot_id"],))).fetchone()
    finally:
        _pool.put_nowait(conn)
    if row is None or row[0] >= row[1]:
        await _answer(send, 409, {"detail": {"reason": "slot_full", "message": "no place left"}})
    else:
        await _answer(send, 200, {"status": "would book"})
