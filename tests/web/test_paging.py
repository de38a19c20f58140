"""Paging shared by every list endpoint: one ``offset``/``limit`` definition, one maximum."""

import pytest

from tiercare.config import Settings
from tiercare.errors import InputError
from tiercare.paging import MAX_PAGE, check_window
from tiercare.web.app import create_app

# A ranking, not a listing: its own small bound on how many suggestions to return.
NOT_PAGES = {"/api/v1/referrals/suggestions"}
# Plain lists bounded by definition: the facility types of the shipped data file, one year of
# the holiday calendar, the top suggestions (at most 50).
PLAIN_LISTS = {"/api/v1/facility-types", "/api/v1/holidays", "/api/v1/referrals/suggestions"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('spec')}/x.db"))
    try:
        return app.openapi()
    finally:
        app.state.engine.dispose()


def _get_operations(spec):
    for path, item in spec["paths"].items():
        if path.startswith("/api/v1") and "get" in item:
            yield path, item["get"]


def test_every_limit_is_the_shared_page_size(spec):
    paged = 0
    for path, operation in _get_operations(spec):
        params = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        if "limit" not in params or path in NOT_PAGES:
            continue
        paged += 1
        limit, offset = params["limit"], params.get("offset")
        assert limit["schema"]["maximum"] == MAX_PAGE, path
        assert limit["schema"]["minimum"] == 1, path
        assert limit["description"] == "Page size", path
        assert offset is not None, f"{path} has a limit but no offset"
        assert offset["schema"]["minimum"] == 0, path
        assert offset["description"] == "Items to skip", path
    assert paged >= 30


def test_only_bounded_lists_answer_a_bare_array(spec):
    bare = set()
    for path, operation in _get_operations(spec):
        content = operation["responses"].get("200", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        if schema.get("type") == "array":
            bare.add(path)
        elif schema.get("$ref", "").endswith("/Page"):
            assert {p["name"] for p in operation["parameters"]} >= {"offset", "limit"}, path
    assert bare == PLAIN_LISTS


def test_check_window_names_the_bad_parameters():
    check_window(0, MAX_PAGE)
    with pytest.raises(InputError) as too_big:
        check_window(0, MAX_PAGE + 1)
    assert [p.field for p in too_big.value.problems] == ["limit"]
    with pytest.raises(InputError) as both:
        check_window(-1, 0)
    assert [p.field for p in both.value.problems] == ["limit", "offset"]
