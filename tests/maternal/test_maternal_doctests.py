"""The examples in the maternal modules' docstrings run and hold."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from tiercare.maternal import criteria, grading


@pytest.mark.parametrize("module", [criteria, grading], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    outcome = doctest.testmod(module)
    assert outcome.attempted > 0
    assert outcome.failed == 0
