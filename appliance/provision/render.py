"""Provisioning files from the brand templates (data files) and the device's settings.

Why Jinja2 with StrictUndefined: a template naming a value that does not exist must
fail loudly when it is rendered (and when the config is saved, by rendering a sample),
not hand a phone an empty password. XML templates are autoescaped, and every value is
put on one line, so a name cannot inject a setting into a ``key = value`` file.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from appliance.core.provision import PICKUP_PREFIX, LineKey, line_keys
from appliance.errors import KeeplineError

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
MODELS = HERE / "models.json"
#: The engine offers these codecs, in this order (``sip/endpoint.py``).
CODECS = ("PCMU", "PCMA")
#: A phone's own mailbox (``*97``, README feature codes).
VOICEMAIL_CODE = "*97"
#: Snom's own time-zone names for common zones; other zones leave the phone's setting.
SNOM_TIMEZONES = {
    "Europe/Berlin": "GER+1", "Europe/Vienna": "AUT+1", "Europe/Zurich": "CHE+1",
    "Europe/Amsterdam": "NLD+1", "Europe/Brussels": "BEL+1", "Europe/Paris": "FRA+1",
    "Europe/London": "GBR-0", "Europe/Lisbon": "PRT-0", "Europe/Budapest": "HUN+1",
    "America/New_York": "USA-5", "America/Chicago": "USA-6", "America/Los_Angeles": "USA-8",
    "Asia/Kuala_Lumpur": "MYS+8",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TemplateProblem(KeeplineError):
    """A template that cannot render: names the template file, the line and why."""


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    template: str
    content_type: str
    files: list[tuple[str, str]]
    languages: dict[str, str]


@functools.cache
def catalogue(path: Path = MODELS) -> tuple[dict[str, Family], dict[str, int]]:
    """(families by name, line keys by ``family/model``) from ``models.json``."""
    doc = json.loads(path.read_text())
    families = {name: Family(name, f["label"], f["template"], f["content_type"],
                             [(str(a), str(b)) for a, b in f["files"]], dict(f["languages"]))
                for name, f in doc["families"].items()}
    models = {name: int(m["keys"]) for name, m in doc["models"].items()}
    return families, models


def families() -> dict[str, Family]:
    return catalogue()[0]


def models() -> dict[str, int]:
    """``family/model`` -> number of line keys."""
    return catalogue()[1]


def file_patterns() -> dict[str, list[tuple[str, str]]]:
    return {name: f.files for name, f in families().items()}


def family_of(model: str) -> str:
    return model.split("/", 1)[0]


def _environment(templates: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        autoescape=lambda name: bool(name) and str(name).endswith(".xml.tmpl"),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(family: str, context: dict[str, Any], *, templates: Path | None = None) -> str:
    """The file ``family``'s template makes of ``context``; :class:`TemplateProblem` if
    it cannot (a syntax error, an unknown value), naming the file and line."""
    fam = families()[family]
    templates = templates or TEMPLATES
    try:
        return _environment(templates).get_template(fam.template).render(context)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateProblem(f"template {fam.template}, line {e.lineno}: {e.message}") \
            from None
    except jinja2.TemplateNotFound:
        raise TemplateProblem(f"template {fam.template}: not found in {templates}") from None
    except (jinja2.UndefinedError, TypeError, KeyError, ValueError) as e:
        raise TemplateProblem(f"template {fam.template}: {e}") from None


def check(family: str, *, templates: Path | None = None) -> None:
    """Render both parts with a sample device, so a broken template is refused at save
    time rather than found by a phone."""
    for part in ("common", "device"):
        render(family, sample_context(family, part), templates=templates)


def sample_context(family: str, part: str) -> dict[str, Any]:
    keys = line_keys([{"kind": "blf", "value": "202"}, {"kind": "queue_login"},
                      {"kind": "dnd"}, {"kind": "speed", "value": "0123"}], {"202": "Ann"})
    return _context(family, part, mac="001565000001", model="T46U", extension="201",
                    name="Sample", password="Sample1234567890", server="192.0.2.1", port=5060,
                    domain="example.invalid", keys=keys, provision_url="http://192.0.2.1/prov/x/",
                    timezone="UTC", language="en")


def _one_line(value: str) -> str:
    return _CONTROL.sub(" ", value)


def device_context(config: dict[str, Any], device: dict[str, Any], *, part: str, password: str,
                   server: str, port: int, provision_url: str) -> dict[str, Any]:
    """What a template sees for ``device`` (or its family's common file)."""
    exts = {e["number"]: e for e in config["extensions"]}
    names = {n: str(e.get("name", "")) for n, e in exts.items()}
    ext = exts.get(device.get("extension", ""), {})
    site = config["site"]
    prov = config.get("provisioning") or {}
    return _context(
        family_of(device["model"]), part, mac=device["mac"],
        model=device["model"].split("/", 1)[1], extension=device.get("extension", ""),
        name=str(ext.get("name", "")), password=password, server=server, port=port,
        domain=str(site["sip_domain"]), keys=line_keys(device.get("keys") or [], names),
        provision_url=provision_url,
        timezone=str(prov.get("timezone") or site.get("timezone") or "UTC"),
        language=str(prov.get("language") or site.get("language") or "en"))


def common_context(config: dict[str, Any], family: str, *, server: str, port: int,
                   provision_url: str) -> dict[str, Any]:
    site = config["site"]
    prov = config.get("provisioning") or {}
    return _context(family, "common", mac="", model="", extension="", name="", password="",
                    server=server, port=port, domain=str(site["sip_domain"]), keys=[],
                    provision_url=provision_url,
                    timezone=str(prov.get("timezone") or site.get("timezone") or "UTC"),
                    language=str(prov.get("language") or site.get("language") or "en"))


def _context(family: str, part: str, *, mac: str, model: str, extension: str, name: str,
             password: str, server: str, port: int, domain: str, keys: list[LineKey],
             provision_url: str, timezone: str, language: str) -> dict[str, Any]:
    fam = families()[family]
    return {
        "part": part, "mac": mac, "model": model, "extension": extension,
        "name": _one_line(name) or extension, "user": extension, "password": password,
        "server": server, "port": port, "domain": domain,
        "keys": [LineKey(k.index, k.type, _one_line(k.value), _one_line(k.label))
                 for k in keys],
        "codecs": list(CODECS), "voicemail_code": VOICEMAIL_CODE,
        "pickup_prefix": PICKUP_PREFIX, "provision_url": provision_url,
        "provision_url_bare": re.sub(r"^https?://", "", provision_url).rstrip("/"),
        "timezone": timezone, "tz_offset": tz_offset(timezone), "posix_tz": posix_tz(timezone),
        "snom_timezone": SNOM_TIMEZONES.get(timezone, ""),
        "language": language, "language_name": fam.languages.get(language, "English"),
    }


def tz_offset(name: str) -> str:
    """The zone's standard offset from UTC in hours (``+1``, ``-5``, ``+5.5``), as
    Yealink's ``local_time.time_zone`` takes it."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "0"
    year = datetime.date.today().year
    offsets = [datetime.datetime(year, m, 1, tzinfo=zone).utcoffset() or datetime.timedelta()
               for m in (1, 7)]
    hours = min(offsets).total_seconds() / 3600
    text = f"{hours:+g}"
    return "0" if text in ("+0", "-0") else text


def posix_tz(name: str) -> str:
    """The zone's POSIX TZ rule (``CET-1CEST,M3.5.0,M10.5.0/3``), from the tzdata file's
    footer, for Grandstream's custom time zone; ``UTC0`` when unknown."""
    for root in (Path("/usr/share/zoneinfo"),):
        path = root / name
        try:
            if ".." in name or not path.is_file():
                continue
            footer = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
            text = footer.decode("ascii")
        except (OSError, UnicodeDecodeError):
            continue
        if text and re.fullmatch(r"[A-Za-z0-9<>+,./:-]{1,64}", text):
            return text
    return "UTC0"
