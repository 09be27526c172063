"""A verifiable audit ledger for negotiations.

``ledger.core`` is the pure format layer (SPEC §1-2 and later §3-6); storage,
the HTTP API and the CLI are built around it and depend inward on it.
"""

__version__ = "0.1.0"
