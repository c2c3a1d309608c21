"""Provisioning decisions: MACs, file names, who is served, the miss limit, line keys."""

from __future__ import annotations

import pytest

from appliance.core.provision import (
    DeviceAccess,
    FileRequest,
    MissLimiter,
    decide,
    in_subnets,
    is_miss,
    line_keys,
    normalise_mac,
    parse_file,
    pretty_mac,
)

PATTERNS = {
    "yealink": [("y000000000000.cfg", "common"), ("y0000000000{model}.cfg", "common"),
                ("{mac}.cfg", "device")],
    "grandstream": [("cfg{mac}.xml", "device"), ("cfg.xml", "common")],
    "snom": [("{MAC}.xml", "device"), ("snom{model}-{MAC}.htm", "device"),
             ("snom{model}.htm", "common")],
}
LAN = ("192.168.0.0/16", "127.0.0.0/8")


@pytest.mark.parametrize("text", ["00:15:65:12:34:AB", "00-15-65-12-34-ab", "0015651234Ab",
                                  " 00:15:65:12:34:ab "])
def test_mac_forms_the_page_accepts_are_normalised(text: str) -> None:
    assert normalise_mac(text) == "0015651234ab"


@pytest.mark.parametrize("text", ["", "0015651234a", "0015651234abc", "00:15:65:12:34",
                                  "00:15-65:12:34:ab", "zz15651234ab", "000000000000",
                                  "00:15:65:12:34:ab;x"])
def test_malformed_macs_are_refused(text: str) -> None:
    assert normalise_mac(text) is None


def test_pretty_mac() -> None:
    assert pretty_mac("0015651234ab") == "00:15:65:12:34:ab"


@pytest.mark.parametrize(("name", "expected"), [
    ("0015651234ab.cfg", FileRequest("yealink", "0015651234ab", "device")),
    ("y000000000000.cfg", FileRequest("yealink", None, "common")),
    ("y000000000028.cfg", FileRequest("yealink", None, "common")),
    ("cfg000b82123456.xml", FileRequest("grandstream", "000b82123456", "device")),
    ("cfg.xml", FileRequest("grandstream", None, "common")),
    ("000413ABCDEF.xml", FileRequest("snom", "000413abcdef", "device")),
    ("snomD735-000413ABCDEF.htm", FileRequest("snom", "000413abcdef", "device")),
    ("snomD735.htm", FileRequest("snom", None, "common")),
])
def test_each_brand_file_name_names_its_device_or_common_file(
        name: str, expected: FileRequest) -> None:
    assert parse_file(name, PATTERNS) == expected


@pytest.mark.parametrize("name", ["../config.json", "..%2fconfig.json", "0015651234AB.cfg",
                                  "x" * 200, "", "/etc/passwd", "cfg0015651234ab.xml.bak",
                                  "000413abcdef.xml", ".0015651234ab.cfg", "a/b.cfg"])
def test_other_names_map_to_nothing(name: str) -> None:
    assert parse_file(name, PATTERNS) is None


def test_subnets() -> None:
    assert in_subnets("192.168.7.9", LAN)
    assert in_subnets("::ffff:192.168.7.9", LAN)
    assert not in_subnets("8.8.8.8", LAN)
    assert not in_subnets("not-an-ip", LAN)
    assert not in_subnets("192.168.1.1", ["garbage"])


DEVICE = FileRequest("yealink", "0015651234ab", "device")
COMMON = FileRequest("yealink", None, "common")
OPEN = DeviceAccess(window_until=1000.0, secret="s" * 32)


def _decide(**kw: object) -> str:
    args: dict[str, object] = dict(address="192.168.1.20", subnets=LAN, limited=False,
                                   request=DEVICE, device=OPEN, any_open=True, secret=None,
                                   secret_ok_any=False, now=500.0)
    args.update(kw)
    return decide(**args)  # type: ignore[arg-type]


def test_known_device_in_its_window_is_served() -> None:
    assert _decide() == "serve"


def test_after_the_window_it_is_forbidden() -> None:
    assert _decide(now=1000.0) == "forbidden"


def test_its_secret_serves_it_any_time_and_a_wrong_one_does_not() -> None:
    assert _decide(now=99999.0, secret="s" * 32) == "serve"
    assert _decide(secret="t" * 32) == "forbidden"


def test_unknown_mac_and_odd_names_are_not_found() -> None:
    assert _decide(device=None) == "not_found"
    assert _decide(request=None) == "not_found"


def test_outside_the_subnets_nothing_is_looked_up() -> None:
    assert _decide(address="203.0.113.5") == "outside"
    assert _decide(address="203.0.113.5", device=None) == "outside"


def test_a_limited_source_is_told_so_first() -> None:
    assert _decide(limited=True) == "limited"
    assert _decide(limited=True, address="203.0.113.5") == "limited"


def test_common_file_only_while_a_window_is_open_or_with_a_secret() -> None:
    assert _decide(request=COMMON, device=None) == "serve"
    assert _decide(request=COMMON, device=None, any_open=False) == "forbidden"
    assert _decide(request=COMMON, device=None, any_open=False, secret="x" * 32,
                   secret_ok_any=True) == "serve"


def test_which_refusals_count_as_misses() -> None:
    assert is_miss("not_found", DEVICE)  # a MAC nobody added
    assert is_miss("forbidden", DEVICE)  # a known MAC outside its window, a wrong secret
    assert not is_miss("not_found", None)  # y000000000000.boot: no brand's file
    assert not is_miss("outside", DEVICE) and not is_miss("limited", DEVICE)
    assert not is_miss("serve", DEVICE)


def test_miss_limiter_blocks_after_the_limit_then_forgets() -> None:
    lim = MissLimiter(limit=3, window_s=10.0, block_s=60.0)
    assert [lim.miss("10.0.0.1", t) for t in (0.0, 1.0, 2.0)] == [False, False, True]
    assert lim.blocked("10.0.0.1", 30.0)
    assert not lim.blocked("10.0.0.2", 30.0)
    assert not lim.blocked("10.0.0.1", 62.0)


def test_misses_outside_the_window_do_not_add_up() -> None:
    lim = MissLimiter(limit=3, window_s=10.0)
    assert not any(lim.miss("10.0.0.1", t) for t in (0.0, 11.0, 22.0, 33.0))


def test_miss_limiter_memory_is_bounded() -> None:
    lim = MissLimiter(limit=3, max_sources=100)
    for i in range(5000):
        lim.miss(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(lim._misses) <= 100


def test_line_keys() -> None:
    keys = line_keys([{"kind": "blf", "value": "202"},
                      {"kind": "park", "value": "701"},
                      {"kind": "queue_login"}, {"kind": "dnd", "label": "Quiet"},
                      {"kind": "speed", "value": "0612345678", "label": "Boss"}],
                     {"202": "Ann"})
    assert [(k.index, k.type, k.value, k.label) for k in keys] == [
        (1, "blf", "202", "Ann"), (2, "blf", "701", "Park 701"), (3, "speed", "*45", "Queue"),
        (4, "dnd", "*78", "Quiet"), (5, "speed", "0612345678", "Boss")]
