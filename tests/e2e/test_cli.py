"""The ``ledger`` command line, run as a user would: real processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from ledger.core.chain import verify_chain
from ledger.store.database import alembic_config
from tests.conftest import position
from tests.servers import free_port

pytestmark = pytest.mark.slow


def run_ledger(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "ledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_upgrade_reports_the_revision(database_url: str, tmp_path: Path) -> None:
    result = run_ledger("db", "upgrade", database_url=database_url, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"schema at revision {head}" in result.stdout


def test_demo_loads_once(database_url: str, tmp_path: Path) -> None:
    first = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "loaded us-ua-minerals-2025" in first.stdout
    again = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already present" in again.stdout


def test_import_validates_every_line_before_writing(database_url: str, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(position(stance=s)) for s in ("oppose", "demand")) + "\n")
    result = run_ledger("import", "talks", str(good), database_url=database_url, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "talks now holds 2 records" in result.stdout

    bad = tmp_path / "bad.jsonl"
    bad_event = position()
    bad_event["data"] = {"stance": "oppose", "summary": "x", "share": 0.5}
    bad.write_text(json.dumps(position()) + "\n" + json.dumps(bad_event) + "\n")
    result = run_ledger("import", "talks", str(bad), database_url=database_url, data_dir=tmp_path)
    assert result.returncode == 1
    assert "bad.jsonl:2" in result.stderr and "data.share" in result.stderr
    assert "Traceback" not in result.stderr

    missing = run_ledger(
        "import",
        "talks",
        str(tmp_path / "absent.jsonl"),
        database_url=database_url,
        data_dir=tmp_path,
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_import_uploads_the_files_sources_name_and_cites_their_hashes(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "articles").mkdir()
    page = b"<!doctype html><p>Half of the revenue, said Washington.</p>"
    (tmp_path / "articles" / "nyt.html").write_bytes(page)
    source = {"name": "The New York Times", "kind": "media", "document_path": "articles/nyt.html"}
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(position(source=source)) + "\n")
    result = run_ledger(
        "import", "talks", str(events), database_url=database_url, data_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    audited = run_ledger("verify", "talks", "--json", database_url=database_url, data_dir=tmp_path)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    checks = json.loads(audited.stdout)["checks"]
    assert any(check.startswith("1 source documents rehashed") for check in checks), checks
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        canonical = conn.execute(sa.text("SELECT canonical FROM records")).scalar_one()
        sha256 = conn.execute(sa.text("SELECT sha256 FROM documents")).scalar_one()
    engine.dispose()
    assert json.loads(canonical)["source"]["document"] == sha256
    assert sha256 == hashlib.sha256(page).hexdigest()

    (tmp_path / "articles" / "notes.docx").write_bytes(b"PK")
    odd = {**source, "document_path": "articles/notes.docx"}
    events.write_text(json.dumps(position(source=odd)) + "\n")
    result = run_ledger(
        "import", "talks", str(events), database_url=database_url, data_dir=tmp_path
    )
    assert result.returncode == 1
    assert "events.jsonl:1" in result.stderr and "document_path" in result.stderr


def test_demo_serves_and_prints_its_urls(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LEDGER_DATA_DIR": str(tmp_path / "data")}
    env.pop("LEDGER_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        lines = httpx.get(
            f"{base}/v1/ledgers/us-ua-minerals-2025/events",
            headers={"Accept": "application/x-ndjson"},
        ).content.splitlines()
        assert len(lines) >= 20
        verify_chain(lines, ledger="us-ua-minerals-2025")
        assert (tmp_path / "data" / "ledger.db").exists()  # the embedded SQLite default
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"{base}/docs" in output
    assert f"{base}/v1/ledgers/us-ua-minerals-2025" in output


def test_keys_generate_show_rotate_and_retire(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    made = run_ledger(
        "keys", "generate", "-o", str(key_file), database_url=database_url, data_dir=tmp_path
    )
    assert made.returncode == 0, made.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    verifier_key = made.stdout.split("verifier key: ")[1].split()[0]
    again = run_ledger(
        "keys", "generate", "-o", str(key_file), database_url=database_url, data_dir=tmp_path
    )
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr

    env_key = {"LEDGER_SIGNING_KEY": str(key_file), "LEDGER_KEY_NAME": "ledger.test"}
    os.environ.update(env_key)
    try:
        # The key name given to `generate` (the host name) differs from
        # LEDGER_KEY_NAME; the registered verifier key uses the configured name.
        demo = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
        assert demo.returncode == 0, demo.stderr
        shown = run_ledger("keys", "show", database_url=database_url, data_dir=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert verifier_key.split("+", 2)[2] in shown.stdout  # same public key
        rotated = run_ledger("keys", "rotate", database_url=database_url, data_dir=tmp_path)
        assert rotated.returncode == 0, rotated.stderr
        assert "us-ua-minerals-2025: key.rotated at seq" in rotated.stdout
        old_id = rotated.stdout.split("old key: ")[1].split("+")[1]
        twice = run_ledger("keys", "rotate", database_url=database_url, data_dir=tmp_path)
        assert twice.returncode == 1 and "retire the old key first" in twice.stderr
        retired = run_ledger("keys", "retire", old_id, database_url=database_url, data_dir=tmp_path)
        assert retired.returncode == 0, retired.stderr
        final = run_ledger("keys", "show", database_url=database_url, data_dir=tmp_path)
        assert final.stdout.count("retired") == 1 and final.stdout.count("active") == 1
    finally:
        for name in env_key:
            os.environ.pop(name, None)


def test_projections_rebuild_reports_every_ledger(database_url: str, tmp_path: Path) -> None:
    demo = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert demo.returncode == 0, demo.stderr
    rebuilt = run_ledger("projections", "rebuild", database_url=database_url, data_dir=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "us-ua-minerals-2025: 23 records" in rebuilt.stdout
    missing = run_ledger(
        "projections", "rebuild", "nope", database_url=database_url, data_dir=tmp_path
    )
    assert missing.returncode == 1 and "no ledger named" in missing.stderr


def test_verify_names_an_edited_projection_row_and_exits_1(
    database_url: str, tmp_path: Path
) -> None:
    demo = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert demo.returncode == 0, demo.stderr
    clean = run_ledger("verify", database_url=database_url, data_dir=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "positions, sources and author registry projections agree" in " ".join(
        clean.stdout.split()
    )
    # With database access, past the guard: the US revenue-share position now "supports".
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text("DROP TRIGGER position_versions_no_update"))
            else:
                conn.execute(sa.text("DROP TRIGGER position_versions_guard ON position_versions"))
            conn.execute(
                sa.text("UPDATE position_versions SET cell = :c WHERE target_seq = 10"),
                {"c": '{"seq": 10, "since": "2025-02-12T00:00:00Z", "stance": "support"}'},
            )
    finally:
        engine.dispose()
    forged = run_ledger("verify", database_url=database_url, data_dir=tmp_path)
    assert forged.returncode == 1, forged.stdout + forged.stderr
    out = " ".join(forged.stdout.split())
    assert "INVALID us-ua-minerals-2025" in out
    assert "ledger us-ua-minerals-2025, party US, topic revenue-share" in out
    assert "seq 10" in out and "has cell" in out


def test_the_demo_sources_rebuild_verify_and_an_edit_is_named(
    database_url: str, tmp_path: Path
) -> None:
    demo = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert demo.returncode == 0, demo.stderr
    rebuilt = run_ledger("projections", "rebuild", database_url=database_url, data_dir=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    clean = run_ledger("verify", database_url=database_url, data_dir=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # Past the guard: the correction at seq 23 re-attributed seq 17 to the NYT;
    # the edit gives it back to CNN.
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text("DROP TRIGGER source_citations_no_update"))
            else:
                conn.execute(sa.text("DROP TRIGGER source_citations_guard ON source_citations"))
            edited = conn.execute(
                sa.text(
                    "UPDATE source_citations SET name = 'CNN' WHERE target_seq = 17"
                    " AND known_from = 23"
                )
            )
            assert edited.rowcount == 1
    finally:
        engine.dispose()
    forged = run_ledger("verify", database_url=database_url, data_dir=tmp_path)
    assert forged.returncode == 1, forged.stdout + forged.stderr
    out = " ".join(forged.stdout.split())
    assert "INVALID us-ua-minerals-2025" in out
    assert "source_citations of ledger us-ua-minerals-2025, source 'The New York Times'" in out
    assert "seq 17 known from 23 has name 'CNN'" in out
