"""The web's read-only view of config.json; every change goes through the engine.

The engine replaces config.json atomically, so a read here sees the old or
the new document whole. The file is small (tinydb, one record), so each
request reads it afresh and never shows settings the engine has moved past.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from appliance.errors import ConfigError, StoreError
from appliance.settings import Runtime
from appliance.store import schema
from appliance.store.config import ConfigStore

log = logging.getLogger(__name__)


def _store() -> ConfigStore:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return ConfigStore(runtime.config_path, read_only=True)


def read_raw() -> dict[str, Any]:
    """The stored document as written (no defaults filled in); raises if unreadable."""
    return _store().load_raw()


def read_config() -> dict[str, Any]:
    """The stored document with defaults filled in, as the engine sees it."""
    return schema.normalise(read_raw())


def read_users() -> list[dict[str, Any]]:
    """The web logins; none if config.json cannot be read (logins then fail safe)."""
    try:
        users: list[dict[str, Any]] = read_raw().get("users", [])
    except (ConfigError, StoreError) as e:
        log.error("cannot read logins: %s", e)
        return []
    return users
