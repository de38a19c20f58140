"""Vaccine stock per site: lots with expiry, receipts, doses used, wastage, alerts.

Doses on hand of a lot = receipts + adjustments − wastage − doses used, where *doses used* are
the vaccination records of the site with that vaccine and lot number (so uploads and doses
recorded at the site count without a separate stock entry). Alerts, with the thresholds of
``data/coverage-targets.json`` in force:

* ``near_expiry``: a lot with doses on hand expiring within ``near_expiry_days``;
* ``expired``: a lot with doses on hand past its expiry date;
* ``stock_out``: a vaccine the site offers (daily capacity > 0) with no usable dose on hand;
* ``low_stock``: usable doses on hand below ``stock_cover_days`` × the average daily use of
  the last 30 days.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.errors import InputError, Problem
from tiercare.immunization.common import require_site, site_by_code
from tiercare.immunization.models import (
    ImmunizationRecord,
    SiteCapacity,
    StockMove,
    VaccineLot,
)
from tiercare.immunization.schedule import default_schedules
from tiercare.immunization.worklists import targets_in_force


class MoveIn(BaseModel):
    """A receipt, wastage or adjustment of a lot (a receipt of a new lot creates it)."""

    vaccine: str
    lot: str = Field(min_length=1, max_length=32)
    kind: Literal["receipt", "wastage", "adjustment"]
    doses: int
    on_date: dt.date
    manufacturer: str = Field(default="", max_length=64)
    expires_on: dt.date | None = Field(default=None, description="Required for a new lot")
    reason: str = Field(default="", max_length=128)


def record_move(session: Session, actor: Actor, site_code: str, data: MoveIn) -> StockMove:
    """Record a stock movement (audited).

    Raises
    ------
    InputError
        Unknown vaccine, a new lot without expiry, non-positive receipt or wastage, wastage
        above the doses on hand.
    """
    site = site_by_code(session, site_code)
    require_site(actor, site)
    problems: list[Problem] = []
    if data.vaccine not in default_schedules().vaccines:
        problems.append(Problem(reason=f"unknown vaccine {data.vaccine!r}", field="vaccine",
                                code="unknown_vaccine"))
    if data.kind in ("receipt", "wastage") and data.doses <= 0:
        problems.append(Problem(reason="must be > 0", field="doses"))
    lot = session.scalar(select(VaccineLot).where(
        VaccineLot.site_id == site.id, VaccineLot.vaccine == data.vaccine,
        VaccineLot.lot == data.lot))
    if lot is None and data.kind != "receipt":
        problems.append(Problem(reason="unknown lot at this site", field="lot"))
    if lot is None and data.expires_on is None:
        problems.append(Problem(reason="a new lot needs its expiry date", field="expires_on"))
    if problems:
        raise InputError(problems)
    if lot is None:
        lot = VaccineLot(site_id=site.id, vaccine=data.vaccine, lot=data.lot,
                         manufacturer=data.manufacturer, expires_on=data.expires_on)
        session.add(lot)
        session.flush()
    if data.kind == "wastage" and data.doses > _on_hand(session, lot):
        raise InputError.single("more than the doses on hand", field="doses")
    move = StockMove(lot_id=lot.id, kind=data.kind, doses=data.doses, on_date=data.on_date,
                     reason=data.reason, username=actor.username)
    session.add(move)
    session.flush()
    audit(session, actor, "create", "imm_stock_move", str(move.id),
          after={"site": site.code, **data.model_dump(mode="json")})
    return move


def _used(session: Session, lot: VaccineLot) -> int:
    return session.scalar(select(func.count()).select_from(ImmunizationRecord).where(
        ImmunizationRecord.site_id == lot.site_id, ImmunizationRecord.vaccine == lot.vaccine,
        ImmunizationRecord.lot == lot.lot)) or 0


def _on_hand(session: Session, lot: VaccineLot) -> int:
    moves = dict(session.execute(select(StockMove.kind, func.sum(StockMove.doses)).where(
        StockMove.lot_id == lot.id).group_by(StockMove.kind)).all())
    return int(moves.get("receipt", 0) + moves.get("adjustment", 0) - moves.get("wastage", 0)
               - _used(session, lot))


def stock_report(session: Session, actor: Actor, site_code: str, *,
                 today: dt.date | None = None) -> dict[str, Any]:
    """Lots with receipts, use, wastage and doses on hand, and the alerts (see module doc)."""
    today = today or dt.date.today()
    site = site_by_code(session, site_code)
    require_site(actor, site)
    targets = targets_in_force(today)
    lots = []
    for lot in session.scalars(select(VaccineLot).where(VaccineLot.site_id == site.id)
                               .order_by(VaccineLot.vaccine, VaccineLot.expires_on)):
        moves = dict(session.execute(select(StockMove.kind, func.sum(StockMove.doses)).where(
            StockMove.lot_id == lot.id).group_by(StockMove.kind)).all())
        used = _used(session, lot)
        received = int(moves.get("receipt", 0))
        wasted = int(moves.get("wastage", 0))
        adjusted = int(moves.get("adjustment", 0))
        lots.append({"vaccine": lot.vaccine, "lot": lot.lot, "manufacturer": lot.manufacturer,
                     "expires_on": lot.expires_on.isoformat(), "received": received,
                     "used": used, "wasted": wasted, "adjusted": adjusted,
                     "on_hand": received + adjusted - wasted - used,
                     "expired": lot.expires_on < today})
    since = today - dt.timedelta(days=30)
    use_30 = dict(session.execute(select(ImmunizationRecord.vaccine, func.count()).where(
        ImmunizationRecord.site_id == site.id, ImmunizationRecord.given_on > since,
        ImmunizationRecord.given_on <= today).group_by(ImmunizationRecord.vaccine)).all())
    offered = [c.vaccine for c in session.scalars(select(SiteCapacity).where(
        SiteCapacity.site_id == site.id, SiteCapacity.daily_doses > 0))]
    alerts: list[dict[str, Any]] = []
    usable: dict[str, int] = {}
    for row in lots:
        if row["on_hand"] <= 0:
            continue
        expires = dt.date.fromisoformat(row["expires_on"])
        if row["expired"]:
            alerts.append({"kind": "expired", "vaccine": row["vaccine"], "lot": row["lot"],
                           "doses": row["on_hand"], "expires_on": row["expires_on"]})
            continue
        usable[row["vaccine"]] = usable.get(row["vaccine"], 0) + row["on_hand"]
        if (expires - today).days <= targets.near_expiry_days:
            alerts.append({"kind": "near_expiry", "vaccine": row["vaccine"], "lot": row["lot"],
                           "doses": row["on_hand"], "expires_on": row["expires_on"],
                           "days_left": (expires - today).days})
    for vaccine in sorted(set(offered) | set(usable)):
        have = usable.get(vaccine, 0)
        daily = use_30.get(vaccine, 0) / 30
        if vaccine in offered and have == 0:
            alerts.append({"kind": "stock_out", "vaccine": vaccine, "doses": 0})
        elif daily > 0 and have < targets.stock_cover_days * daily:
            alerts.append({"kind": "low_stock", "vaccine": vaccine, "doses": have,
                           "days_of_cover": round(have / daily, 1)})
    return {"site": site.code, "as_of": today.isoformat(), "lots": lots,
            "usable": usable, "alerts": alerts}
