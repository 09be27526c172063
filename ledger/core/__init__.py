"""The pure core: canonical bytes, hashes, records and chain verification.

Imports only the standard library, ``rfc8785`` (canonical JSON), ``orjson``
(fast JSON reading and writing) and ``cryptography`` (Ed25519), so that the
server, the CLI and the offline verification client share one implementation
of the format contract (docs/format.md) and nothing else.
"""
