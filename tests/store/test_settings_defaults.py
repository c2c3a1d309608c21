"""Settings defaults: normalise() fills every one, and the callback's number tries validate.

The defaults are written once, in appliance/core/defaults.py; readers index the
normalised config. These tests pin what a config that says nothing means, so a
changed default is a visible decision rather than a drift between two copies.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from appliance.core import defaults
from appliance.core.callback import CallbackRules
from appliance.store import schema

#: The least config.json the schema accepts, with each optional section present but
#: empty (``numbering`` needs its country code, a route its number and destination).
MINIMAL: dict[str, Any] = {
    "schema": 1,
    "site": {"name": "Office", "sip_domain": "pbx.example.com"},
    "edge": {"ban": {"failures": 5, "window_s": 60, "ban_s": 300}},
    "extensions": [{"number": "201", "name": "Reception"}],
    "queues": [
        {
            "name": "support",
            "number": "500",
            "strategy": "linear",
            "members": [{"extension": "201"}],
            "callback": {},
        }
    ],
    "trunks": [
        {
            "name": "pstn",
            "kind": "sip",
            "host": "192.0.2.10",
            "allow": ["192.0.2.10"],
            "dial_rules": [{"pattern": "9."}],
            "probe": {},
        }
    ],
    "music": [{"class": "default", "file": "moh-default.wav"}],
    "numbering": {"country_code": "1"},
    "routes": [{"did": "+15550100", "to": {"queue": "support"}}],
    "schedules": [{"name": "office", "week": {"mon": ["09:00-17:00"]}}],
    "failover": {"targets": [{"number": "+15557654321"}]},
    "screenpop": {},
}


def minimal() -> dict[str, Any]:
    return copy.deepcopy(MINIMAL)


def test_the_minimal_config_is_valid() -> None:
    assert schema.problems(minimal(), require_secrets=False) == []


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


# (where in the normalised config, the value a config that says nothing gets)
FILLED: list[Any] = [
    pytest.param(("site", "language"), "en", id="site-language"),
    pytest.param(("queues", 0, "language"), "en", id="queue-language-is-the-sites"),
    pytest.param(("queues", 0, "music_class"), "default", id="music-class"),
    pytest.param(("queues", 0, "answer_delay_ms"), 300, id="answer-delay"),
    pytest.param(("queues", 0, "ring_s"), 15, id="queue-ring"),
    pytest.param(("queues", 0, "retry_s"), 2, id="queue-retry"),
    pytest.param(("queues", 0, "wrapup_s"), 5, id="wrapup"),
    pytest.param(("queues", 0, "autopause_after"), 0, id="autopause"),
    pytest.param(("queues", 0, "ring_busy_agents"), False, id="ring-busy-agents"),
    pytest.param(("queues", 0, "join_empty"), True, id="join-empty"),
    pytest.param(("queues", 0, "leave_empty"), False, id="leave-empty"),
    pytest.param(("queues", 0, "greeting"), False, id="greeting"),
    pytest.param(("queues", 0, "announce_every_s"), 30, id="announce-every"),
    pytest.param(("queues", 0, "announce_position"), True, id="announce-position"),
    pytest.param(("queues", 0, "announce_wait"), True, id="announce-wait"),
    pytest.param(("queues", 0, "whisper"), False, id="whisper"),
    pytest.param(("queues", 0, "sl_threshold_s"), 20, id="service-level-threshold"),
    pytest.param(("queues", 0, "members", 0, "penalty"), 0, id="member-penalty"),
    pytest.param(("queues", 0, "callback", "offer_after_s"), 60, id="callback-offer-after"),
    pytest.param(("queues", 0, "callback", "attempts"), 3, id="callback-attempts"),
    pytest.param(("queues", 0, "callback", "retry_s"), 300, id="callback-retry"),
    pytest.param(("queues", 0, "callback", "agent_accept_s"), 10, id="callback-agent-accept"),
    pytest.param(("queues", 0, "callback", "max_class"), "national", id="callback-max-class"),
    pytest.param(("queues", 0, "callback", "max_number_attempts"), 3, id="callback-number-tries"),
    pytest.param(("trunks", 0, "port"), 5060, id="trunk-port"),
    pytest.param(("trunks", 0, "number_format"), "e164", id="trunk-number-format"),
    pytest.param(("trunks", 0, "allows_any_caller_id"), True, id="trunk-any-caller-id"),
    pytest.param(("trunks", 0, "dial_rules", 0, "strip"), 0, id="dial-rule-strip"),
    pytest.param(("trunks", 0, "dial_rules", 0, "prepend"), "", id="dial-rule-prepend"),
    pytest.param(("trunks", 0, "probe", "interval_s"), 30, id="probe-interval"),
    pytest.param(("trunks", 0, "probe", "down_after"), 3, id="probe-down-after"),
    pytest.param(("trunks", 0, "probe", "up_after"), 2, id="probe-up-after"),
    pytest.param(("extensions", 0, "call_class"), "national", id="extension-call-class"),
    pytest.param(("extensions", 0, "max_outbound"), 2, id="extension-max-outbound"),
    pytest.param(("extensions", 0, "ring_s"), 25, id="extension-ring"),
    pytest.param(("numbering", "area_code"), "", id="area-code"),
    pytest.param(("numbering", "national_prefix"), "0", id="national-prefix"),
    pytest.param(("numbering", "international_prefix"), "00", id="international-prefix"),
    pytest.param(("numbering", "emergency"), ["112"], id="emergency"),
    pytest.param(("numbering", "premium"), [], id="premium"),
    pytest.param(("limits", "outbound_calls"), 2, id="outbound-calls"),
    pytest.param(("routes", 0, "may_dial_out"), False, id="route-may-dial-out"),
    pytest.param(("schedules", 0, "holidays"), [], id="holidays"),
    pytest.param(("failover", "ring"), "sequential", id="failover-ring"),
    pytest.param(("failover", "when_no_agents"), True, id="failover-when-no-agents"),
    pytest.param(("failover", "pass_caller_id"), True, id="failover-pass-caller-id"),
    pytest.param(("failover", "accept_s"), 10, id="failover-accept"),
    pytest.param(("failover", "targets", 0, "timeout_s"), 20, id="target-timeout"),
    pytest.param(("failover", "targets", 0, "accept"), True, id="target-accept"),
    pytest.param(("screenpop", "lookup_timeout_ms"), 300, id="lookup-timeout"),
    pytest.param(("retention", "recordings_days"), 90, id="retention-recordings"),
    pytest.param(("retention", "voicemail_days"), 60, id="retention-voicemail"),
    pytest.param(("retention", "call_records_days"), 730, id="retention-call-records"),
    pytest.param(("retention", "audio_max_mb"), 4000, id="retention-audio-cap"),
]


@pytest.mark.parametrize(("path", "value"), FILLED)
def test_normalise_fills_each_default(path: tuple[Any, ...], value: Any) -> None:
    assert _at(schema.normalise(minimal()), path) == value


TABLES = [
    (("site",), defaults.SITE_DEFAULTS),
    (("queues", 0), defaults.QUEUE_DEFAULTS),
    (("queues", 0, "members", 0), defaults.MEMBER_DEFAULTS),
    (("queues", 0, "callback"), defaults.CALLBACK_DEFAULTS),
    (("trunks", 0), defaults.TRUNK_DEFAULTS),
    (("trunks", 0, "dial_rules", 0), defaults.DIAL_RULE_DEFAULTS),
    (("trunks", 0, "probe"), defaults.PROBE_DEFAULTS),
    (("extensions", 0), defaults.EXTENSION_DEFAULTS),
    (("numbering",), defaults.NUMBERING_DEFAULTS),
    (("limits",), defaults.LIMITS_DEFAULTS),
    (("routes", 0), defaults.ROUTE_DEFAULTS),
    (("failover",), defaults.FAILOVER_DEFAULTS),
    (("failover", "targets", 0), defaults.FORWARD_TARGET_DEFAULTS),
    (("screenpop",), defaults.SCREENPOP_DEFAULTS),
    (("retention",), defaults.RETENTION_DEFAULTS),
]


@pytest.mark.parametrize(
    ("path", "table"),
    [pytest.param(path, table, id=".".join(map(str, path))) for path, table in TABLES],
)
def test_normalise_fills_every_key_of_each_defaults_table(
    path: tuple[Any, ...], table: dict[str, Any]
) -> None:
    part = _at(schema.normalise(minimal()), path)
    assert {k: part.get(k) for k in table} == table


def test_normalised_config_is_valid_and_the_input_is_untouched() -> None:
    doc = minimal()
    out = schema.normalise(doc)
    assert schema.problems(out, require_secrets=False) == []
    assert doc == MINIMAL


def test_filled_lists_are_not_shared_between_configs() -> None:
    first = schema.normalise(minimal())
    first["numbering"]["emergency"].append("911")
    assert schema.normalise(minimal())["numbering"]["emergency"] == ["112"]
    assert defaults.NUMBERING_DEFAULTS["emergency"] == ["112"]


def test_optional_sections_stay_absent() -> None:
    doc = minimal()
    for key in ("numbering", "failover", "screenpop"):
        del doc[key]
    del doc["queues"][0]["callback"]
    del doc["trunks"][0]["probe"]
    out = schema.normalise(doc)
    assert not {"numbering", "failover", "screenpop", "device"} & set(out)
    assert "callback" not in out["queues"][0] and "probe" not in out["trunks"][0]


def test_a_set_value_is_kept() -> None:
    doc = minimal()
    doc["queues"][0].update(sl_threshold_s=45, answer_delay_ms=0)
    doc["queues"][0]["callback"] = {"max_number_attempts": 5}
    q = schema.normalise(doc)["queues"][0]
    assert (q["sl_threshold_s"], q["answer_delay_ms"]) == (45, 0)
    assert q["callback"]["max_number_attempts"] == 5


# ---- callback.max_number_attempts -------------------------------------------------------

PATH = "queues[0].callback.max_number_attempts"


def with_tries(value: Any) -> dict[str, Any]:
    doc = minimal()
    doc["queues"][0]["callback"] = {"max_number_attempts": value}
    return doc


@pytest.mark.parametrize("tries", [1, 3, 9])
def test_number_tries_in_range_are_valid(tries: int) -> None:
    assert schema.problems(with_tries(tries), require_secrets=False) == []


@pytest.mark.parametrize(
    ("tries", "problem"),
    [
        pytest.param(0, f"{PATH}: 0 is out of range (1 to 9)", id="too-low"),
        pytest.param(10, f"{PATH}: 10 is out of range (1 to 9)", id="too-high"),
        pytest.param("3", f"{PATH}: expected a whole number, got str '3'", id="string"),
        pytest.param(2.5, f"{PATH}: expected a whole number, got float 2.5", id="float"),
        pytest.param(True, f"{PATH}: expected a whole number, got bool True", id="bool"),
        pytest.param(None, f"{PATH}: expected a whole number, got NoneType None", id="null"),
    ],
)
def test_number_tries_out_of_range_or_wrong_type_name_the_field(tries: Any, problem: str) -> None:
    assert schema.problems(with_tries(tries), require_secrets=False) == [problem]


def test_number_tries_reach_the_callback_rules() -> None:
    """The engine builds its rules from the normalised config: set, and left out."""
    queue = schema.normalise(with_tries(5))["queues"][0]
    assert CallbackRules.from_config(queue["callback"]).max_number_attempts == 5
    queue = schema.normalise(minimal())["queues"][0]
    assert CallbackRules.from_config(queue["callback"]).max_number_attempts == 3
