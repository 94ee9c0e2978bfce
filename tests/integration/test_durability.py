"""Durable store: a write answered 200 survives kill -9; schema versions; hashed credentials from config."""

from __future__ import annotations

import asyncio
import base64
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from gateway.credentials import hash_password, hash_token
from gateway.store.sql import SqlContactStore, StoreError
from tests.conftest import CRM_TOKEN, IDENTITIES, free_port, gateway_command, listening, run_cli, write_config
from tests.integration.jtel_client import Jtel


async def _start(cfg: Path, port: int) -> asyncio.subprocess.Process:
    proc = await gateway_command(
        "--config", str(cfg), "--port", str(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    await listening(port, proc)
    return proc


async def test_answered_writes_survive_kill_9(tmp_path: Path) -> None:
    """Import, lock and delete answered 200, then SIGKILL: after a restart the store shows all of it."""
    port = free_port()
    cfg = write_config(tmp_path / "gw.yaml", port, extra=IDENTITIES)
    proc = await _start(cfg, port)
    async with aiohttp.ClientSession() as http:
        jtel = Jtel(http, f"http://127.0.0.1:{port}", CRM_TOKEN)
        try:
            ids = []
            for n in range(50):
                reply = await jtel.import_contact(UserData=f"K{n}", Company=f"c{n}")
                assert reply.status == 200
                ids.append(reply.body["records"][0]["ID"])
            assert (await jtel.call("PATCH", f"/contacts/contact/{ids[0]}/lock")).status == 200
            assert (await jtel.call("DELETE", f"/contacts/contact/{ids[1]}")).status == 200
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        proc = await _start(cfg, port)
        try:
            listing = await jtel.call("GET", "/contacts")
            assert listing.status == 200 and listing.body["count"] == 49
            first = (await jtel.call("GET", f"/contacts/{ids[0]}")).body["records"][0]
            assert first["bLocked"] is True and first["Company"] == "c0"
            assert (await jtel.call("GET", f"/contacts/{ids[1]}")).status == 404
            assert (await jtel.call("GET", f"/contacts/{ids[-1]}")).body["records"][0]["UserData"] == "K49"
        finally:
            proc.terminate()
            await proc.wait()


async def test_schema_is_versioned(tmp_path: Path) -> None:
    """A new database records its schema version; reopening runs nothing twice; a newer schema is refused."""
    db = tmp_path / "v.db"
    store = SqlContactStore(url=f"sqlite:///{db}")
    await store.open()
    await store.close()
    await store.open()  # idempotent
    await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [
            (1,),
            (2,),
            (3,),
            (4,),
            (5,),
            (6,),
        ]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM contacts WHERE user_data = 'U' AND campaign_id IN (1) ORDER BY id"
        ).fetchall()
        assert "ix_contacts_user_data_campaign" in plan[0][3]  # not a scan of the campaign
        conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01', 'from the future')")
    with pytest.raises(StoreError, match="newer than this gateway"):
        await SqlContactStore(url=f"sqlite:///{db}").open()


async def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    """A database left at schema version 1 (with contacts) is upgraded in place at start."""
    import sqlalchemy as sa

    from gateway.store.schema import MIGRATIONS, schema_version

    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        schema_version.create(conn)
        MIGRATIONS[0][2](conn)
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1, '2026-01-01', 'v1')"))
        conn.execute(
            sa.text(
                "INSERT INTO contacts"
                " (campaign_id, user_data, locked, do_not_call, finished, imported_at, updated_at, data)"
                " VALUES (1, 'OLD', 0, 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00', '{\"Name\": \"Old\"}')"
            )
        )
    engine.dispose()
    store = SqlContactStore(url=f"sqlite:///{db}")
    await store.open()
    try:
        (row,) = await store.find_by_user_data("OLD", None)
        assert row.data == {"Name": "Old"} and row.campaign_id == 1
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (MIGRATIONS[-1][0],)
        assert conn.execute("SELECT attempts, chain_id FROM contacts").fetchall() == [(0, None)]


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url"])
def test_unsupported_store_url(url: str) -> None:
    """A storage.url the gateway cannot use is named in the error."""
    with pytest.raises(StoreError, match=r"storage\.url"):
        SqlContactStore(url=url)


async def test_hashed_credentials_from_config(start_gateway) -> None:  # type: ignore[no-untyped-def]
    """password_hash and token_hash (from `gateway hash-password`) authenticate like the plain forms."""
    extra = {
        "users": [
            {
                "name": "svc",
                "role": "service",
                "token_hash": hash_token("hashed-token-0123456789"),
                "password_hash": hash_password("pw"),
                "clients": [1],
            }
        ],
        "campaigns": IDENTITIES["campaigns"],
    }
    gw = await start_gateway(extra=extra)
    async with aiohttp.ClientSession() as http:
        assert (await Jtel(http, gw.base, "hashed-token-0123456789").call("GET", "/campaigns")).status == 200
        assert (await Jtel(http, gw.base, "hashed-token-0123456789x").call("GET", "/campaigns")).status == 401
        async with http.post(
            gw.url,
            json=[{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}],
            headers={"Authorization": "Basic " + base64.b64encode(b"svc:pw").decode()},
        ) as resp:
            assert (await resp.json())[0]["successful"] is True


def test_hash_password_command() -> None:
    """`gateway hash-password` reads stdin and prints a hash that verifies; --token likewise."""
    from gateway.credentials import verify_password, verify_token

    hashed = run_cli("hash-password", stdin="s3cret\n")
    assert hashed.returncode == 0
    out = hashed.stdout.strip()
    assert out.startswith("scrypt$") and verify_password("s3cret", out) and not verify_password("s3cret!", out)
    tok = run_cli("hash-password", "--token", stdin="a-token-of-20-chars!\n")
    assert tok.returncode == 0
    assert verify_token("a-token-of-20-chars!", tok.stdout.strip())
    short = run_cli("hash-password", "--token", stdin="short\n")
    assert short.returncode == 2 and "16 characters" in short.stderr
