"""Auto-attendant menus, pure: "for sales press 1", dial-by-extension, nested menus.

A menu is a node of the key-press machine (:mod:`appliance.core.dialogue`): its
greeting plays, a key is taken at once (barge-in), and the key leads to a
destination, another menu, or back. Every menu of the config is one dialogue, so
"previous menu" is only a step back along the trail of menus this caller went
through. Wrong keys and silence are counted per menu; when the tries run out the
menu's ``final`` destination takes the call, so no caller is ever dropped in
silence.

Dial-by-extension: a digit that starts an extension number begins an entry ended
by ``#``, by the inter-digit time-out, or as soon as the digits can only be one
extension. A key that is both an option and the first digit of an extension waits
for the inter-digit time-out: no second digit means the option (the "matchmore"
rule every PBX uses).

The results (:class:`Chosen`, :class:`Dialled`, :class:`TriesOut`) are config
destinations the adapter carries out; :class:`MenuFact` notes feed the reports.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from appliance.core.dialogue import (
    DIGITS,
    Action,
    Collect,
    Dialogue,
    Finish,
    Goto,
    Node,
    Outcome,
    State,
)
from appliance.core.routing import describe_destination

#: Said after a key that leads nowhere, and after silence, before the greeting again.
INVALID_PROMPT: Final = "menu-invalid"
TIMEOUT_PROMPT: Final = "menu-timeout"
#: Said before the "hang up" destination hangs up: never a silent hang-up.
GOODBYE_PROMPT: Final = "menu-goodbye"
#: A greeting prompt's name starts with this; the adapter finds the admin's recording.
GREETING_PREFIX: Final = "greeting:"
#: How long a greeting may play before the menu gives up waiting for its end (an
#: adapter that cannot tell when a prompt ends still times out).
GREETING_LIMIT_S: Final = 300.0
#: Destinations that move within the menus rather than out of them.
MENU_MOVES: Final = ("menu", "repeat", "previous")

MenuEvent = Literal["chosen", "dialled", "invalid", "timeout", "tries_out"]


def greeting_prompt(menu: str) -> str:
    """The prompt name of ``menu``'s greeting (resolved per language by the adapter)."""
    return f"{GREETING_PREFIX}{menu}"


@dataclass(frozen=True)
class Option:
    """What a key does: go to ``to`` (None: say this menu again), in ``language`` if set."""

    key: str
    to: Mapping[str, Any] | None
    language: str | None = None


@dataclass(frozen=True)
class Menu:
    """One menu, as the config's ``menus[]`` entry describes it."""

    name: str
    options: Mapping[str, Option]
    final: Mapping[str, Any]
    dial_extension: bool = False
    digit_timeout_s: float = 3.0
    timeout_s: float = 7.0
    max_tries: int = 3

    @classmethod
    def from_config(cls, m: Mapping[str, Any]) -> Menu:
        return cls(name=m["name"], final=m["final"], dial_extension=m["dial_extension"],
                   digit_timeout_s=m["digit_timeout_s"], timeout_s=m["timeout_s"],
                   max_tries=m["max_tries"],
                   options={o["key"]: Option(o["key"], o.get("to"), o.get("language"))
                            for o in m["options"]})


@dataclass(frozen=True)
class MenuAsk:
    """The dialogue's data: the menu now, its wrong tries, how the caller got here."""

    menu: str
    tries: int = 0
    #: Menus passed through before this one, oldest first ("previous" steps back).
    trail: tuple[str, ...] = ()
    #: The language a key chose (None: the call's language stands).
    language: str | None = None
    #: Digits of an extension number being keyed in.
    typed: str = ""


@dataclass(frozen=True)
class Chosen:
    """The caller pressed ``key`` in ``menu``: send the call to ``to``."""

    menu: str
    key: str
    to: Mapping[str, Any]
    language: str | None


@dataclass(frozen=True)
class Dialled:
    """The caller keyed in an extension number in ``menu``."""

    menu: str
    extension: str
    language: str | None


@dataclass(frozen=True)
class TriesOut:
    """No usable key after ``max_tries``: the menu's ``final`` destination takes over."""

    menu: str
    why: Literal["invalid", "timeout"]
    to: Mapping[str, Any]
    language: str | None


Result = Chosen | Dialled | TriesOut


@dataclass(frozen=True)
class MenuFact:
    """One thing a caller did in a menu, for the reports."""

    menu: str
    event: MenuEvent
    key: str = ""
    detail: str = ""


def menu_dialogue(
    menus: Mapping[str, Menu], start: str, *, extensions: Iterable[str],
    language: str | None = None, trail: tuple[str, ...] = (),
) -> tuple[State[MenuAsk], list[Action]]:
    """Greet a caller with menu ``start``; ``extensions`` are the numbers one may dial."""
    numbers = frozenset(extensions)

    def greet(data: MenuAsk, *before: str, notes: tuple[object, ...] = ()) -> Goto[MenuAsk]:
        prompts = (*before, greeting_prompt(data.menu))
        return Goto(f"greet:{data.menu}", replace(data, typed=""), prompts, notes=notes)

    def enter(data: MenuAsk, to: str, notes: tuple[object, ...]) -> Goto[MenuAsk]:
        return greet(MenuAsk(to, 0, (*data.trail, data.menu), data.language), notes=notes)

    def wrong(data: MenuAsk, why: Literal["invalid", "timeout"], key: str = "") -> Outcome[MenuAsk]:
        menu = menus[data.menu]
        said = INVALID_PROMPT if why == "invalid" else TIMEOUT_PROMPT
        notes: tuple[object, ...] = (MenuFact(data.menu, why, key),)
        tries = data.tries + 1
        if tries < menu.max_tries:
            return greet(replace(data, tries=tries), said, notes=notes)
        notes += (MenuFact(data.menu, "tries_out", detail=describe_destination(menu.final)),)
        if "menu" in menu.final:
            return enter(data, menu.final["menu"], notes)
        return Finish(TriesOut(data.menu, why, menu.final, data.language), (said,), notes)

    def option(data: MenuAsk, opt: Option) -> Outcome[MenuAsk]:
        data = replace(data, typed="", language=opt.language or data.language)
        to = opt.to or {"repeat": True}
        note = (MenuFact(data.menu, "chosen", opt.key, describe_destination(to)),)
        if "menu" in to:
            return enter(data, to["menu"], note)
        if "previous" in to and data.trail:
            back = MenuAsk(data.trail[-1], 0, data.trail[:-1], data.language)
            return greet(back, notes=note)
        if "previous" in to or "repeat" in to:
            return greet(replace(data, tries=0), notes=note)
        return Finish(Chosen(data.menu, opt.key, to, data.language), notes=note)

    def starts(typed: str) -> bool:
        return any(n.startswith(typed) for n in numbers)

    def key_in_menu(data: MenuAsk, key: str) -> Outcome[MenuAsk]:
        menu = menus[data.menu]
        dialling = menu.dial_extension and key in DIGITS and starts(key)
        if key in menu.options and not dialling:
            return option(data, menu.options[key])
        if dialling:
            return Goto(f"dial:{data.menu}", replace(data, typed=key), hush=True)
        return wrong(data, "invalid", key)

    def dialled(data: MenuAsk) -> Outcome[MenuAsk]:
        menu = menus[data.menu]
        if data.typed in numbers:
            note = (MenuFact(data.menu, "dialled", data.typed),)
            return Finish(Dialled(data.menu, data.typed, data.language), notes=note)
        if data.typed in menu.options:
            return option(data, menu.options[data.typed])
        return wrong(replace(data, typed=""), "invalid", data.typed)

    def key_in_number(data: MenuAsk, key: str) -> Outcome[MenuAsk]:
        if key == "#":
            return dialled(data)
        typed = data.typed + key
        if key not in DIGITS or not starts(typed):
            return wrong(replace(data, typed=""), "invalid", typed)
        if typed in numbers and not any(n != typed and n.startswith(typed) for n in numbers):
            return dialled(replace(data, typed=typed))
        return Goto(f"dial:{data.menu}", replace(data, typed=typed))

    def silence(data: MenuAsk, keys: str) -> Outcome[MenuAsk]:
        return wrong(data, "timeout")

    def number_timeout(data: MenuAsk, keys: str) -> Outcome[MenuAsk]:
        return dialled(data)

    def greeted(data: MenuAsk) -> Goto[MenuAsk]:
        return Goto(f"wait:{data.menu}", data)

    nodes: dict[str, Node[MenuAsk]] = {}
    for name, menu in menus.items():
        nodes[f"greet:{name}"] = Node(Collect(1, GREETING_LIMIT_S), key_in_menu, silence,
                                      greeted)
        nodes[f"wait:{name}"] = Node(Collect(1, menu.timeout_s), key_in_menu, silence)
        nodes[f"dial:{name}"] = Node(Collect(1, menu.digit_timeout_s), key_in_number,
                                     number_timeout)
    if start not in menus:
        raise ValueError(f"no menu {start!r} (menus: {', '.join(menus) or 'none'})")
    first = MenuAsk(start, 0, trail, language)
    return Dialogue(nodes).start(f"greet:{start}", first, (greeting_prompt(start),))


# ---- checks the config schema runs ---------------------------------------------------


def menu_targets(to: Mapping[str, Any] | None) -> list[str]:
    """The menus a destination leads to, through opening hours too."""
    if not isinstance(to, Mapping):
        return []
    if isinstance(to.get("menu"), str):
        return [to["menu"]]
    hours = to.get("hours")
    if isinstance(hours, Mapping):
        return [*menu_targets(hours.get("open")), *menu_targets(hours.get("closed"))]
    return []


def leaves_menus(to: Mapping[str, Any] | None) -> bool:
    """Whether a destination takes the caller out of the menus (to a person, a queue,
    a message, a number, voicemail or a goodbye) on some path."""
    if not isinstance(to, Mapping) or not to:
        return False
    hours = to.get("hours")
    if isinstance(hours, Mapping):
        return leaves_menus(hours.get("open")) or leaves_menus(hours.get("closed"))
    return not any(k in to for k in MENU_MOVES)


def trapped(menus: Iterable[Mapping[str, Any]]) -> list[str]:
    """Menus a caller could never leave: no option or final destination reaches out of
    the menus, not even through other menus. Returned in config order."""
    entries = [m for m in menus if isinstance(m, Mapping) and isinstance(m.get("name"), str)]
    exits = {m["name"]: [*(o.get("to") for o in m.get("options") or []
                            if isinstance(o, Mapping)), m.get("final")] for m in entries}
    free = {name for name, tos in exits.items() if any(leaves_menus(t) for t in tos)}
    grew = True
    while grew:
        grew = False
        for name, tos in exits.items():
            if name not in free and any(t in free for to in tos for t in menu_targets(to)):
                free.add(name)
                grew = True
    return [m["name"] for m in entries if m["name"] not in free]
