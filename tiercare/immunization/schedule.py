"""The immunisation schedule as versioned data: loading, resolving and validating it.

Each file ``data/schedule-*.json`` is one *version* of the schedule with an ``effective_from``
date. A version either lists the whole catalogue or ``extends`` an earlier version and only
states what changes:

``series``
    series definitions that replace the parent's series with the same ``id`` (in place) or,
    for a new ``id``, are appended;
``remove_series`` / ``remove_vaccines``
    ids dropped from the parent;
``vaccines``
    product definitions that replace (same ``code``) or extend the parent's.

A new edition of the programme is therefore one more file, without a code change. Ages and
intervals are written ``"<y>y<m>m<d>d"`` (any part may be left out, e.g. ``"18m"``, ``"28d"``,
``"4y"``); months are calendar months, the day being clamped to the end of a shorter month
(born 31 January + 1 month = 28/29 February).

Model of a series
-----------------
A series (e.g. ``HepB``) has one or more *regimens*, tried in order: the first whose ``when``
condition holds for the child is used (the last regimen has no condition and is the default).
Each dose of a regimen has

* ``min_age`` — the earliest age (in China the schedule's age *is* the earliest age);
* ``min_interval`` — the shortest time after the previous valid dose of the same series;
* ``after`` — shortest times after doses of other series (e.g. bOPV 1 ≥ 28 days after IPV);
* ``complete_before`` — the timeliness rule: the dose is overdue from that age on;
* ``products`` — the vaccine codes that count for the dose (default: the series' products).

Series flags: ``programme`` (false for self-paid vaccines), ``max_age`` (no dose from that age on),
``tb_test_from_age`` (from that age a negative tuberculin test is needed first: BCG),
``alternatives``/``preferred`` (series of which the product first given decides, e.g. JE-L/JE-I),
``on_demand`` (forecast only once started, e.g. rabies post-exposure) and ``when`` (a condition on
the child, e.g. girls only).

Conditions are ``{"field": F, "in": [...]}`` for ``sex`` (``F``/``M``) and ``mother_hbsag``
(``positive``/``negative``/``unknown``), ``{"field": "birth_weight_g", "lt"|"le"|"gt"|"ge": x}``
for the birth weight, or ``{"all": [condition, ...]}``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiercare.errors import InputError, Problem

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Folder of the schedule versions shipped with TierCare."""

FILE_GLOB = "schedule-*.json"
"""Files of :data:`DATA_DIR` (or of a custom folder) read as schedule versions."""

CATEGORICAL_FIELDS: Mapping[str, tuple[str, ...]] = {
    "sex": ("F", "M"),
    "mother_hbsag": ("positive", "negative", "unknown"),
}
"""Child attributes a condition may test with ``in``, and their allowed values."""

NUMERIC_FIELDS: tuple[str, ...] = ("birth_weight_g",)
"""Child attributes a condition may compare with ``lt``/``le``/``gt``/``ge``."""

NUMERIC_OPS: tuple[str, ...] = ("lt", "le", "gt", "ge")

_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?$")


def add_months(day: dt.date, months: int) -> dt.date:
    """Add calendar months to a date, clamping the day to the end of a shorter month.

    Examples
    --------
    >>> add_months(dt.date(2024, 1, 31), 1)
    datetime.date(2024, 2, 29)
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


@dataclass(frozen=True)
class Duration:
    """An age or an interval: calendar months then days.

    Attributes
    ----------
    months:
        Whole calendar months (years are stored as 12 months).
    days:
        Days added after the months.
    """

    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``"<y>y<m>m<d>d"`` (e.g. ``"1y6m"``, ``"28d"``, ``"0d"``).

        Raises
        ------
        ValueError
            When the text is not of that form.
        """
        match = _DURATION_RE.match(text) if isinstance(text, str) else None
        if not text or match is None:
            raise ValueError(f"{text!r} is not a duration like '18m', '28d', '4y' or '1y6m'")
        years, months, days = (int(g) if g else 0 for g in match.groups())
        return cls(months=12 * years + months, days=days)

    def after(self, day: dt.date) -> dt.date:
        """The date this duration after ``day`` (months first, then days)."""
        return add_months(day, self.months) + dt.timedelta(days=self.days)

    def __str__(self) -> str:
        years, months = divmod(self.months, 12)
        text = (f"{years}y" if years else "") + (f"{months}m" if months else "")
        return text + (f"{self.days}d" if self.days or not text else "")


@dataclass(frozen=True)
class Clause:
    """One test of a child attribute (``field op value``)."""

    field: str
    op: str
    value: float | tuple[str, ...]

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        """Whether the clause holds; a missing attribute never satisfies a clause."""
        got = attributes.get(self.field)
        if got is None:
            return False
        if self.op == "in":
            return got in self.value  # type: ignore[operator]
        limit = float(self.value)  # type: ignore[arg-type]
        return {"lt": got < limit, "le": got <= limit, "gt": got > limit, "ge": got >= limit}[
            self.op
        ]


@dataclass(frozen=True)
class Condition:
    """A conjunction of :class:`Clause` (all must hold)."""

    clauses: tuple[Clause, ...]

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        """Whether every clause holds for the child's ``attributes``."""
        return all(c.holds(attributes) for c in self.clauses)


@dataclass(frozen=True)
class AfterRule:
    """A dose must come at least ``interval`` after a dose of another series.

    ``dose`` is the 1-based dose of ``series`` referred to, or ``None`` for its latest valid dose.
    The rule applies only when that dose was given on or before the dose being judged.
    """

    series: str
    dose: int | None
    interval: Duration


@dataclass(frozen=True)
class DoseRule:
    """The rules of one dose of a regimen (see the module docstring)."""

    number: int
    products: tuple[str, ...]
    min_age: Duration
    min_interval: Duration | None
    complete_before: Duration | None
    after: tuple[AfterRule, ...]


@dataclass(frozen=True)
class Regimen:
    """A sequence of doses used when ``when`` holds (``None``: always)."""

    id: str
    when: Condition | None
    doses: tuple[DoseRule, ...]


@dataclass(frozen=True)
class Series:
    """A vaccine series of the catalogue (see the module docstring for the flags)."""

    id: str
    name: str
    programme: bool
    products: tuple[str, ...]
    regimens: tuple[Regimen, ...]
    max_age: Duration | None
    tb_test_from_age: Duration | None
    alternatives: str | None
    preferred: bool
    on_demand: bool
    when: Condition | None

    def regimen_for(self, attributes: Mapping[str, Any]) -> Regimen:
        """The first regimen whose condition holds for a child's attributes."""
        for regimen in self.regimens:
            if regimen.when is None or regimen.when.holds(attributes):
                return regimen
        raise AssertionError("the last regimen has no condition")  # guaranteed by the loader

    def regimen(self, regimen_id: str) -> Regimen | None:
        """The regimen with that id, if the series has one."""
        return next((r for r in self.regimens if r.id == regimen_id), None)


@dataclass(frozen=True)
class Vaccine:
    """A vaccine product code of the catalogue.

    ``live_injectable`` marks injectable live vaccines: two of them not given on the same day must
    be at least 28 days apart (:data:`LIVE_SPACING_DAYS`).
    """

    code: str
    name: str
    live_injectable: bool


LIVE_SPACING_DAYS = 28
"""Minimum days between two injectable live vaccines not given on the same day (2021 rules)."""


@dataclass(frozen=True)
class ScheduleVersion:
    """One resolved version of the schedule (its parent's content merged in)."""

    id: str
    effective_from: dt.date
    title: str
    source: str
    notes: tuple[str, ...]
    vaccines: Mapping[str, Vaccine]
    series: tuple[Series, ...]

    @functools.cached_property
    def product_series(self) -> Mapping[str, str]:
        """Vaccine code → id of the series its doses count for in this version."""
        return {p: s.id for s in self.series for p in s.products}

    @functools.cached_property
    def series_by_id(self) -> Mapping[str, Series]:
        """Series id → series."""
        return {s.id: s for s in self.series}


@dataclass(frozen=True)
class ScheduleBook:
    """All versions of the schedule, ordered by effective date.

    Which version applies
    ---------------------
    A forecast uses the version in force on its as-of date (:meth:`in_force`): series, dose
    numbering and the rules of the *next* dose come from it. A dose already given is judged by the
    version in force on the day it was given (a DTaP dose 3 given at 5 months in 2024 stays valid
    although the 2025 revision puts dose 3 at 6 months) — see :func:`judging_rule`. So a child in
    the middle of a series when a revision starts keeps its valid doses and continues on the new
    schedule; a child born after the change follows the new schedule only. Doses given before the
    first version's effective date are judged by the first version.
    """

    versions: tuple[ScheduleVersion, ...]

    def in_force(self, on: dt.date) -> ScheduleVersion:
        """The version in force on a date (the first version for earlier dates)."""
        chosen = self.versions[0]
        for version in self.versions:
            if version.effective_from <= on:
                chosen = version
        return chosen

    def get(self, version_id: str) -> ScheduleVersion:
        """The version with that id.

        Raises
        ------
        InputError
            When no version has that id.
        """
        for version in self.versions:
            if version.id == version_id:
                return version
        known = ", ".join(v.id for v in self.versions)
        raise InputError.single(
            f"unknown schedule version {version_id!r} (known: {known})", field="schedule_version"
        )

    @functools.cached_property
    def vaccines(self) -> Mapping[str, Vaccine]:
        """Every vaccine code of any version (the latest definition wins)."""
        merged: dict[str, Vaccine] = {}
        for version in self.versions:
            merged.update(version.vaccines)
        return merged

    @functools.cached_property
    def vaccine_codes(self) -> tuple[str, ...]:
        """Sorted vaccine codes of :attr:`vaccines`; the integer codes of the batch engine."""
        return tuple(sorted(self.vaccines))


def judging_rule(
    book: ScheduleBook, current: ScheduleVersion, series_id: str, regimen_id: str, number: int,
    given: dt.date,
) -> DoseRule:
    """The rule by which a dose given on ``given`` is judged.

    It is the same series/regimen/dose in the version in force on ``given`` when that version has
    it, otherwise the rule of ``current`` (the version of the forecast).
    """
    then = book.in_force(given)
    series = then.series_by_id.get(series_id)
    regimen = series.regimen(regimen_id) if series is not None else None
    if regimen is not None and number <= len(regimen.doses):
        return regimen.doses[number - 1]
    now = current.series_by_id[series_id].regimen(regimen_id)
    assert now is not None
    return now.doses[number - 1]


# ----------------------------------------------------------------------------- loading


class _Checker:
    """Collects problems while converting raw JSON to typed objects."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def fail(self, where: str, reason: str) -> None:
        self.problems.append(Problem(reason=f"{self.source}: {reason}", field=where,
                                     code="invalid_schedule"))

    def keys(self, raw: Mapping[str, Any], where: str, allowed: Iterable[str],
             required: Iterable[str] = ()) -> None:
        for key in raw:
            if key not in allowed:
                self.fail(f"{where}.{key}" if where else key, "unknown key")
        for key in required:
            if key not in raw:
                self.fail(f"{where}.{key}" if where else key, "required")

    def duration(self, raw: Any, where: str) -> Duration | None:
        if raw is None:
            return None
        try:
            return Duration.parse(raw)
        except ValueError as exc:
            self.fail(where, str(exc))
            return None

    def text(self, raw: Any, where: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            self.fail(where, "must be a non-empty string")
            return ""
        return raw

    def flag(self, raw: Any, where: str) -> bool:
        if not isinstance(raw, bool):
            self.fail(where, "must be true or false")
            return False
        return raw

    def condition(self, raw: Any, where: str) -> Condition | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.fail(where, "a condition must be an object")
            return None
        if "all" in raw:
            self.keys(raw, where, ("all",))
            parts = raw["all"] if isinstance(raw["all"], list) else []
            if not parts:
                self.fail(f"{where}.all", "must be a non-empty list of conditions")
            clauses: list[Clause] = []
            for i, part in enumerate(parts):
                inner = self.condition(part, f"{where}.all[{i}]")
                if inner is not None:
                    clauses.extend(inner.clauses)
            return Condition(tuple(clauses))
        field = raw.get("field")
        ops = [k for k in raw if k != "field"]
        if len(ops) != 1:
            self.fail(where, "a clause needs 'field' and exactly one operator")
            return None
        op, value = ops[0], raw[ops[0]]
        if field in CATEGORICAL_FIELDS and op == "in":
            allowed = CATEGORICAL_FIELDS[field]
            if not isinstance(value, list) or not value or any(v not in allowed for v in value):
                self.fail(f"{where}.in", f"must be a list of values among {list(allowed)}")
                return None
            return Condition((Clause(field, "in", tuple(value)),))
        if field in NUMERIC_FIELDS and op in NUMERIC_OPS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(f"{where}.{op}", "must be a number")
                return None
            return Condition((Clause(field, op, float(value)),))
        self.fail(where, f"unsupported clause {field!r} {op!r} (fields: "
                         f"{list(CATEGORICAL_FIELDS)} with 'in', {list(NUMERIC_FIELDS)} with "
                         f"{list(NUMERIC_OPS)})")
        return None


_VERSION_KEYS = ("format", "version", "extends", "effective_from", "title", "source", "notes",
                 "vaccines", "series", "remove_series", "remove_vaccines")
_SERIES_KEYS = ("id", "name", "programme", "products", "regimens", "max_age", "tb_test_from_age",
                "alternatives", "preferred", "on_demand", "when")
_DOSE_KEYS = ("min_age", "min_interval", "complete_before", "after", "products")


def _merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a version that ``extends`` its parent (both raw, parent already resolved)."""
    merged = dict(parent)
    for key in ("version", "effective_from", "title", "source", "notes"):
        if key in child:
            merged[key] = child[key]
    merged.pop("extends", None)
    for list_key, id_key, remove_key in (("vaccines", "code", "remove_vaccines"),
                                          ("series", "id", "remove_series")):
        items = [dict(item) for item in parent.get(list_key, [])]
        position = {item.get(id_key): i for i, item in enumerate(items)}
        for item in child.get(list_key, []):
            if isinstance(item, Mapping) and item.get(id_key) in position:
                items[position[item[id_key]]] = dict(item)
            else:
                items.append(dict(item) if isinstance(item, Mapping) else item)
        removed = set(child.get(remove_key, []))
        merged[list_key] = [i for i in items if not isinstance(i, Mapping)
                            or i.get(id_key) not in removed]
    return merged


def _build_version(raw: Mapping[str, Any], check: _Checker) -> ScheduleVersion | None:
    """Turn a resolved raw version into a :class:`ScheduleVersion`, recording problems."""
    check.keys(raw, "", _VERSION_KEYS, ("version", "effective_from", "vaccines", "series"))
    try:
        effective = dt.date.fromisoformat(raw.get("effective_from", ""))
    except (TypeError, ValueError):
        check.fail("effective_from", "must be an ISO date YYYY-MM-DD")
        effective = dt.date.min
    vaccines: dict[str, Vaccine] = {}
    for i, item in enumerate(raw.get("vaccines", [])):
        where = f"vaccines[{i}]"
        if not isinstance(item, Mapping):
            check.fail(where, "must be an object")
            continue
        check.keys(item, where, ("code", "name", "live_injectable"), ("code", "name"))
        code = check.text(item.get("code"), f"{where}.code")
        if code in vaccines:
            check.fail(f"{where}.code", f"duplicate vaccine code {code!r}")
        vaccines[code] = Vaccine(code=code, name=check.text(item.get("name"), f"{where}.name"),
                                 live_injectable=check.flag(item.get("live_injectable", False),
                                                            f"{where}.live_injectable"))
    series_list: list[Series] = []
    doses_of: dict[str, int] = {}
    owner: dict[str, str] = {}
    for i, item in enumerate(raw.get("series", [])):
        where = f"series[{i}]"
        if not isinstance(item, Mapping):
            check.fail(where, "must be an object")
            continue
        built = _build_series(item, where, check, vaccines, doses_of)
        if built is None:
            continue
        if built.id in doses_of:
            check.fail(f"{where}.id", f"duplicate series id {built.id!r}")
        for product in built.products:
            if product in owner:
                check.fail(f"{where}.products", f"vaccine {product!r} already counts for "
                                                 f"series {owner[product]!r}")
            owner[product] = built.id
        doses_of[built.id] = max(len(r.doses) for r in built.regimens)
        series_list.append(built)
    groups: dict[str, list[Series]] = {}
    for series in series_list:
        if series.alternatives is not None:
            groups.setdefault(series.alternatives, []).append(series)
    for name, members in groups.items():
        if len(members) < 2 or sum(m.preferred for m in members) != 1:
            check.fail("series", f"alternatives group {name!r} needs two or more series, exactly "
                                 "one of them preferred")
        if name in doses_of:
            # coverage reports a group under its name next to the series' own rows
            check.fail("series", f"alternatives group {name!r} has the id of a series")
    if check.problems:
        return None
    return ScheduleVersion(
        id=raw["version"], effective_from=effective, title=str(raw.get("title", raw["version"])),
        source=str(raw.get("source", "")), notes=tuple(str(n) for n in raw.get("notes", [])),
        vaccines=vaccines, series=tuple(series_list),
    )


def _build_series(item: Mapping[str, Any], where: str, check: _Checker,
                  vaccines: Mapping[str, Vaccine], doses_of: Mapping[str, int]) -> Series | None:
    check.keys(item, where, _SERIES_KEYS, ("id", "programme", "products", "regimens"))
    series_id = check.text(item.get("id"), f"{where}.id")
    programme = check.flag(item.get("programme"), f"{where}.programme")
    products = item.get("products")
    if not isinstance(products, list) or not products:
        check.fail(f"{where}.products", "must be a non-empty list of vaccine codes")
        products = []
    for product in products:
        if product not in vaccines:
            check.fail(f"{where}.products", f"unknown vaccine code {product!r}")
    regimens: list[Regimen] = []
    raw_regimens = item.get("regimens")
    if not isinstance(raw_regimens, list) or not raw_regimens:
        check.fail(f"{where}.regimens", "must be a non-empty list")
        raw_regimens = []
    all_products = list(products)
    for r, raw_regimen in enumerate(raw_regimens):
        rwhere = f"{where}.regimens[{r}]"
        if not isinstance(raw_regimen, Mapping):
            check.fail(rwhere, "must be an object")
            continue
        check.keys(raw_regimen, rwhere, ("id", "when", "doses"), ("id", "doses"))
        when = check.condition(raw_regimen.get("when"), f"{rwhere}.when")
        last = r == len(raw_regimens) - 1
        if last and "when" in raw_regimen:
            check.fail(f"{rwhere}.when", "the last regimen is the default and has no condition")
        if not last and "when" not in raw_regimen:
            check.fail(f"{rwhere}.when", "only the last regimen may have no condition")
        raw_doses = raw_regimen.get("doses")
        if not isinstance(raw_doses, list) or not raw_doses:
            check.fail(f"{rwhere}.doses", "must be a non-empty list")
            raw_doses = []
        doses: list[DoseRule] = []
        for d, raw_dose in enumerate(raw_doses):
            dwhere = f"{rwhere}.doses[{d}]"
            if not isinstance(raw_dose, Mapping):
                check.fail(dwhere, "must be an object")
                continue
            check.keys(raw_dose, dwhere, _DOSE_KEYS, ("min_age",))
            min_age = check.duration(raw_dose.get("min_age", ""), f"{dwhere}.min_age")
            interval = check.duration(raw_dose.get("min_interval"), f"{dwhere}.min_interval")
            if d == 0 and interval is not None:
                check.fail(f"{dwhere}.min_interval", "the first dose has no previous dose")
            complete = check.duration(raw_dose.get("complete_before"),
                                      f"{dwhere}.complete_before")
            if complete is not None and not programme:
                check.fail(f"{dwhere}.complete_before",
                           "self-paid (non-programme) series have no timeliness rule")
            dose_products = raw_dose.get("products", products)
            if "products" in raw_dose and (not isinstance(dose_products, list)
                                           or not dose_products
                                           or any(p not in vaccines for p in dose_products)):
                check.fail(f"{dwhere}.products", "must be a non-empty list of known vaccine codes")
                dose_products = products
            all_products.extend(p for p in dose_products if p not in all_products)
            after: list[AfterRule] = []
            for a, raw_after in enumerate(raw_dose.get("after", [])):
                awhere = f"{dwhere}.after[{a}]"
                if not isinstance(raw_after, Mapping):
                    check.fail(awhere, "must be an object")
                    continue
                check.keys(raw_after, awhere, ("series", "dose", "interval"),
                           ("series", "interval"))
                ref = raw_after.get("series")
                if ref not in doses_of:
                    check.fail(f"{awhere}.series", f"{ref!r} is not a series listed earlier")
                    continue
                ref_dose = raw_after.get("dose")
                if ref_dose is not None and (not isinstance(ref_dose, int)
                                             or not 1 <= ref_dose <= doses_of[ref]):
                    check.fail(f"{awhere}.dose", f"must be a dose number of series {ref!r}")
                    continue
                gap = check.duration(raw_after.get("interval"), f"{awhere}.interval")
                if gap is not None:
                    after.append(AfterRule(series=ref, dose=ref_dose, interval=gap))
            if min_age is not None:
                doses.append(DoseRule(number=d + 1, products=tuple(dose_products),
                                      min_age=min_age, min_interval=interval,
                                      complete_before=complete, after=tuple(after)))
        regimens.append(Regimen(id=check.text(raw_regimen.get("id"), f"{rwhere}.id"), when=when,
                                doses=tuple(doses)))
    alternatives = item.get("alternatives")
    if alternatives is not None:
        alternatives = check.text(alternatives, f"{where}.alternatives")
    if not regimens or not series_id:
        return None
    return Series(
        id=series_id, name=str(item.get("name", series_id)), programme=programme,
        products=tuple(all_products), regimens=tuple(regimens),
        max_age=check.duration(item.get("max_age"), f"{where}.max_age"),
        tb_test_from_age=check.duration(item.get("tb_test_from_age"),
                                        f"{where}.tb_test_from_age"),
        alternatives=alternatives,
        preferred=check.flag(item.get("preferred", False), f"{where}.preferred"),
        on_demand=check.flag(item.get("on_demand", False), f"{where}.on_demand"),
        when=check.condition(item.get("when"), f"{where}.when"),
    )


def load_schedules(*, directory: Path | None = None) -> ScheduleBook:
    """Load, resolve and validate every schedule version of a folder.

    Parameters
    ----------
    directory:
        Folder holding ``schedule-*.json`` files; defaults to the versions shipped with TierCare
        (:data:`DATA_DIR`).

    Returns
    -------
    ScheduleBook
        The versions ordered by effective date.

    Raises
    ------
    InputError
        With every problem found (file, field path, reason): unreadable JSON, unknown keys,
        bad durations, unknown vaccine codes, a product counted by two series, an ``extends``
        that names no version or an earlier-effective one, duplicate version ids or dates.
    """
    folder = directory if directory is not None else DATA_DIR
    problems: list[Problem] = []
    raws: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob(FILE_GLOB)):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(Problem(reason=f"{path.name}: cannot read: {exc}",
                                    code="invalid_schedule"))
            continue
        if not isinstance(raw, dict) or raw.get("format") != 1:
            problems.append(Problem(reason=f"{path.name}: not a schedule file (format 1)",
                                    field="format", code="invalid_schedule"))
            continue
        version_id = raw.get("version")
        if not isinstance(version_id, str) or version_id in raws:
            problems.append(Problem(reason=f"{path.name}: missing or duplicate version id",
                                    field="version", code="invalid_schedule"))
            continue
        raws[version_id] = (path.name, raw)
    if not raws and not problems:
        problems.append(Problem(reason=f"no {FILE_GLOB} file in {folder}",
                                code="invalid_schedule"))
    resolved: dict[str, dict[str, Any]] = {}

    def resolve(version_id: str, chain: tuple[str, ...]) -> dict[str, Any] | None:
        if version_id in resolved:
            return resolved[version_id]
        name, raw = raws[version_id]
        parent_id = raw.get("extends")
        if parent_id is None:
            resolved[version_id] = raw
            return raw
        if parent_id not in raws or parent_id in chain:
            problems.append(Problem(reason=f"{name}: extends unknown or circular version "
                                           f"{parent_id!r}", field="extends",
                                    code="invalid_schedule"))
            return None
        parent = resolve(parent_id, (*chain, version_id))
        if parent is None:
            return None
        if str(raw.get("effective_from", "")) <= str(parent.get("effective_from", "")):
            problems.append(Problem(reason=f"{name}: must take effect after {parent_id!r}",
                                    field="effective_from", code="invalid_schedule"))
        resolved[version_id] = _merge(parent, raw)
        return resolved[version_id]

    versions: list[ScheduleVersion] = []
    for version_id, (name, _) in raws.items():
        merged = resolve(version_id, ())
        if merged is None:
            continue
        check = _Checker(name)
        version = _build_version(merged, check)
        problems.extend(check.problems)
        if version is not None:
            versions.append(version)
    dates = [v.effective_from for v in versions]
    if len(set(dates)) != len(dates):
        problems.append(Problem(reason="two schedule versions take effect on the same date",
                                field="effective_from", code="invalid_schedule"))
    if problems:
        raise InputError(problems)
    return ScheduleBook(versions=tuple(sorted(versions, key=lambda v: v.effective_from)))


@functools.cache
def default_schedules() -> ScheduleBook:
    """The shipped schedule versions, loaded once per process."""
    return load_schedules()
