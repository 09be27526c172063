"""The pure core: canonical bytes, hashes, records and chain verification.

Imports only the standard library, ``rfc8785`` (canonical JSON), ``orjson``
(fast JSON reading and writing), ``cryptography`` (Ed25519, X.509) and
``rfc3161_client`` (RFC 3161 timestamp requests and replies), so that the
server, the CLI and the offline verification client share one implementation
of the format contract (docs/format.md) and nothing else.
"""
