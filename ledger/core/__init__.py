"""The pure core: canonical bytes, hashes, records and chain verification.

Imports only the standard library, ``rfc8785`` and ``cryptography``, so that
the server, the CLI and the offline verification client share one
implementation of the format contract (SPEC.md) and nothing else.
"""
