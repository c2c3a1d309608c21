"""What config.json means where it says nothing, and the words its fields may use.

Each default is written here once. :func:`appliance.store.schema.normalise` fills
them into the config the engine, the pages and the CLI read, so a reader indexes
the normalised config instead of repeating a literal. Code that must work without
a config (a domain object built in a test, a report for a queue since deleted)
takes its fallback from here too.

It lives in the core, which may not depend on the store: the store's schema imports
it from here. It imports nothing.
"""

from __future__ import annotations

from typing import Any, Final

# ---- words ---------------------------------------------------------------------------

#: Ring strategies (``queues[].strategy``), as core/acd.py implements them.
STRATEGIES: Final = ("ringall", "roundrobin", "longest_idle", "fewest_calls", "random", "linear")
#: The strategy a new queue starts with (config.json requires one; the form offers this).
NEW_QUEUE_STRATEGY: Final = "ringall"
#: Week days of a schedule (``schedules[].week``), Monday first as ``date.weekday()``.
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# ---- sections and items --------------------------------------------------------------

SITE_DEFAULTS: Final[dict[str, Any]] = {"language": "en"}

#: What a queue does when config.json does not say (see docs in README). ``language``
#: is the site's; ``members`` an empty list.
QUEUE_DEFAULTS: Final[dict[str, Any]] = {
    "music_class": "default",
    "answer_delay_ms": 300,
    "ring_s": 15,
    "retry_s": 2,
    "wrapup_s": 5,
    "autopause_after": 0,
    "ring_busy_agents": False,
    "join_empty": True,
    "leave_empty": False,
    "greeting": False,
    "announce_every_s": 30,
    "announce_position": True,
    "announce_wait": True,
    "whisper": False,
    "sl_threshold_s": 20,
}
MEMBER_DEFAULTS: Final[dict[str, Any]] = {"penalty": 0}
#: A queue's ``callback`` section, when it has one (see core/callback.py).
#: ``offer_ewt_s`` and ``hours`` have none: absent, they are not used.
CALLBACK_DEFAULTS: Final[dict[str, Any]] = {
    "offer_after_s": 60,
    "attempts": 3,
    "retry_s": 300,
    "agent_accept_s": 10,
    "max_class": "national",
    # Wrong numbers a caller may key in before the offer is dropped.
    "max_number_attempts": 3,
}

TRUNK_DEFAULTS: Final[dict[str, Any]] = {
    "port": 5060,
    "number_format": "e164",
    "allows_any_caller_id": True,
}
DIAL_RULE_DEFAULTS: Final[dict[str, Any]] = {"strip": 0, "prepend": ""}
#: A trunk's ``probe`` section, when it has one; host and port default to the trunk's.
PROBE_DEFAULTS: Final[dict[str, Any]] = {"interval_s": 30, "down_after": 3, "up_after": 2}

#: International (and premium) dialling is off unless an admin turns it on.
EXTENSION_DEFAULTS: Final[dict[str, Any]] = {
    "call_class": "national",
    "max_outbound": 2,
    "ring_s": 25,
}
#: Park (``park``, when the section is there): transfer to ``number``, callers wait in
#: ``slots`` numbers from ``first_slot``; after ``timeout_s`` the parker's phone rings
#: for ``ringback_s``. ``on_timeout`` has no default (back to the parker only).
PARK_DEFAULTS: Final[dict[str, Any]] = {
    "number": "700",
    "first_slot": "701",
    "slots": 9,
    "timeout_s": 120,
    "ringback_s": 15,
}
#: Whether an extension's phone may be answered for it (paging, intercom): opt-in.
AUTO_ANSWER_DEFAULT: Final = False
#: The ``numbering`` section, when it has one (``country_code`` is required).
NUMBERING_DEFAULTS: Final[dict[str, Any]] = {
    "area_code": "",
    "national_prefix": "0",
    "international_prefix": "00",
    "emergency": ["112"],
    "premium": [],
}
LIMITS_DEFAULTS: Final[dict[str, Any]] = {"outbound_calls": 2}
#: A route that forwards outside lets the trunk's caller dial out through us: off
#: unless said, so the box is never a free relay for strangers.
ROUTE_DEFAULTS: Final[dict[str, Any]] = {"may_dial_out": False}
#: A menu's settings when config.json does not say (``menus[]``, core/menu.py): keys
#: are taken during the greeting, 7 s of silence after it counts as a try, three tries.
MENU_DEFAULTS: Final[dict[str, Any]] = {
    "dial_extension": False,
    "digit_timeout_s": 3,
    "timeout_s": 7,
    "max_tries": 3,
    "may_dial_out": False,
    "options": [],
}

#: A mailbox's settings: each extension's (``extensions[].voicemail``, on unless
#: ``enabled`` is false) and each shared box's (``voicemail.boxes[]``).
MAILBOX_DEFAULTS: Final[dict[str, Any]] = {
    "enabled": True,
    "max_message_s": 120,
    # Seconds of silence that end a message, as a hang-up would (0: only # or hanging up).
    "silence_end_s": 10,
    "max_messages": 100,
}

#: The ``voicemail`` section: shared boxes, and the whole box's quota (protects the SD card).
VOICEMAIL_DEFAULTS: Final[dict[str, Any]] = {
    "boxes": [],
    "max_total_mb": 500,
}

#: The ``retention`` section (core/retention.py): days each kind is kept, and one cap on
#: the audio (recordings and voicemail together) that protects the SD card; 0 is off.
#:
#: * ``recordings_days`` 90: a quarter is long enough to settle a complaint or coach an
#:   agent from a call, and short enough that a recording is no longer kept than its use.
#: * ``voicemail_days`` 60: a message is for acting on; two months covers a holiday, and an
#:   old message kept is a caller's voice kept for nothing.
#: * ``call_records_days`` 730: two years of call records (a few hundred bytes each) keep
#:   year-on-year reports and a caller's history; older ones answer no question.
#: * ``audio_max_mb`` 4000: a quarter of a 16 GB card, the smallest sold today (about 70 hours
#:   of 8 kHz audio). With the system (about 3 GB) the card stays well under half full, which
#:   leaves its wear levelling room; a bigger card may take more.
RETENTION_DEFAULTS: Final[dict[str, int]] = {
    "recordings_days": 90,
    "voicemail_days": 60,
    "call_records_days": 730,
    "audio_max_mb": 4000,
}

#: The ``failover`` section, when it has one (see core/failover.py).
FAILOVER_DEFAULTS: Final[dict[str, Any]] = {
    "ring": "sequential",
    "when_no_agents": True,
    "pass_caller_id": True,
    "accept_s": 10,
}
#: ``failover.targets[]``: a forwarded caller rings a target this long; ``accept``: the
#: person answering must press 1, so a mobile's voicemail never takes the call.
FORWARD_TARGET_DEFAULTS: Final[dict[str, Any]] = {"timeout_s": 20, "accept": True}

#: The ``screenpop`` section, when it has one: the external lookup's time budget.
SCREENPOP_DEFAULTS: Final[dict[str, Any]] = {"lookup_timeout_ms": 300}

#: The front panel's GPIO pins (BCM numbers) when config.json's ``device`` section does not
#: say: see appliance/device/panel.py for the wiring. ``active_high: false`` is an LED
#: switched from 3V3 to the pin; ``pull_up: true`` is a button from the pin to GND.
DEVICE_DEFAULTS: Final[dict[str, Any]] = {
    "leds": {
        "status": {"pin": 17, "active_high": True},
        "line": {"pin": 27, "active_high": True},
        "queue": {"pin": 22, "active_high": True},
        "failover": {"pin": 23, "active_high": True},
    },
    "buttons": {
        # Held this many seconds to toggle disaster mode.
        "failover": {"pin": 5, "pull_up": True, "hold_s": 3},
        "night": {"pin": 6, "pull_up": True},
    },
}
#: The serial modems' settings when ``device.modems`` does not say (the ports have none):
#: see appliance/device/modem.py. ``window_s``: how far apart the caller-ID block and the
#: FXO gateway's INVITE may be.
MODEM_DEFAULTS: Final[dict[str, dict[str, int]]] = {
    "caller_id": {"baudrate": 9600, "window_s": 10},
    "sms": {"baudrate": 115200, "max_per_hour": 6, "min_gap_s": 60, "retries": 2},
}
