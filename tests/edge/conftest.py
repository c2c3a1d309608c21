"""Fixtures for the edge: a data dir imported from demo.json, free ports, a running Kamailio.

One Kamailio serves the whole package (``edge``), so tests keep apart by
what a phone would have of its own: each test that fails authentications
uses its own loopback source address (the ban is per source IP), and each
registers its own extension.

Extensions in demo.json: 201 (registration), 202 (called by the engine),
203 (ban test bystander), 204 (never registered: the 480 case).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import appliance
from appliance.edge.process import Edge
from appliance.edge.rpc import registered_contacts, registered_extensions
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.support.sipp import Sipp, SippResult, run_sipp, wait_until
from tests.support.stack import make_data_dir, read_document

DEMO = Path(appliance.__file__).parent / "demo.json"
TRUNK_ADDRESS = "127.0.0.99"
"""The demo trunk's address in the edge tests: a loopback address no phone uses."""


@dataclass
class Site:
    """A Keepline data dir as the import left it, with the passwords shown once."""

    runtime: Runtime
    store: ConfigStore
    passwords: dict[str, str]

    @property
    def config(self) -> dict[str, Any]:
        return self.store.load()

    @property
    def domain(self) -> str:
        return str(self.config["site"]["sip_domain"])

    @property
    def edge_address(self) -> str:
        return f"{self.runtime.bind}:{self.runtime.edge_port}"

    def phone(self, scenario: str, extension: str, *, password: str | None = None,
              ip: str = "127.0.0.1", workdir: Path, **options: Any) -> Sipp:
        """A sipp phone for ``extension`` talking to the edge (not started)."""
        return Sipp(scenario, self.edge_address, local_ip=ip, service=extension,
                    auth=(extension, self.passwords[extension] if password is None else password),
                    keys={"domain": self.domain}, workdir=workdir, **options)

    def wait_registered(self, extension: str, phone: Sipp, timeout: float = 5.0) -> bool:
        """Wait until calls to ``extension`` go to ``phone`` (not to an earlier test's phone)."""
        return wait_until(
            lambda: any(c.endswith(f"@{phone.address}")
                        for c in registered_contacts(self.runtime, extension)),
            timeout)

    def register(self, extension: str, *, password: str | None = None, ip: str = "127.0.0.1",
                 scenario: str = "register_ok.xml", workdir: Path, **options: Any) -> SippResult:
        """Run one registration scenario to completion."""
        phone = self.phone(scenario, extension, password=password, ip=ip, workdir=workdir,
                           **options)
        try:
            return phone.start().wait()
        finally:
            phone.close()

    def engine_calls_phone(self, extension: str, *, ip: str = "127.0.0.1",
                           workdir: Path) -> tuple[SippResult, SippResult]:
        """Register a sipp phone for ``extension``, then call it as the engine does.

        Returns (the engine side's result, the phone's result).
        """
        with self.phone("register_and_wait.xml", extension, ip=ip, ooc_scenario="answer.xml",
                        workdir=workdir / "phone") as phone:
            assert self.wait_registered(extension, phone), phone.stop().describe()
            assert extension in registered_extensions(self.runtime)
            call = self.engine_call(extension, workdir=workdir / "engine")
            answered = phone.wait()
        return call, answered

    def engine_call(self, extension: str, *, scenario: str = "call.xml", workdir: Path,
                    port: int | None = None, **options: Any) -> SippResult:
        """Call ``extension`` through the edge as the engine does: from bind:engine_port.

        ``port=0`` calls from the same address but another (free) port instead.
        """
        return run_sipp(scenario, self.edge_address, local_ip=self.runtime.bind,
                        local_port=self.runtime.engine_port if port is None else port,
                        service=extension,
                        keys={"domain": self.domain}, workdir=workdir, **options)


def make_site(base: Path) -> Site:
    """Import demo.json into ``base/data`` and pick free ports for every listener."""
    # The phones and engine stand-ins here all send from 127.0.0.1, so the demo
    # trunk is moved off it: a request from 127.0.0.1 is never a trunk's here.
    trunks = read_document(DEMO)["trunks"]
    trunks[0]["allow"] = [TRUNK_ADDRESS]
    made = make_data_dir(base, edit={"trunks": trunks})
    return Site(runtime=made.runtime, store=ConfigStore(made.runtime.config_path),
                passwords=made.passwords)


@pytest.fixture
def fresh_site(tmp_path: Path) -> Site:
    """A site of its own, for tests that change files (no Kamailio)."""
    return make_site(tmp_path)


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The site the package's running edge serves."""
    return make_site(tmp_path_factory.mktemp("edge"))


@pytest.fixture(scope="package")
def edge(site: Site) -> Iterator[Edge]:
    """Kamailio running for the whole package, stopped (and checked stopped) afterwards."""
    with Edge(site.runtime, site.config) as running:
        yield running
    assert not running.running
