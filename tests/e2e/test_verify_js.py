"""The page's witness checks (ledger/web/static/verify.js) agree with the core.

The timeline page checks cosignatures and consistency proofs in the browser
with its own JavaScript. These tests run that very file in node (whose
WebCrypto has Ed25519, as Chromium's does) and hold it to the Python
reference: ``ledger.core.merkle``'s consistency proofs and
``ledger.core.cosignature``'s cosignatures.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.checkpoint import Checkpoint, sign
from ledger.core.cosignature import Witness
from ledger.core.hashing import leaf_hash
from ledger.core.merkle import append_leaves, consistency_proof, root_from_leaves
from ledger.core.signing import Signer

MODULE = Path(__file__).resolve().parents[2] / "ledger" / "web" / "static" / "verify.js"
NODE = "/usr/bin/node"
# One node process answers every case: a line of JSON in, a line out.
DRIVER = """
globalThis.window = globalThis;
require("vm").runInThisContext(require("fs").readFileSync(process.argv[1], "utf8"));
const V = window.LedgerVerify;
const b64 = (t) => Uint8Array.from(Buffer.from(t, "base64"));
async function answer(c) {
  try {
    if (c.op === "consistent") {
      const proof = c.proof.map(b64);
      return { ok: await V.consistent(c.size1, c.size2, b64(c.root1), b64(c.root2), proof) };
    }
    const keys = [];
    for (const k of c.keys) keys.push(await V.parseCosignerKey(k));
    const made = await V.verifiedCosigners(V.parseCheckpoint(c.note), keys);
    return { ok: made.map((m) => [m.key.label, m.time.getTime() / 1000]) };
  } catch (e) {
    return { error: e instanceof V.VerifyError ? e.message : String(e) };
  }
}
const lines = require("readline").createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    process.stdout.write(JSON.stringify(await answer(JSON.parse(line))) + "\\n");
  });
});
"""


class NodeVerify:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [NODE, "-e", DRIVER, str(MODULE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __call__(self, **case: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def node() -> Iterator[NodeVerify]:
    if not Path(NODE).exists():
        pytest.fail(f"{NODE} is missing: the page's JavaScript is tested in node")
    verify = NodeVerify()
    yield verify
    verify.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tree(size: int) -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    leaves = [leaf_hash(b"record %d" % i) for i in range(size)]
    return leaves, append_leaves(0, {}, leaves)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_consistency_proofs_of_the_core_verify_in_the_page(node: NodeVerify, data: Any) -> None:
    size2 = data.draw(st.integers(min_value=1, max_value=70))
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    leaves, nodes = tree(size2)
    root1, root2 = root_from_leaves(leaves[:size1]), root_from_leaves(leaves)
    proof = consistency_proof(size1, size2, nodes)
    case = {"op": "consistent", "size1": size1, "size2": size2}
    good = {**case, "root1": b64(root1), "root2": b64(root2), "proof": [b64(h) for h in proof]}
    assert node(**good) == {"ok": True}
    # A forked older tree, a changed proof hash and a proof one hash short all fail.
    forked = root_from_leaves([leaf_hash(b"other"), *leaves[1:size1]])
    assert node(**{**good, "root1": b64(forked)}) == {"ok": False}
    if proof:
        index = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        changed = [*proof[:index], bytes(32), *proof[index + 1 :]]
        assert node(**{**good, "proof": [b64(h) for h in changed]}) == {"ok": False}
        assert node(**{**good, "proof": [b64(h) for h in proof[:-1]]}) == {"ok": False}


def witnessed_note(witnesses: list[Witness], times: list[int]) -> tuple[str, Checkpoint]:
    checkpoint = Checkpoint(
        origin="example.org/talks", tree_size=7, root=b"\x07" * 32, head_hash="a" * 64
    )
    note = sign(checkpoint, [Signer.generate("example.org")]).to_text()
    lines = "".join(
        w.cosign(checkpoint.body(), t).to_line() for w, t in zip(witnesses, times, strict=True)
    )
    return note + lines, checkpoint


def test_the_page_verifies_cosignatures_made_by_the_core(node: NodeVerify) -> None:
    one, two, absent = (Witness.generate(f"witness.example/w{i}") for i in (1, 2, 3))
    note, _ = witnessed_note([one, two], [1_765_000_000, 1_765_000_123])
    keys = [k.verifier.to_string() for k in (one, two, absent)]
    answer = node(op="cosigners", note=note, keys=keys)
    assert answer == {
        "ok": [
            [f"{one.name}+{one.verifier.key_id.hex()}", 1_765_000_000],
            [f"{two.name}+{two.verifier.key_id.hex()}", 1_765_000_123],
        ]
    }


def test_the_page_refuses_a_cosignature_that_does_not_verify(node: NodeVerify) -> None:
    one = Witness.generate("witness.example/w1")
    note, _ = witnessed_note([one], [1_765_000_000])
    # The same line claimed for another time: the signed message changes.
    body, _, last = note.rstrip("\n").rpartition("\n")
    raw = bytearray(base64.b64decode(last.split(" ")[2]))
    raw[11] ^= 1
    tampered = f"{body}\n\u2014 {one.name} {b64(bytes(raw))}\n"
    answer = node(op="cosigners", note=tampered, keys=[one.verifier.to_string()])
    assert "cosignature by witness" in answer["error"]


def test_the_page_refuses_a_witness_key_of_another_type(node: NodeVerify) -> None:
    log_key = Signer.generate("example.org").verifier.to_string()
    answer = node(op="cosigners", note=witnessed_note([], [])[0], keys=[log_key])
    assert "not a cosignature (type 4) key" in answer["error"]
