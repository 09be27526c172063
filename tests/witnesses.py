"""Real witnesses for tests: ``ledger witness init`` + ``add-log`` + ``serve`` in a child process.

    witness = start_witness(tmp_path / "w1", logs={origin: [verifier_key_string]})
    witness.url, witness.verifier_key        # submission/monitoring prefix, cosigner key
    witness.add_log(origin, key)             # follow one more log (or key) while it serves
    witness.kill(); witness.restart()        # SIGKILL, then the same directory on the same port
    witness.stop()

``TestLog`` is a small log of its own (an RFC 9162 tree and an Ed25519 note
key) that signs C2SP checkpoints and builds add-checkpoint requests, for
tests that need checkpoints without a ledger server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ledger.core.checkpoint import NoteSignature
from ledger.core.cosignature import CosignerKey
from ledger.core.hashing import empty_root, leaf_hash
from ledger.core.merkle import NodeId, append_leaves, consistency_proof, root_from_nodes
from ledger.core.signing import Signer, VerifierKey
from ledger.core.witnessing import add_checkpoint_body
from ledger.witness.state import WitnessState
from tests.servers import ChildServer, free_port

__all__ = ["RunningWitness", "TestLog", "start_witness", "witness_command"]


def witness_command(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ledger.witness ARGS`` (the ``ledger witness`` sub-app); raise on failure."""
    result = subprocess.run(
        [sys.executable, "-m", "ledger.witness", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"ledger witness {' '.join(args)} failed:\n{result.stderr}")
    return result


@dataclass
class RunningWitness:
    """A ``ledger witness serve`` child process over ``directory``."""

    directory: Path
    name: str
    verifier_key: str
    port: int
    body_timeout: float
    server: ChildServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def cosigner(self) -> CosignerKey:
        return CosignerKey.from_string(self.verifier_key)

    def add_log(self, origin: str, verifier_key: str) -> None:
        """``ledger witness add-log`` while it serves: followed from the next request."""
        witness_command("add-log", str(self.directory), "--origin", origin, "--key", verifier_key)

    def stop(self) -> None:
        self.server.stop()

    def kill(self) -> None:
        """SIGKILL: nothing is flushed or closed."""
        self.server.kill()

    def restart(self) -> None:
        """Start the same witness again, on the same port, once the old process is gone."""
        self.server = _serve(self.directory, self.port, self.body_timeout)


def _serve(directory: Path, port: int, body_timeout: float) -> ChildServer:
    return ChildServer(
        [
            sys.executable,
            "-m",
            "ledger.witness",
            "serve",
            str(directory),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--body-timeout",
            str(body_timeout),
        ],
        port=port,
        log_path=directory.parent / f"{directory.name}-{port}.log",
        ready_path="/health",
    )


def start_witness(
    directory: Path,
    *,
    logs: Mapping[str, Iterable[str]],
    name: str = "witness.test/w1",
    port: int | None = None,
    body_timeout: float = 10.0,
) -> RunningWitness:
    """Create a witness in ``directory`` (which must not hold one), trusting for each
    origin of ``logs`` its verifier keys (strings, type 0x01), and start serving it."""
    created = witness_command("init", str(directory), "--name", name)
    verifier_key = created.stdout.strip().splitlines()[-1]
    # What ``ledger witness add-log`` does, in process: a command per key would
    # cost a Python start each (tests/witness/test_cli.py runs the command itself).
    state = WitnessState.open(directory)
    try:
        for origin, keys in logs.items():
            for key in keys:
                state.add_log(origin, VerifierKey.from_string(key))
    finally:
        state.close()
    port = port or free_port()
    return RunningWitness(
        directory=directory,
        name=name,
        verifier_key=verifier_key,
        port=port,
        body_timeout=body_timeout,
        server=_serve(directory, port, body_timeout),
    )


@dataclass
class TestLog:
    """A log that signs checkpoints of its own tree (leaves are ``b"leaf <i>"``, or
    ``b"<fork> <i>"`` for a fork's)."""

    __test__ = False  # not a pytest class

    origin: str = "log.test/one"
    signer: Signer = field(default_factory=lambda: Signer.generate("log.test/one"))
    fork: str = "leaf"
    extensions: tuple[str, ...] = ()
    nodes: dict[NodeId, bytes] = field(default_factory=dict)
    size: int = 0

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier.to_string()

    def grow(self, count: int) -> None:
        leaves = [leaf_hash(b"%s %d" % (self.fork.encode(), self.size + i)) for i in range(count)]
        frontier = self.nodes
        self.nodes = {**frontier, **append_leaves(self.size, frontier, leaves)}
        self.size += count

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return root_from_nodes(size, self.nodes) if size else empty_root()

    def body(self, size: int | None = None, root: bytes | None = None) -> bytes:
        import base64

        size = self.size if size is None else size
        root = self.root(size) if root is None else root
        lines = [self.origin, str(size), base64.b64encode(root).decode(), *self.extensions]
        return ("\n".join(lines) + "\n").encode()

    def note(self, size: int | None = None, root: bytes | None = None) -> str:
        """The signed checkpoint note of the tree at ``size`` (default: the current one)."""
        body = self.body(size, root)
        signature = NoteSignature(
            name=self.signer.name,
            key_id=self.signer.verifier.key_id,
            signature=self.signer.sign(body),
        )
        return body.decode() + "\n" + signature.to_line()

    def proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if old_size in (0, size):
            return []
        return consistency_proof(old_size, size, self.nodes)

    def request(self, old_size: int, size: int | None = None) -> bytes:
        """An add-checkpoint body for the tree at ``size`` from ``old_size``."""
        size = self.size if size is None else size
        return add_checkpoint_body(old_size, self.proof(old_size, size), self.note(size))


def origin_hash(origin: str) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()
