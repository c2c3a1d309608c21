"""Hold music: one shared looping player per music class, fanned out to callers.

A player is one conference-bridge port; connecting it to N callers costs one
file reader and N bridge links, not N readers. Create and destroy on the engine
thread, and destroy before ``libDestroy`` (the bridge asserts otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pjsua2 as pj

log = logging.getLogger(__name__)

DEFAULT_MUSIC = "moh-default.wav"


def packaged_sound(name: str) -> Path:
    """A WAV shipped in ``appliance/sounds``."""
    return Path(str(resources.files("appliance.sounds").joinpath(name)))


def resolve_music(data_dir: Path, file_name: str) -> Path:
    """The admin's upload in ``data_dir/moh`` wins over the packaged file of that name."""
    uploaded = data_dir / "moh" / file_name
    return uploaded if uploaded.is_file() else packaged_sound(file_name)


class MusicPlayers:
    """The shared hold-music players, one per music class.

    :meth:`load` runs again after a settings change. A class whose file changed
    gets a new player for callers who start listening from then on; the old
    player keeps playing to those already listening (pjmedia frees a port only
    with its player), and is kept until the engine stops. Uploads are rare, so
    that costs little.
    """

    def __init__(self) -> None:
        self._players: dict[str, pj.AudioMediaPlayer] = {}
        self._paths: dict[str, Path] = {}
        self._retired: list[pj.AudioMediaPlayer] = []

    def load(self, data_dir: Path, music: list[dict[str, Any]]) -> None:
        for entry in music:
            path = resolve_music(data_dir, entry["file"])
            if not path.is_file():
                log.error("music class %r: %s not found; using %s", entry["class"], path,
                          DEFAULT_MUSIC)
                path = packaged_sound(DEFAULT_MUSIC)
            if self._paths.get(entry["class"]) == path:
                continue
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(path), 0)  # 0 = loop forever
            old = self._players.get(entry["class"])
            if old is not None:
                self._retired.append(old)
            self._players[entry["class"]] = player
            self._paths[entry["class"]] = path
            log.info("music class %r: %s", entry["class"], path)

    def connect(self, music_class: str, media: pj.AudioMedia) -> bool:
        """Start ``music_class`` (or the first class, if unknown) towards a caller."""
        player = self._players.get(music_class) or next(iter(self._players.values()), None)
        if player is None:
            return False
        player.startTransmit(media)
        return True

    def disconnect(self, music_class: str, media: pj.AudioMedia) -> None:
        player = self._players.get(music_class)
        # The caller may have started listening before an upload replaced the music.
        for each in ([player] if player is not None else []) + self._retired:
            quietly(each.stopTransmit, media)

    def count(self) -> int:
        return len(self._players)

    def destroy(self) -> None:
        self._players.clear()
        self._paths.clear()
        self._retired.clear()


def call_audio(call: pj.Call) -> tuple[int, pj.AudioMedia | None]:
    """A call's audio status and, while it has a bridge port (live or held), its media."""
    # Keep the CallInfo referenced while reading its media: iterating
    # call.getInfo().media walks a vector SWIG has already freed with its owner.
    info = call.getInfo()
    for mi in info.media:
        if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
            return mi.status, call.getAudioMedia(mi.index)
    return pj.PJSUA_CALL_MEDIA_NONE, None


def active_audio(call: pj.Call) -> pj.AudioMedia | None:
    """A call's media while its audio is live (not held)."""
    status, media = call_audio(call)
    return media if status == pj.PJSUA_CALL_MEDIA_ACTIVE else None


def quietly(action: Callable[..., None], *args: object) -> None:
    """Undo a bridge link that may already be gone (the port went away with its call)."""
    try:
        action(*args)
    except pj.Error as e:
        log.debug("bridge link already gone: %s", e.info())
