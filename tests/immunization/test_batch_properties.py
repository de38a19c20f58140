"""Property tests: batch engine == per-child engine; ``due`` means a dose given today counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.immunization.batch import (
    NO_DATE,
    Population,
    encode_vaccines,
    forecast_batch,
    from_days,
    to_days,
)
from tiercare.immunization.forecast import (
    INVALID_REASONS,
    STATUSES,
    Child,
    HistoryDose,
    TbTest,
    forecast,
)
from tiercare.immunization.schedule import default_schedules

BOOK = default_schedules()
CODES = BOOK.vaccine_codes
LIVE = [c for c in CODES if BOOK.vaccines[c].live_injectable]  # drawn more often: spacing
# offsets (days from birth) near the schedule ages, so that rules are exercised at their edges
GAPS = [None, None, None, 0, 3, 6, 7, 27, 28, 59, 60, 91, 92]  # days after the previous dose
AGES = [0, 7, 30, 61, 91, 122, 152, 183, 244, 274, 365, 548, 730, 1095, 1461, 2191, 3300, 4800]


@st.composite
def children(draw: st.DrawFn, as_of: dt.date) -> Child:
    span = draw(st.integers(0, 6200))
    birth = as_of - dt.timedelta(days=span)
    doses = draw(st.lists(st.tuples(st.sampled_from(CODES) | st.sampled_from(LIVE),
                                    st.sampled_from(AGES),
                                    st.integers(-45, 60), st.sampled_from(GAPS)), max_size=22))
    offsets: list[int] = []
    for _, age, shift, gap in doses:
        # either near a schedule age, or an interval-edge gap after the previous dose
        offsets.append(min(span, max(0, offsets[-1] + gap if gap is not None and offsets
                                     else age + shift)))
    history = tuple(HistoryDose(code, birth + dt.timedelta(days=off))
                    for (code, *_), off in zip(doses, offsets, strict=True))
    test = draw(st.one_of(st.none(), st.builds(
        lambda off, res: TbTest(birth + dt.timedelta(days=min(off, span)), res),
        st.integers(0, 2000), st.sampled_from(["negative", "positive"]))))
    return Child(birth_date=birth, history=history,
                 sex=draw(st.sampled_from([None, "F", "M"])),
                 mother_hbsag=draw(st.sampled_from([None, "positive", "negative", "unknown"])),
                 birth_weight_g=draw(st.sampled_from([None, 1500.0, 1999.0, 2000.0, 3400.0])),
                 tb_test=test)


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[dt.date, list[Child], bool, str | None]:
    as_of = draw(st.dates(dt.date(2021, 6, 1), dt.date(2026, 12, 31)))
    kids = draw(st.lists(children(as_of), min_size=1, max_size=8))
    version = draw(st.sampled_from([None, None, *(v.id for v in BOOK.versions)]))
    return as_of, kids, draw(st.booleans()), version


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts())
def test_batch_equals_per_child(case: tuple[dt.date, list[Child], bool, str | None]) -> None:
    as_of, kids, self_paid, version = case
    batch = forecast_batch(Population.from_children(kids), as_of=as_of,
                           include_self_paid=self_paid, version=version)
    offsets = np.cumsum([0] + [len(k.history) for k in kids])
    for i, child in enumerate(kids):
        one = forecast(child, as_of=as_of, include_self_paid=self_paid, version=version)
        assert batch.schedule_version == one.schedule_version
        assert batch.series == tuple(s.vaccine for s in one.series)
        got = [(int(batch.next_dose[i, j]) or None, STATUSES[batch.status[i, j]],
                from_days(batch.earliest[i, j]), from_days(batch.overdue_after[i, j]))
               for j in range(len(batch.series))]
        assert got == [(s.next_dose, s.status, s.earliest, s.overdue_after) for s in one.series]
        mine = (batch.invalid_row >= offsets[i]) & (batch.invalid_row < offsets[i + 1])
        got_invalid = [(int(r - offsets[i]), int(d) or None, INVALID_REASONS[x])
                       for r, d, x in zip(batch.invalid_row[mine], batch.invalid_dose[mine],
                                          batch.invalid_reason[mine], strict=True)]
        assert got_invalid == [(d.index, d.dose, d.reason) for d in one.invalid_doses]


@settings(max_examples=120, deadline=None)
@given(st.dates(dt.date(2021, 6, 1), dt.date(2026, 12, 31)).flatmap(
    lambda day: st.tuples(st.just(day), children(day))))
def test_due_means_a_dose_today_counts(case: tuple[dt.date, Child]) -> None:
    """Independent check of the forecast against the dose judge.

    For every open series, a dose of it given on the as-of date counts exactly when the forecast
    says ``due``/``overdue``, and does not when it says ``upcoming`` (a same-day live dose in the
    history is excluded: the forecast assumes the day's doses are recorded).
    """
    as_of, child = case
    if any(d.date == as_of and BOOK.vaccines[d.vaccine].live_injectable for d in child.history):
        return
    before = forecast(child, as_of=as_of, include_self_paid=True)
    for item in before.series:
        if item.status not in ("due", "overdue", "upcoming"):
            continue
        dosed = Child(birth_date=child.birth_date, sex=child.sex,
                      mother_hbsag=child.mother_hbsag, birth_weight_g=child.birth_weight_g,
                      tb_test=child.tb_test,
                      history=(*child.history, HistoryDose(item.vaccine, as_of)))
        after = forecast(dosed, as_of=as_of, include_self_paid=True)
        rejected = [d for d in after.invalid_doses if d.index == len(child.history)]
        if item.status == "upcoming":
            assert rejected, (item, rejected)
        else:
            assert not rejected, (item, rejected)
            nxt = next(s for s in after.series if s.vaccine == item.vaccine)
            assert item.next_dose is not None
            assert nxt.status == "complete" or nxt.next_dose == item.next_dose + 1


def test_batch_validation_lists_rows() -> None:
    kids = [Child(birth_date=dt.date(2024, 1, 1),
                  history=(HistoryDose("HepB", dt.date(2024, 1, 1)),))]
    pop = Population.from_children(kids)
    bad = Population(**{**pop.__dict__, "dose_date": np.array([to_days(dt.date(2023, 12, 1))],
                                                               dtype=np.int32)})
    with pytest.raises(InputError) as info:
        forecast_batch(bad, as_of=dt.date(2024, 6, 1))
    assert [(p.field, p.row, p.code) for p in info.value.problems] == [
        ("dose_date", 1, "before_birth")]
    with pytest.raises(InputError) as info:
        encode_vaccines(["HepB", "HepC", "MMR", "XYZ"])
    assert [p.row for p in info.value.problems] == [2, 4]
    assert list(encode_vaccines(["HepB", "MMR"])) == [CODES.index("HepB"), CODES.index("MMR")]


def test_to_frame_work_list() -> None:
    kids = [Child(birth_date=dt.date(2025, 1, 1)), Child(birth_date=dt.date(2025, 5, 1))]
    batch = forecast_batch(Population.from_children(kids), as_of=dt.date(2025, 5, 1))
    frame = batch.to_frame(statuses=["due", "overdue"])
    assert set(frame["status"]) <= {"due", "overdue"}
    hepb = frame[(frame["vaccine"] == "HepB")].set_index("child")
    assert hepb.loc[1, "earliest"] == np.datetime64("2025-05-01")
    assert batch.earliest.dtype == np.int32 and (batch.earliest[batch.status == 0] == NO_DATE).all()


@settings(max_examples=40, deadline=None)
@given(cohorts(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(case: tuple[dt.date, list[Child], bool, str | None],
                                   shuffler: Any) -> None:
    """Date-sorted input (fast path) and shuffled input give the same forecast.

    Same-day doses keep their relative order (it decides which one counts, by design).
    """
    as_of, kids, _, _ = case
    pop = Population.from_children(kids)
    perm = np.array(shuffler.sample(range(pop.dose_date.size), pop.dose_date.size), dtype=int)
    by_date = perm[np.lexsort((pop.dose_date[perm], pop.dose_child[perm]))]
    results = []
    for rows in (by_date, perm):
        moved = Population(**{**pop.__dict__, "dose_child": pop.dose_child[rows],
                              "dose_vaccine": pop.dose_vaccine[rows],
                              "dose_date": pop.dose_date[rows]})
        out = forecast_batch(moved, as_of=as_of)
        original = rows[out.invalid_row]
        results.append((out.status.tolist(), out.earliest.tolist(), out.next_dose.tolist(),
                        sorted(zip(original.tolist(), out.invalid_reason.tolist(),
                                   strict=True))))
    assert results[0] == results[1]
