"""A verifiable audit ledger for negotiations.

``ledger.core`` is the pure format layer; storage, the HTTP API, the web
pages and the CLI are built around it and depend inward on it
(docs/architecture.md). "format §N" in docstrings and comments is section N
of docs/format.md, the format contract.
"""

__version__ = "0.1.0"
