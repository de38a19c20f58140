"""Where the real public data beside the project lives (``../shared/data``).

Set ``TIERCARE_SHARED_DATA`` to read it from elsewhere (e.g. a checkout in another folder).
Tests that need it skip when it is absent; the product never reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get(
    "TIERCARE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
