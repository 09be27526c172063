"""The store: every SQL statement of the ledger, behind named functions.

``recorder`` appends (sealing, chaining, tree growth and signing, over the
``backend.Backend`` port whose engines live in ``sqlite/`` and
``postgres/``); ``projections`` is the plug-in protocol the positions and
sources projections implement; the ``*_reads`` modules, ``proofs``, ``keys``
and ``tokens`` are what the service, the web views and the CLI read and
write through. Driver errors become the ``ledger.core.errors`` tree here.
"""
