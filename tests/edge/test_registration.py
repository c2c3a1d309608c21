"""Registration, calls through the edge and live password changes, as a phone sees them."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from appliance.edge.process import Edge, EdgeStartError
from appliance.edge.rpc import registered_extensions
from appliance.edge.subscribers import sync_subscribers
from tests.edge.conftest import Site, make_site
from tests.support.sipp import Sipp, run_sipp

pytestmark = pytest.mark.sip


def test_register_without_credentials_is_challenged(site: Site, edge: Edge,
                                                    tmp_path: Path) -> None:
    result = site.register("201", scenario="register_noauth.xml", workdir=tmp_path)

    assert result.ok, result.describe()
    assert result.statuses() == [401]
    (challenge,) = result.received_messages()
    assert 'nonce="' in challenge
    assert f'realm="{site.domain}"' in challenge


def test_register_with_wrong_password_is_forbidden(site: Site, edge: Edge,
                                                   tmp_path: Path) -> None:
    # 127.0.0.4: this failure must not count towards another test's source.
    result = site.register("204", password="not-the-password", scenario="register_wrong.xml",
                           ip="127.0.0.4", workdir=tmp_path)

    assert result.ok, result.describe()
    assert result.statuses() == [401, 403]
    assert "204" not in registered_extensions(site.runtime)


def test_register_with_right_password_is_listed(site: Site, edge: Edge,
                                                tmp_path: Path) -> None:
    result = site.register("201", workdir=tmp_path)

    assert result.ok, result.describe()
    assert result.statuses() == [401, 200]
    started = time.perf_counter()
    registered = registered_extensions(site.runtime)
    elapsed = time.perf_counter() - started
    assert "201" in registered
    assert elapsed < 0.1


def test_engine_call_reaches_registered_phone(site: Site, edge: Edge, tmp_path: Path) -> None:
    # One sipp registers 202 and answers the INVITE that arrives with a new Call-ID.
    call, answered = site.engine_calls_phone("202", workdir=tmp_path)
    assert call.ok, call.describe()
    assert 200 in call.statuses()
    assert answered.ok, answered.describe()
    (invite,) = [m for m in answered.received_messages() if m.startswith("INVITE ")]
    # The edge stays in the dialog, so the BYE came back through it; the dialog
    # module's id in the route is how the edge can end the call if the engine dies.
    route = rf"Record-Route: <sip:{re.escape(site.edge_address)};lr;did=[0-9a-f]+\.[0-9a-f]+>"
    assert re.search(route, invite), invite
    assert any(line.startswith("BYE ") for line in answered.received())


def test_engine_cancel_stops_the_ringing_phone(site: Site, edge: Edge, tmp_path: Path) -> None:
    with site.phone("register_and_wait.xml", "202", ooc_scenario="ring_cancelled.xml",
                    workdir=tmp_path / "phone") as phone:
        assert site.wait_registered("202", phone), \
            phone.stop().describe()

        call = site.engine_call("202", scenario="call_cancel.xml", workdir=tmp_path / "engine")
        rung = phone.wait()

    assert call.ok, call.describe()
    assert call.statuses()[-2:] == [200, 487]
    assert rung.ok, rung.describe()
    assert [line.split()[0] for line in rung.received()][-3:] == ["INVITE", "CANCEL", "ACK"]


def test_same_call_from_another_port_is_challenged(site: Site, edge: Edge,
                                                   tmp_path: Path) -> None:
    # Same address as the engine, different port: trust is by address AND port.
    call = site.engine_call("202", scenario="call_rejected.xml", port=0, workdir=tmp_path)

    assert call.ok, call.describe()
    assert call.statuses()[-1] == 407


def test_engine_call_to_unregistered_extension_gets_480(site: Site, edge: Edge,
                                                        tmp_path: Path) -> None:
    call = site.engine_call("204", scenario="call_rejected.xml", workdir=tmp_path)

    assert call.ok, call.describe()
    assert call.statuses()[-1] == 480


def test_engine_call_to_unknown_extension_gets_404(site: Site, edge: Edge,
                                                   tmp_path: Path) -> None:
    call = site.engine_call("299", scenario="call_rejected.xml", workdir=tmp_path)

    assert call.ok, call.describe()
    assert call.statuses()[-1] == 404


def test_phone_call_is_authenticated_then_sent_to_engine(site: Site, edge: Edge,
                                                         tmp_path: Path) -> None:
    # The engine's stand-in answers on bind:engine_port, where the edge sends calls.
    with Sipp("answer.xml", local_ip=site.runtime.bind, local_port=site.runtime.engine_port,
              workdir=tmp_path / "engine") as engine:
        call = run_sipp("call_auth.xml", site.edge_address, local_ip="127.0.0.6", service="500",
                        auth=("201", site.passwords["201"]),
                        keys={"domain": site.domain, "caller": "201"},
                        workdir=tmp_path / "phone")
        answered = engine.wait()

    assert call.ok, call.describe()
    statuses = call.statuses()
    assert 407 in statuses and 200 in statuses
    assert statuses.index(407) < statuses.index(200)
    assert answered.ok, answered.describe()
    (invite,) = [m for m in answered.received_messages() if m.startswith("INVITE ")]
    assert invite.startswith(f"INVITE sip:500@{site.domain} ")
    assert "Proxy-Authorization" not in invite  # credentials stop at the edge


def test_changed_password_applies_without_restart(site: Site, edge: Edge,
                                                  tmp_path: Path) -> None:
    pid = edge.pid
    old = site.passwords["201"]
    site.store.set_password("201", "n3w-Passw0rd")
    try:
        assert sync_subscribers(site.runtime.edge_db_path, site.config) == 4

        refused = site.register("201", password=old, scenario="register_wrong.xml",
                                ip="127.0.0.5", workdir=tmp_path / "old")
        accepted = site.register("201", password="n3w-Passw0rd", ip="127.0.0.5",
                                 workdir=tmp_path / "new")
    finally:
        site.store.set_password("201", old)
        sync_subscribers(site.runtime.edge_db_path, site.config)

    assert refused.ok, refused.describe()
    assert refused.statuses() == [401, 403]
    assert accepted.ok, accepted.describe()
    assert accepted.statuses() == [401, 200]
    assert edge.pid == pid  # the same Kamailio, never restarted


def test_start_fails_clearly_when_port_is_taken(tmp_path: Path) -> None:
    other = make_site(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((other.runtime.bind, other.runtime.edge_port))
        edge = Edge(other.runtime, other.config, start_timeout=5)
        with pytest.raises(EdgeStartError) as failure:
            edge.start()

    assert not edge.running
    message = str(failure.value)
    assert f"{other.runtime.bind}:{other.runtime.edge_port}" in message
    assert "kamailio.log" in message
    assert "bind" in message.lower()  # Kamailio's own words, quoted from its log


def test_registrations_survive_an_edge_restart(fresh_site: Site, tmp_path: Path) -> None:
    """A restarted edge still knows the phones: calls reach them without a re-REGISTER."""
    with Edge(fresh_site.runtime, fresh_site.config) as edge:
        phone = fresh_site.phone("register_and_wait.xml", "202", ooc_scenario="answer.xml",
                                 workdir=tmp_path / "phone")
        with phone:
            assert fresh_site.wait_registered("202", phone), phone.stop().describe()
            old_pid = edge.pid
            edge.stop()
            edge.start()
            assert edge.pid != old_pid
            # Known at once, from the registrations the edge kept on disk ...
            assert "202" in registered_extensions(fresh_site.runtime)
            assert fresh_site.wait_registered("202", phone, timeout=1.0)
            # ... and a call reaches the phone that never registered again.
            call = fresh_site.engine_call("202", workdir=tmp_path / "engine")
            answered = phone.wait()
    assert call.ok, call.describe()
    assert answered.ok, answered.describe()
    assert any(line.startswith("INVITE ") for line in answered.received())
