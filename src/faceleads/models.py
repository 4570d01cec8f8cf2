"""Import every domain's tables so that ``Base.metadata`` is complete (used by Alembic and tests).

Add a line here when a domain gains a ``models`` module.
"""

from faceleads.db import Agency, Base

__all__ = ["Agency", "Base"]
