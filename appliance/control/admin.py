"""Settings changes the web (and CLI) ask the engine for: validate, save atomically, apply.

The engine process is the only writer of config.json. Each change starts from
the stored document (not the engine's copy in memory), so nothing another
writer saved is lost; it is validated whole, written in one atomic replace,
and only then applied to the running engine. A change that fails validation
raises an :class:`ApiError` whose details map each field path to its problem,
so the page can show the message next to the field.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.control.server import ApiError, Handler
from appliance.errors import ConfigError
from appliance.sounds import greetings
from appliance.store import schema, users
from appliance.store.config import (
    ConfigStore,
    GeneratedPassword,
    ha1,
    new_password,
    with_voicemail_pin,
)
from appliance.store.music import MusicError, convert_upload, music_file_name, remove_quietly

log = logging.getLogger(__name__)

#: Sections ``PUT /config/<section>`` replaces. ``edge`` needs Kamailio re-rendered and
#: ``users`` has its own resource (passwords are never sent in a section). In ``device``
#: the modems restart at once; LED and button pins apply at the engine's next start.
EDITABLE = ("site", "extensions", "queues", "trunks", "music", "numbering", "limits",
            "routes", "schedules", "failover", "device", "menus", "voicemail", "email",
            "supervision", "devices", "provisioning", "park", "page_groups")
_OPTIONAL = {"numbering", "limits", "routes", "schedules", "failover", "device", "menus",
             "voicemail", "email", "supervision", "devices", "provisioning", "park",
             "page_groups"}
_PATH = re.compile(r"^([A-Za-z0-9_.\[\]-]*): (.*)$", re.S)
#: What ``PUT /users/<name>`` may change (a password has its own resource).
_USER_CHANGES = ("extension", "role", "crm_url", "crm_open")


def invalid(e: ConfigError, *, prefix: str = "") -> ApiError:
    """A 400 whose details say, per field path, what is wrong."""
    fields: dict[str, str] = {}
    for problem in e.problems:
        text = problem.removeprefix(prefix)
        m = _PATH.match(text)
        if m:
            fields.setdefault(m.group(1), m.group(2))
    return ApiError(400, "invalid_config", "; ".join(e.problems[:5])
                    + (f" (and {len(e.problems) - 5} more)" if len(e.problems) > 5 else ""),
                    problems=e.problems, fields=fields)


def _templates_render(doc: dict[str, Any]) -> None:
    """A desk phone's brand template that does not render is refused at save time."""
    from appliance.provision.validate import template_problems

    found = template_problems(doc)
    if found:
        raise ConfigError(found)


class AdminService:
    """Every settings change, one at a time.

    Parameters:
        store: the config store (read and written here only).
        music_dir: where converted hold music goes (``data_dir/moh``); menu greetings
            go beside it, in ``data_dir/greetings``.
        check: returns why the running engine cannot take a config now (empty if it can).
        apply: hands a saved, normalised config to the running engine and the edge.
    """

    def __init__(self, store: ConfigStore, music_dir: Path, *,
                 check: Callable[[dict[str, Any]], list[str]],
                 apply: Callable[[dict[str, Any]], None]) -> None:
        self.store = store
        self.music_dir = music_dir
        self.greetings_dir = music_dir.parent / "greetings"
        self._check = check
        self._apply = apply
        self._lock = threading.Lock()

    # ---- config sections ---------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The stored config for backup: everything, with secrets only as hashes."""
        with self._lock:
            return self.store.load_raw()

    def save_section(self, section: str, value: Any) -> dict[str, Any]:
        """Replace one section; new extensions get generated SIP passwords (shown once)."""
        if section not in EDITABLE:
            raise ApiError(404, "not_editable", f"{section or '(none)'}: not an editable "
                           f"section (expected one of: {', '.join(EDITABLE)})")
        with self._lock:
            doc = self.store.load_raw()
            generated: list[GeneratedPassword] = []
            if value is None and section in _OPTIONAL:
                doc.pop(section, None)
            else:
                doc[section] = copy.deepcopy(value)
            if section == "extensions" and isinstance(value, list):
                generated = self._fill_secrets(doc, old=self.store.load_raw())
            if section == "site" and isinstance(value, dict) \
                    and value.get("sip_domain") != self.store.load_raw()["site"]["sip_domain"]:
                raise ApiError(400, "invalid_config", "site.sip_domain: changing the SIP "
                               "domain invalidates every phone's password; use config import",
                               fields={"site.sip_domain": "cannot be changed here"},
                               problems=[])
            self._save(doc)
        log.info("settings: %s saved", section)
        return {"section": section, "generated": [
            {"extension": g.extension, "password": g.password, "pin": g.pin}
            for g in generated]}

    def restore(self, doc: Any) -> dict[str, Any]:
        """Make an uploaded backup the config: validated whole, applied, or nothing changes."""
        try:
            schema.validate(doc, require_secrets=False)
            _templates_render(doc)
        except ConfigError as e:
            raise invalid(e) from None
        with self._lock:
            self._refuse_if_engine_cannot(doc)
            self._speak(doc)
            try:
                generated = self.store.import_document(doc)
            except ConfigError as e:
                raise invalid(e) from None
            self._apply(self.store.load())
        log.warning("settings: a backup was restored")
        return {"restored": True, "generated": [
            {"extension": g.extension, "password": g.password} for g in generated]}

    def extension_password(self, number: str, password: str | None = None) -> dict[str, Any]:
        """A new generated SIP password for one phone, returned once (``password``: the
        one desk-phone provisioning made and stores for the phone's file)."""
        with self._lock:
            doc = self.store.load_raw()
            ext = next((e for e in doc["extensions"] if e["number"] == number), None)
            if ext is None:
                raise ApiError(404, "unknown_extension", f"no extension {number!r}")
            password = password or new_password()
            ext["ha1"] = ha1(number, doc["site"]["sip_domain"], password)
            self._save(doc)
        return {"extension": number, "password": password}

    def voicemail_pin(self, number: str, pin: str | None = None) -> dict[str, Any]:
        """A new PIN for one extension's mailbox (generated unless its owner keyed one on
        the phone), returned once."""
        with self._lock:
            doc = self.store.load_raw()
            try:
                made = with_voicemail_pin(doc, number, pin)
            except ConfigError:
                raise ApiError(404, "unknown_extension", f"no extension {number!r}") from None
            self._save(doc)
        log.info("voicemail %s: new PIN %s", number, "made" if pin is None else "set by phone")
        return {"extension": number, "pin": made}

    # ---- web logins --------------------------------------------------------------------

    def add_user(self, body: dict[str, Any]) -> dict[str, Any]:
        name, role = str(body.get("name", "")), str(body.get("role", ""))
        extension = body.get("extension") or None
        with self._lock:
            try:
                doc, password = users.with_new_user(self.store.load_raw(), name, role,
                                                    str(extension) if extension else None)
            except ConfigError as e:
                raise invalid(e) from None
            self._save(doc)
        log.info("web login %r (%s) added", name, role)
        return {"name": name, "password": password}

    def reset_password(self, name: str) -> dict[str, Any]:
        with self._lock:
            try:
                doc, password = users.with_new_password(self.store.load_raw(), name)
            except ConfigError as e:
                raise ApiError(404, "unknown_user", str(e)) from None
            self._save(doc)
        log.warning("web login %r: password reset", name)
        return {"name": name, "password": password}

    def update_user(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a login's CRM link, role or extension; its password stays.

        ``body`` may hold ``crm_url`` (a URL template with ``{number}``; "" or null
        removes it), ``crm_open`` (bool), ``extension`` ("" or null removes it) and
        ``role``. Keys not sent are kept. The whole config is validated, so a bad
        value is refused with ``details.fields["users[i].<field>"]``.
        """
        unknown = sorted(set(body) - set(_USER_CHANGES))
        if unknown:
            raise ApiError(400, "bad_request", f"{unknown[0]}: cannot be changed here "
                           f"(expected any of: {', '.join(_USER_CHANGES)})", field=unknown[0])
        with self._lock:
            doc = self.store.load_raw()
            entry = users.find(doc, name)
            if entry is None:
                raise ApiError(404, "unknown_user", f"users: no login {name!r}")
            for key in _USER_CHANGES:
                if key not in body:
                    continue
                value = body[key]
                # Left out rather than stored empty, so the file reads as before.
                if value is None or (value == "" and key in ("crm_url", "extension")) \
                        or (key == "crm_open" and value is False):
                    entry.pop(key, None)
                else:
                    entry[key] = value
            if not users.has_admin(doc):
                raise ApiError(409, "last_admin", f"users: {name!r} is the last admin; add "
                               "another admin first", field="role")
            self._save(doc)
        log.info("web login %r changed (%s)", name, ", ".join(k for k in _USER_CHANGES
                                                              if k in body) or "nothing")
        return {key: entry[key] for key in ("name", "role", *_USER_CHANGES) if key in entry}

    def delete_user(self, name: str) -> dict[str, Any]:
        with self._lock:
            try:
                doc = users.without_user(self.store.load_raw(), name)
            except ConfigError as e:
                status = 404 if "no login" in str(e) else 409
                raise ApiError(status, "cannot_delete_user", str(e)) from None
            self._save(doc)
        log.info("web login %r removed", name)
        return {"name": name, "deleted": True}

    # ---- hold music --------------------------------------------------------------------

    def upload_music(self, music_class: str, body: dict[str, Any]) -> dict[str, Any]:
        """Convert an upload and make it ``music_class``'s music (a new class if needed)."""
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", music_class):
            raise ApiError(400, "bad_music_class", "class: lower-case letters, digits, - and _",
                           field="class")
        filename = str(body.get("filename") or "upload")
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "bad_upload", "data: expected the file as base64") from None
        name = music_file_name(music_class)
        dest = self.music_dir / name
        # Converting takes seconds: outside the lock, so other saves do not wait on sox.
        try:
            seconds = convert_upload(data, filename, dest)
        except MusicError as e:
            raise ApiError(400, "bad_audio", str(e), field="file") from None
        with self._lock:
            doc = self.store.load_raw()
            entry = next((m for m in doc["music"] if m["class"] == music_class), None)
            old = entry["file"] if entry else None
            if entry is None:
                doc["music"].append({"class": music_class, "file": name})
            else:
                entry["file"] = name
            try:
                self._save(doc)
            except BaseException:
                remove_quietly(dest)
                raise
            if old and old != name and old.startswith("moh-") and \
                    not any(m["file"] == old for m in doc["music"]):
                remove_quietly(self.music_dir / old)
        log.info("music class %r: %s (%.1f s) uploaded as %s", music_class, filename,
                 seconds, name)
        return {"class": music_class, "file": name, "seconds": round(seconds, 1)}

    # ---- menu greetings ----------------------------------------------------------------

    def upload_greeting(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``<menu>/<lang>``: the admin's recording replaces the spoken greeting."""
        menu, lang = self._greeting_of(arg)
        filename = str(body.get("filename") or "upload")
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "bad_upload", "data: expected the file as base64") from None
        try:
            seconds = convert_upload(data, filename, greetings.upload_file(
                self.greetings_dir, menu, lang))
        except MusicError as e:
            raise ApiError(400, "bad_audio", str(e), field="file") from None
        log.info("menu %r greeting (%s): %s (%.1f s) uploaded", menu, lang, filename, seconds)
        return {"menu": menu, "language": lang, "seconds": round(seconds, 1)}

    def delete_greeting(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``<menu>/<lang>``: drop the upload; the greeting spoken from the text is back."""
        menu, lang = self._greeting_of(arg)
        remove_quietly(greetings.upload_file(self.greetings_dir, menu, lang))
        log.info("menu %r greeting (%s): upload removed", menu, lang)
        return {"menu": menu, "language": lang, "deleted": True}

    def _greeting_of(self, arg: str) -> tuple[str, str]:
        """``<name>/<lang>``: a menu's greeting, or a survey question (``support@survey1``),
        that has its text in ``lang``."""
        name, _, lang = arg.partition("/")
        with self._lock:
            doc = self.store.load_raw()
        item = next((i for i in greetings.spoken_items(doc) if i.name == name), None)
        if item is None:
            if "@survey" in name:
                raise ApiError(404, "unknown_question", f"no survey question {name!r}")
            raise ApiError(404, "unknown_menu", f"menus: no menu {name!r}")
        if lang not in item.texts:
            what = "survey question" if "@survey" in name else "menu"
            raise ApiError(404, "unknown_language", f"{what} {name!r} has no greeting text "
                           f"in {lang!r}; type it first, then upload its recording",
                           field="language")
        return name, lang

    def _speak(self, doc: dict[str, Any]) -> None:
        """Make the spoken greetings a saved config needs (only the missing ones)."""
        try:
            greetings.make_greetings(self.greetings_dir, greetings.spoken_items(doc))
        except greetings.GreetingError as e:
            path, _, reason = str(e).partition(": ")
            raise ApiError(400, "bad_greeting", str(e), fields={path: reason},
                           problems=[str(e)]) from None

    # ---- helpers -----------------------------------------------------------------------

    def _save(self, doc: dict[str, Any]) -> None:
        """Validate, ask the engine, speak new greetings, write atomically, then apply."""
        try:
            schema.validate(doc)
            _templates_render(doc)
        except ConfigError as e:
            raise invalid(e) from None
        self._refuse_if_engine_cannot(doc)
        self._speak(doc)
        self.store.save(doc)
        self._apply(self.store.load())
        greetings.prune(self.greetings_dir, greetings.spoken_items(doc))

    def _refuse_if_engine_cannot(self, doc: dict[str, Any]) -> None:
        found = self._check(schema.normalise(doc))
        if found:
            raise ApiError(409, "busy", "; ".join(found))

    @staticmethod
    def _fill_secrets(doc: dict[str, Any], *, old: dict[str, Any]) -> list[GeneratedPassword]:
        """Keep each extension's stored HA1; make a password for new ones, and a mailbox
        PIN unless its mailbox is off or it has one."""
        kept = {e["number"]: e.get("ha1") for e in old.get("extensions", [])}
        realm = doc["site"]["sip_domain"]
        generated = []
        for ext in doc["extensions"]:
            if not isinstance(ext, dict) or "ha1" in ext or not isinstance(ext.get("number"),
                                                                           str):
                continue
            if kept.get(ext["number"]):
                ext["ha1"] = kept[ext["number"]]
            else:
                password = new_password()
                ext["ha1"] = ha1(ext["number"], realm, password)
                mailbox = ext.get("voicemail") or {}
                pin = "" if mailbox.get("enabled") is False or "pin_hash" in mailbox \
                    else with_voicemail_pin(doc, ext["number"])
                generated.append(GeneratedPassword(ext["number"], password, pin))
        return generated


def resources(admin: AdminService) -> dict[tuple[str, str], Handler]:
    """The control API's settings resources, for :class:`~appliance.control.server.ControlApi`.

    - ``GET /config``: the stored document (backup).
    - ``PUT /config/<section> {"value": ...}``; ``PUT /config {"document": ...}`` (restore).
    - ``POST /extensions/<number>/password``: a new SIP password, returned once;
      ``POST /extensions/<number>/pin``: a new voicemail PIN, returned once.
    - ``POST /users {"name", "role", "extension"}``; ``POST /users/<name>/password``;
      ``PUT /users/<name> {"crm_url", "crm_open", "extension", "role"}``;
      ``DELETE /users/<name>``.
    - ``POST /music/<class> {"filename", "data": base64}``: new hold music.
    - ``POST /greetings/<menu>/<lang> {"filename", "data": base64}``: a menu greeting's
      recording; ``DELETE /greetings/<menu>/<lang>`` goes back to the spoken text.
    """

    def put_config(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        if not arg:
            if "document" not in body:
                raise ApiError(400, "bad_request", 'expected {"document": {...}}')
            return admin.restore(body["document"])
        if "value" not in body:
            raise ApiError(400, "bad_request", 'expected {"value": ...}')
        return admin.save_section(arg, body["value"])

    def post_extension(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        number, _, action = arg.partition("/")
        if action == "pin":
            return admin.voicemail_pin(number)
        if action != "password":
            raise ApiError(404, "not_found", f"no extension action {action!r}")
        return admin.extension_password(number)

    def post_user(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        if not arg:
            return admin.add_user(body)
        name, _, action = arg.partition("/")
        if action != "password":
            raise ApiError(404, "not_found", f"no user action {action!r}")
        return admin.reset_password(name)

    def put_user(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        if not arg or "/" in arg:
            raise ApiError(404, "not_found", f"no user resource {arg!r}")
        return admin.update_user(arg, body)

    return {
        ("GET", "config"): lambda arg, body: admin.document(),
        ("PUT", "config"): put_config,
        ("POST", "extensions"): post_extension,
        ("POST", "users"): post_user,
        ("PUT", "users"): put_user,
        ("DELETE", "users"): lambda arg, body: admin.delete_user(arg),
        ("POST", "music"): admin.upload_music,
        ("POST", "greetings"): admin.upload_greeting,
        ("DELETE", "greetings"): admin.delete_greeting,
    }
