"""The witness: a separate program that cosigns a log's checkpoints (C2SP tlog-witness).

Anyone may run one for a ledger they do not operate (``ledger witness``,
docs/witnesses.md). It needs only ``ledger.core`` of the ledger: its state
is a one-file SQLite database of its own (``state.py``), its key a PEM file
beside it (``directory.py``), its one decision ``cosigning.py`` (on the rules
of ``ledger.core.witnessing``), its HTTP interface a Starlette app
(``http.py``) and its commands ``cli.py``.
"""
