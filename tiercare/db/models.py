"""Import every domain's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

from tiercare.analyses import models as analysis_models  # noqa: F401
from tiercare.auth import models as auth_models
from tiercare.immunization import models as immunization_models  # noqa: F401
from tiercare.indicators import models as indicator_models  # noqa: F401  (+ surveillance)
from tiercare.maternal import models as maternal_models  # noqa: F401
from tiercare.referral import models as referral_models  # noqa: F401
from tiercare.registry import models as registry_models
from tiercare.scenarios import models as scenario_models  # noqa: F401

__all__ = ["auth_models", "registry_models"]
