"""config.json schema: every mistake names the field path and the reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from appliance.errors import ConfigError
from appliance.store import schema
from tests.store.conftest import STRATEGY_CHOICES, demo, with_secrets

Edit = Callable[[dict[str, Any]], None]


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def put(*path_and_value: Any) -> Edit:
    """An edit that sets ``doc[p0][p1]... = value``."""
    *path, value = path_and_value

    def edit(doc: dict[str, Any]) -> None:
        _parent(doc, tuple(path))[path[-1]] = copy.deepcopy(value)

    return edit


def drop(*path: Any) -> Edit:
    """An edit that deletes ``doc[p0][p1]...``."""

    def edit(doc: dict[str, Any]) -> None:
        del _parent(doc, path)[path[-1]]

    return edit


# (edit, every problem the validator must report, in order)
MISTAKES: list[Any] = [
    # wrong types
    pytest.param(put("site", "name", 5), ["site.name: expected a string, got int 5"],
                 id="type-site-name-int"),
    pytest.param(put("extensions", {}), ["extensions: expected a list, got dict {}"],
                 id="type-extensions-object"),
    pytest.param(put("edge", "ban", "failures", True),
                 ["edge.ban.failures: expected a whole number, got bool True"],
                 id="type-bool-is-not-a-number"),
    pytest.param(put("trunks", 0, "port", 5090.0),
                 ["trunks[0].port: expected a whole number, got float 5090.0"],
                 id="type-port-float"),
    pytest.param(put("extensions", 0, "number", 201),
                 ["extensions[0].number: expected a string, got int 201"],
                 id="type-extension-number-int"),
    pytest.param(put("queues", 0, "members", 0, "this is not an object"),
                 ["queues[0].members[0]: expected an object, got str 'this is not an object'"],
                 id="type-member-string"),
    # missing required fields
    pytest.param(drop("site", "sip_domain"), ["site.sip_domain: required field is missing"],
                 id="missing-sip-domain"),
    pytest.param(drop("queues", 0, "strategy"), ["queues[0].strategy: required field is missing"],
                 id="missing-strategy"),
    pytest.param(drop("edge"), ["edge: required field is missing"], id="missing-edge"),
    pytest.param(drop("trunks", 0, "allow"), ["trunks[0].allow: required field is missing"],
                 id="missing-allow"),
    # unknown fields (typos)
    pytest.param(put("site", "tz", "Europe/Berlin"),
                 ["site.tz: unknown field (expected one of: name, sip_domain, language, timezone)"],
                 id="unknown-site-field"),
    pytest.param(put("users", [{"name": "Admin!", "role": "boss", "password": "plain"}]),
                 ["users[0].name: 'Admin!' is not a login name (a-z, digits, . _ -)",
                  "users[0].role: unknown role 'boss' (expected one of: admin, agent, "
                  "supervisor, wallboard)",
                  "users[0].password: 'plain' is not a werkzeug scrypt password hash"],
                 id="bad-user"),
    pytest.param(put("users", [{"name": "ann", "role": "agent", "extension": "299",
                                "password": "scrypt:32768:8:1$abcd$" + "0" * 128}]),
                 ["users[0].extension: no extension '299'"], id="user-unknown-extension"),
    pytest.param(put("users", [{"name": "ann", "role": "admin", "crm_url": "ftp://crm/{number}",
                                "crm_open": "yes",
                                "password": "scrypt:32768:8:1$abcd$" + "0" * 128}]),
                 ["users[0].crm_url: 'ftp://crm/{number}' is not an http:// or https:// "
                  "address of up to 300 characters with {number} in it",
                  "users[0].crm_open: expected true or false, got str 'yes'"],
                 id="bad-user-crm"),
    pytest.param(put("users", [{"name": "ann", "role": "admin", "crm_url": "https://crm/",
                                "password": "scrypt:32768:8:1$abcd$" + "0" * 128}]),
                 ["users[0].crm_url: 'https://crm/' is not an http:// or https:// "
                  "address of up to 300 characters with {number} in it"],
                 id="user-crm-without-number"),
    pytest.param(put("screenpop", {"lookup_url": "https://x/" + "a" * 300 + "{number}",
                                   "lookup_timeout_ms": 10, "lookup": True}),
                 ["screenpop.lookup: unknown field (expected one of: lookup_url, "
                  "lookup_timeout_ms)",
                  "screenpop.lookup_url: 'https://x/" + "a" * 300 + "{number}' is not an "
                  "http:// or https:// address of up to 300 characters with {number} in it",
                  "screenpop.lookup_timeout_ms: 10 is out of range (50 to 2000)"],
                 id="bad-screenpop"),
    pytest.param(put("rotues", []),
                 ["rotues: unknown field (expected one of: schema, site, edge, extensions, "
                  "queues, trunks, music, numbering, limits, routes, schedules, failover, users, "
                  "screenpop, supervision, device, menus, voicemail, email, retention, devices, "
                  "provisioning, park, page_groups)"],
                 id="unknown-top-level-field"),
    # the front panel (appliance/device/panel.py)
    pytest.param(put("device", {"leds": {"status": {"pin": 1, "active_high": "yes"},
                                         "power": {}},
                                "buttons": {"night": {"pin": 28, "hold_s": 3}}}),
                 ["device.leds.power: unknown field (expected one of: status, line, queue, "
                  "failover)",
                  "device.leds.status.pin: 1 is out of range (2 to 27)",
                  "device.leds.status.active_high: expected true or false, got str 'yes'",
                  "device.buttons.night.hold_s: unknown field (expected one of: pin, pull_up)",
                  "device.buttons.night.pin: 28 is out of range (2 to 27)"],
                 id="bad-device"),
    pytest.param(put("device", {"leds": {"queue": {"pin": 24}, "failover": {"pin": 24}},
                                "buttons": {"night": {"pin": 17}}}),
                 ["device.leds.failover.pin: GPIO24 is already used by device.leds.queue.pin",
                  "device.buttons.night.pin: GPIO17 is already used by device.leds.status.pin "
                  "(default 17)"],
                 id="device-pin-used-twice"),
    # the serial modems (appliance/device/modem.py)
    pytest.param(put("device", {"modems": {
        "caller_id": {"port": "COM3", "baudrate": 9601, "window_s": 0},
        "sms": {"port": "/dev/ttyUSB2", "to": ["0171 555"], "max_per_hour": 0, "pin": "1234"},
        "fax": {}}}),
                 ["device.modems.fax: unknown field (expected one of: caller_id, sms)",
                  "device.modems.caller_id.port: 'COM3' is not a serial device such as "
                  "/dev/ttyACM0 (or a pyserial URL such as socket://127.0.0.1:7000)",
                  "device.modems.caller_id.baudrate: 9601 is not a serial speed (expected one "
                  "of: 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800)",
                  "device.modems.caller_id.window_s: 0 is out of range (1 to 60)",
                  "device.modems.sms.pin: unknown field (expected one of: port, baudrate, to, "
                  "max_per_hour, min_gap_s, retries)",
                  "device.modems.sms.to[0]: '0171 555' is not an E.164 number such as "
                  "+15550100",
                  "device.modems.sms.max_per_hour: 0 is out of range (1 to 60)"],
                 id="bad-modems"),
    pytest.param(put("device", {"modems": {"caller_id": {"port": "/dev/ttyACM0"},
                                           "sms": {"port": "/dev/ttyACM0", "to": []}}}),
                 ["device.modems.sms.to: needs at least one number to text",
                  "device.modems.sms.port: /dev/ttyACM0 is already the caller-ID modem's port "
                  "(device.modems.caller_id.port)"],
                 id="modems-share-a-port-and-text-nobody"),
    pytest.param(put("device", {"modems": {"sms": {"to": ["+15551234567"]}}}),
                 ["device.modems.sms.port: required field is missing"],
                 id="sms-modem-without-port"),
    pytest.param(put("trunks", 0, "dial_rules", [{"pattern": "9.X", "strip": 1}]),
                 ["trunks[0].dial_rules[0].pattern: dial pattern '9.X': cannot read '.X' "
                  "at position 2"],
                 id="unreadable-dial-pattern"),
    pytest.param(put("trunks", 0, "dial_rules", [{"pattern": "9", "strip": 1}]),
                 ["trunks[0].dial_rules[0].strip: strips the whole pattern '9'"],
                 id="dial-rule-strips-everything"),
    pytest.param(put("extensions", 0, "call_class", "world"),
                 ["extensions[0].call_class: unknown call class 'world' (expected one of: "
                  "internal, local, national, international, premium)"],
                 id="unknown-call-class"),
    pytest.param(put("extensions", 0, "caller_id", "0301234"),
                 ["extensions[0].caller_id: '0301234' is not an E.164 number such as +15550100"],
                 id="caller-id-not-e164"),
    pytest.param(put("numbering", {"country_code": "0049"}),
                 ["numbering.country_code: '0049' is not 1 to 3 digits"],
                 id="country-code-with-prefix"),
    pytest.param(put("routes", [{"did": "+1555010X", "to": {"extension": "299"}}]),
                 ["routes[0].to.extension: no extension '299'"],
                 id="route-to-unknown-extension"),
    pytest.param(put("routes", [{"did": "500", "to": {"queue": "support",
                                                      "extension": "201"}}]),
                 ["routes[0].to: give exactly one of extension, queue, message, number, "
                  "menu, voicemail, hangup, hours"],
                 id="route-with-two-destinations"),
    pytest.param(put("routes", [{"did": "500", "to": {"hours": {
                     "schedule": "office", "open": {"queue": "support"},
                     "closed": {"message": "unavailable"}}}}]),
                 ["routes[0].to.hours.schedule: no schedule 'office'"],
                 id="route-hours-unknown-schedule"),
    pytest.param(put("schedules", [{"name": "office", "week": {"mon": ["17:00-09:00"],
                                                               "tue": ["9-5"]}}]),
                 ["schedules[0].week.mon[0]: '17:00-09:00' ends before it starts",
                  "schedules[0].week.tue[0]: '9-5' is not a time span such as 09:00-17:30"],
                 id="bad-opening-hours"),
    pytest.param(put("schedules", [{"name": "office", "week": {},
                                    "holidays": ["2026-13-01"]}]),
                 ["schedules[0].holidays[0]: '2026-13-01' is not a date such as 2026-12-25"],
                 id="bad-holiday"),
    pytest.param(put("trunks", 0, "number_format", "local"),
                 ["trunks[0].number_format: unknown number format 'local' (expected one of: "
                  "e164, national, international)"],
                 id="unknown-number-format"),
    pytest.param(lambda d: d["queues"][0].update(stratgy=d["queues"][0].pop("strategy")),
                 ["queues[0].stratgy: unknown field (expected one of: name, number, strategy, "
                  "members, music_class, language, answer_delay_ms, ring_s, retry_s, wrapup_s, "
                  "autopause_after, ring_busy_agents, penalty_wait_s, max_wait_s, max_callers, "
                  "overflow, join_empty, leave_empty, greeting, announce_every_s, "
                  "announce_position, announce_wait, breakout, whisper, sl_threshold_s, callback, "
                  "wrapup_codes, survey, record)",
                  "queues[0].strategy: required field is missing"],
                 id="typo-strategy"),
    # out of range
    # queue limits and where callers go
    pytest.param(put("queues", 0, "overflow", {"queue": "sales"}),
                 ["queues[0].overflow.queue: no queue 'sales'"], id="overflow-unknown-queue"),
    pytest.param(put("queues", 0, "overflow", {"queue": "support"}),
                 ["queues[0].overflow.queue: a queue cannot send callers to itself"],
                 id="overflow-to-itself"),
    pytest.param(put("queues", 0, "breakout", {"key": "10", "to": {"extension": "201"}}),
                 ["queues[0].breakout.key: '10' is not one of 0-9, * or #"],
                 id="breakout-key"),
    pytest.param(put("queues", 0, "max_wait_s", 0),
                 ["queues[0].max_wait_s: 0 is out of range (1 to 86400)"], id="max-wait-zero"),
    pytest.param(put("edge", "ban", "failures", 0),
                 ["edge.ban.failures: 0 is out of range (1 to 100)"], id="range-failures"),
    pytest.param(put("trunks", 0, "port", 70000),
                 ["trunks[0].port: 70000 is out of range (1 to 65535)"], id="range-port"),
    pytest.param(put("queues", 0, "members", 0, "penalty", 10),
                 ["queues[0].members[0].penalty: 10 is out of range (0 to 9)"],
                 id="range-penalty"),
    pytest.param(put("queues", 0, "answer_delay_ms", -1),
                 ["queues[0].answer_delay_ms: -1 is out of range (0 to 10000)"],
                 id="range-answer-delay"),
    pytest.param(put("schema", 2), ["schema: 2 is out of range (1 to 1)"], id="range-schema"),
    pytest.param(put("site", "name", "x" * 65), ["site.name: must be 1 to 64 characters"],
                 id="range-name-too-long"),
    pytest.param(put("site", "name", ""), ["site.name: must be 1 to 64 characters"],
                 id="range-name-empty"),
    # unknown choices
    pytest.param(put("queues", 0, "strategy", "rand"),
                 [f"queues[0].strategy: unknown strategy 'rand' (expected one of: "
                  f"{STRATEGY_CHOICES})"],
                 id="choice-strategy"),
    pytest.param(put("site", "language", "fr"),
                 ["site.language: unknown language 'fr' (expected one of: en, de, hu, ms, nl, pt)"],
                 id="choice-language"),
    pytest.param(put("trunks", 0, "kind", "iax"),
                 ["trunks[0].kind: unknown trunk kind 'iax' (expected one of: sip, fxo)"],
                 id="choice-trunk-kind"),
    # bad values
    pytest.param(put("extensions", 0, "number", "2a1"),
                 ["extensions[0].number: '2a1' is not 2 to 6 digits"], id="bad-extension"),
    pytest.param(put("extensions", 0, "ha1", "secret"),
                 ["extensions[0].ha1: 'secret' is not an HA1 digest (32 hex digits)"],
                 id="bad-ha1"),
    pytest.param(put("queues", 0, "name", "Support"),
                 ["queues[0].name: 'Support' is not a lower-case name"], id="bad-queue-name"),
    pytest.param(put("music", 0, "file", "moh.mp3"),
                 ["music[0].file: 'moh.mp3' is not a .wav file name"], id="bad-music-file"),
    pytest.param(put("site", "sip_domain", "pbx office"),
                 ["site.sip_domain: 'pbx office' is not a host name or IPv4 address"],
                 id="bad-sip-domain"),
    # bad IPv4 in a trunk's allow list
    pytest.param(put("trunks", 0, "allow", ["10.0.0.256"]),
                 ["trunks[0].allow[0]: '10.0.0.256' is not an IPv4 address"], id="ipv4-octet"),
    pytest.param(put("trunks", 0, "allow", ["127.0.0.1", "10.0.0"]),
                 ["trunks[0].allow[1]: '10.0.0' is not an IPv4 address"], id="ipv4-short"),
    pytest.param(put("trunks", 0, "allow", ["sip.example.com"]),
                 ["trunks[0].allow[0]: 'sip.example.com' is not an IPv4 address"],
                 id="ipv4-hostname"),
    pytest.param(put("trunks", 0, "allow", ["10.0.0.0/8"]),
                 ["trunks[0].allow[0]: '10.0.0.0/8' is not an IPv4 address"], id="ipv4-cidr"),
    # A trailing newline must not slip through: these values end up in kamailio.cfg
    # and the edge's subscriber table.
    pytest.param(put("trunks", 0, "allow", ["10.0.0.1\n"]),
                 ["trunks[0].allow[0]: '10.0.0.1\\n' is not an IPv4 address"],
                 id="ipv4-trailing-newline"),
    pytest.param(put("site", "sip_domain", "pbx.example.com\n"),
                 ["site.sip_domain: 'pbx.example.com\\n' is not a host name or IPv4 address"],
                 id="host-trailing-newline"),
    pytest.param(put("extensions", 3, "number", "204\n"),
                 ["extensions[3].number: '204\\n' is not 2 to 6 digits"],
                 id="extension-trailing-newline"),
    # cross-field rules
    pytest.param(put("extensions", 3, "number", "201"),
                 ["extensions[3].number: '201' is already used by extensions[0]"],
                 id="duplicate-extension"),
    pytest.param(lambda d: d["queues"].append(copy.deepcopy(d["queues"][0]) | {"number": "501"}),
                 ["queues[1].name: 'support' is already used by queues[0]"],
                 id="duplicate-queue-name"),
    pytest.param(put("queues", 0, "number", "202"),
                 ["queues[0].number: '202' is also an extension"], id="queue-number-is-extension"),
    pytest.param(put("queues", 0, "members", 1, "extension", "299"),
                 ["queues[0].members[1].extension: no extension '299'"],
                 id="member-not-an-extension"),
    pytest.param(put("queues", 0, "music_class", "jazz"),
                 ["queues[0].music_class: no music class 'jazz' (defined: default)"],
                 id="music-class-missing"),
    pytest.param(put("music", 0, "class", "classic"),
                 ["queues[0].music_class: no music class 'default' (defined: classic)"],
                 id="music-class-renamed"),
    pytest.param(lambda d: (d.__setitem__("music", []), d["queues"][0].pop("music_class")),
                 ["queues[0].music_class: no music class 'default' (defined: none)"],
                 id="music-class-implicit-default"),
]


def test_demo_config_is_valid() -> None:
    doc = demo()
    assert schema.problems(doc, require_secrets=False) == []
    assert schema.validate(doc, require_secrets=False) is doc


def test_crm_fields_and_screenpop_lookup_are_accepted() -> None:
    doc = with_secrets(demo())
    doc["users"] = [{"name": "ann", "role": "admin", "crm_url": "https://crm.example/s?p={number}",
                     "crm_open": True, "password": "scrypt:32768:8:1$abcd$" + "0" * 128}]
    doc["screenpop"] = {"lookup_url": "http://10.0.0.5/lookup/{number}",
                        "lookup_timeout_ms": 300}
    assert schema.problems(doc) == []


def test_premium_is_an_extension_call_class_but_no_callback_class() -> None:
    doc = demo()
    doc["extensions"][0]["call_class"] = "premium"
    assert schema.problems(doc, require_secrets=False) == []
    doc["queues"][0]["callback"] = {"max_class": "premium"}
    assert schema.problems(doc, require_secrets=False) == [
        "queues[0].callback.max_class: unknown call class 'premium' (expected one of: "
        "internal, local, national, international)"]


def test_demo_needs_secrets_once_stored() -> None:
    """An import file may leave out HA1s; the stored config may not."""
    assert schema.problems(demo()) == [
        f"extensions[{i}].ha1: required field is missing" for i in range(4)
    ]
    assert schema.problems(with_secrets(demo())) == []


@pytest.mark.parametrize(("edit", "expected"), MISTAKES)
def test_each_mistake_names_path_and_reason(edit: Edit, expected: list[str]) -> None:
    doc = demo()
    edit(doc)
    assert schema.problems(doc, require_secrets=False) == expected
    with pytest.raises(ConfigError) as caught:
        schema.validate(doc, require_secrets=False)
    assert caught.value.problems == expected
    assert str(caught.value) == "\n".join(expected)
    assert isinstance(caught.value, ValueError)


def test_every_field_problem_is_reported_not_just_the_first() -> None:
    doc = demo()
    doc["queues"][0]["strategy"] = "rand"
    doc["trunks"][0]["port"] = 70000
    doc["trunks"][0]["allow"] = ["10.0.0.1", "300.1.1.1"]
    doc["site"]["timezone"] = "Mars/Olympus"
    doc["extensions"][2]["number"] = "2x3"
    del doc["edge"]
    assert schema.problems(doc, require_secrets=False) == [
        "site.timezone: unknown time zone 'Mars/Olympus' (e.g. Europe/Berlin, America/New_York)",
        "edge: required field is missing",
        "extensions[2].number: '2x3' is not 2 to 6 digits",
        f"queues[0].strategy: unknown strategy 'rand' (expected one of: {STRATEGY_CHOICES})",
        "trunks[0].port: 70000 is out of range (1 to 65535)",
        "trunks[0].allow[1]: '300.1.1.1' is not an IPv4 address",
    ]


def test_every_cross_field_problem_is_reported() -> None:
    doc = demo()
    doc["extensions"][3]["number"] = "202"
    doc["queues"][0]["members"].append({"extension": "299"})
    doc["queues"][0]["music_class"] = "jazz"
    assert schema.problems(doc, require_secrets=False) == [
        "extensions[3].number: '202' is already used by extensions[1]",
        "queues[0].members[2].extension: no extension '299'",
        "queues[0].music_class: no music class 'jazz' (defined: default)",
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param([], "expected an object, got list []", id="list"),
        pytest.param("config", "expected an object, got str 'config'", id="string"),
        pytest.param(None, "expected an object, got NoneType None", id="null"),
    ],
)
def test_top_level_must_be_an_object(doc: Any, expected: str) -> None:
    found = schema.problems(doc)
    assert len(found) == 1
    assert found[0].endswith(expected)


def test_empty_object_lists_every_missing_section() -> None:
    assert schema.problems({}) == [
        f"{key}: required field is missing"
        for key in ("schema", "site", "edge", "extensions", "queues", "trunks", "music")
    ]


def test_validation_never_changes_the_input() -> None:
    doc = demo()
    doc["queues"][0]["strategy"] = "rand"
    before = copy.deepcopy(doc)
    schema.problems(doc, require_secrets=False)
    with pytest.raises(ConfigError):
        schema.validate(doc)
    assert doc == before
    good = demo()
    schema.normalise(good)
    assert good == demo()


def test_normalise_fills_defaults_into_a_copy() -> None:
    doc = demo()
    doc["site"]["language"] = "de"
    queue = doc["queues"][0]
    for key in ("music_class", "language"):
        del queue[key]
    del doc["trunks"][0]["port"]
    out = schema.normalise(doc)
    assert out["queues"][0]["music_class"] == "default"
    assert out["queues"][0]["language"] == "de"  # the site's language
    assert out["queues"][0]["answer_delay_ms"] == 300
    assert [m["penalty"] for m in out["queues"][0]["members"]] == [0, 0]
    assert out["trunks"][0]["port"] == 5060
    assert schema.problems(out, require_secrets=False) == []
    assert "port" not in doc["trunks"][0]


@pytest.mark.parametrize("modems", [
    {"caller_id": {"port": "/dev/serial/by-id/usb-Conexant_USB_Modem-if00",
                   "baudrate": 9600, "window_s": 15}},
    {"sms": {"port": "/dev/ttyUSB2", "to": ["+15551234567", "+4915112345678"],
             "max_per_hour": 10, "min_gap_s": 0, "retries": 3}},
    {"caller_id": {"port": "socket://127.0.0.1:7000"}, "sms": {"port": "rfc2217://10.0.0.9:4001",
                                                               "to": ["+15551234567"]}},
])
def test_modem_configs_that_are_accepted(modems: dict[str, Any]) -> None:
    doc = demo()
    doc["device"] = {"modems": modems}
    assert schema.problems(doc, require_secrets=False) == []
