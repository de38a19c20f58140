"""The examples in the aberration module's docstrings run and hold."""

from __future__ import annotations

import doctest

from tiercare.surveillance import aberration


def test_docstring_examples() -> None:
    outcome = doctest.testmod(aberration)
    assert outcome.attempted > 0
    assert outcome.failed == 0
