"""``ledger export`` read by tools that know nothing of this project (format §4).

The bundle is a plain POSIX tar that GNU tar lists, and its manifest
signature checks with the stock ``openssl`` command docs/format.md quotes.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ledger.core.bundle import MEMBERS, Manifest
from tests.e2e.test_cli import run_ledger

pytestmark = pytest.mark.slow

DEMO = "us-ua-minerals-2025"


def openssl_verify(
    folder: Path, manifest: str = "manifest.json"
) -> subprocess.CompletedProcess[str]:
    # Exactly the command of format §4.
    command = "openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin"
    return subprocess.run(
        [*command.split(), "-in", manifest, "-sigfile", "manifest.sig"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


def extract(bundle: Path, folder: Path) -> None:
    folder.mkdir()
    result = subprocess.run(
        ["tar", "-xf", str(bundle), "-C", str(folder)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
def test_openssl_and_gnu_tar_read_an_exported_bundle(database_url: str, tmp_path: Path) -> None:
    loaded = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    bundle = tmp_path / "out" / "demo.tar"
    bundle.parent.mkdir()
    result = run_ledger(
        "export", DEMO, "-o", str(bundle), database_url=database_url, data_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "exported" in result.stdout and "records" in result.stdout
    # Only the finished bundle is left: the temporary file was renamed.
    assert [p.name for p in bundle.parent.iterdir()] == ["demo.tar"]

    listed = subprocess.run(["tar", "-tf", str(bundle)], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == list(MEMBERS)

    folder = tmp_path / "unpacked"
    extract(bundle, folder)
    manifest = Manifest.from_bytes((folder / "manifest.json").read_bytes())
    assert manifest.head_hash in result.stdout and manifest.key_id in result.stdout
    verified = openssl_verify(folder)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Signature Verified Successfully" in verified.stdout

    # One flipped byte of the manifest and openssl refuses it.
    raw = bytearray((folder / "manifest.json").read_bytes())
    raw[raw.index(b'"count":') + len(b'"count":')] ^= 0x01
    (folder / "tampered.json").write_bytes(bytes(raw))
    refused = openssl_verify(folder, "tampered.json")
    assert refused.returncode != 0
    assert "Signature Verified Successfully" not in refused.stdout


def test_a_sub_range_export_and_its_errors(database_url: str, tmp_path: Path) -> None:
    loaded = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    bundle = tmp_path / "part.tar"
    args = ["export", DEMO, "-o", str(bundle), "--from-seq", "3", "--to-seq", "6"]
    result = run_ledger(*args, database_url=database_url, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    with tarfile.open(bundle) as archive:
        handle = archive.extractfile("manifest.json")
        assert handle is not None
        manifest = Manifest.from_bytes(handle.read())
    assert (manifest.from_seq, manifest.to_seq, manifest.count) == (3, 6, 4)
    assert manifest.head_inclusion_proof

    for bad, field in ((["--to-seq", "100000"], "to_seq"), (["--from-seq", "0"], "from_seq")):
        failed = run_ledger(
            "export",
            DEMO,
            "-o",
            str(tmp_path / "bad.tar"),
            *bad,
            database_url=database_url,
            data_dir=tmp_path,
        )
        assert failed.returncode == 1
        assert field in failed.stderr and "Traceback" not in failed.stderr
        assert not (tmp_path / "bad.tar").exists()
    missing = run_ledger(
        "export",
        "absent",
        "-o",
        str(tmp_path / "none.tar"),
        database_url=database_url,
        data_dir=tmp_path,
    )
    assert missing.returncode == 1 and "absent" in missing.stderr
    unwritable = run_ledger(
        "export",
        DEMO,
        "-o",
        str(tmp_path / "no" / "such" / "dir.tar"),
        database_url=database_url,
        data_dir=tmp_path,
    )
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr
