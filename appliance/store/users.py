"""Web logins: who may use the admin and agent pages, kept in config.json.

There is no default password. The first engine start makes an ``admin`` login
with a generated password and shows it once; after that only werkzeug's scrypt
hash is stored. Phones' SIP passwords are a different thing (HA1 digests for
Kamailio, see :mod:`appliance.store.config`).
"""

from __future__ import annotations

import copy
from typing import Any

from werkzeug.security import generate_password_hash

from appliance.errors import ConfigError
from appliance.store.config import new_password

FIRST_ADMIN = "admin"
#: Longer than a SIP password: nobody types it on a keypad, and it guards everything.
LOGIN_PASSWORD_LENGTH = 20


def password_hash(password: str) -> str:
    """werkzeug's scrypt hash (salted, memory-hard), the only form a login is stored in."""
    return generate_password_hash(password, method="scrypt")


def find(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((u for u in doc.get("users", []) if u.get("name") == name), None)


def has_admin(doc: dict[str, Any]) -> bool:
    return any(u.get("role") == "admin" for u in doc.get("users", []))


def with_new_user(doc: dict[str, Any], name: str, role: str,
                  extension: str | None = None) -> tuple[dict[str, Any], str]:
    """A copy of ``doc`` with a new login, and its generated password (show it once)."""
    if find(doc, name) is not None:
        raise ConfigError([f"users.name: a login {name!r} already exists"])
    password = new_password(LOGIN_PASSWORD_LENGTH)
    user: dict[str, Any] = {"name": name, "role": role, "password": password_hash(password)}
    if extension:
        user["extension"] = extension
    out = copy.deepcopy(doc)
    out.setdefault("users", []).append(user)
    return out, password


def with_new_password(doc: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
    """A copy of ``doc`` where login ``name`` has a new generated password."""
    out = copy.deepcopy(doc)
    user = find(out, name)
    if user is None:
        raise ConfigError([f"users: no login {name!r}"])
    password = new_password(LOGIN_PASSWORD_LENGTH)
    user["password"] = password_hash(password)
    return out, password


def without_user(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of ``doc`` without login ``name``; the last admin cannot be removed."""
    out = copy.deepcopy(doc)
    user = find(out, name)
    if user is None:
        raise ConfigError([f"users: no login {name!r}"])
    out["users"] = [u for u in out["users"] if u is not user]
    if user["role"] == "admin" and not has_admin(out):
        raise ConfigError([f"users: {name!r} is the last admin; add another admin first"])
    return out
