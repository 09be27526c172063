"""The client's checkpoint memory: a compare-and-swap per ledger, shared safely
by several clients, and refused when it is not a state file."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from ledger_client import StateFileError
from ledger_client.state import CheckpointState


def test_replace_writes_only_over_what_the_caller_checked_against(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    one, other = CheckpointState(path), CheckpointState(path)
    assert one.get("talks") is None
    assert one.replace("talks", expected=None, note="first\n")
    # The other client checked against nothing; the file moved meanwhile.
    assert not other.replace("talks", expected=None, note="forked\n")
    assert other.get("talks") == "first\n"
    assert other.replace("talks", expected="first\n", note="second\n")
    assert one.get("talks") == "second\n"
    assert json.loads(path.read_text()) == {
        "format": "ledger-client-state/1",
        "checkpoints": {"talks": "second\n"},
    }


def _race(path: str, start: int) -> list[tuple[str | None, str]]:
    state = CheckpointState(path)
    swaps: list[tuple[str | None, str]] = []
    for n in range(start, start + 40):
        current = state.get("talks")
        if state.replace("talks", expected=current, note=f"{n}\n"):
            swaps.append((current, f"{n}\n"))
    return swaps


def test_clients_in_several_processes_never_lose_a_swap(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_race, [(str(path), 0), (str(path), 1000), (str(path), 2000)])
    swaps = [swap for result in results for swap in result]
    # Each swap replaced what the one before it wrote: one chain from nothing
    # to the file's note, no two swaps over the same value.
    following = dict(swaps)
    assert len(following) == len(swaps)
    chain, note = [], None
    while note in following:
        note = following[note]
        chain.append(note)
    assert len(chain) == len(swaps)
    assert CheckpointState(path).get("talks") == chain[-1]
    assert not [
        p
        for p in tmp_path.iterdir()
        if p.name.startswith(".state.json.") and not p.name.endswith(".lock")
    ]


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"format": "x", "checkpoints": {}}'])
def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError):
        CheckpointState(path).get("talks")
