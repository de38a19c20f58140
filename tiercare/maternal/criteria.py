"""The pregnancy risk assessment table as versioned data: loading and validation.

A table file (JSON, in ``tiercare/maternal/data/``) holds one *family* (``national``, or a local
variant) at one *version* with the date it takes effect. It declares

* ``ranked_colours`` (e.g. green < yellow < orange < red; a local variant may add pink) and the
  ``alongside_colours`` reported next to them (purple, infectious disease);
* ``fields``: the numeric findings with unit and the range of possible values;
* ``criteria``: each with a snake_case ``code``, a ``colour``, Chinese and English wording, and
  optionally ``when`` rules (``{"field": ..., "in": "[35, 40)"}``, interval notation), ``requires``
  (codes that must be triggered too) and ``assertable`` (whether the code may be given directly
  in the findings);
* ``actions`` and ``management``: the management actions of each colour.

A variant may ``extend`` another table and only state what differs (``colour_overrides``,
``additional_criteria``, new ``actions`` and ``management`` entries). :func:`load_table` picks
the version of a family in force on a date. Every problem of a file is reported at once as an
:class:`~tiercare.errors.InputError`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiercare.errors import InputError, Problem

__all__ = [
    "LANGUAGES",
    "Action",
    "CriteriaTable",
    "Criterion",
    "FieldSpec",
    "Interval",
    "Rule",
    "available_tables",
    "language_key",
    "load_table",
]

LANGUAGES: Mapping[str, str] = MappingProxyType({"zh-CN": "zh", "zh": "zh", "en": "en"})
"""Accepted language tags and the text key each selects; Chinese is the default."""

_CODE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_INTERVAL = re.compile(
    rf"^\s*([\[(])\s*(-inf|{_NUMBER})\s*,\s*(\+?inf|{_NUMBER})\s*([\])])\s*$"
)


def language_key(language: str) -> str:
    """Return the text key (``"zh"`` or ``"en"``) for a language tag.

    Parameters
    ----------
    language:
        ``"zh-CN"`` (default everywhere), ``"zh"`` or ``"en"``.

    Raises
    ------
    InputError
        For any other tag.
    """
    try:
        return LANGUAGES[language]
    except KeyError:
        raise InputError.single(
            f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}",
            field="language",
        ) from None


@dataclass(frozen=True)
class Interval:
    """A real interval such as ``[35, 40)`` or ``(-inf, 18]``.

    Attributes
    ----------
    lower, upper:
        Ends; ``-inf``/``inf`` for unbounded.
    lower_closed, upper_closed:
        Whether each end belongs to the interval.
    """

    lower: float
    upper: float
    lower_closed: bool
    upper_closed: bool

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse interval notation: ``[`` ``]`` include an end, ``(`` ``)`` exclude it.

        Examples
        --------
        >>> Interval.parse("[35, 40)").contains(35.0), Interval.parse("[35, 40)").contains(40.0)
        (True, False)
        """
        match = _INTERVAL.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not an interval: {text!r} (write e.g. '[35, 40)' or '(-inf, 18]')")
        left, low, high, right = match.groups()
        lower, upper = float(low), float(high)
        if (math.isinf(lower) and left == "[") or (math.isinf(upper) and right == "]"):
            raise ValueError(f"an infinite end must be open: {text!r}")
        if lower > upper or (lower == upper and (left, right) != ("[", "]")):
            raise ValueError(f"empty interval: {text!r}")
        return cls(lower, upper, left == "[", right == "]")

    def contains(self, value: float) -> bool:
        """Whether one value lies in the interval."""
        above = value >= self.lower if self.lower_closed else value > self.lower
        below = value <= self.upper if self.upper_closed else value < self.upper
        return bool(above and below)

    def mask(self, values: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Element-wise :meth:`contains` of an array; ``NaN`` (not given) is never inside."""
        above = values >= self.lower if self.lower_closed else values > self.lower
        below = values <= self.upper if self.upper_closed else values < self.upper
        return np.asarray(above & below, dtype=bool)

    def __str__(self) -> str:
        def end(x: float) -> str:
            return ("-inf" if x < 0 else "inf") if math.isinf(x) else f"{x:g}"

        return (f"{'[' if self.lower_closed else '('}{end(self.lower)}, "
                f"{end(self.upper)}{']' if self.upper_closed else ')'}")


@dataclass(frozen=True)
class FieldSpec:
    """A numeric finding: its names, unit, range of possible values and integrality."""

    name: str
    zh: str
    en: str
    unit: str
    valid: Interval
    integer: bool


@dataclass(frozen=True)
class Rule:
    """``field`` value lies in ``interval``."""

    field: str
    interval: Interval


@dataclass(frozen=True)
class Criterion:
    """One row of the assessment table.

    A criterion is triggered when its code is asserted (if ``assertable``), or when one of its
    ``rules`` holds (or it has none) and every code in ``requires`` is triggered too (a criterion
    with neither rules nor requirements is triggered only by assertion).
    """

    code: str
    colour: str
    section: str
    zh: str
    en: str
    rules: tuple[Rule, ...]
    requires: tuple[str, ...]
    assertable: bool
    note: str | None

    def text(self, language: str = "zh-CN") -> str:
        """Wording in ``language`` (``"zh-CN"`` default, or ``"en"``)."""
        return self.zh if language_key(language) == "zh" else self.en


@dataclass(frozen=True)
class Action:
    """A management action, e.g. ``report_to_mch_institution``."""

    code: str
    zh: str
    en: str

    def text(self, language: str = "zh-CN") -> str:
        """Wording in ``language`` (``"zh-CN"`` default, or ``"en"``)."""
        return self.zh if language_key(language) == "zh" else self.en


@dataclass(frozen=True)
class CriteriaTable:
    """A validated assessment table (immutable, safe to share between requests).

    Attributes
    ----------
    family, version, effective_from:
        Identify the table and the date from which it applies.
    title, source:
        Title (``{"zh": ..., "en": ...}``) and where the content comes from.
    ranked_colours:
        Colours from lowest to highest risk; the first is the colour with no criterion
        (green).
    alongside_colours:
        Colours reported next to the ranked one (``("purple",)``).
    colour_names:
        Display names of the colours by language key.
    fields:
        Numeric findings by name.
    criteria:
        The rows, in table order.
    actions, management:
        Actions by code; action codes by colour.
    bmi_tolerance:
        Largest accepted difference between a given BMI and the one computed from height
        and weight.
    """

    family: str
    version: str
    effective_from: dt.date
    title: Mapping[str, str]
    source: str
    ranked_colours: tuple[str, ...]
    alongside_colours: tuple[str, ...]
    colour_names: Mapping[str, Mapping[str, str]]
    fields: Mapping[str, FieldSpec]
    criteria: tuple[Criterion, ...]
    actions: Mapping[str, Action]
    management: Mapping[str, tuple[str, ...]]
    bmi_tolerance: float

    @functools.cached_property
    def by_code(self) -> Mapping[str, Criterion]:
        """Criteria by code."""
        return MappingProxyType({c.code: c for c in self.criteria})

    @property
    def codes(self) -> tuple[str, ...]:
        """Criterion codes in table order."""
        return tuple(c.code for c in self.criteria)

    def rank(self, colour: str) -> int:
        """Position of a ranked colour (0 = lowest risk)."""
        return self.ranked_colours.index(colour)


def _problem(reason: str, field: str, row: int | None = None) -> Problem:
    return Problem(reason=reason, field=field, row=row, code="invalid_table")


def _texts(raw: Any, field: str, problems: list[Problem], row: int | None = None) -> dict[str, str]:
    if not (isinstance(raw, Mapping) and all(isinstance(raw.get(k), str) and raw.get(k)
                                             for k in ("zh", "en"))):
        problems.append(_problem("needs non-empty 'zh' and 'en' texts", field, row))
        return {"zh": "", "en": ""}
    return {"zh": raw["zh"], "en": raw["en"]}


def _merge(base: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a variant document to the (raw) document it extends."""
    merged = {k: v for k, v in base.items()}
    for key in ("family", "version", "effective_from", "title", "source", "notes",
                "ranked_colours", "alongside_colours", "bmi_tolerance"):
        if key in variant:
            merged[key] = variant[key]
    for key in ("colour_names", "fields", "actions", "management"):
        merged[key] = {**base.get(key, {}), **variant.get(key, {})}
    overrides = variant.get("colour_overrides", {})
    criteria = []
    for item in base.get("criteria", []):
        if isinstance(item, Mapping) and item.get("code") in overrides:
            item = {**item, "colour": overrides[item["code"]]}
        criteria.append(item)
    merged["criteria"] = criteria + list(variant.get("additional_criteria", []))
    known = {c.get("code") for c in criteria if isinstance(c, Mapping)}
    merged["_unknown_overrides"] = sorted(set(overrides) - known)
    return merged


def _build(doc: Mapping[str, Any]) -> CriteriaTable:
    """Validate a (merged) table document, collecting every problem."""
    problems: list[Problem] = [
        _problem(f"colour_overrides names unknown criterion '{code}'", "colour_overrides")
        for code in doc.get("_unknown_overrides", [])
    ]
    for key in ("family", "version", "source"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            problems.append(_problem("required text", key))
    try:
        effective = dt.date.fromisoformat(str(doc.get("effective_from")))
    except ValueError:
        problems.append(_problem("needs an ISO date (YYYY-MM-DD)", "effective_from"))
        effective = dt.date.min
    title = _texts(doc.get("title"), "title", problems)

    ranked = doc.get("ranked_colours")
    alongside = doc.get("alongside_colours")
    if not (isinstance(ranked, list) and len(ranked) >= 2
            and all(isinstance(c, str) for c in ranked) and len(set(ranked)) == len(ranked)):
        problems.append(_problem("needs at least two distinct colours, lowest risk first",
                                 "ranked_colours"))
        ranked = ["green", "red"]
    if alongside != ["purple"] or "purple" in ranked:
        problems.append(_problem("must be [\"purple\"] (reported alongside the ranked colour)",
                                 "alongside_colours"))
        alongside = ["purple"]
    colours = [*ranked, *alongside]
    raw_names = doc.get("colour_names", {})
    colour_names = {}
    for colour in colours:
        colour_names[colour] = MappingProxyType(
            _texts(raw_names.get(colour), f"colour_names.{colour}", problems))

    fields: dict[str, FieldSpec] = {}
    for name, spec in (doc.get("fields") or {}).items():
        where = f"fields.{name}"
        if not isinstance(spec, Mapping):
            problems.append(_problem("must be an object", where))
            continue
        texts = _texts(spec, where, problems)
        try:
            valid = Interval.parse(spec.get("valid"))
        except ValueError as exc:
            problems.append(_problem(str(exc), f"{where}.valid"))
            continue
        if not isinstance(spec.get("integer"), bool) or not isinstance(spec.get("unit"), str):
            problems.append(_problem("needs 'unit' (text) and 'integer' (true/false)", where))
            continue
        fields[name] = FieldSpec(name, texts["zh"], texts["en"], spec["unit"], valid,
                                 spec["integer"])
    for needed in ("bmi", "height_cm", "weight_kg"):
        if needed not in fields:
            problems.append(_problem(f"the field '{needed}' must be declared", "fields"))

    criteria: list[Criterion] = []
    seen: set[str] = set()
    raw_criteria = doc.get("criteria")
    if not isinstance(raw_criteria, list) or not raw_criteria:
        problems.append(_problem("needs a non-empty list", "criteria"))
        raw_criteria = []
    for index, item in enumerate(raw_criteria, start=1):
        if not isinstance(item, Mapping):
            problems.append(_problem("must be an object", "criteria", index))
            continue
        code = item.get("code")
        if not isinstance(code, str) or not _CODE.match(code):
            problems.append(_problem(f"code {code!r} is not snake_case", "code", index))
            continue
        if code in seen:
            problems.append(_problem(f"duplicate code '{code}'", "code", index))
        seen.add(code)
        colour = item.get("colour")
        if colour not in colours or colour == ranked[0]:
            problems.append(_problem(
                f"colour {colour!r} of '{code}' must be one of {colours[1:]}", "colour", index))
        texts = _texts(item, "zh/en", problems, index)
        rules = []
        raw_rules = item.get("when", [])
        raw_requires = item.get("requires", [])
        if not isinstance(raw_rules, list):
            problems.append(_problem("'when' must be a list of rules", "when", index))
            raw_rules = []
        if not (isinstance(raw_requires, list) and all(isinstance(r, str) for r in raw_requires)):
            problems.append(_problem("'requires' must be a list of codes", "requires", index))
            raw_requires = []
        for rule in raw_rules:
            field = rule.get("field") if isinstance(rule, Mapping) else None
            if field not in fields:
                problems.append(_problem(f"rule of '{code}' names unknown field {field!r}",
                                         "when", index))
                continue
            try:
                rules.append(Rule(field, Interval.parse(rule.get("in"))))
            except ValueError as exc:
                problems.append(_problem(f"'{code}': {exc}", "when", index))
        requires = tuple(raw_requires)
        assertable = item.get("assertable", not rules)
        if not isinstance(assertable, bool):
            problems.append(_problem("assertable must be true or false", "assertable", index))
            assertable = False
        if not rules and not requires and not assertable:
            problems.append(_problem(f"'{code}' can never be triggered", "assertable", index))
        note = item.get("note")
        criteria.append(Criterion(code, str(colour), str(item.get("section", "general")),
                                  texts["zh"], texts["en"], tuple(rules), requires, assertable,
                                  note if isinstance(note, str) else None))
    by_code = {c.code: c for c in criteria}
    for index, criterion in enumerate(criteria, start=1):
        for required in criterion.requires:
            target = by_code.get(required)
            if target is None:
                problems.append(_problem(
                    f"'{criterion.code}' requires unknown code '{required}'", "requires", index))
            elif target.requires:
                problems.append(_problem(
                    f"'{criterion.code}' requires '{required}', which has requirements itself "
                    "(one level only)", "requires", index))

    actions: dict[str, Action] = {}
    for code, texts_raw in (doc.get("actions") or {}).items():
        texts = _texts(texts_raw, f"actions.{code}", problems)
        actions[code] = Action(code, texts["zh"], texts["en"])
    management: dict[str, tuple[str, ...]] = {}
    raw_management = doc.get("management") or {}
    for colour in colours:
        codes = raw_management.get(colour)
        if not isinstance(codes, list) or not codes:
            problems.append(_problem(f"needs the actions of colour '{colour}'",
                                     f"management.{colour}"))
            continue
        for code in codes:
            if code not in actions:
                problems.append(_problem(f"unknown action '{code}'", f"management.{colour}"))
        management[colour] = tuple(codes)
    for colour in set(raw_management) - set(colours):
        problems.append(_problem(f"colour '{colour}' is not in the table", "management"))

    tolerance = doc.get("bmi_tolerance", 1.0)
    if not isinstance(tolerance, int | float) or not tolerance > 0:
        problems.append(_problem("must be a positive number", "bmi_tolerance"))
    if problems:
        raise InputError(problems)
    return CriteriaTable(
        family=doc["family"],
        version=doc["version"],
        effective_from=effective,
        title=MappingProxyType(title),
        source=doc["source"],
        ranked_colours=tuple(ranked),
        alongside_colours=tuple(alongside),
        colour_names=MappingProxyType(colour_names),
        fields=MappingProxyType(fields),
        criteria=tuple(criteria),
        actions=MappingProxyType(actions),
        management=MappingProxyType(management),
        bmi_tolerance=float(tolerance),
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(f"no such file: {path}", field="table") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.single(f"cannot read {path.name}: {exc}", field="table") from exc
    if not isinstance(document, dict):
        raise InputError.single(f"{path.name} must hold a JSON object", field="table")
    return document


def _packaged() -> list[dict[str, Any]]:
    """The raw documents shipped in ``tiercare/maternal/data``."""
    folder = resources.files("tiercare.maternal") / "data"
    documents = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("criteria_") and entry.name.endswith(".json"):
            documents.append(_read(Path(str(entry))))
    return documents


def _resolve(document: Mapping[str, Any], catalogue: Iterable[Mapping[str, Any]],
             depth: int = 0) -> dict[str, Any]:
    """Resolve ``extends`` against the packaged documents."""
    parent = document.get("extends")
    if parent is None:
        return dict(document)
    if depth > 4:
        raise InputError.single("'extends' chain too long", field="extends")
    catalogue = list(catalogue)
    for candidate in catalogue:
        if (isinstance(parent, Mapping) and candidate.get("family") == parent.get("family")
                and candidate.get("version") == parent.get("version")):
            return _merge(_resolve(candidate, catalogue, depth + 1), document)
    raise InputError.single(f"extends an unknown table {parent!r}", field="extends")


def available_tables() -> list[tuple[str, str, dt.date]]:
    """List the packaged tables as ``(family, version, effective_from)``, oldest first."""
    rows = []
    for document in _packaged():
        rows.append((str(document.get("family")), str(document.get("version")),
                     dt.date.fromisoformat(str(document.get("effective_from")))))
    return sorted(rows, key=lambda r: (r[0], r[2]))


@functools.lru_cache(maxsize=32)
def _load_cached(path: str | None, family: str, on: dt.date) -> CriteriaTable:
    catalogue = _packaged()
    if path is not None:
        return _build(_resolve(_read(Path(path)), catalogue))
    in_force = [d for d in catalogue if d.get("family") == family
                and dt.date.fromisoformat(str(d.get("effective_from"))) <= on]
    if not in_force:
        raise InputError.single(
            f"no packaged table of family '{family}' in force on {on.isoformat()}",
            field="table")
    latest = max(in_force, key=lambda d: str(d.get("effective_from")))
    return _build(_resolve(latest, catalogue))


def load_table(
    path: str | Path | None = None,
    *,
    family: str = "national",
    on: dt.date | None = None,
) -> CriteriaTable:
    """Load and validate an assessment table.

    Parameters
    ----------
    path:
        A table file (JSON). Default: the packaged table of ``family`` in force on ``on``.
    family:
        ``"national"`` (the 2017 table) or a local family such as ``"example-six-colour"``.
    on:
        The assessment date; the version with the latest ``effective_from`` not after it is
        used. Default today.

    Returns
    -------
    CriteriaTable
        Cached: loading the same table twice returns the same immutable object.

    Raises
    ------
    InputError
        Listing every problem of the file (field and criterion row), or when no version is in
        force.

    Examples
    --------
    >>> table = load_table()
    >>> table.ranked_colours
    ('green', 'yellow', 'orange', 'red')
    """
    day = on if on is not None else dt.date.today()
    return _load_cached(None if path is None else str(Path(path).resolve()), family, day)
