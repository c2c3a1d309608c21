"""Which extensions are on do-not-disturb: a tiny file that outlives a restart.

Someone who pressed ``*78`` before lunch expects their phone to stay quiet when
the box reboots meanwhile. The engine is the only writer (``*78``/``*79`` and the
control API run on its thread); the file is written atomically
(:func:`~appliance.store.atomic.write_atomic`), so a power cut leaves the old or the
new state. A file that cannot be read is logged and ignored: every phone rings.
The read side (:meth:`DndStore.is_on`, :meth:`DndStore.all`) is what calls, the
queues and the status page (and busy-lamp keys) ask.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from appliance.store.atomic import write_atomic

log = logging.getLogger(__name__)

_EXTENSION = re.compile(r"^[0-9]{2,6}$")


def load_dnd(path: Path) -> frozenset[str]:
    """The extensions on do-not-disturb stored at ``path``; none if there is no file or
    it cannot be read."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return frozenset()
    except (OSError, ValueError) as e:
        log.error("%s cannot be read (%s): do-not-disturb is off for every phone", path, e)
        return frozenset()
    on = doc.get("on") if isinstance(doc, dict) else None
    if not isinstance(on, list) or not all(isinstance(x, str) and _EXTENSION.match(x)
                                           for x in on):
        log.error("%s holds %r, not {\"on\": [extension, ...]}: ignored", path, doc)
        return frozenset()
    return frozenset(on)


def save_dnd(path: Path, on: frozenset[str]) -> None:
    """Store the set durably; raises OSError (a full disk) with the old file intact."""
    write_atomic(path, (json.dumps({"on": sorted(on)}) + "\n").encode(), mode=0o640)


class DndStore:
    """Do-not-disturb per extension, kept in memory and on disk (engine thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._on = load_dnd(path)

    def is_on(self, extension: str) -> bool:
        return extension in self._on

    def all(self) -> frozenset[str]:
        """Every extension on do-not-disturb now."""
        return self._on

    def set(self, extension: str, on: bool) -> bool:
        """Turn ``extension``'s do-not-disturb on or off; whether it changed.

        Stored before it takes effect; a disk that refuses the write is logged and the
        change holds in memory until the engine stops (a phone's ``*78`` still works).
        """
        if (extension in self._on) == on:
            return False
        new = self._on | {extension} if on else self._on - {extension}
        try:
            save_dnd(self.path, new)
        except OSError as e:
            log.error("do-not-disturb of %s holds until the engine stops, but could not be "
                      "stored in %s: %s", extension, self.path, e)
        self._on = new
        return True
