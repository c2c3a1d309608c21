"""Read a provisioning file back as each brand's phone would: the SIP account in it.

Independent of the templates' code: Yealink's ``key = value`` lines, Grandstream's
P-values in ``<gs_provision>`` XML, Snom's ``<settings>`` XML, parsed with the stdlib.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    server: str
    port: int
    user: str
    auth_name: str
    password: str


def yealink_values(text: str) -> dict[str, str]:
    lines = text.splitlines()
    assert lines[0] == "#!version:1.0.0.1", lines[0]
    values = {}
    for line in lines[1:]:
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        assert sep, f"not a key = value line: {line!r}"
        assert key not in values, f"{key} set twice"
        values[key] = value
    return values


def grandstream_values(text: str) -> dict[str, str]:
    root = ET.fromstring(text)
    assert root.tag == "gs_provision"
    config = root.find("config")
    assert config is not None
    return {child.tag: child.text or "" for child in config}


def snom_values(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    root = ET.fromstring(text)
    assert root.tag == "settings"
    phone = root.find("phone-settings")
    assert phone is not None
    values = {child.tag: child.text or "" for child in phone}
    keys = [(k.get("label", ""), k.text or "") for k in root.iter("fkey")]
    return values, keys


def account(family: str, text: str) -> Account:
    """The SIP account a phone of ``family`` would take from ``text``."""
    if family == "yealink":
        v = yealink_values(text)
        return Account(v["account.1.sip_server.1.address"],
                       int(v["account.1.sip_server.1.port"]), v["account.1.user_name"],
                       v["account.1.auth_name"], v["account.1.password"])
    if family == "grandstream":
        g = grandstream_values(text)
        host, _, port = g["P47"].partition(":")
        return Account(host, int(port or 5060), g["P35"], g["P36"], g["P34"])
    s, _ = snom_values(text)
    host, _, port = s["user_host"].partition(":")
    return Account(host, int(port or 5060), s["user_name"], s["user_name"], s["user_pass"])
