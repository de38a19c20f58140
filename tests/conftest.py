"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, users, an API client.

PostgreSQL: ``TIERCARE_TEST_POSTGRES_URL`` (default: the local server, database ``postgres``)
is used to create a throw-away database per test session. Without a server the PostgreSQL
half is skipped — except in CI (``CI=true``), where that is an error, and where the run fails
unless PostgreSQL tests actually ran.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from realdata import SHARED_DATA
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM, create_user
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.registry.reference import seed_reference_data

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "TIERCARE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_pg_outcomes = {"passed": 0, "skipped": 0, "failed": 0}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data beside the project (skips when absent)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped at the end)."""
    name = f"tiercare_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        admin.dispose()
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}"
        if IN_CI:
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrate(url: str) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_database_url: str) -> str:
    """The session's PostgreSQL database, migrated once; each test gets a copy of it."""
    _migrate(pg_database_url)
    return pg_database_url


class DatabaseFactory:
    """Makes migrated databases (copies of the session's templates) and drops them at the end."""

    def __init__(self, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._tmp = tmp_path_factory
        self._pg_copies: list[str] = []
        self._count = 0

    def new(self, backend: str) -> str:
        """URL of a new migrated database on ``sqlite`` or ``postgres``."""
        self._count += 1
        if backend == "sqlite":
            path = self._tmp.mktemp("db") / "tiercare.db"
            shutil.copyfile(self._request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        template = make_url(self._request.getfixturevalue("pg_template"))
        name = f"{template.database}_{self._count}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
        admin.dispose()
        self._pg_copies.append(name)
        return template.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Drop a PostgreSQL copy now (SQLite files go with the temporary folder)."""
        name = make_url(url).database
        if name in self._pg_copies:
            self._pg_copies.remove(name)
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def close(self) -> None:
        """Drop every PostgreSQL copy still there."""
        for name in list(self._pg_copies):
            self.drop(f"postgresql+psycopg://x@h/{name}")


@pytest.fixture(scope="session")
def databases(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Factory of migrated test databases (use it for module-scoped fixtures)."""
    factory = DatabaseFactory(request, tmp_path_factory)
    yield factory
    factory.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, databases: DatabaseFactory) -> Iterator[str]:
    """URL of a freshly migrated database, once on SQLite and once on PostgreSQL.

    Each test gets its own copy of a template migrated once per session (a file copy on
    SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL), so tests stay independent and fast.
    """
    url = databases.new(request.param)
    yield url
    databases.drop(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test's migrated database (shipped reference data included)."""
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database (tests commit or roll back themselves)."""
    with session_factory(engine)() as session:
        yield session


def _registry_helpers():  # type: ignore[no-untyped-def]
    """tests/registry/registry_helpers.py as a module (test folders are not packages)."""
    import importlib.util

    path = Path(__file__).parent / "registry" / "registry_helpers.py"
    spec = importlib.util.spec_from_file_location("registry_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def small_county(session: Session) -> Session:
    """The small test county (two townships, four villages, H1/T1/V1/V2) loaded and committed."""
    _registry_helpers().load_small_county(session)
    return session


@pytest.fixture
def admin_user(session: Session):  # type: ignore[no-untyped-def]
    """An administrator with access to everything."""
    user = create_user(session, username="admin", password="admin-pass-1", role="admin")
    session.commit()
    return user


@pytest.fixture
def system_actor():  # type: ignore[no-untyped-def]
    """The actor used by imports from the command line."""
    return SYSTEM


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count PostgreSQL test outcomes (for the CI check below)."""
    if "[postgres" not in report.nodeid and "postgres]" not in report.nodeid:
        return
    if report.when == "call" and report.passed:
        _pg_outcomes["passed"] += 1
    elif report.skipped:
        _pg_outcomes["skipped"] += 1
    elif report.failed:
        _pg_outcomes["failed"] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """Say how many PostgreSQL tests ran."""
    terminalreporter.write_line(
        f"PostgreSQL tests: {_pg_outcomes['passed']} passed, {_pg_outcomes['skipped']} skipped, "
        f"{_pg_outcomes['failed']} failed"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI the PostgreSQL half must have run: no skips, at least one pass."""
    if not IN_CI or getattr(session.config, "workerinput", None) is not None:
        return
    if session.config.option.collectonly:
        return
    selected = session.config.getoption("-k") or session.config.getoption("-m")
    if selected:
        return
    if _pg_outcomes["passed"] == 0 or _pg_outcomes["skipped"] > 0:
        session.exitstatus = 1
        print(f"\nCI: the PostgreSQL half of the suite did not run fully: {_pg_outcomes}")
