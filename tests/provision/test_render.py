"""The brand templates: each renders a file its phones can read, with the right account
and keys, and a broken template is a clear error at render time and at save time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.control.server import ApiError
from appliance.provision import render
from appliance.store import schema
from appliance.store.config import ha1
from tests.provision.conftest import Box
from tests.support.provfiles import account, grandstream_values, snom_values, yealink_values


def _fetch(box: Box, name: str) -> str:
    answer = box.service.fetch(name, ip="192.168.1.20", user_agent="test", host="10.1.2.3:8080")
    assert answer.status == 200, answer
    return answer.body


@pytest.mark.parametrize(("mac", "name", "family"), [
    ("0015651234ab", "0015651234ab.cfg", "yealink"),
    ("000b82123456", "cfg000b82123456.xml", "grandstream"),
    ("000413abcdef", "000413ABCDEF.xml", "snom"),
])
def test_each_brand_file_holds_the_account_the_edge_accepts(box: Box, mac: str, name: str,
                                                            family: str) -> None:
    box.service.open_window(mac)
    text = _fetch(box, name)
    acct = account(family, text)
    ext = next(d["extension"] for d in box.config["devices"] if d["mac"] == mac)
    assert (acct.server, acct.port, acct.user, acct.auth_name) == ("127.0.0.1", 5060, ext, ext)
    assert ha1(ext, box.config["site"]["sip_domain"], acct.password) == box.ha1(ext)


def test_yealink_keys_time_zone_language_codecs_and_mwi(box: Box) -> None:
    box.service.open_window("0015651234ab")
    v = yealink_values(_fetch(box, "0015651234ab.cfg"))
    assert (v["linekey.2.type"], v["linekey.2.value"], v["linekey.2.label"],
            v["linekey.2.extension"]) == ("16", "202", "Ann", "**")
    assert (v["linekey.3.type"], v["linekey.3.value"]) == ("16", "701")
    assert (v["linekey.4.type"], v["linekey.4.value"]) == ("13", "*45")
    assert v["linekey.5.type"] == "5"
    assert v["account.1.subscribe_mwi"] == "1"
    assert v["account.1.codec.pcmu.priority"] == "1"
    assert v["lang.gui"] == "English"
    assert v["static.auto_provision.server.url"].startswith("http://10.1.2.3:8080/prov/")
    secret = v["static.auto_provision.server.url"].split("/")[4]
    assert len(secret) >= 20


def test_grandstream_keys_and_snom_keys(box: Box) -> None:
    box.service.open_window("000b82123456")
    g = grandstream_values(_fetch(box, "cfg000b82123456.xml"))
    assert (g["P323"], g["P303"], g["P1347"], g["P99"]) == ("1", "201", "**", "1")
    box.service.open_window("000413abcdef")
    s, keys = snom_values(_fetch(box, "000413ABCDEF.xml"))
    assert s["setting_server"].endswith("/{MAC}.xml")
    assert keys[0][1] == f"blf <sip:201@{box.config['site']['sip_domain']}>|**"
    assert keys[1][1] == "speed 0612345678"


def test_common_files_render_without_a_password(box: Box) -> None:
    box.service.open_window("0015651234ab")
    for name in ("y000000000000.cfg", "cfg.xml", "snomD735.htm"):
        text = _fetch(box, name)
        assert "password" not in text.lower() and "P34" not in text
    assert "static.auto_provision.server.url = http://10.1.2.3:8080/prov/\n" in \
        _fetch(box, "y000000000000.cfg")


def test_a_name_cannot_inject_a_setting(box: Box) -> None:
    doc = box.store.load_raw()
    doc["extensions"][0]["name"] = "Bob\naccount.1.password = x"
    box.admin.save_section("extensions", doc["extensions"])
    box.service.open_window("0015651234ab")
    v = yealink_values(_fetch(box, "0015651234ab.cfg"))
    assert v["account.1.display_name"] == "Bob account.1.password = x"
    assert v["account.1.password"] != "x"


def _broken(tmp_path: Path) -> Path:
    broken = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES, broken)
    text = (broken / "yealink.cfg.tmpl").read_text().splitlines()
    text[5] = "account.1.password = {{ passwrod }}"
    (broken / "yealink.cfg.tmpl").write_text("\n".join(text))
    (broken / "snom.xml.tmpl").write_text("<settings>{% if %}</settings>\n")
    return broken


def test_a_template_that_does_not_render_names_itself(tmp_path: Path) -> None:
    broken = _broken(tmp_path)
    with pytest.raises(render.TemplateProblem, match=r"yealink\.cfg\.tmpl: 'passwrod' is "
                                                     "undefined"):
        render.check("yealink", templates=broken)
    with pytest.raises(render.TemplateProblem, match=r"snom\.xml\.tmpl, line 1: "):
        render.check("snom", templates=broken)


def test_a_template_that_does_not_render_is_refused_at_save_time(
        box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "TEMPLATES", _broken(tmp_path))
    doc = box.store.load_raw()
    assert schema.problems(doc) == []  # loading still works: the engine starts
    with pytest.raises(ApiError) as refused:
        box.admin.save_section("devices", doc["devices"])
    found = refused.value.details["problems"]
    assert "devices: template snom.xml.tmpl, line 1: Expected an expression, got " \
           "'end of statement block'" in found
    assert any(p.startswith("devices: template yealink.cfg.tmpl: 'passwrod'") for p in found)


def test_every_model_has_a_family_with_a_template() -> None:
    for model in render.models():
        assert render.family_of(model) in render.families()
    for family in render.families():
        render.check(family)


def test_time_zones() -> None:
    assert render.tz_offset("Europe/Berlin") == "+1"
    assert render.tz_offset("America/New_York") == "-5"
    assert render.tz_offset("Asia/Kolkata") == "+5.5"
    assert render.tz_offset("UTC") == "0"
    assert render.posix_tz("Europe/Berlin").startswith("CET-1CEST")
    assert render.posix_tz("../../etc/passwd") == "UTC0"
