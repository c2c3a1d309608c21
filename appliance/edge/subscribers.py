"""The edge's subscriber table: derived from config.json, read by Kamailio's auth_db.

Kamailio reads ``subscriber`` on every authentication, so a changed row
applies to the next REGISTER or INVITE without a restart. That only holds
while Kamailio's open connection still sees the file: the sync therefore
changes rows in place inside one transaction, and never replaces the file
(an open connection would keep reading the replaced, deleted inode).

Only HA1 digests are stored; the table has no password column at all.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from appliance.errors import StoreError
from appliance.store.config import iter_extensions

SUBSCRIBER_VERSION = 7
"""The table version auth_db checks at start-up (Kamailio 5.x schema)."""

_COLUMNS = ("id", "username", "domain", "ha1")
_CREATE_SUBSCRIBER = """
CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    ha1 VARCHAR(128) NOT NULL,
    CONSTRAINT account_idx UNIQUE (username, domain)
)
"""
_CREATE_VERSION = """
CREATE TABLE IF NOT EXISTS version (
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
)
"""


def _ensure_schema(db: sqlite3.Connection) -> None:
    """Create the tables, or rebuild ``subscriber`` if it is not ours (say, with passwords)."""
    columns = tuple(row[1] for row in db.execute("PRAGMA table_info(subscriber)"))
    if columns != _COLUMNS:
        if columns:
            db.execute("DROP TABLE subscriber")
        db.execute(_CREATE_SUBSCRIBER)
    db.execute(_CREATE_VERSION)
    db.execute(
        "INSERT INTO version (table_name, table_version) VALUES ('subscriber', ?) "
        "ON CONFLICT (table_name) DO UPDATE SET table_version = excluded.table_version "
        "WHERE table_version != excluded.table_version",
        (SUBSCRIBER_VERSION,),
    )


def sync_subscribers(db_path: Path, config: dict[str, Any]) -> int:
    """Make ``subscriber`` in ``db_path`` match config's extensions; return how many there are.

    One transaction: Kamailio sees the old table or the new one, never a mix.
    Idempotent: rows already right are not touched, so a sync with nothing to
    do writes nothing.
    """
    wanted = {(number, realm): ha1 for number, realm, ha1 in iter_extensions(config)}
    try:
        db = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    except sqlite3.Error as e:
        raise StoreError(f"{db_path}: cannot open the edge database ({e})") from e
    with contextlib.closing(db):
        try:
            # WAL: Kamailio's read-only connection keeps reading while we write.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # Overwrite what is deleted, so no old row (or foreign password) lingers on disk.
            db.execute("PRAGMA secure_delete=ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                _ensure_schema(db)
                have = {(u, d): h for u, d, h in
                        db.execute("SELECT username, domain, ha1 FROM subscriber")}
                gone = [key for key in have if key not in wanted]
                db.executemany("DELETE FROM subscriber WHERE username = ? AND domain = ?", gone)
                db.executemany(
                    "INSERT INTO subscriber (username, domain, ha1) VALUES (?, ?, ?) "
                    "ON CONFLICT (username, domain) DO UPDATE SET ha1 = excluded.ha1",
                    [(u, d, h) for (u, d), h in wanted.items() if have.get((u, d)) != h],
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"{db_path}: could not update the edge's subscribers ({e}); "
                             "the table is unchanged") from e
    return len(wanted)
