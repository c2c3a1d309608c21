"""Failed-authentication bans: the offender hears nothing, everyone else carries on."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.edge.process import Edge, send_options
from tests.edge.conftest import Site
from tests.support.ports import free_port

pytestmark = pytest.mark.sip

OFFENDER = "127.0.0.2"
BYSTANDER = "127.0.0.3"


def test_wrong_passwords_ban_only_their_source(site: Site, edge: Edge, tmp_path: Path) -> None:
    failures = site.config["edge"]["ban"]["failures"]

    attack = site.register("201", password="guess", scenario="register_wrong.xml",
                           ip=OFFENDER, calls=failures, rate=20, workdir=tmp_path / "attack")
    assert attack.ok, attack.describe()
    assert attack.statuses().count(403) == failures

    # Banned: even the right password gets no answer at all, and neither does a ping.
    banned = site.register("201", ip=OFFENDER, timeout=2, workdir=tmp_path / "banned")
    assert not banned.ok
    assert banned.received() == [], banned.describe()
    assert send_options(site.runtime.bind, site.runtime.edge_port, 0.5,
                        source=(OFFENDER, free_port())) is None

    # Another phone on the same host registers and is called as usual.
    call, answered = site.engine_calls_phone("203", ip=BYSTANDER, workdir=tmp_path)
    assert call.ok, call.describe()
    assert 200 in call.statuses()
    assert answered.ok, answered.describe()
    assert send_options(site.runtime.bind, site.runtime.edge_port, 0.5,
                        source=(BYSTANDER, free_port())) == 200


def test_engine_is_never_banned(site: Site, edge: Edge, tmp_path: Path) -> None:
    # The engine's exact address and port: wrong credentials from it are refused,
    # but never counted, so it keeps reaching the edge.
    failures = site.config["edge"]["ban"]["failures"]
    attempts = site.engine_call("201", scenario="register_wrong.xml", calls=failures + 1,
                                rate=20, workdir=tmp_path / "wrong",
                                auth=("201", "guess"))
    assert attempts.ok, attempts.describe()
    assert attempts.statuses().count(403) == failures + 1

    assert send_options(site.runtime.bind, site.runtime.edge_port, 0.5,
                        source=(site.runtime.bind, site.runtime.engine_port)) == 200
