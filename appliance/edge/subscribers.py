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


def _open(db_path: Path, what: str) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit), or a StoreError naming ``what``."""
    try:
        return sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    except sqlite3.Error as e:
        raise StoreError(f"{db_path}: cannot open {what} ({e})") from e


def sync_subscribers(db_path: Path, config: dict[str, Any]) -> int:
    """Make ``subscriber`` in ``db_path`` match config's extensions; return how many there are.

    One transaction: Kamailio sees the old table or the new one, never a mix.
    Idempotent: rows already right are not touched, so a sync with nothing to
    do writes nothing.
    """
    wanted = {(number, realm): ha1 for number, realm, ha1 in iter_extensions(config)}
    with contextlib.closing(_open(db_path, "the edge database")) as db:
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


LOCATION_VERSION = 9
"""The ``location`` table version usrloc checks at start-up (Kamailio 5.6 schema)."""

# Kamailio 5.6's usrloc schema for SQLite (/usr/share/kamailio/db_sqlite/usrloc-create.sql).
_CREATE_LOCATION = """
CREATE TABLE IF NOT EXISTS location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
);
CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact);
CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires);
"""


def ensure_location_db(db_path: Path) -> None:
    """Create the registrations file Kamailio's usrloc writes through to (db_mode=1).

    Kamailio itself is its only writer; it loads the rows at start, so phones
    stay registered across an edge restart. Kept apart from edge.sqlite3,
    which Kamailio opens read-only.
    """
    with contextlib.closing(_open(db_path, "the edge's registrations")) as db:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_CREATE_LOCATION)
            db.execute(_CREATE_VERSION)
            db.execute("INSERT INTO version (table_name, table_version) VALUES ('location', ?) "
                       "ON CONFLICT (table_name) DO NOTHING", (LOCATION_VERSION,))
        except sqlite3.Error as e:
            raise StoreError(f"{db_path}: cannot prepare the edge's registrations ({e}); "
                             "delete the file to start afresh (phones then re-register)") from e
