"""What the edge is given to read: its config and its subscriber table (no running Kamailio)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.edge.process import kamailio_binary
from appliance.edge.render import EdgeError, EdgeFiles, render_config, write_config
from appliance.edge.rpc import EdgeUnreachable, registered_extensions
from appliance.edge.subscribers import sync_subscribers
from appliance.errors import KeeplineError
from appliance.store.config import ha1
from tests.edge.conftest import Site


def _rows(db_path: Path) -> dict[str, tuple[int, str, str]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return {u: (i, d, h) for i, u, d, h in
                db.execute("SELECT id, username, domain, ha1 FROM subscriber")}


def _file_bytes(db_path: Path) -> bytes:
    """The database as it lies on disk, WAL included."""
    return b"".join(p.read_bytes() for p in (db_path, db_path.with_name(db_path.name + "-wal"))
                    if p.exists())


def test_template_renders_every_placeholder(fresh_site: Site) -> None:
    rt = fresh_site.runtime
    text = render_config(rt, fresh_site.config)

    assert "{{" not in text and "}}" not in text
    assert f"listen=udp:127.0.0.1:{rt.edge_port}\n" in text
    assert f'alias="{fresh_site.domain}:{rt.edge_port}"' in text
    assert "auto_aliases=no" in text and "dns=no" in text and "rev_dns=no" in text
    assert f'$du = "sip:127.0.0.1:{rt.engine_port}";' in text
    assert f'sqlite://{rt.edge_db_path.absolute()}"' in text
    assert 'save("location", "0x04")' in text
    ban = fresh_site.config["edge"]["ban"]
    assert f"autoexpire={ban['window_s']};initval=0;updateexpire=0" in text
    assert f"ipban=>size=8;autoexpire={ban['ban_s']};" in text
    assert f">= {ban['failures']})" in text


def test_rendered_config_passes_kamailio_check(fresh_site: Site) -> None:
    cfg = write_config(fresh_site.runtime, fresh_site.config)
    sync_subscribers(fresh_site.runtime.edge_db_path, fresh_site.config)

    check = subprocess.run([kamailio_binary(), "-c", "-f", str(cfg)], capture_output=True,
                           text=True, timeout=30, check=False)

    assert check.returncode == 0, check.stderr[-2000:]


def test_write_config_keeps_secret_private_and_stable(fresh_site: Site) -> None:
    rt = fresh_site.runtime
    files = EdgeFiles.of(rt)

    first = write_config(rt, fresh_site.config).read_text()
    second = write_config(rt, fresh_site.config).read_text()

    secret = files.secret.read_text().strip()
    assert len(secret) >= 32
    assert f'modparam("auth", "secret", "{secret}")' in first
    assert first == second  # the secret is made once, not per render
    assert stat.S_IMODE(files.secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.config.stat().st_mode) == 0o600
    # The engine by address and port (SIP and message-waiting sender); each trunk's
    # allowed addresses, any port.
    trunk_ips = [ip for t in fresh_site.config["trunks"] for ip in t["allow"]]
    assert trunk_ips
    assert files.address_file.read_text() == f"1 127.0.0.1 32 {rt.engine_port} engine\n" \
        f"1 127.0.0.1 32 {rt.mwi_port} engine-mwi\n" + \
        "".join(f"2 {ip} 32 0 trunk:pstn\n" for ip in trunk_ips)
    assert not [p for p in rt.run_dir.iterdir() if p.name.endswith(".tmp")]


def test_render_refuses_what_kamailio_cannot_use(fresh_site: Site, tmp_path: Path) -> None:
    with pytest.raises(EdgeError, match="IPv4"):
        render_config(replace(fresh_site.runtime, bind="localhost"), fresh_site.config)
    deep = tmp_path / ("d" * 120)
    with pytest.raises(EdgeError, match="too long for a Unix socket"):
        render_config(replace(fresh_site.runtime, run_dir=deep), fresh_site.config)


def test_subscriber_sync_stores_ha1_only(fresh_site: Site) -> None:
    db_path = fresh_site.runtime.edge_db_path

    assert sync_subscribers(db_path, fresh_site.config) == 4

    rows = _rows(db_path)
    assert set(rows) == {"201", "202", "203", "204"}
    for number, (_, domain, digest) in rows.items():
        assert domain == fresh_site.domain
        assert digest == ha1(number, domain, fresh_site.passwords[number])
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(subscriber)")]
        version = db.execute("SELECT table_version FROM version "
                             "WHERE table_name = 'subscriber'").fetchall()
    assert columns == ["id", "username", "domain", "ha1"]
    assert version == [(7,)]
    on_disk = _file_bytes(db_path)
    for password in fresh_site.passwords.values():
        assert password.encode() not in on_disk


def test_subscriber_sync_is_idempotent(fresh_site: Site) -> None:
    db_path = fresh_site.runtime.edge_db_path
    sync_subscribers(db_path, fresh_site.config)
    before = _rows(db_path)

    assert sync_subscribers(db_path, fresh_site.config) == 4
    assert sync_subscribers(db_path, fresh_site.config) == 4

    assert _rows(db_path) == before  # same ids: no row was rewritten


def test_subscriber_sync_follows_config(fresh_site: Site) -> None:
    db_path = fresh_site.runtime.edge_db_path
    sync_subscribers(db_path, fresh_site.config)
    doc = fresh_site.store.load_raw()
    doc["queues"][0]["members"] = [{"extension": "202"}]
    doc["extensions"] = [e for e in doc["extensions"] if e["number"] != "203"]
    doc["extensions"].append({"number": "205", "name": "New desk",
                              "ha1": ha1("205", fresh_site.domain, "fresh-one")})
    fresh_site.store.save(doc)

    assert sync_subscribers(db_path, fresh_site.config) == 4

    rows = _rows(db_path)
    assert set(rows) == {"201", "202", "204", "205"}
    assert rows["205"][2] == ha1("205", fresh_site.domain, "fresh-one")


def test_changed_password_reaches_an_open_reader(fresh_site: Site) -> None:
    # Kamailio keeps its connection open for good; the change must reach that
    # very connection, which is why the sync edits rows in place and never
    # replaces the file.
    db_path = fresh_site.runtime.edge_db_path
    sync_subscribers(db_path, fresh_site.config)
    inode = os.stat(db_path).st_ino
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as kamailio:
        def current() -> str:
            (row,) = kamailio.execute("SELECT ha1 FROM subscriber WHERE username = '202'")
            return str(row[0])

        assert current() == ha1("202", fresh_site.domain, fresh_site.passwords["202"])
        fresh_site.store.set_password("202", "changed-Secret9")
        sync_subscribers(db_path, fresh_site.config)

        assert current() == ha1("202", fresh_site.domain, "changed-Secret9")
    assert os.stat(db_path).st_ino == inode


def test_subscriber_sync_replaces_a_table_with_passwords(fresh_site: Site) -> None:
    # A stock Kamailio schema keeps a plaintext password column; ours must not.
    db_path = fresh_site.runtime.edge_db_path
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute("CREATE TABLE subscriber (id INTEGER PRIMARY KEY, username TEXT, "
                   "domain TEXT, password TEXT, ha1 TEXT, ha1b TEXT)")
        db.execute("INSERT INTO subscriber (username, domain, password, ha1, ha1b) "
                   "VALUES ('201', 'x', 'Plaintext-Leak-123', 'a', 'b')")

    sync_subscribers(db_path, fresh_site.config)

    assert set(_rows(db_path)) == {"201", "202", "203", "204"}
    assert b"Plaintext-Leak-123" not in _file_bytes(db_path)


def test_registered_extensions_fails_fast_without_kamailio(fresh_site: Site) -> None:
    started = time.perf_counter()
    with pytest.raises(EdgeUnreachable, match="is the edge running") as failure:
        registered_extensions(fresh_site.runtime)

    assert isinstance(failure.value, KeeplineError)
    assert str(EdgeFiles.of(fresh_site.runtime).rpc_socket) in str(failure.value)
    assert time.perf_counter() - started < 0.1
