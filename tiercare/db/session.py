"""One place that opens database sessions for the CLI and the web app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tiercare.db.engine import create_db_engine, session_factory


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """A shared engine per database URL."""
    return create_db_engine(url)


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    factory = session_factory(engine_for(url))
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
