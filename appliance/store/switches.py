"""The switches set by hand that must outlive a restart: disaster mode and day/night.

Someone who throws the disaster switch (on the web page, the CLI or the front
panel's button) expects it to stay thrown when the power flickers and the box
reboots in the middle of the outage. The file is tiny and written atomically
(:func:`~appliance.store.atomic.write_atomic`), so a power cut leaves the old
or the new state. A file that cannot be read is logged and ignored: the box
then starts in automatic mode, as it did before the switch was thrown.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from appliance.store.atomic import write_atomic

log = logging.getLogger(__name__)

OVERRIDES = (None, "day", "night")


@dataclass(frozen=True)
class Switches:
    """``disaster``: forward every queue call; ``override``: force "day" or "night"."""

    disaster: bool = False
    override: str | None = None


def load_switches(path: Path) -> Switches:
    """The switches stored at ``path``; all off if there is no file or it is unreadable."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Switches()
    except (OSError, ValueError) as e:
        log.error("%s cannot be read (%s): disaster switch off, day/night by the schedule",
                  path, e)
        return Switches()
    disaster, override = (doc.get("disaster"), doc.get("override")) \
        if isinstance(doc, dict) else (None, None)
    if not isinstance(disaster, bool) or override not in OVERRIDES:
        log.error("%s holds %r, not {\"disaster\": true|false, \"override\": "
                  "null|\"day\"|\"night\"}: ignored", path, doc)
        return Switches()
    return Switches(disaster=disaster, override=override)


def save_switches(path: Path, switches: Switches) -> None:
    """Store ``switches`` durably; raises OSError (a full disk) with the old file intact."""
    data = {"disaster": switches.disaster, "override": switches.override}
    write_atomic(path, (json.dumps(data) + "\n").encode(), mode=0o640)
