"""A data dir with the demo config, the real settings service, and provisioning on it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appliance.control.admin import AdminService
from appliance.provision.service import ProvisionService
from appliance.store import schema
from appliance.store.config import ConfigStore
from tests.support.stack import make_data_dir

DEVICES = [
    {"mac": "0015651234ab", "model": "yealink/T46U", "extension": "201",
     "keys": [{"kind": "blf", "value": "202", "label": "Ann"}, {"kind": "park", "value": "701"},
              {"kind": "queue_login"}, {"kind": "dnd"}]},
    {"mac": "000b82123456", "model": "grandstream/GXP2170", "extension": "202",
     "keys": [{"kind": "blf", "value": "201"}]},
    {"mac": "000413abcdef", "model": "snom/D735", "extension": "203",
     "keys": [{"kind": "blf", "value": "201"}, {"kind": "speed", "value": "0612345678"}]},
]


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Box:
    """The engine's side of provisioning, on a real config store."""

    store: ConfigStore
    admin: AdminService
    service: ProvisionService
    clock: Clock
    holder: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.holder["config"])

    def ha1(self, ext: str) -> str:
        return str(next(e["ha1"] for e in self.config["extensions"] if e["number"] == ext))


def make_box(base: Path, *, sip_server: str | None = "127.0.0.1", sip_port: int = 5060,
             edit: dict[str, Any] | None = None) -> Box:
    made = make_data_dir(base, edit={"devices": copy.deepcopy(DEVICES), **(edit or {})})
    store = ConfigStore(made.runtime.config_path)
    holder: dict[str, Any] = {"config": store.load()}
    clock = Clock()
    box: Box

    def apply(config: dict[str, Any]) -> None:
        holder["config"] = config
        box.service.config_changed(config)

    admin = AdminService(store, made.runtime.music_dir, check=lambda d: [], apply=apply)
    service = ProvisionService(made.runtime.data_dir / "provisioning.json",
                               config=lambda: holder["config"],
                               set_password=admin.extension_password,
                               sip_server=sip_server, sip_port=sip_port, clock=clock)
    box = Box(store, admin, service, clock, holder)
    assert schema.problems(store.load_raw()) == []
    return box


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)
