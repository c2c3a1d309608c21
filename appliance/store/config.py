"""config.json: the box's settings, kept in tinydb behind an atomic storage.

tinydb suits this small, human-readable document (high-volume data, the call
history, goes to SQLite instead: see docs/architecture.md). The whole document is one tinydb
record replaced in a single write, so a killed writer leaves either the old or
the new config on disk. Every load and save is validated against
:mod:`appliance.store.schema`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import string
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from appliance.core.pin import hash_pin, new_pin
from appliance.errors import ConfigError, StoreError
from appliance.store import schema
from appliance.store.atomic import remove_stale_temps, write_atomic

log = logging.getLogger(__name__)

_TABLE = "config"
_DOC_ID = 1
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


class AtomicJSONStorage(Storage):
    """A tinydb storage that replaces the file atomically and durably on every write."""

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise StoreError(f"{self._path}: not valid JSON ({e}); the file was left as it is") \
                from None
        if not isinstance(data, dict):
            raise StoreError(f"{self._path}: expected a JSON object at the top level")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self._read_only:
            raise StoreError(f"{self._path}: opened read-only")
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        try:
            write_atomic(self._path, text.encode())
        except OSError as e:
            raise StoreError(f"{self._path}: could not save ({e.strerror or e}); "
                             "the previous config is unchanged") from e

    def close(self) -> None:
        pass


def ha1(user: str, realm: str, password: str) -> str:
    """The digest Kamailio checks: md5(user:realm:password)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def new_password(length: int = 16) -> str:
    """A strong SIP password that is still typeable on a desk phone keypad menu."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class GeneratedPassword:
    """A password made during import: shown once, then only its HA1 is kept; with the
    new extension's voicemail PIN when one was made (the same: only its hash stays)."""

    extension: str
    password: str
    pin: str = ""


def read_document(path: Path) -> dict[str, Any]:
    """Parse a config file given by the admin; errors name the file and line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read ({e.strerror or e})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a UTF-8 text file"]) from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError([f"{path}: line {e.lineno} column {e.colno}: {e.msg}"]) from None
    return doc  # type: ignore[no-any-return]


class ConfigStore:
    """The one config.json of a data dir.

    Parameters:
        path: the config.json file.
        read_only: for readers such as the web process, which never writes.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._read_only = read_only

    def _db(self) -> TinyDB:
        return TinyDB(str(self.path), storage=AtomicJSONStorage, read_only=self._read_only)

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def load(self) -> dict[str, Any]:
        """The validated, normalised config; raises if missing or invalid."""
        db = self._db()
        try:
            doc = db.table(_TABLE).get(doc_id=_DOC_ID)
        finally:
            db.close()
        if doc is None:
            raise StoreError(f"{self.path}: no config yet; import one with "
                             "'python -m appliance config import FILE'")
        try:
            schema.validate(dict(doc))
        except ConfigError as e:
            raise ConfigError([f"{self.path}: {p}" for p in e.problems]) from None
        return schema.normalise(dict(doc))

    def load_raw(self) -> dict[str, Any]:
        """The stored document as written, without defaults filled in (for export)."""
        self.load()
        db = self._db()
        try:
            return dict(db.table(_TABLE).get(doc_id=_DOC_ID) or {})
        finally:
            db.close()

    def save(self, doc: dict[str, Any]) -> None:
        """Validate and replace the whole config in one atomic write."""
        schema.validate(doc)
        new = json.loads(json.dumps(doc))  # a plain, detached copy

        def replace(current: MutableMapping[Any, Any]) -> None:
            current.clear()
            current.update(new)

        remove_stale_temps(self.path)
        try:
            AtomicJSONStorage(str(self.path)).read()
        except StoreError:
            # An unreadable file (hand-edited, say) must not block a restore: keep it
            # for inspection and write the new document from scratch.
            kept = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            os.replace(self.path, kept)
            log.warning("%s was unreadable; kept as %s", self.path, kept)
        db = self._db()
        try:
            table = db.table(_TABLE)
            if table.contains(doc_id=_DOC_ID):
                table.update(replace, doc_ids=[_DOC_ID])
            else:
                table.insert(Document(new, doc_id=_DOC_ID))
        finally:
            db.close()

    def import_document(self, doc: dict[str, Any]) -> list[GeneratedPassword]:
        """Validate an admin's file, fill in missing secrets, and save it atomically.

        Extensions without ``ha1`` keep the one already stored for the same
        number and realm; otherwise a password is generated and returned, so the
        caller can show it once. A file without ``users`` keeps the stored web
        logins. Nothing is written if the file is invalid.
        """
        schema.validate(doc, require_secrets=False)
        doc = json.loads(json.dumps(doc))
        kept: dict[str, str] = {}
        if self.exists():
            try:
                old = self.load_raw()
            except (ConfigError, StoreError):
                old = None
            if old and old["site"]["sip_domain"] == doc["site"]["sip_domain"]:
                kept = {e["number"]: e["ha1"] for e in old["extensions"]}
            # A settings file without logins (a hand-written one, or a backup from
            # before logins existed) must not lock the admin out.
            if old and "users" not in doc and old.get("users"):
                doc["users"] = old["users"]
                schema.validate(doc, require_secrets=False)
        generated: list[GeneratedPassword] = []
        realm = doc["site"]["sip_domain"]
        for ext in doc["extensions"]:
            if "ha1" in ext:
                continue
            if ext["number"] in kept:
                ext["ha1"] = kept[ext["number"]]
                continue
            password = new_password()
            ext["ha1"] = ha1(ext["number"], realm, password)
            generated.append(GeneratedPassword(ext["number"], password))
        self.save(doc)
        return generated

    def set_password(self, extension: str, password: str | None = None) -> GeneratedPassword:
        """Give one extension a new password (generated unless given)."""
        doc = self.load_raw()
        password = password or new_password()
        for ext in doc["extensions"]:
            if ext["number"] == extension:
                ext["ha1"] = ha1(extension, doc["site"]["sip_domain"], password)
                self.save(doc)
                return GeneratedPassword(extension, password)
        raise ConfigError([f"extensions: no extension {extension!r}"])

    def set_voicemail_pin(self, extension: str) -> str:
        """Give one extension's mailbox a new generated PIN; returns it (shown once)."""
        doc = self.load_raw()
        pin = with_voicemail_pin(doc, extension)
        self.save(doc)
        return pin


def with_voicemail_pin(doc: dict[str, Any], extension: str, pin: str | None = None) -> str:
    """Set ``pin`` (a new generated one if None) for ``extension``'s mailbox in ``doc``
    (only its hash is kept)."""
    pin = new_pin() if pin is None else pin
    for ext in doc["extensions"]:
        if ext["number"] == extension:
            ext["voicemail"] = {**(ext.get("voicemail") or {}), "pin_hash": hash_pin(pin)}
            return pin
    for box in (doc.get("voicemail") or {}).get("boxes") or []:  # a shared box, by name
        if box.get("name") == extension:
            box["pin_hash"] = hash_pin(pin)
            return pin
    raise ConfigError([f"extensions: no extension {extension!r}"])


def iter_extensions(config: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(number, realm, ha1) for every extension: what the edge's subscriber table holds."""
    realm = config["site"]["sip_domain"]
    for ext in config["extensions"]:
        yield ext["number"], realm, ext["ha1"]
