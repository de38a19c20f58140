"""Upload of vaccination records from a site: CSV or a FHIR ``Bundle`` of ``Immunization``.

A batch is **atomic**: every row is checked first and the whole batch is refused with a report
of every bad row (field, row, reason); otherwise all new rows are written in the caller's
transaction (one transaction per upload), so an upload interrupted half-way — killed process,
lost connection — leaves nothing behind. A batch is **idempotent**: every record has a stable
key (:func:`~tiercare.immunization.records.record_key`), rows whose key is present already are
counted as ``already_present`` and not written again.

CSV columns (UTF-8, header required; ``record_id`` and the optional columns may be empty)::

    record_id,child_identity,vaccine,dose,date,vaccinator,lot,manufacturer,route,body_site

``child_identity`` is the child's resident identity number or birth-certificate number; the
child must be registered. ``site`` may be given per row; by default the batch's site.

Rows are checked and prepared with pandas column operations and written in chunks of
:data:`CHUNK` rows (``on_chunk`` is called after each, e.g. for progress).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, Problem
from tiercare.fhir.mapping import ID_SYSTEM
from tiercare.immunization.common import in_scope, person_identity, site_by_code
from tiercare.immunization.fhir import VACCINE_SYSTEM
from tiercare.immunization.models import Child, ImmunizationRecord, UploadBatch, VaccinationSite
from tiercare.immunization.records import BODY_SITES, ROUTES
from tiercare.immunization.schedule import default_schedules

CHUNK = 2000
COLUMNS = ("record_id", "child_identity", "vaccine", "dose", "date", "site", "vaccinator", "lot",
           "manufacturer", "route", "body_site")
REQUIRED = ("child_identity", "vaccine", "date")
BIRTH_CERTIFICATE_SYSTEM = "urn:tiercare:identifier:cn-birth-certificate"
SITE_SYSTEM = "urn:tiercare:identifier:vaccination-site"
RECORD_SYSTEM = "urn:tiercare:identifier:site-record"
MAX_PROBLEMS = 1000
"""At most this many problems are reported (the batch is refused either way)."""


def _read_csv(content: bytes) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError.single(f"cannot read the CSV file: {exc}", field="file") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in COLUMNS]
    problems = [Problem(reason="required column missing", field=c) for c in missing]
    problems += [Problem(reason=f"unknown column (known: {', '.join(COLUMNS)})", field=c)
                 for c in unknown]
    if problems:
        raise InputError(problems)
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    return frame[list(COLUMNS)].apply(lambda s: s.str.strip())


def _codes(items: Any, system: str | None = None) -> list[str]:
    out = []
    for coding in items or []:
        if system is None or coding.get("system") == system:
            if coding.get("code"):
                out.append(str(coding["code"]))
    return out


def bundle_rows(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of a FHIR ``Bundle`` of ``Immunization`` resources, in the CSV's columns.

    Mapping: ``identifier`` (system :data:`RECORD_SYSTEM`) → record_id; ``patient.identifier``
    (resident identity or birth certificate) → child_identity; ``vaccineCode`` (the programme's
    code system) → vaccine; ``protocolApplied[0].doseNumberPositiveInt`` → dose;
    ``occurrenceDateTime`` → date; ``location.identifier`` → site; ``performer[0].actor.display``
    → vaccinator; ``lotNumber``, ``manufacturer.display``, ``route`` and ``site`` codes.

    Raises
    ------
    InputError
        Not a Bundle, or entries that are not ``completed`` Immunization resources (row = the
        1-based entry number).
    """
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InputError.single("expected a FHIR Bundle", field="resourceType")
    rows: list[dict[str, str]] = []
    problems: list[Problem] = []
    for i, entry in enumerate(bundle.get("entry") or [], start=1):
        res = (entry or {}).get("resource") or {}
        if res.get("resourceType") != "Immunization":
            problems.append(Problem(reason="entry is not an Immunization", row=i,
                                    field="resourceType"))
            continue
        if res.get("status") != "completed":
            problems.append(Problem(reason=f"status {res.get('status')!r} is not a given dose",
                                    row=i, field="status"))
            continue
        patient_ids = ((res.get("patient") or {}).get("identifier")) or {}
        if isinstance(patient_ids, list):
            patient_ids = patient_ids[0] if patient_ids else {}
        vaccine = _codes((res.get("vaccineCode") or {}).get("coding"), VACCINE_SYSTEM)
        record_ids = [x.get("value", "") for x in res.get("identifier") or []
                      if x.get("system") == RECORD_SYSTEM]
        location = ((res.get("location") or {}).get("identifier")) or {}
        protocol = (res.get("protocolApplied") or [{}])[0]
        performer = ((res.get("performer") or [{}])[0].get("actor") or {})
        rows.append({
            "record_id": record_ids[0] if record_ids else "",
            "child_identity": str(patient_ids.get("value", "")),
            "vaccine": vaccine[0] if vaccine else "",
            "dose": str(protocol.get("doseNumberPositiveInt", "") or ""),
            "date": str(res.get("occurrenceDateTime", ""))[:10],
            "site": str(location.get("value", "")),
            "vaccinator": str(performer.get("display", "")),
            "lot": str(res.get("lotNumber", "")),
            "manufacturer": str((res.get("manufacturer") or {}).get("display", "")),
            "route": next(iter(_codes((res.get("route") or {}).get("coding"))), ""),
            "body_site": next(iter(_codes((res.get("site") or {}).get("coding"))), ""),
        })
    if problems:
        raise InputError(problems)
    return pd.DataFrame(rows, columns=list(COLUMNS)).fillna("")


def immunization_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One Bundle entry for a row in the CSV's columns (the inverse of :func:`bundle_rows`)."""
    ident = str(row["child_identity"])
    system = BIRTH_CERTIFICATE_SYSTEM if ident[:1].isalpha() else ID_SYSTEM
    res: dict[str, Any] = {
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"coding": [{"system": VACCINE_SYSTEM, "code": row["vaccine"]}]},
        "patient": {"identifier": {"system": system, "value": ident}},
        "occurrenceDateTime": str(row["date"]),
    }
    if row.get("record_id"):
        res["identifier"] = [{"system": RECORD_SYSTEM, "value": str(row["record_id"])}]
    if row.get("dose"):
        res["protocolApplied"] = [{"series": row["vaccine"],
                                   "doseNumberPositiveInt": int(row["dose"])}]
    if row.get("site"):
        res["location"] = {"identifier": {"system": SITE_SYSTEM, "value": row["site"]}}
    if row.get("vaccinator"):
        res["performer"] = [{"actor": {"display": row["vaccinator"]}}]
    if row.get("lot"):
        res["lotNumber"] = row["lot"]
    if row.get("manufacturer"):
        res["manufacturer"] = {"display": row["manufacturer"]}
    if row.get("route"):
        res["route"] = {"coding": [{"code": row["route"]}]}
    if row.get("body_site"):
        res["site"] = {"coding": [{"code": row["body_site"]}]}
    return {"resource": res}


def _children_by_digest(session: Session, digests: list[str]) -> pd.DataFrame:
    found: list[tuple[str, int, dt.date, str]] = []
    unique = sorted(set(digests))
    for start in range(0, len(unique), 5000):
        part = unique[start:start + 5000]
        found += list(session.execute(select(
            Child.id_digest, Child.id, Child.birth_date, Child.village_code).where(
            Child.id_digest.in_(part))).all())
    frame = pd.DataFrame(found, columns=["digest", "child_id", "birth", "village"])
    frame["birth"] = pd.to_datetime(frame["birth"])
    return frame.set_index("digest")


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    present: set[str] = set()
    for start in range(0, len(keys), 5000):
        present.update(session.scalars(select(ImmunizationRecord.record_key).where(
            ImmunizationRecord.record_key.in_(keys[start:start + 5000]))))
    return present


def ingest(session: Session, actor: Actor, frame: pd.DataFrame, *, site_code: str,
           source_format: str, content_sha256: str, secret: str,
           today: dt.date | None = None,
           on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Check every row of a batch, then write the new records (see the module docstring).

    Returns
    -------
    dict
        ``batch_id``, ``rows``, ``inserted``, ``already_present``.

    Raises
    ------
    InputError
        Every bad row (up to :data:`MAX_PROBLEMS`): unknown child, vaccine or site, site out of
        scope, bad date (not a date, future, before birth), bad dose, route or injection site,
        the same record key twice in the batch with different content.
    ConflictError
        ``concurrent_upload`` when another upload wrote the same records meanwhile (retry).
    """
    today = today or dt.date.today()
    batch_site = site_by_code(session, site_code, field="site")
    if not in_scope(actor, batch_site):
        raise InputError.single("site outside your scope", field="site", code="out_of_scope")
    n = len(frame)
    rows = np.arange(1, n + 1)
    problems: list[Problem] = []

    def flag(mask: Any, field: str, reason: str, code: str = "invalid") -> None:
        for r in rows[np.asarray(mask, dtype=bool)][: MAX_PROBLEMS - len(problems)]:
            problems.append(Problem(reason=reason, field=field, row=int(r), code=code))

    for column in REQUIRED:
        flag(frame[column] == "", column, "required", "required")
    # children: each distinct identity validated once (check digit, date) and digested
    digest_of: dict[str, str] = {}
    reason_of: dict[str, str] = {}
    for text in frame["child_identity"].unique():
        if not text:
            continue
        try:
            digest_of[text] = person_identity(text, secret=secret, field="child_identity")[3]
        except InputError as exc:
            reason_of[text] = "; ".join(p.reason for p in exc.problems)
    for text, reason in reason_of.items():
        flag(frame["child_identity"] == text, "child_identity", reason, "invalid_identity")
    digest_s = frame["child_identity"].map(digest_of).fillna("")
    children = _children_by_digest(session, list(digest_of.values()))
    known = digest_s.isin(children.index)
    flag((digest_s != "") & ~known, "child_identity", "no registered child with this identity",
         "unknown_child")
    child_id = digest_s.map(children["child_id"])
    birth = digest_s.map(children["birth"])
    # sites
    site_col = frame["site"].where(frame["site"] != "", batch_site.code)
    site_ids: dict[str, int] = {}
    for code in site_col.unique():
        site = session.scalar(select(VaccinationSite).where(VaccinationSite.code == code))
        if site is not None and in_scope(actor, site):
            site_ids[code] = site.id
    flag(~site_col.isin(list(site_ids)), "site", "unknown site or outside your scope",
         "unknown_site")
    # vaccines, dates, doses, route, body site
    book = default_schedules()
    flag((frame["vaccine"] != "") & ~frame["vaccine"].isin(list(book.vaccines)), "vaccine",
         "unknown vaccine code", "unknown_vaccine")
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    flag((frame["date"] != "") & dates.isna(), "date", "not a date YYYY-MM-DD", "invalid_date")
    flag(dates > pd.Timestamp(today), "date", "date is in the future", "future_date")
    flag(dates < birth, "date", "dose before the child's birth", "before_birth")
    dose = pd.to_numeric(frame["dose"].where(frame["dose"] != ""), errors="coerce")
    flag((frame["dose"] != "") & ~dose.between(1, 10), "dose", "dose must be 1..10")
    flag((frame["route"] != "") & ~frame["route"].isin(ROUTES), "route",
         f"route must be one of {', '.join(ROUTES)}")
    flag((frame["body_site"] != "") & ~frame["body_site"].isin(BODY_SITES), "body_site",
         f"injection site must be one of {', '.join(BODY_SITES)}")
    for column, width in (("record_id", 64), ("vaccinator", 64), ("lot", 32),
                          ("manufacturer", 64)):
        flag(frame[column].str.len() > width, column, f"longer than {width} characters")
    if problems:
        problems.sort(key=lambda p: (p.row or 0, p.field or ""))
        raise InputError(problems[:MAX_PROBLEMS])

    # stable keys: site:record_id, or a digest of child, vaccine and date
    day_text = dates.dt.strftime("%Y-%m-%d")
    natural = digest_s + "|" + frame["vaccine"] + "|" + day_text
    hashed = "d:" + natural.map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:40])
    keys = (site_col + ":" + frame["record_id"]).where(frame["record_id"] != "", hashed)
    dup = keys.duplicated(keep=False)
    if dup.any():
        content = natural + "|" + frame["dose"] + "|" + frame["lot"] + "|" + frame["vaccinator"]
        clash = keys[dup].to_frame("k").assign(c=content[dup]).groupby("k")["c"].nunique()
        bad = keys.isin(clash[clash > 1].index) & keys.duplicated(keep="first")
        flag(bad, "record_id", "the same record key twice in the batch with different content",
             "duplicate_key")
        if problems:
            raise InputError(problems[:MAX_PROBLEMS])
    first = ~keys.duplicated(keep="first")
    present = _existing_keys(session, keys[first].tolist())
    new = first & ~keys.isin(present)
    batch = UploadBatch(site_id=batch_site.id, source_format=source_format,
                        content_sha256=content_sha256, rows=n, inserted=int(new.sum()),
                        already_present=int((first & keys.isin(present)).sum()),
                        username=actor.username)
    session.add(batch)
    session.flush()
    now = utcnow()
    out = pd.DataFrame({
        "record_key": keys[new], "child_id": child_id[new].astype("int64"),
        "vaccine": frame["vaccine"][new],
        "dose_number": dose[new].astype("Int64"),
        "given_on": dates[new].dt.date, "site_id": site_col[new].map(site_ids).astype("int64"),
        "vaccinator": frame["vaccinator"][new], "lot": frame["lot"][new],
        "manufacturer": frame["manufacturer"][new], "route": frame["route"][new],
        "body_site": frame["body_site"][new],
    })
    out["batch_id"] = batch.id
    out["recorded_at"] = now
    names = list(out.columns)
    values = [[None if pd.isna(v) else v for v in out[c].tolist()]
              if out[c].hasnans else out[c].tolist() for c in names]
    records = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    table = ImmunizationRecord.__table__
    written = 0
    try:
        for start in range(0, len(records), CHUNK):
            part = records[start:start + CHUNK]
            session.execute(insert(table), part)
            written += len(part)
            if on_chunk is not None:
                on_chunk(written)
    except IntegrityError as exc:
        raise ConflictError("concurrent_upload",
                            "another upload wrote some of these records meanwhile; retry "
                            "(records already present are skipped)") from exc
    audit(session, actor, "upload", "imm_upload_batch", str(batch.id),
          after={"rows": n, "inserted": batch.inserted,
                 "already_present": batch.already_present, "format": source_format},
          detail=f"site {batch_site.code}")
    return {"batch_id": batch.id, "rows": n, "inserted": batch.inserted,
            "already_present": batch.already_present}


def upload_csv(session: Session, actor: Actor, content: bytes, *, site_code: str, secret: str,
               today: dt.date | None = None,
               on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Upload a CSV batch (see the module docstring and :func:`ingest`)."""
    frame = _read_csv(content)
    return ingest(session, actor, frame, site_code=site_code, source_format="csv",
                  content_sha256=hashlib.sha256(content).hexdigest(), secret=secret,
                  today=today, on_chunk=on_chunk)


def upload_bundle(session: Session, actor: Actor, bundle: Mapping[str, Any], *, site_code: str,
                  secret: str, today: dt.date | None = None) -> dict[str, Any]:
    """Upload a FHIR Bundle of Immunization resources (see :func:`bundle_rows`)."""
    import json

    frame = bundle_rows(bundle)
    raw = json.dumps(bundle, sort_keys=True, ensure_ascii=False).encode()
    return ingest(session, actor, frame, site_code=site_code, source_format="fhir",
                  content_sha256=hashlib.sha256(raw).hexdigest(), secret=secret, today=today)
