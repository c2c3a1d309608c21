"""Bad desk-phone settings are refused with the field and the reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from appliance.control.server import ApiError
from tests.provision.conftest import DEVICES, Box


def _refused(box: Box, section: str, value: Any) -> dict[str, str]:
    with pytest.raises(ApiError) as e:
        box.admin.save_section(section, value)
    assert e.value.status == 400
    fields: dict[str, str] = e.value.details["fields"]
    return fields


def _devices(**changes: Any) -> list[dict[str, Any]]:
    devices = copy.deepcopy(DEVICES)
    devices[0].update(changes)
    return devices


def test_malformed_mac(box: Box) -> None:
    fields = _refused(box, "devices", _devices(mac="00:15:65:12:34:AB"))
    assert fields["devices[0].mac"] == ("'00:15:65:12:34:AB' is not a MAC address (12 hex "
                                        "digits, e.g. 00:15:65:12:34:ab)")


def test_duplicate_mac(box: Box) -> None:
    devices = _devices()
    devices[1]["mac"] = devices[0]["mac"]
    fields = _refused(box, "devices", devices)
    assert fields["devices[1].mac"] == "0015651234ab is already used by devices[0]"


def test_one_desk_phone_per_extension(box: Box) -> None:
    devices = _devices()
    devices[1]["extension"] = "201"
    fields = _refused(box, "devices", devices)
    assert fields["devices[1].extension"] == "extension 201 already has a desk phone (devices[0])"


def test_unknown_extension_model_and_key_kind(box: Box) -> None:
    fields = _refused(box, "devices", _devices(extension="299"))
    assert fields["devices[0].extension"] == "no extension '299'"
    fields = _refused(box, "devices", _devices(model="yealink/T99"))
    assert fields["devices[0].model"].startswith("unknown model 'yealink/T99' (expected one")
    fields = _refused(box, "devices", _devices(keys=[{"kind": "lamp", "value": "202"}]))
    assert fields["devices[0].keys[0].kind"].startswith("unknown key kind 'lamp'")


def test_keys_that_do_not_fit_or_point_nowhere(box: Box) -> None:
    fields = _refused(box, "devices", _devices(model="yealink/T31P"))
    assert fields["devices[0].keys"] == "yealink/T31P has 2 line keys for these, 4 were given"
    fields = _refused(box, "devices", _devices(keys=[{"kind": "blf", "value": "299"}]))
    assert fields["devices[0].keys[0].value"] == "no extension '299' to watch"
    fields = _refused(box, "devices", _devices(keys=[{"kind": "park", "value": "710"}]))
    assert fields["devices[0].keys[0].value"] == "'710' is not a park slot (701 to 709)"
    fields = _refused(box, "devices", _devices(keys=[{"kind": "dnd", "label": "<b>"}]))
    assert fields["devices[0].keys[0].label"].startswith("1 to 32 characters")


def test_provisioning_settings(box: Box) -> None:
    fields = _refused(box, "provisioning", {"subnets": ["192.168.1.0/33"], "window_min": 0})
    assert fields["provisioning.subnets[0]"] == ("'192.168.1.0/33' is not a subnet "
                                                 "(e.g. 192.168.1.0/24)")
    assert fields["provisioning.window_min"] == "expected minutes from 1 to 1440, got 0"
    fields = _refused(box, "provisioning", {"timezone": "Mars/Olympus"})
    assert fields["provisioning.timezone"] == "unknown time zone 'Mars/Olympus' (e.g. " \
        "Europe/Berlin)"
    box.admin.save_section("provisioning", {"subnets": ["10.1.0.0/16"], "window_min": 5})


def test_good_devices_are_saved(box: Box) -> None:
    devices = _devices(keys=[])
    box.admin.save_section("devices", devices)
    assert box.store.load()["devices"][0]["keys"] == []
