"""Voicemail email rules: the relay, who gets what, the back-off, the words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.core import mailing
from appliance.core.language import Language
from appliance.sounds import languages
from appliance.sounds.languages import HERE


def cfg(**email: Any) -> dict[str, Any]:
    return {"site": {"language": "nl", "sip_domain": "office.example"},
            "extensions": [{"number": "201", "voicemail": {"email": ["a@office.example"]}},
                           {"number": "202"}],
            "voicemail": {"boxes": [{"name": "sales", "email": ["s@x.example", "t@x.example"],
                                     "attach": False, "language": "de"}]},
            "email": email}


def test_the_relay_defaults_its_port_by_security_and_its_sender_by_domain() -> None:
    assert mailing.relay(cfg()) is None
    assert mailing.relay(cfg(host="smtp.example")) == mailing.Relay(
        "smtp.example", 587, "starttls", "", "voicemail@office.example")
    assert mailing.relay(cfg(host="h", security="tls")).port == 465  # type: ignore[union-attr]
    assert mailing.relay(cfg(host="h", security="none", port=2525,
                             **{"from": "vm@o.example"})) == mailing.Relay(
        "h", 2525, "none", "", "vm@o.example")


def test_a_boxs_order_takes_its_own_settings_and_the_sites_language() -> None:
    assert mailing.email_order(cfg(), "201") == mailing.EmailOrder(
        ("a@office.example",), attach=True, delete_after=False, language="nl")
    assert mailing.email_order(cfg(), "sales") == mailing.EmailOrder(
        ("s@x.example", "t@x.example"), attach=False, delete_after=False, language="de")
    assert mailing.email_order(cfg(), "202") is None  # no addresses: not emailed
    assert mailing.email_order(cfg(), "nobody") is None


def test_retries_back_off_to_an_hour_and_give_up_after_three_days() -> None:
    assert [mailing.retry_delay(n) for n in (1, 2, 3, 7, 8, 50)] == \
        [60, 120, 240, 3600, 3600, 3600]
    queued = 1000.0
    later = mailing.after_try("retry", "down", attempts=2, queued_at=queued, now=queued + 70)
    assert later == mailing.Outcome("queued", queued + 70 + 120, "down")
    assert mailing.after_try("sent", "", attempts=1, queued_at=queued, now=queued) == \
        mailing.Outcome("sent", queued, "")
    assert mailing.after_try("person", "bad password", attempts=1, queued_at=queued,
                             now=queued).state == "failed"
    gave_up = mailing.after_try("retry", "down", attempts=80, queued_at=queued,
                                now=queued + mailing.GIVE_UP_AFTER_S)
    assert gave_up.state == "failed" and "given up after 3 days" in gave_up.error


@pytest.mark.parametrize("code", languages.codes())
def test_every_language_writes_the_email(code: str) -> None:
    letter = mailing.letter(languages.get(code), box="201", caller_number="+15550001",
                            caller_name="", duration_s=62.4, when="2026-12-05 09:30",
                            attached=True)
    assert "+15550001" in letter.subject and "1:02" in letter.subject
    assert "2026-12-05 09:30" in letter.body and "{" not in letter.body
    nobody = mailing.letter(languages.get(code), box="sales", caller_number="",
                            caller_name="", duration_s=5, when="x", attached=False)
    assert languages.get(code).email["unknown_caller"] in nobody.subject
    assert "*97" in nobody.body


def test_an_email_text_with_an_unknown_placeholder_is_refused_by_name() -> None:
    doc = json.loads((HERE / "en" / "lang.json").read_text())
    doc["email"]["subject"] = "From {caller} at {password}"
    with pytest.raises(ValueError, match=r"en/lang.json: email.subject: unknown placeholder "
                                         r"\{password\}"):
        Language.from_json("en", doc, "en/lang.json")
    del doc["email"]["subject"]
    with pytest.raises(ValueError, match=r"email\.subject: missing"):
        Language.from_json("en", doc, "en/lang.json")
