import json
from collections.abc import Mapping
from importlib import resources

import pytest

from tiercare.registry.accessibility import tiers


def _plain(value):
    """The cached tiers as plain JSON data (dicts and lists)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def test_tiers_are_read_once_and_cannot_be_changed_by_a_caller():
    first = tiers()
    assert tiers() is first
    text = (resources.files("tiercare.registry") / "data" / "tiers.json").read_text("utf-8")
    assert _plain(first) == json.loads(text)
    with pytest.raises(TypeError):
        first["tiers"]["hamlet"] = {"types": []}
    with pytest.raises(TypeError):
        first["tiers"]["county"]["label_en"] = "changed"
    with pytest.raises(AttributeError):
        first["tiers"]["county"]["types"].append("village_clinic")
    with pytest.raises(AttributeError):
        first["centres"].remove("stroke")
    assert _plain(tiers()) == json.loads(text)
