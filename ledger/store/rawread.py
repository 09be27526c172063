"""The former name of ``ledger.store.dbapi_reads``, for importers not yet moved.

Only ``ledger.store.recorder`` still imports it; delete this module once it
imports ``ledger.store.dbapi_reads``.
"""

from ledger.store.dbapi_reads import RawReader, raw_read

__all__ = ["RawReader", "raw_read"]
