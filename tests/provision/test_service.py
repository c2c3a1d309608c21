"""Who gets a provisioning file: known MACs, LAN subnets, the window or the secret; the
miss limit; the log; passwords and re-provisioning."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from appliance.provision.service import Answer
from appliance.store.config import ha1
from tests.provision.conftest import Box, make_box
from tests.support.provfiles import account

LAN_IP = "192.168.1.20"


def get(box: Box, path: str, ip: str = LAN_IP, ua: str = "Yealink SIP-T46U 108.86.0.45"
        ) -> Answer:
    return box.service.fetch(path, ip=ip, user_agent=ua, host="192.168.1.2:8080")


def test_nothing_is_served_before_provision_is_pressed(box: Box) -> None:
    assert get(box, "0015651234ab.cfg").status == 403
    assert get(box, "y000000000000.cfg").status == 403


def test_in_the_window_the_file_is_served_and_the_fetch_shown(box: Box) -> None:
    opened = box.service.open_window("0015651234ab")
    assert opened["window_until"] == box.clock.now + 30 * 60
    answer = get(box, "0015651234ab.cfg")
    assert answer.status == 200 and answer.content_type.startswith("text/plain")
    state = box.service.status()
    dev = state["devices"]["0015651234ab"]
    assert dev["last_fetch"]["ip"] == LAN_IP
    assert dev["last_fetch"]["user_agent"] == "Yealink SIP-T46U 108.86.0.45"
    assert dev["provisioned"] and dev["needs"] == ""
    assert state["log"][0]["status"] == 200 and state["log"][0]["file"] == "0015651234ab.cfg"
    assert "password" not in json.dumps(state)
    assert opened["secret"] not in json.dumps(state)


def test_after_the_window_only_the_secret_url_works(box: Box) -> None:
    secret = box.service.open_window("0015651234ab")["secret"]
    box.clock.now += 30 * 60 + 1
    assert get(box, "0015651234ab.cfg").status == 403
    assert get(box, f"{secret}/0015651234ab.cfg").status == 200
    assert get(box, f"{secret}/cfg000b82123456.xml").status == 403  # not its secret
    assert get(box, f"{'x' * len(secret)}/0015651234ab.cfg").status == 403
    assert box.service.status()["log"][0]["status"] == 403


def test_unknown_mac_is_404_and_logged(box: Box, caplog: pytest.LogCaptureFixture) -> None:
    box.service.open_window("0015651234ab")
    assert get(box, "001565999999.cfg").status == 404
    entry = box.service.status()["log"][0]
    assert (entry["file"], entry["status"], entry["ip"], entry["mac"]) == \
        ("001565999999.cfg", 404, LAN_IP, "001565999999")
    assert "001565999999.cfg refused to 192.168.1.20 with 404" in caplog.text


def test_a_file_of_another_brand_for_a_known_mac_is_404(box: Box) -> None:
    box.service.open_window("0015651234ab")
    assert get(box, "cfg0015651234ab.xml").status == 404


def test_outside_the_subnets_is_403_even_in_the_window(box: Box) -> None:
    box.service.open_window("0015651234ab")
    assert get(box, "0015651234ab.cfg", ip="203.0.113.7").status == 403
    entry = box.service.status()["log"][0]
    assert (entry["ip"], entry["status"]) == ("203.0.113.7", 403)


def test_configured_subnets_replace_the_defaults(tmp_path: Path) -> None:
    box = make_box(tmp_path, edit={"provisioning": {"subnets": ["10.9.0.0/16"]}})
    box.service.open_window("0015651234ab")
    assert get(box, "0015651234ab.cfg").status == 403
    assert get(box, "0015651234ab.cfg", ip="10.9.1.1").status == 200


@pytest.mark.parametrize("path", ["../config.json", "..%2F..%2Fconfig.json", "a/b/c.cfg",
                                  "x" * 5000, "provisioning.json", "", "%00", "\x00.cfg"])
def test_odd_paths_are_a_plain_404(box: Box, path: str) -> None:
    box.service.open_window("0015651234ab")
    answer = get(box, path)
    assert answer.status == 404 and answer.body == ""
    assert len(box.service.status()["log"][0]["file"]) <= 80


def test_a_guessed_mac_sweep_is_rate_limited(box: Box) -> None:
    box.service.open_window("0015651234ab")
    statuses = [get(box, f"0015650000{i:02x}.cfg").status for i in range(30)]
    assert statuses[:10] == [404] * 10
    assert statuses[10:] == [429] * 20
    # Even the real MAC now: the sweeper learns nothing more.
    assert get(box, "0015651234ab.cfg").status == 429
    # Another phone on the LAN is not affected.
    assert get(box, "0015651234ab.cfg", ip="192.168.1.21").status == 200
    box.clock.now += 301
    assert get(box, "0015651234ab.cfg").status == 200
    assert len(box.service.status()["log"]) == 33


def test_files_no_brand_asks_for_do_not_block_a_booting_phone(box: Box) -> None:
    box.service.open_window("0015651234ab")
    for _ in range(5):
        for name in ("y000000000000.boot", "0015651234ab.boot", "0015651234ab-local.cfg"):
            assert get(box, name).status == 404
    assert get(box, "0015651234ab.cfg").status == 200


def test_pressing_provision_again_tells_the_phone(box: Box) -> None:
    box.service.open_window("0015651234ab")
    assert get(box, "0015651234ab.cfg").status == 200
    box.service.open_window("0015651234ab")
    assert box.service.take_resyncs() == ["201"]
    assert box.service.status()["devices"]["0015651234ab"]["needs"] == "password"


def test_log_and_user_agent_are_bounded(box: Box) -> None:
    for i in range(300):
        box.service.fetch(f"y{i}.cfg", ip=f"10.0.{i // 200}.{i % 200}", user_agent="u" * 5000,
                          host="h")
    status = box.service.status()
    assert len(status["log"]) == 50
    assert len(box.service._log) == 200
    assert len(status["log"][0]["user_agent"]) == 160


def test_provision_sets_the_extension_password_the_file_carries(box: Box) -> None:
    old = box.ha1("201")
    box.service.open_window("0015651234ab")
    assert box.ha1("201") != old
    acct = account("yealink", get(box, "0015651234ab.cfg").body)
    assert ha1("201", box.config["site"]["sip_domain"], acct.password) == box.ha1("201")
    state = box.service.state_path
    assert os.stat(state).st_mode & 0o777 == 0o600
    assert acct.password in state.read_text()
    assert box.service.take_resyncs() == []  # our own password change is no news


def test_a_password_changed_elsewhere_marks_the_phone_and_it_gets_a_new_one(box: Box) -> None:
    secret = box.service.open_window("0015651234ab")["secret"]
    assert get(box, "0015651234ab.cfg").status == 200
    typed = box.admin.extension_password("201")["password"]  # the Extensions page's button
    assert box.service.status()["devices"]["0015651234ab"]["needs"] == "password"
    assert box.service.take_resyncs() == ["201"]
    assert box.service.take_resyncs() == []
    box.clock.now += 3600
    acct = account("yealink", get(box, f"{secret}/0015651234ab.cfg").body)
    assert acct.password != typed
    assert ha1("201", box.config["site"]["sip_domain"], acct.password) == box.ha1("201")
    assert box.service.status()["devices"]["0015651234ab"]["needs"] == ""


def test_changed_keys_mark_the_phone_for_re_provisioning(box: Box) -> None:
    box.service.open_window("0015651234ab")
    box.service.open_window("000b82123456")
    get(box, "0015651234ab.cfg")
    get(box, "cfg000b82123456.xml")
    devices = copy.deepcopy(box.store.load_raw()["devices"])
    devices[0]["keys"] = [{"kind": "blf", "value": "203"}]
    box.admin.save_section("devices", devices)
    status = box.service.status()["devices"]
    assert status["0015651234ab"]["needs"] == "settings"
    assert status["000b82123456"]["needs"] == ""
    assert box.service.take_resyncs() == ["201"]


def test_a_deleted_device_is_forgotten(box: Box) -> None:
    box.service.open_window("0015651234ab")
    devices = box.store.load_raw()["devices"][1:]
    box.admin.save_section("devices", devices)
    assert "0015651234ab" not in box.service.status()["devices"]
    assert "0015651234ab" not in box.service.state_path.read_text()
    assert get(box, "0015651234ab.cfg").status == 404


def test_state_survives_a_restart(tmp_path: Path) -> None:
    box = make_box(tmp_path)
    secret = box.service.open_window("0015651234ab")["secret"]
    from appliance.provision.service import ProvisionService

    again = ProvisionService(box.service.state_path, config=lambda: box.holder["config"],
                             set_password=box.admin.extension_password, sip_server="127.0.0.1",
                             sip_port=5060, clock=box.clock)
    assert again.fetch(f"{secret}/0015651234ab.cfg", ip=LAN_IP, user_agent="",
                       host="h").status == 200


def test_unknown_device_cannot_be_provisioned(box: Box) -> None:
    from appliance.control.server import ApiError

    with pytest.raises(ApiError) as e:
        box.service.open_window("001565999999")
    assert e.value.status == 404
