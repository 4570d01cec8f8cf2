"""Import every domain's tables so that ``Base.metadata`` is complete (used by Alembic and tests).

Add a line here when a domain gains a ``models`` module.
"""

from faceleads.casework import models as casework_models  # noqa: F401
from faceleads.core import audit as governance_audit  # noqa: F401
from faceleads.db import Agency, Base
from faceleads.evaluation import models as evaluation_models  # noqa: F401
from faceleads.gallery import models as gallery_models  # noqa: F401
from faceleads.governance import models as governance_models  # noqa: F401
from faceleads.live import models as live_models  # noqa: F401
from faceleads.security import models as security_models  # noqa: F401

__all__ = ["Agency", "Base"]
