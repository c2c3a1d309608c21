"""Contacts the agents keep for the screen-pop, saved through the engine.

The engine is the only writer of history.sqlite3, so the web asks it to save a
contact; the web reads contacts and caller cards from the file itself, read-only
(:meth:`~appliance.store.contacts.ContactBook.caller_card`). A save runs on the control
API's thread, not the engine thread: its fsync never holds up calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import unquote

from appliance.control.server import ApiError, Handler
from appliance.store.contacts import ContactBook, ContactError

#: What ``PUT /contacts/<number>`` takes; a field left out (or null) is empty.
FIELDS = ("name", "company", "notes", "by")


def resources(contacts: ContactBook, *,
              clock: Callable[[], float] = time.time) -> dict[tuple[str, str], Handler]:
    """The control API's contact resources, for :class:`~appliance.control.server.ControlApi`.

    - ``PUT /contacts/<number> {"name", "company", "notes", "by"}``: save the contact
      (replacing it; all of name, company and notes empty deletes it); returns it as
      ``{"number", "name", "company", "notes", "updated_at", "updated_by"}``, as
      stored (stripped). ``<number>`` may be percent-encoded ("%2B15550001").

    Errors: 404 ``not_found`` without a number; 400 ``invalid_contact`` with
    ``details.field`` naming the field ("number", "name", "company", "notes", "by",
    or an unknown key of the body).
    """

    def put_contact(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        number = unquote(arg)
        if not number:
            raise ApiError(404, "not_found", "expected PUT /contacts/<number>")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise ApiError(400, "invalid_contact", f"{unknown[0]}: unknown field (expected "
                           f"{', '.join(FIELDS)})", field=unknown[0])
        values = {k: "" if body.get(k) is None else body[k] for k in FIELDS}
        try:
            contact = contacts.save_contact(
                number, name=values["name"], company=values["company"],
                notes=values["notes"], by=values["by"], at=clock())
        except ContactError as e:
            raise ApiError(400, "invalid_contact", str(e), field=e.field) from None
        return asdict(contact)

    return {("PUT", "contacts"): put_contact}
