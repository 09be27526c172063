"""docs/client.md's examples, run as written against a real server: each
```python block in order, in one namespace, and each ``print(…)  # shown``
must print what its comment shows."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "client.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_SHOWN = re.compile(r"^(\s*)print\((.*)\)\s+# (.*)$", re.M)


def runnable(source: str) -> str:
    """The block with each commented print turned into a check of what it prints."""
    return _SHOWN.sub(lambda m: f"{m[1]}__shows({m[3]!r}, {m[2]})", source)


def test_the_client_page_examples_run_and_print_what_they_show(
    server: ServerProcess, log_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if httpx.get(f"{server.url}/v1/ledgers/minerals-desk").status_code == 200:
        pytest.skip("the example ledger exists on this module's server already")
    monkeypatch.setenv("LEDGER_URL", server.url)
    monkeypatch.setenv("LEDGER_KEY", log_key)
    monkeypatch.delenv("LEDGER_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    shown: list[tuple[str, str]] = []

    def shows(expected: str, *values: object) -> None:
        shown.append((expected, " ".join(str(v) for v in values)))

    blocks = _BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__shows": shows, "__name__": "docs_example"}
    for block in blocks:
        exec(compile(runnable(block), str(PAGE), "exec"), namespace)
    assert shown and all(expected == printed for expected, printed in shown), shown
    assert (tmp_path / "minerals-desk.tar").stat().st_size > 0
    assert "minerals-desk" in (tmp_path / "ledger-state.json").read_text()
    assert os.environ["LEDGER_URL"] == server.url
