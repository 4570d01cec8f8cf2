"""The small core every domain builds on: who acts (:mod:`.actor`), what they may do (:mod:`.policy`), the
hash-chained audit log writer (:mod:`.audit`) and the unit of work (:mod:`.uow`).

The core imports nothing from the domains (``gallery``, ``casework``, ``governance``, ``security``, ``evaluation``)
nor from ``web``/``cli``; it sits on the storage layer and the database plumbing (``faceleads.db``). The layering
is checked by ``lint-imports`` (contracts in ``pyproject.toml``; see docs/architecture.md).
"""
