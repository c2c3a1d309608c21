"""Desk-phone provisioning end to end: Kamailio and the engine running, the web's /prov/
route, and sipp as the phones.

For each brand, the file a phone fetches (right after Provision is pressed) is parsed
as that phone would, and a real SIP client registers with exactly the server, port,
user, auth name and password it holds: 200 OK from the edge. An unknown MAC and an
address outside the LAN are refused and logged. Then one phone's keys change: the
registered phone gets a SIP NOTIFY check-sync through the edge and fetches its file
again with its own URL (the window is long closed for a real phone by then; the secret
URL is what it keeps).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from appliance.control.client import EngineClient
from appliance.edge.rpc import registered_contacts
from tests.support.ports import free_port
from tests.support.provfiles import account, yealink_values
from tests.support.sipp import Sipp, run_sipp, wait_until
from tests.support.stack import make_data_dir, running_stack
from web import create_app

pytestmark = pytest.mark.sip

DEVICES: list[dict[str, Any]] = [
    {"mac": "0015651234ab", "model": "yealink/T46U", "extension": "201",
     "keys": [{"kind": "blf", "value": "202"}]},
    {"mac": "000b82123456", "model": "grandstream/GXP2170", "extension": "202"},
    {"mac": "000413abcdef", "model": "snom/D735", "extension": "203"},
]
FILES = [("0015651234ab", "0015651234ab.cfg", "yealink"),
         ("000b82123456", "cfg000b82123456.xml", "grandstream"),
         ("000413abcdef", "000413ABCDEF.xml", "snom")]


def check_syncs(phone: Sipp) -> list[str]:
    """The check-sync NOTIFYs the phone received (from sipp's message trace)."""
    try:
        log = phone.messages_path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return re.findall(r"^NOTIFY sip:\S+ SIP/2\.0\r?\n(?:.*\r?\n)*?Event: (check-sync[^\r\n]*)",
                      log, re.M)


def test_each_brand_file_registers_a_phone_and_a_key_change_resyncs_it(
        tmp_path: Path) -> None:
    site = make_data_dir(tmp_path, edit={"devices": copy.deepcopy(DEVICES)})
    with running_stack(site, tmp_path / "engine.log") as engine:
        control = EngineClient(site.runtime.control_socket)
        web = create_app({"TESTING": True, "SECRET_KEY": "t",
                          "KEEPLINE_RUNTIME": site.runtime}).test_client()
        edge = site.runtime.edge_port
        accounts = {}
        for mac, name, family in FILES:
            control.request("POST", f"/provision/{mac}/open")
            got = web.get(f"/prov/{name}", headers={"User-Agent": f"{family}-phone 1.0"})
            assert got.status_code == 200, (name, got.status_code)
            acct = account(family, got.get_data(as_text=True))
            assert (acct.server, acct.port) == ("127.0.0.1", edge)
            accounts[family] = (acct, got.get_data(as_text=True))
            registered = run_sipp("register_ok.xml", f"{acct.server}:{acct.port}",
                                  service=acct.user, auth=(acct.auth_name, acct.password),
                                  keys={"domain": acct.server}, workdir=tmp_path / family)
            assert registered.ok, registered.describe()
            assert registered.statuses() == [401, 200]
        # The password the extension had before is gone: the phone's is the one now.
        old = run_sipp("register_wrong.xml", f"127.0.0.1:{edge}", local_ip="127.0.0.41",
                       service="201", auth=("201", site.passwords["201"]),
                       keys={"domain": "127.0.0.1"}, workdir=tmp_path / "old")
        assert old.ok and old.statuses() == [401, 403], old.describe()

        # Refusals: a MAC nobody added, an address outside the LAN subnets.
        assert web.get("/prov/001565999999.cfg").status_code == 404
        assert web.get("/prov/0015651234ab.cfg",
                       environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403
        assert wait_until(lambda: "001565999999.cfg refused to 127.0.0.1 with 404"
                          in engine.log() and "0015651234ab.cfg refused to 203.0.113.9 with "
                          "403" in engine.log(), 5), engine.log()
        shown = control.request("GET", "/provision")
        assert shown["devices"]["0015651234ab"]["last_fetch"]["user_agent"] == \
            "yealink-phone 1.0"

        acct, text = accounts["yealink"]
        own_url = yealink_values(text)["static.auto_provision.server.url"]
        with Sipp("register_and_wait.xml", f"127.0.0.1:{edge}", service="201",
                  auth=("201", acct.password), keys={"domain": "127.0.0.1"},
                  ooc_scenario="notify_ok.xml", timeout=20, media_port=free_port(),
                  workdir=tmp_path / "phone") as phone:
            # Its own contact (the one-shot registrations above left theirs).
            assert wait_until(lambda: any(c.endswith(f"@{phone.address}") for c in
                                          registered_contacts(site.runtime, "201")), 5)
            devices = copy.deepcopy(DEVICES)
            devices[0]["keys"] = [{"kind": "blf", "value": "203", "label": "Bea"}]
            control.request("PUT", "/config/devices", {"value": devices})
            # Within the mwi thread's next round (up to 5 s here: the lamp NOTIFYs to the
            # one-shot phones above wait for their time-out first).
            assert wait_until(lambda: check_syncs(phone), 8), phone.messages_path.read_text()
            assert check_syncs(phone) == ["check-sync;reboot=false"]
            assert control.request("GET", "/provision")["devices"]["0015651234ab"][
                "needs"] == "settings"
            again = web.get(urlsplit(own_url).path + "0015651234ab.cfg")
            assert again.status_code == 200
            values = yealink_values(again.get_data(as_text=True))
            assert (values["linekey.2.value"], values["linekey.2.label"]) == ("203", "Bea")
            assert values["account.1.password"] == acct.password  # unchanged: still registered
            assert control.request("GET", "/provision")["devices"]["0015651234ab"][
                "needs"] == ""
            phone.stop()
