"""Which name to show for a caller: the first source that knows one.

Pure: the caller passes what each source said, so the order is the only rule here.
In order: the office's own contact record, the SIP caller ID (display name), a
serial caller-ID modem, and an external lookup (which arrives last, if at all).
A SIP display name that is only the number, or a placeholder such as
"Anonymous", names nobody and is skipped.
"""

from __future__ import annotations

#: The sources, best first; :func:`best_name` answers one of these (or "").
SOURCES = ("contact", "sip", "modem", "external")

#: Caller-ID "names" that name nobody (compared case-insensitively).
_PLACEHOLDERS = frozenset({"anonymous", "unknown", "unavailable"})


def usable(name: str) -> str:
    """``name`` stripped, or "" if it names nobody (empty, only digits, a placeholder)."""
    text = name.strip()
    if not text or text.lower() in _PLACEHOLDERS:
        return ""
    if text.lstrip("+").isdigit():
        return ""
    return text


def best_name(*, contact: str = "", sip: str = "", modem: str = "",
              external: str = "") -> tuple[str, str]:
    """The name to show and where it came from: ``(name, source)``, or ``("", "")``.

    Example::

        >>> best_name(contact="", sip="ACME Ltd")
        ('ACME Ltd', 'sip')
    """
    for source, name in zip(SOURCES, (contact, sip, modem, external), strict=True):
        found = usable(name)
        if found:
            return found, source
    return "", ""
