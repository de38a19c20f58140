"""Database layer: declarative base, engine/session factory and Alembic migrations."""

from tiercare.db.base import Base
from tiercare.db.engine import create_db_engine, session_factory

__all__ = ["Base", "create_db_engine", "session_factory"]
