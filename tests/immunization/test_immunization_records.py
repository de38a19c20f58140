"""Children, records and the atomic, idempotent upload (CSV and FHIR Bundle), SQLite and PostgreSQL.

Includes the kill test: a subprocess uploads a large batch, is killed with SIGKILL after its
first chunk was written inside the transaction, and nothing of the batch may remain.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from immunization_helpers import SECRET, TODAY, identity, setup
from sqlalchemy import func, select
from typer.testing import CliRunner

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import SYSTEM
from tiercare.cli import app as cli_app
from tiercare.errors import InputError, NotFoundError
from tiercare.immunization.models import Child, ImmunizationRecord, Transfer, UploadBatch
from tiercare.immunization.records import (
    ChildIn,
    DoseIn,
    family_lookup,
    record_dose,
    register_child,
    request_family_code,
    transfer_child,
)
from tiercare.immunization.upload import (
    CHUNK,
    bundle_rows,
    immunization_entry,
    upload_bundle,
    upload_csv,
)

HEADER = "record_id,child_identity,vaccine,dose,date,lot,route\n"


def _count(session, model=ImmunizationRecord) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _numbers(session) -> list[tuple[int, str, dt.date]]:
    return [(c.id, c.id_number, c.birth_date) for c in
            session.scalars(select(Child).order_by(Child.id))]


def test_immunization_children_doses_and_family_lookup(session):
    ids = setup(session, children=1)
    number = identity(dt.date(2025, 6, 1), 3, sex="M")
    c = register_child(session, SYSTEM, ChildIn(
        name="小明", identity_number=number, village_code="140725100201", site_code="VS1",
        guardian_phone="13812345678"), secret=SECRET, today=TODAY)
    assert (c.sex, c.birth_date, c.id_kind) == ("M", dt.date(2025, 6, 1), "resident_id")
    assert c.id_masked == number[:6] + "********" + number[-4:]
    with pytest.raises(InputError) as err:
        register_child(session, SYSTEM, ChildIn(
            name="x", identity_number=number[:-1] + ("0" if number[-1] != "0" else "1"),
            village_code="999999999999", site_code="NOPE", sex="F"),
            secret=SECRET, today=TODAY)
    fields = {p.field for p in err.value.problems}
    assert {"identity_number", "village_code", "site_code"} <= fields
    with pytest.raises(InputError) as err:
        register_child(session, SYSTEM, ChildIn(
            name="twice", identity_number=number, village_code="140725100201",
            site_code="VS1"), secret=SECRET, today=TODAY)
    assert err.value.problems[0].code == "duplicate"
    cert = register_child(session, SYSTEM, ChildIn(
        name="小红", identity_number="R123456789", sex="F", birth_date=dt.date(2026, 1, 2),
        village_code="140725200201", site_code="VS1", registered_how="arrival"),
        secret=SECRET, today=TODAY)
    assert cert.id_kind == "birth_certificate" and cert.id_masked == "R1****6789"
    move = transfer_child(session, SYSTEM, cert.id, to_site_code="MV1", reason="moved")
    assert move.from_site_id != move.to_site_id and cert.site_id == move.to_site_id
    assert _count(session, Transfer) == 1
    # a dose recorded twice is one record
    data = DoseIn(child_id=ids[0], vaccine="HepB", given_on=dt.date(2025, 3, 1),
                  site_code="VS1", lot="L1", route="IM", body_site="left_arm")
    first, created = record_dose(session, SYSTEM, data, today=TODAY)
    again, created2 = record_dose(session, SYSTEM, data, today=TODAY)
    assert created and not created2 and first.id == again.id
    with pytest.raises(InputError) as err:
        record_dose(session, SYSTEM, DoseIn(child_id=ids[0], vaccine="XYZ",
                                            given_on=dt.date(2024, 1, 1), site_code="VS1",
                                            route="??"), today=TODAY)
    assert {p.code for p in err.value.problems} >= {"unknown_vaccine", "before_birth"}
    assert {p.field for p in err.value.problems} >= {"vaccine", "date", "route"}
    # the family look-up
    c = session.get(Child, ids[0])
    with pytest.raises(NotFoundError):
        family_lookup(session, identity_number=c.id_number, guardian_phone="13900000000",
                      secret=SECRET)
    view = family_lookup(session, identity_number=c.id_number, guardian_phone=c.guardian_phone,
                         secret=SECRET, as_of=TODAY)
    assert view["child"]["identity_masked"] == c.id_masked
    assert {s["vaccine"] for s in view["forecast"]["series"]} >= {"HepB", "MMR"}
    child, code = request_family_code(session, identity_number=c.id_number, secret=SECRET)
    assert child.id == c.id
    family_lookup(session, identity_number=c.id_number, code=code, secret=SECRET, as_of=TODAY)
    with pytest.raises(NotFoundError):  # one-time
        family_lookup(session, identity_number=c.id_number, code=code, secret=SECRET)
    actions = list(session.scalars(select(AuditEntry.action).where(
        AuditEntry.username == "family").order_by(AuditEntry.id)))
    assert actions == ["family_denied", "family_read", "code_sent", "family_read",
                       "family_denied"]
    for _ in range(3):  # guessing phones: locked after five refusals within the hour
        with pytest.raises(NotFoundError):
            family_lookup(session, identity_number=c.id_number, guardian_phone="1", secret=SECRET)
    with pytest.raises(NotFoundError, match="too many"):
        family_lookup(session, identity_number=c.id_number, guardian_phone=c.guardian_phone,
                      secret=SECRET)


def _csv(rows: list[str]) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def test_immunization_upload_csv_atomic_report_and_idempotent(session, tmp_path: Path):
    setup(session, children=3)
    (a, na, ba), (b, nb, bb), _ = _numbers(session)
    good = [f"r1,{na},HepB,1,{ba},L1,IM", f"r2,{nb},HepB,1,{bb},L1,IM",
            f",{na},BCG,1,{ba},L2,ID"]
    bad = good + [f"r4,{na},NOPE,1,{ba},L1,IM", f"r5,140725200001011235,HepB,1,{ba},,",
                  f"r6,{nb},HepB,x,2099-01-01,,XX"]
    with pytest.raises(InputError) as err:
        upload_csv(session, SYSTEM, _csv(bad), site_code="VS1", secret=SECRET, today=TODAY)
    report = {(p.row, p.field) for p in err.value.problems}
    assert {(4, "vaccine"), (5, "child_identity"), (6, "dose"), (6, "date"),
            (6, "route")} <= report
    assert all(p.row in (4, 5, 6) for p in err.value.problems)
    session.rollback()
    assert _count(session) == 0 and _count(session, UploadBatch) == 0
    out = upload_csv(session, SYSTEM, _csv(good), site_code="VS1", secret=SECRET, today=TODAY)
    session.commit()
    assert (out["inserted"], out["already_present"]) == (3, 0)
    again = upload_csv(session, SYSTEM, _csv(good[::-1]), site_code="VS1", secret=SECRET,
                       today=TODAY)
    session.commit()
    assert (again["inserted"], again["already_present"]) == (0, 3)
    assert _count(session) == 3
    # the same doses as a FHIR Bundle: nothing new; one new dose: one row
    rows = bundle_rows({"resourceType": "Bundle", "type": "batch", "entry": [
        immunization_entry({"record_id": "r1", "child_identity": na, "vaccine": "HepB",
                            "dose": "1", "date": ba.isoformat(), "site": "VS1", "lot": "L1",
                            "route": "IM"})]})
    assert rows.loc[0, "child_identity"] == na and rows.loc[0, "site"] == "VS1"
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        immunization_entry({"record_id": "r1", "child_identity": na, "vaccine": "HepB",
                            "dose": "1", "date": ba.isoformat()}),
        immunization_entry({"record_id": "r9", "child_identity": na, "vaccine": "HepB",
                            "dose": "2", "date": (ba + dt.timedelta(days=30)).isoformat(),
                            "lot": "L7", "manufacturer": "M", "route": "IM",
                            "body_site": "right_arm", "vaccinator": "王"})]}
    res = upload_bundle(session, SYSTEM, bundle, site_code="VS1", secret=SECRET, today=TODAY)
    session.commit()
    assert (res["inserted"], res["already_present"]) == (1, 1)
    rec = session.scalar(select(ImmunizationRecord).where(
        ImmunizationRecord.record_key == "VS1:r9"))
    assert (rec.dose_number, rec.lot, rec.body_site, rec.vaccinator) == (2, "L7", "right_arm",
                                                                         "王")
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.entity == "imm_upload_batch")) == 3
    # the same through the command line: exit 2 with the row report, then one new record
    url = session.get_bind().url.render_as_string(hide_password=False)
    path = tmp_path / "batch.csv"
    path.write_bytes(_csv(good + [f"r4,{na},NOPE,1,{ba},L1,IM"]))
    runner = CliRunner()
    command = ["immunization", "upload", str(path), "--site", "VS1", "--db", url]
    res = runner.invoke(cli_app, command, env={"TIERCARE_SECRET_KEY": SECRET})
    assert res.exit_code == 2 and "row 4" in res.output and "vaccine" in res.output
    path.write_bytes(_csv(good + [f"r7,{nb},BCG,1,{bb},,ID"]))
    res = runner.invoke(cli_app, command, env={"TIERCARE_SECRET_KEY": SECRET})
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["inserted"] == 1


KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from tiercare.auth.service import SYSTEM
    from tiercare.db.engine import create_db_engine, session_factory
    from tiercare.immunization.upload import upload_csv

    url, path = sys.argv[1], sys.argv[2]
    engine = create_db_engine(url)
    def after_chunk(written):
        print("written", written, flush=True)
        time.sleep(60)  # killed here, mid-batch, transaction open
    with session_factory(engine)() as session:
        upload_csv(session, SYSTEM, open(path, "rb").read(), site_code="VS1",
                   secret="test-secret", on_chunk=after_chunk)
        session.commit()
    print("committed", flush=True)
""")


def test_immunization_upload_killed_midway_leaves_nothing(session, engine, tmp_path: Path):
    setup(session, children=20)
    children = _numbers(session)
    lines = []
    for k in range(CHUNK * 3):
        _, number, birth = children[k % len(children)]
        lines.append(f"k{k},{number},HepB,,{birth + dt.timedelta(days=k // 20)},L1,IM")
    path = tmp_path / "batch.csv"
    path.write_bytes(_csv(lines))
    session.commit()
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, url, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        first = proc.stdout.readline()
        assert first.startswith("written"), proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    engine.dispose()  # PostgreSQL: the server aborts the dead backend's transaction
    session.rollback()
    assert _count(session) == 0 and _count(session, UploadBatch) == 0
    # the same file uploaded to completion afterwards writes every row once
    out = upload_csv(session, SYSTEM, path.read_bytes(), site_code="VS1", secret=SECRET,
                     today=TODAY + dt.timedelta(days=400))
    session.commit()
    assert out["inserted"] == CHUNK * 3 and _count(session) == CHUNK * 3
    assert json.dumps(out)
