"""Storage: AES-256-GCM envelope crypto (:mod:`.crypto`), the per-record data-key store (:mod:`.keystore`) and the
encrypted blob store (:mod:`.blobs`).

Nothing here decides who may read what: the domains authorise and audit, then call into storage. ``web`` and
``cli`` never import this package (an import-linter contract forbids it).
"""
