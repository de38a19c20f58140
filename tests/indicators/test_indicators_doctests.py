import doctest

import pytest

from tiercare.indicators import expressions, periods


@pytest.mark.parametrize("module", [expressions, periods])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
