"""One voicemail email through the office's SMTP relay (stdlib smtplib and email).

Each failure is sorted into "retry" (the relay or the network is down, or busy: 4xx)
or "person" (the relay refuses the password, the sender or an address: 5xx), with the
words an admin needs to mend it (core/mailing.py decides what happens next).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from appliance.core.mailing import Letter, Relay, Verdict

#: A relay that takes longer than this to answer is treated as down (tried later).
TIMEOUT_S = 20.0


def build(relay: Relay, recipients: tuple[str, ...], letter: Letter, *, message_key: str,
          at: float, audio: bytes | None, filename: str) -> EmailMessage:
    """The email: ``message_key`` makes its Message-ID, the same on every try, so a
    mail program shows a rare second delivery (see store/outbox.py) once."""
    msg = EmailMessage()
    msg["From"] = relay.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = letter.subject
    msg["Date"] = formatdate(at, localtime=True)
    msg["Message-ID"] = make_msgid(idstring=message_key,
                                   domain=relay.sender.rsplit("@", 1)[-1])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    msg.set_content(letter.body)
    if audio is not None:
        msg.add_attachment(audio, maintype="audio", subtype="wav", filename=filename)
    return msg


def send(relay: Relay, password: str, msg: EmailMessage,
         timeout_s: float = TIMEOUT_S) -> tuple[Verdict, str]:
    """Hand ``msg`` to the relay: ("sent", "") or the verdict and what went wrong."""
    where = f"{relay.host}:{relay.port}"
    try:
        if relay.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout_s,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=timeout_s)
        with client:
            client.ehlo()
            if relay.security == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if relay.user:
                client.login(relay.user, password)
            refused = client.send_message(msg)
    except smtplib.SMTPAuthenticationError as e:
        return "person", f"the relay {where} refused user {relay.user!r} and its password " \
                         f"({_said(e.smtp_code, e.smtp_error)})"
    except smtplib.SMTPNotSupportedError as e:
        return "person", f"the relay {where} does not offer {e} (check the security setting)"
    except smtplib.SMTPRecipientsRefused as e:
        return _refused(where, e.recipients)
    except smtplib.SMTPSenderRefused as e:
        return _by_code(e.smtp_code, f"the relay {where} refused the sender {relay.sender} "
                                     f"({_said(e.smtp_code, e.smtp_error)})")
    except smtplib.SMTPResponseException as e:  # a DATA or HELO refusal
        said = _said(e.smtp_code, e.smtp_error)
        return _by_code(e.smtp_code, f"the relay {where} said {said}")
    except ssl.SSLCertVerificationError as e:
        return "person", f"the relay {where}'s certificate is not trusted ({e.verify_message})"
    except (smtplib.SMTPException, ssl.SSLError) as e:
        return "retry", f"the relay {where} broke off ({e})"
    except TimeoutError:
        return "retry", f"the relay {where} did not answer within {timeout_s:g} s"
    except OSError as e:  # refused, unreachable, no such host
        return "retry", f"the relay {where} cannot be reached ({e.strerror or e})"
    if refused:  # some addresses took it, some did not
        verdict, error = _refused(where, refused)
        return verdict, f"{error} (the others got it)"
    return "sent", ""


def _said(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())[:200]}"


def _by_code(code: int, error: str) -> tuple[Verdict, str]:
    """5xx is "no" in SMTP, which waiting does not mend; 4xx ("try later") and anything
    that is not SMTP at all are tried again."""
    return ("person" if 500 <= code < 600 else "retry"), error


def _refused(where: str, refused: dict[str, tuple[int, bytes]]) -> tuple[Verdict, str]:
    codes = [code for code, _ in refused.values()]
    said = "; ".join(f"{addr}: {_said(code, text)}" for addr, (code, text) in refused.items())
    verdict: Verdict = "person" if any(500 <= c < 600 for c in codes) else "retry"
    return verdict, f"the relay {where} refused {said}"
