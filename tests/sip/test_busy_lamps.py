"""Busy lamps with real SIP: a desk phone's BLF key for 202 follows a queue call.

Real parts: Kamailio authenticates the watcher's SUBSCRIBE (digest, 407) and relays it
to the engine's lamp sender; the pjsua2 engine answers a trunk caller (sipp) for the
queue and rings agent 202 (a sipp phone that rings a second, then answers); the lamp
sender's NOTIFYs come back through the edge in the subscription's dialog. The watcher is
a raw UDP client (this module), so the test reads exactly what a phone would get.
Two engine legs at most (the caller, the agent).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core.presence import NAMESPACE
from tests.support.ports import free_port
from tests.support.sipp import SCENARIOS, Sipp, wait_until
from tests.support.stack import DataDir, EngineProcess, make_data_dir, running_stack

pytestmark = pytest.mark.sip

WATCHER_IP = "127.0.0.43"
NS = {"d": NAMESPACE}


def _header(message: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", message.split("\r\n\r\n", 1)[0],
                  re.IGNORECASE | re.MULTILINE)
    return m.group(1).strip() if m else ""


class Watcher:
    """Phone 203's BLF key: SUBSCRIBEs to ``dialog`` for an extension through the edge
    (answering the digest challenge), then answers every NOTIFY 200 and keeps its body."""

    def __init__(self, site: DataDir, user: str, watched: str) -> None:
        self.site, self.user, self.watched = site, user, watched
        self.password = site.passwords[user]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((WATCHER_IP, 0))
        self.port = self.sock.getsockname()[1]
        self.edge = ("127.0.0.1", site.runtime.edge_port)
        self.call_id, self.tag = f"{secrets.token_hex(8)}@{WATCHER_IP}", secrets.token_hex(4)
        self.responses: list[str] = []
        self.notifies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _subscribe(self, cseq: int, auth: str = "") -> None:
        uri = f"sip:{self.watched}@127.0.0.1"
        text = (f"SUBSCRIBE {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {WATCHER_IP}:{self.port};branch=z9hG4bK{secrets.token_hex(6)}"
                ";rport\r\nMax-Forwards: 70\r\n"
                f"From: <sip:{self.user}@127.0.0.1>;tag={self.tag}\r\n"
                f"To: <{uri}>\r\nCall-ID: {self.call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\n"
                f"Contact: <sip:{self.user}@{WATCHER_IP}:{self.port}>\r\n"
                "Event: dialog\r\nAccept: application/dialog-info+xml\r\nExpires: 600\r\n"
                f"{auth}Content-Length: 0\r\n\r\n")
        self.sock.sendto(text.encode(), self.edge)

    def _authorization(self, challenge: str) -> str:
        """RFC 2617 digest (MD5, qop=auth when offered) for the SUBSCRIBE."""
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        uri = f"sip:{self.watched}@127.0.0.1"

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.user}:{fields['realm']}:{self.password}")
        ha2 = md5(f"SUBSCRIBE:{uri}")
        line = (f'Proxy-Authorization: Digest username="{self.user}", '
                f'realm="{fields["realm"]}", nonce="{fields["nonce"]}", uri="{uri}", '
                "algorithm=MD5")
        if "qop" in fields:
            cnonce = secrets.token_hex(4)
            answer = md5(f"{ha1}:{fields['nonce']}:00000001:{cnonce}:auth:{ha2}")
            line += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            answer = md5(f"{ha1}:{fields['nonce']}:{ha2}")
        return f'{line}, response="{answer}"\r\n'

    def __enter__(self) -> Watcher:
        self.sock.settimeout(5)
        self._subscribe(1)
        challenge = self.sock.recv(65535).decode()
        assert challenge.startswith("SIP/2.0 407 "), challenge
        self._subscribe(2, self._authorization(_header(challenge, "Proxy-Authenticate")))
        self._thread.start()
        return self

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                text = self.sock.recv(65535).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            if text.startswith("SIP/2.0 "):
                self.responses.append(text)
                continue
            if text.startswith("NOTIFY "):
                self.notifies.append(text)
            head = text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            copied = [h for h in head if h.split(":", 1)[0].lower()
                      in ("via", "from", "to", "call-id", "cseq")]
            reply = "\r\n".join(["SIP/2.0 200 OK", *copied, "Content-Length: 0", "", ""])
            self.sock.sendto(reply.encode(), self.edge)

    def states(self) -> list[list[tuple[str, str]]]:
        """Each NOTIFY's dialogs as (state, remote identity), in the order received."""
        out = []
        for notify in self.notifies:
            root = ET.fromstring(notify.split("\r\n\r\n", 1)[1])
            out.append([(d.findtext("d:state", namespaces=NS) or "",
                         d.findtext("d:remote/d:identity", namespaces=NS) or "")
                        for d in root.findall("d:dialog", NS)])
        return out

    def wait_for(self, state: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(s == state for dialogs in self.states() for s, _ in dialogs):
                return True
            time.sleep(0.05)
        return False

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    return make_data_dir(tmp_path, edit={"queues": [{
        "name": "support", "number": "500", "strategy": "ringall",
        "members": [{"extension": "202"}], "answer_delay_ms": 0, "wrapup_s": 0,
        "retry_s": 0, "ring_s": 8, "announce_position": False, "announce_wait": False}]})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def test_a_blf_key_shows_the_agent_ringing_busy_and_idle_for_a_queue_call(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    """203 watches 202: an idle document first; a trunk caller dials the queue, 202's
    phone rings (early, with the caller's identity for a pickup), answers (confirmed);
    the caller hangs up (terminated). All as NOTIFYs in one subscription's dialog. A key
    for no extension is refused (404) after authentication."""
    # 202 rings for a second before it answers, so the ringing is on the key.
    answer = (SCENARIOS / "answer.xml").read_text()
    slow = tmp_path / "answer_after_ring.xml"
    slow.write_text(answer.replace("  <send retrans=\"500\">",
                                   "  <pause milliseconds=\"1000\"/>\n  <send retrans=\"500\">",
                                   1))
    edge = f"127.0.0.1:{site.runtime.edge_port}"
    with Sipp("register_and_wait.xml", edge, service="202", auth=("202", site.passwords["202"]),
              keys={"domain": "127.0.0.1"}, ooc_scenario=slow, timeout=20,
              media_port=free_port()) as agent, Watcher(site, "203", "202") as key:
        engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                        what="agent 202 available")
        assert wait_until(lambda: key.notifies, 3), "no first NOTIFY"
        with Sipp("trunk_caller.xml", f"127.0.0.1:{site.runtime.engine_port}", service="500",
                  keys={"hold_ms": "1500"}, timeout=20, media_port=free_port()) as caller:
            placed = caller.wait()
        assert placed.ok, placed.describe()
        answered = agent.wait()
        assert answered.ok, answered.describe()
        assert key.wait_for("terminated", 3), key.states()
        # A key for something that is not an extension here: 404 from the lamp sender.
        with Watcher(site, "203", "299") as stray:
            assert wait_until(lambda: stray.responses, 3)
        assert [r.split("\r\n", 1)[0] for r in stray.responses] == ["SIP/2.0 404 Not Found"]
    accepted = [r for r in key.responses if _header(r, "CSeq") == "2 SUBSCRIBE"]
    assert accepted and accepted[0].startswith("SIP/2.0 200 "), key.responses
    states = key.states()
    assert states[0] == [], states  # 202 idle when the key subscribed
    seen = [s for dialogs in states for s, _ in dialogs]
    firsts = [seen.index(s) for s in ("early", "confirmed", "terminated")]
    assert firsts == sorted(firsts), seen  # rang, then answered, then ended
    ringing = next(d for d in states if d and d[0][0] == "early")
    assert ringing[0][1] == "sip:+15550001@127.0.0.1"  # who calls: for a pickup
    assert states[-1] in ([], [("terminated", "sip:+15550001@127.0.0.1")])
    versions = [int(ET.fromstring(n.split("\r\n\r\n", 1)[1]).attrib["version"])
                for n in key.notifies]
    assert versions == list(range(len(versions)))
    assert {_header(n, "Call-ID") for n in key.notifies} == {key.call_id}
    assert all(_header(n, "Event") == "dialog" for n in key.notifies)
