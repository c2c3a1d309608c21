"""The serial modems, with real pyserial, against a pty-backed fake modem."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.control.events import EventBus
from appliance.core.modem import AlertLimiter, CallerIdSeen
from appliance.device.modem import CallerIdModem, SmsAlerts, SmsModem
from tests.support.fake_modem import FakeModem

WAIT_S = 3.0


def eventually(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModem]:
    with FakeModem(tmp_path, cid_answers={"AT+VCID=1": "ERROR"}) as modem:
        yield modem


@pytest.fixture
def seen() -> queue.Queue[CallerIdSeen]:
    return queue.Queue()


@pytest.fixture
def cid(fake: FakeModem, seen: queue.Queue[CallerIdSeen]) -> Iterator[CallerIdModem]:
    modem = CallerIdModem(fake.path, on_caller_id=seen.put, reconnect_s=0.1,
                          command_timeout_s=1.0)
    modem.start()
    try:
        assert modem.wait_connected(WAIT_S)
        yield modem
    finally:
        modem.stop()


def next_seen(seen: queue.Queue[CallerIdSeen]) -> CallerIdSeen:
    return seen.get(timeout=WAIT_S)


# ---- caller ID -------------------------------------------------------------------


def test_caller_id_falls_back_when_vcid_is_refused(fake: FakeModem,
                                                   cid: CallerIdModem) -> None:
    # The fake notes a command on its own thread, after it answered: wait for the note.
    fake.wait_for(lambda: len(fake.commands) >= 4, WAIT_S)
    assert fake.commands[:4] == ["ATZ", "ATE0", "AT+VCID=1", "AT#CID=1"]
    assert "AT%CCID=1" not in fake.commands
    assert cid.cid_command == "AT#CID=1"


def test_a_block_reaches_the_callback_with_number_and_name(
        fake: FakeModem, cid: CallerIdModem, seen: queue.Queue[CallerIdSeen]) -> None:
    before = time.time()
    fake.ring()
    fake.send_cid("5550123", "JOHN DOE")
    fake.ring()
    got = next_seen(seen)
    assert (got.number, got.name) == ("5550123", "JOHN DOE")
    assert before <= got.at <= time.time()
    assert seen.empty()


def test_a_number_only_block_arrives_at_the_next_ring(
        fake: FakeModem, cid: CallerIdModem, seen: queue.Queue[CallerIdSeen]) -> None:
    fake.send_cid("5550199")
    fake.ring()
    got = next_seen(seen)
    assert (got.number, got.name) == ("5550199", "")


def test_garbage_and_partial_lines_are_ignored(
        fake: FakeModem, cid: CallerIdModem, seen: queue.Queue[CallerIdSeen]) -> None:
    fake.send_raw(b"\x00\xff\xfe\x1b[2J\r\n+++\r\nNMB")          # noise, then half a line
    fake.send_raw(b"\r\n" + bytes(range(256)) + b"\r\n")        # every byte value
    fake.send_raw(b"NMBR = 55\x005X\r\n")                       # a number holding a letter
    fake.send_raw(b"x" * 2000)                                  # a line that never ends
    fake.send_raw(b"\r\n")
    fake.send_cid("5550123", "JOHN DOE")
    got = next_seen(seen)
    assert (got.number, got.name) == ("5550123", "JOHN DOE")
    assert cid.connected


def test_a_block_split_across_reads_is_put_together(
        fake: FakeModem, cid: CallerIdModem, seen: queue.Queue[CallerIdSeen]) -> None:
    fake.send_raw(b"\r\nNMBR = 555")
    time.sleep(0.3)  # the reader sees half a line at least once
    fake.send_raw(b"0123\r\n\r\nNAME = JO")
    time.sleep(0.3)
    fake.send_raw(b"HN DOE\r\n")
    got = next_seen(seen)
    assert (got.number, got.name) == ("5550123", "JOHN DOE")


def test_unplug_logs_once_and_replug_sets_the_modem_up_again(
        fake: FakeModem, cid: CallerIdModem, seen: queue.Queue[CallerIdSeen],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.device.modem")
    fake.send_raw(b"\r\nNMBR = 5550100\r\n")  # half a block, lost with the modem
    fake.unplug()
    assert eventually(lambda: not cid.connected)
    time.sleep(0.5)  # several reconnect attempts against a missing device
    gone = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.WARNING
    assert fake.path in gone[0].getMessage()

    assert cid.down_s() > 0.4  # how long it has been away, for the box's health

    fake.replug()
    assert fake.wait_for_command("AT#CID=1", count=2)
    assert cid.wait_connected(WAIT_S)
    assert cid.down_s() == 0
    assert fake.commands.count("ATZ") == 2
    assert any("is back" in r.getMessage() for r in caplog.records)
    fake.send_cid("5550123", "JOHN DOE")
    got = next_seen(seen)
    assert (got.number, got.name) == ("5550123", "JOHN DOE")  # not the half block
    assert seen.empty()


def test_a_modem_missing_at_start_is_picked_up_when_it_appears(
        tmp_path: Path, seen: queue.Queue[CallerIdSeen]) -> None:
    fake = FakeModem(tmp_path)
    modem = CallerIdModem(fake.path, on_caller_id=seen.put, reconnect_s=0.1,
                          command_timeout_s=1.0)
    modem.start()
    try:
        time.sleep(0.3)
        assert not modem.connected
        with fake:
            assert modem.wait_connected(WAIT_S)
            assert modem.cid_command == "AT+VCID=1"
            fake.send_cid("5550123", "JOHN DOE")
            assert next_seen(seen).name == "JOHN DOE"
    finally:
        modem.stop()


def test_a_failing_callback_does_not_end_the_reader(
        fake: FakeModem, seen: queue.Queue[CallerIdSeen],
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[CallerIdSeen] = []

    def flaky(block: CallerIdSeen) -> None:
        calls.append(block)
        if len(calls) == 1:
            raise RuntimeError("boom")
        seen.put(block)

    modem = CallerIdModem(fake.path, on_caller_id=flaky, reconnect_s=0.1,
                          command_timeout_s=1.0)
    modem.start()
    try:
        assert modem.wait_connected(WAIT_S)
        fake.send_cid("5550123", "FIRST")
        fake.send_cid("5550124", "SECOND")
        assert next_seen(seen).name == "SECOND"
        assert any("callback failed" in r.getMessage() for r in caplog.records)
    finally:
        modem.stop()


# ---- SMS -------------------------------------------------------------------------


def sms_modem(fake: FakeModem) -> SmsModem:
    return SmsModem(fake.path, timeout_s=0.5, send_timeout_s=0.5, retries=2,
                    retry_pause_s=0.05)


@pytest.fixture
def gsm(tmp_path: Path) -> Iterator[FakeModem]:
    with FakeModem(tmp_path, name="gsm") as modem:
        yield modem


def test_an_sms_is_sent_in_text_mode(gsm: FakeModem) -> None:
    assert sms_modem(gsm).send("+15551234567", "Trunk provider is DOWN – café")
    assert gsm.sms == [("+15551234567", "Trunk provider is DOWN cafe")]
    assert gsm.commands == ["AT", "ATE0", "AT+CMGF=1", 'AT+CMGS="+15551234567"']


def test_no_prompt_is_retried_then_logged_as_a_failure(
        gsm: FakeModem, caplog: pytest.LogCaptureFixture) -> None:
    gsm.cmgs = "silent"
    started = time.monotonic()
    assert not sms_modem(gsm).send("+15551234567", "hello")
    assert time.monotonic() - started < WAIT_S
    assert gsm.commands.count('AT+CMGS="+15551234567"') == 3
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed) == 1
    assert failed[0].getMessage().startswith("SMS to +15551234567 failed after 3 tries: ")
    assert "prompt" in failed[0].getMessage()
    assert gsm.sms == []


def test_a_refused_sms_is_a_failure(gsm: FakeModem, caplog: pytest.LogCaptureFixture) -> None:
    gsm.cmgs = "error"
    modem = sms_modem(gsm)
    assert not modem.send("+15551234567", "hello")
    message = next(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert "failed after 3 tries" in message and "+CMS ERROR: 500" in message
    assert modem.last_error is not None and "+CMS ERROR: 500" in modem.last_error
    gsm.cmgs = "ok"  # the next text goes out: the modem is fine again
    assert modem.send("+15551234567", "hello")
    assert modem.last_error is None


def test_error_at_cmgs_is_a_failure(gsm: FakeModem, caplog: pytest.LogCaptureFixture) -> None:
    gsm.cmgs = "refuse"
    assert not SmsModem(gsm.path, timeout_s=0.5, retries=0).send("+15551234567", "x")
    message = next(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert "failed after 1 tries" in message and "AT+CMGS answered ERROR" in message


def test_no_answer_after_the_text_times_out(gsm: FakeModem,
                                            caplog: pytest.LogCaptureFixture) -> None:
    gsm.cmgs = "no_result"
    assert not SmsModem(gsm.path, timeout_s=0.5, send_timeout_s=0.3, retries=0).send(
        "+15551234567", "x")
    assert any("no +CMGS answer" in r.getMessage() for r in caplog.records)


def test_a_missing_modem_is_a_failure_not_a_crash(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    modem = SmsModem(str(tmp_path / "nothing"), retries=1, retry_pause_s=0.01)
    assert not modem.send("+15551234567", "x")
    assert any("failed after 2 tries" in r.getMessage() for r in caplog.records)


def test_a_number_that_is_not_one_is_refused(gsm: FakeModem) -> None:
    with pytest.raises(ValueError, match="not a phone number"):
        sms_modem(gsm).send('+1555"\r\nATD911', "x")


# ---- SMS alerts on the event bus -------------------------------------------------


@pytest.fixture
def alerts(gsm: FakeModem) -> Iterator[SmsAlerts]:
    bus = EventBus()
    service = SmsAlerts(bus, sms_modem(gsm), ["+15551234567", "+15557654321"],
                        limiter=AlertLimiter(max_per_hour=6, min_gap_s=60))
    service.start()
    try:
        yield service
    finally:
        service.stop()


def test_disaster_mode_texts_everyone_once(gsm: FakeModem, alerts: SmsAlerts) -> None:
    alerts.bus.publish("mode_changed", mode="disaster")
    assert gsm.wait_for(lambda: len(gsm.sms) == 2)
    assert [number for number, _ in gsm.sms] == ["+15551234567", "+15557654321"]
    assert all(text.startswith("Keepline: DISASTER") for _, text in gsm.sms)


def test_a_burst_of_events_is_rate_limited(gsm: FakeModem, alerts: SmsAlerts) -> None:
    for i in range(10):
        alerts.bus.publish("health_changed", monitor=f"trunk:t{i}", old="up", new="down",
                           reason="probe timeout")
    assert eventually(lambda: alerts.handled == 10)
    assert [text for _, text in gsm.sms] == ["Keepline: trunk t0 is DOWN (probe timeout)."] * 2
    assert alerts.sent == 2
    assert alerts.limiter.held == 9


def test_events_not_worth_a_text_send_nothing(gsm: FakeModem, alerts: SmsAlerts) -> None:
    alerts.bus.publish("call_started", call={})
    alerts.bus.publish("health_changed", monitor="agents:sales", old="up", new="down", reason="")
    assert eventually(lambda: alerts.handled == 2)
    assert gsm.sms == []


def test_a_held_alert_goes_out_when_the_limit_allows(gsm: FakeModem) -> None:
    now = [1000.0]
    bus = EventBus()
    service = SmsAlerts(bus, sms_modem(gsm), ["+15551234567"],
                        limiter=AlertLimiter(max_per_hour=6, min_gap_s=60),
                        clock=lambda: now[0])
    service.start()
    try:
        bus.publish("mode_changed", mode="disaster")
        bus.publish("mode_changed", mode="normal")
        assert eventually(lambda: service.handled == 2)
        assert len(gsm.sms) == 1
        now[0] += 60
        assert gsm.wait_for(lambda: len(gsm.sms) == 2)
        assert gsm.sms[1][1].startswith("Keepline: back to normal")
    finally:
        service.stop()
