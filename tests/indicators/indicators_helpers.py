"""Shared set-up of the indicator tests: the registry's tiny county and the catalogue."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from tiercare.indicators.catalogue import seed_catalogue

_REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "registry_helpers.py"


def _registry_helpers():  # type: ignore[no-untyped-def]
    name = "registry_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _REGISTRY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_county_with_catalogue(session: Session) -> None:
    """Tiny county (H1 hospital 300 beds, T1 centre 20 beds, V1/V2 clinics) + catalogue."""
    _registry_helpers().load_small_county(session)
    seed_catalogue(session)
    session.commit()
