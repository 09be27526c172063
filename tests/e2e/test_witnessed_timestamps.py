"""Witnesses and a time-stamping authority on one ledger: a real server collects
cosignatures from real witness processes (tests/witnesses.py) and timestamps
from a real local RFC 3161 authority (tests/tsa.py); its bundles carry both
optional groups in the one order of format §4, and ``ledger-verify`` checks the
quorum and the timestamp in the same run, of a bundle and of the live server."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.core.bundle import (
    FORMAT,
    FORMAT_ATTESTED,
    MEMBERS,
    TIMESTAMP_MEMBERS,
    WITNESSED_MEMBERS,
)
from ledger.core.canonical import canonical_bytes
from ledger.core.signing import Signer
from ledger.keyring import DEFAULT_KEY_FILE, load_private
from ledger_client.verify import main as verify_main
from tests.conftest import BACKENDS, ORIGIN, backend_database
from tests.e2e.witnessed import append, ledger_key, wait_for, witnessed_size, witnesses_env
from tests.servers import ServerProcess
from tests.tsa import LocalTsa, make_authority
from tests.witnesses import RunningWitness, start_witness

pytestmark = pytest.mark.slow
LEDGER = "both"


@dataclass(frozen=True)
class Setup:
    server: ServerProcess
    key: str
    w1: RunningWitness
    w2: RunningWitness
    chain: Path
    data_dir: Path
    # An export of records 1-8 while 1-5 and 1-10 are witnessed and timestamped.
    bundle: Path

    def trust(self) -> tuple[str, ...]:
        """Both witnesses, a quorum of both, and the authority's chain."""
        return (
            *("--witness", self.w1.verifier_key, "--witness", self.w2.verifier_key),
            *("--quorum", "2", "--tsa-cert", str(self.chain)),
        )


def timestamped_size(url: str, at_most: int) -> int | None:
    response = httpx.get(
        f"{url}/v1/ledgers/{LEDGER}/checkpoint/timestamp", params={"at_most": at_most}, timeout=5
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return int(response.headers["Ledger-Tree-Size"])


def settle(url: str, size: int) -> None:
    """Wait until the checkpoint of ``size`` is both witnessed and timestamped."""
    wait_for(lambda: witnessed_size(url, LEDGER) == size, what=f"a witnessed size {size}")
    wait_for(lambda: timestamped_size(url, size) == size, what=f"a timestamp of size {size}")


@pytest.fixture(scope="module", params=BACKENDS)
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("witnessed-timestamps")
    with backend_database(request.param, root) as database_url:
        data_dir = root / "ledger"
        key = ledger_key(data_dir)
        logs = {f"{ORIGIN}/{LEDGER}": [key]}
        w1 = start_witness(root / "w1", logs=logs, name="witness.test/w1")
        w2 = start_witness(root / "w2", logs=logs, name="witness.test/w2")
        tsa = LocalTsa(make_authority(root / "tsa"))
        env = witnesses_env([(w1.url, w1.verifier_key), (w2.url, w2.verifier_key)], quorum=2)
        env |= {
            "LEDGER_TSA_URL": tsa.url,
            "LEDGER_TSA_CERTS": str(tsa.authority.chain),
            "LEDGER_TSA_INTERVAL": "0.1",
        }
        server = ServerProcess(database_url=database_url, data_dir=data_dir, env=env)
        try:
            url = server.url
            httpx.post(f"{url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            settle(url, append(url, LEDGER, 5))
            settle(url, append(url, LEDGER, 5))
            # One batch made 6-10: no checkpoint of 8 was stored, so the export of
            # 1-8 carries the witnessed note and the timestamp of 5, each with a
            # consistency proof from 5 to 8.
            bundle = root / "both.tar"
            exported = httpx.get(f"{url}/v1/ledgers/{LEDGER}/export", params={"to_seq": 8})
            exported.raise_for_status()
            bundle.write_bytes(exported.content)
            yield Setup(
                server=server,
                key=key,
                w1=w1,
                w2=w2,
                chain=tsa.authority.chain,
                data_dir=data_dir,
                bundle=bundle,
            )
        finally:
            server.stop()
            tsa.stop()
            w1.stop()
            w2.stop()


def run_verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = verify_main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    result: dict[str, Any] = json.loads(captured.out)
    return code, result


def member_names(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as tar:
        return tar.getnames()


def test_a_bundle_carries_the_witnessed_members_then_the_timestamp_members(
    setup: Setup,
) -> None:
    assert member_names(setup.bundle) == [*MEMBERS, *WITNESSED_MEMBERS, *TIMESTAMP_MEMBERS]
    # format §10: evidence members make the bundle version 2.
    assert manifest_of(setup.bundle)["format"] == FORMAT_ATTESTED


def manifest_of(bundle: Path) -> dict[str, Any]:
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest: dict[str, Any] = json.loads(member.read())
    return manifest


def relabelled(setup: Setup, directory: Path, *, keep: list[str]) -> Path:
    """The bundle's ``keep`` members under a manifest re-signed as version 1, by
    the server's own key: only its format says what it may hold."""
    signer = Signer(ORIGIN, load_private(setup.data_dir / "keys" / DEFAULT_KEY_FILE))
    manifest = canonical_bytes({**manifest_of(setup.bundle), "format": FORMAT})
    contents = {"manifest.json": manifest, "manifest.sig": signer.sign(manifest)}
    path = directory / "relabelled.tar"
    with (
        tarfile.open(setup.bundle) as old,
        tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as new,
    ):
        for info in old.getmembers():
            if info.name not in keep:
                continue
            source = old.extractfile(info)
            data = contents.get(info.name, source.read() if source else b"")
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    return path


def test_a_version_1_bundle_holding_evidence_members_is_refused(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = [*MEMBERS, *WITNESSED_MEMBERS, *TIMESTAMP_MEMBERS]
    code, result = run_verify(
        capsys, "bundle", str(relabelled(setup, tmp_path, keep=everything)), "--key", setup.key
    )
    assert code == 1
    assert "a ledger-export/1 bundle ends there" in result["reason"], result


def test_a_version_1_bundle_cannot_meet_a_quorum_or_carry_a_timestamp(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = relabelled(setup, tmp_path, keep=list(MEMBERS))
    code, result = run_verify(capsys, "bundle", str(plain), "--key", setup.key)
    assert code == 0, result  # a version 1 bundle as any version 1 verifier reads it
    code, result = run_verify(capsys, "bundle", str(plain), "--key", setup.key, *setup.trust())
    assert code == 1
    assert "ledger-export/1, which carries no witnessed checkpoint" in result["reason"], result


def test_ledger_verify_checks_the_quorum_and_the_timestamp_of_one_bundle(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = run_verify(
        capsys, "bundle", str(setup.bundle), "--key", setup.key, *setup.trust()
    )
    assert code == 0, result
    assert result["to_seq"] == 8
    assert result["witnessed"]["tree_size"] == 5
    assert {c["name"] for c in result["witnessed"]["cosigned_by"]} == {
        "witness.test/w1",
        "witness.test/w2",
    }
    stamp = result["timestamp"]
    assert (stamp["tree_size"], stamp["verified_size"]) == (5, 8)
    assert stamp["authority"] == "CN=Test TSA" and stamp["chain_checked"] is True
    checks = result["checks"]
    assert "2 witness cosignatures (quorum 2)" in checks
    assert any(c.startswith("RFC 3161 timestamp of the checkpoint of tree size 5") for c in checks)


def test_a_bundle_with_the_groups_swapped_is_refused(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swapped = tmp_path / "swapped.tar"
    order = [*MEMBERS, *TIMESTAMP_MEMBERS, *WITNESSED_MEMBERS]
    with (
        tarfile.open(setup.bundle) as old,
        tarfile.open(swapped, "w", format=tarfile.USTAR_FORMAT) as new,
    ):
        members = {info.name: (info, old.extractfile(info)) for info in old.getmembers()}
        for name in order:
            info, content = members[name]
            new.addfile(info, io.BytesIO(content.read() if content else b""))
    code, result = run_verify(capsys, "bundle", str(swapped), "--key", setup.key)
    assert code == 1
    assert "unexpected member 'witnessed'" in result["reason"], result


def test_ledger_verify_checks_the_quorum_and_the_timestamp_of_the_server(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    url = setup.server.url
    argv = ("server", url, "--ledger", LEDGER, "--key", setup.key, *setup.trust())
    code, result = run_verify(capsys, *argv)
    assert code == 0, result
    # The checkpoint trusted is the witnessed one, and its timestamp is the one checked.
    assert result["to_seq"] == result["witnessed"]["tree_size"] == 10
    assert len(result["witnessed"]["cosigned_by"]) == 2
    stamp = result["timestamp"]
    assert (stamp["tree_size"], stamp["verified_size"]) == (10, 10)
    assert stamp["chain_checked"] is True
    printed = verify_main(list(argv))
    line = " ".join(capsys.readouterr().out.split())
    assert printed == 0 and line.startswith(f"VALID {LEDGER}")
    assert "2 witness cosignatures (quorum 2)" in line
    assert "RFC 3161 timestamp of the checkpoint of tree size 10" in line
