"""Application factory: API routers, pages, static assets and error handling."""

from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from tiercare import __version__
from tiercare.config import Settings, get_settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    Problem,
    problems_from_validation,
)

STATIC_DIR = Path(__file__).with_name("static")
ROUTERS = (
    # First: Starlette tries routers in this order, and booking is the hottest request.
    "tiercare.scheduling.api:router",
    "tiercare.auth.api:router",
    "tiercare.registry.api:router",
    "tiercare.web.pages:router",
    "tiercare.scenarios.api:router",
    "tiercare.analyses.api:router",
    "tiercare.analyses.pages:router",
    "tiercare.residents.api:router",
    "tiercare.referral.api:router",
    "tiercare.scheduling.pages:router",
    "tiercare.referral.pages:router",
    "tiercare.fhir.immunization:router",
    "tiercare.fhir.api:router",
    "tiercare.maternal.api:router",
    "tiercare.maternal.api:fhir_router",
    "tiercare.maternal.pages:router",
    "tiercare.indicators.api:router",
    "tiercare.surveillance.api:router",
    "tiercare.indicators.pages:router",
    "tiercare.immunization.api:router",
    "tiercare.immunization.pages:router",
)
"""Every router of the app as ``module:attribute`` (add one line per new router)."""


def plotly_js_path() -> Path:
    """plotly.min.js shipped inside the installed plotly package (no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the TierCare web application for ``settings`` (environment by default)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="TierCare",
        version=__version__,
        description=(
            "Registry, planning and daily workflows of a tiered health-service network. "
            "Authenticate with `POST /api/v1/auth/token` and send `Authorization: Bearer …`. "
            "Bad input answers 422 with every problem (field, row, reason); conflicts 409."
        ),
    )
    engine = create_db_engine(settings.database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiercare-bg")

    def _problems_response(problems: list[Problem]) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [
            {"field": p.field, "row": p.row, "reason": p.reason, "code": p.code} for p in problems
        ]})

    @app.exception_handler(InputError)
    async def _input_error(_: Request, exc: InputError) -> JSONResponse:
        return _problems_response(exc.problems)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _problems_response(problems_from_validation(exc.errors()))

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": f"not found: {exc}"})

    @app.exception_handler(ForbiddenError)
    async def _forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(exc)})

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": {"reason": exc.reason,
                                                                  "message": str(exc)}})

    @app.get("/healthz", tags=["meta"], summary="Liveness and database check")
    def healthz() -> dict:
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": engine.dialect.name}

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript")

    for target in ROUTERS:
        module_name, attribute = target.split(":")
        app.include_router(getattr(importlib.import_module(module_name), attribute))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
