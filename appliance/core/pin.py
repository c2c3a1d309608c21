"""Mailbox PINs: made, kept only as a salted hash, and checked in constant time.

A PIN of 4 to 8 digits has at most 10^8 values, so no hash makes a stolen config safe
from a patient guesser; what protects a box is that the config is readable by the
engine alone, that a phone gets three tries a call, and that failures are rate-limited
per caller (``features/listening.py``). So the hash is cheap (PBKDF2, a few ms), because
the engine thread checks it, and it only keeps the PIN itself out of the config and
backups, where an admin would otherwise read it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

PIN: Final = re.compile(r"^[0-9]{4,8}$")
#: ``pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>``, as the schema checks it.
PIN_HASH: Final = re.compile(r"^pbkdf2-sha256\$[0-9]{1,7}\$[0-9a-f]{32}\$[0-9a-f]{64}$")
ITERATIONS: Final = 5000
LENGTH: Final = 6


def new_pin(length: int = LENGTH) -> str:
    """A random PIN that avoids the guesses tried first (all one digit, 1234...)."""
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(length))
        if len(set(pin)) > 2 and pin not in "01234567890" and pin not in "98765432109":
            return pin


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    if not PIN.fullmatch(pin):
        raise ValueError("a PIN is 4 to 8 digits")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2-sha256${iterations}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` is the one ``stored`` was made from (False for a malformed hash)."""
    if not PIN_HASH.fullmatch(stored) or not PIN.fullmatch(pin):
        return False
    _, iterations, salt, digest = stored.split("$")
    mine = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(mine.hex(), digest)
