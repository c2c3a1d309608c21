"""Atomic, durable config storage: a failed write or a corrupt file never loses the old config."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import ConfigError, StoreError
from appliance.store.atomic import write_atomic
from appliance.store.config import ConfigStore
from tests.store.conftest import demo, with_secrets

TEMP_GLOB = ".config.json.*.tmp"


def other_files(folder: Path, keep: str = "config.json") -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


@pytest.fixture
def store(data_dir: Path) -> ConfigStore:
    s = ConfigStore(data_dir / "config.json")
    s.save(with_secrets(demo()))
    return s


def changed(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    out["site"]["name"] = "Changed"
    return out


# write_atomic itself


def test_write_atomic_creates_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    write_atomic(path, b"one")
    assert path.read_bytes() == b"one"
    assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0
    inode = path.stat().st_ino
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert path.stat().st_ino != inode, "replaced by rename, not rewritten in place"
    assert os.listdir(tmp_path) == ["f.json"]


def test_write_atomic_syncs_file_before_rename_and_folder_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"old")
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        assert Path(src).parent == Path(dst).parent, "temp file must be in the same folder"
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(path, b"new")
    assert calls == ["fsync file", "replace", "fsync dir"]
    assert path.read_bytes() == b"new"


@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_full_disk_leaves_old_file_and_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"old config")
    _fail_with_enospc(monkeypatch, where)
    with pytest.raises(OSError) as caught:
        write_atomic(path, b"new config that does not fit")
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == b"old config"
    assert os.listdir(tmp_path) == ["config.json"]


def _fail_with_enospc(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "write":
        real_fdopen = os.fdopen

        class FullDisk:
            """A file whose writes fail as on a full disk; closing still closes the fd."""

            def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
                self._f = real_fdopen(fd, *args, **kwargs)

            def __enter__(self) -> FullDisk:
                return self

            def __exit__(self, *exc: object) -> None:
                self._f.close()

            write = staticmethod(fail)

        monkeypatch.setattr(os, "fdopen", FullDisk)
    else:
        monkeypatch.setattr(os, where, fail)


# ConfigStore.save over the atomic path


@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_failed_save_keeps_previous_config(
        store: ConfigStore, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    before = store.path.read_bytes()
    old = store.load_raw()
    _fail_with_enospc(monkeypatch, where)
    with pytest.raises(StoreError) as caught:
        store.save(changed(old))
    monkeypatch.undo()
    message = str(caught.value)
    assert str(store.path) in message
    assert "No space left on device" in message
    assert "the previous config is unchanged" in message
    assert store.path.read_bytes() == before
    assert store.load_raw() == old
    assert other_files(store.path.parent) == []
    # The store is not wedged: the next save works.
    store.save(changed(old))
    assert store.load()["site"]["name"] == "Changed"
    assert other_files(store.path.parent) == []


def test_failed_first_save_creates_no_config(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ConfigStore(data_dir / "config.json")
    _fail_with_enospc(monkeypatch, "fsync")
    with pytest.raises(StoreError, match="the previous config is unchanged"):
        store.save(with_secrets(demo()))
    monkeypatch.undo()
    assert os.listdir(data_dir) == []
    assert not store.exists()


def test_invalid_save_writes_nothing(store: ConfigStore) -> None:
    before = store.path.read_bytes()
    doc = store.load_raw()
    doc["queues"][0]["strategy"] = "rand"
    with pytest.raises(ConfigError, match=r"queues\[0\]\.strategy: unknown strategy 'rand'"):
        store.save(doc)
    no_secret = demo()  # a stored config must carry HA1s
    with pytest.raises(ConfigError, match=r"extensions\[0\]\.ha1: required field is missing"):
        store.save(no_secret)
    assert store.path.read_bytes() == before
    assert other_files(store.path.parent) == []


def test_read_only_store_refuses_to_write(store: ConfigStore) -> None:
    before = store.path.read_bytes()
    reader = ConfigStore(store.path, read_only=True)
    assert reader.load() == store.load()
    with pytest.raises(StoreError, match="opened read-only"):
        reader.save(changed(store.load_raw()))
    assert store.path.read_bytes() == before


def test_save_then_load_round_trips(data_dir: Path) -> None:
    store = ConfigStore(data_dir / "config.json")
    assert not store.exists()
    doc = with_secrets(demo())
    store.save(doc)
    assert store.exists()
    assert store.load_raw() == doc
    other = changed(doc)
    other["queues"] = []
    store.save(other)
    assert store.load_raw() == other
    assert ConfigStore(store.path).load()["queues"] == []


# corrupt or missing config.json


@pytest.mark.parametrize("cut", [1, 0.5, -2])
def test_truncated_config_is_a_clear_error_and_is_kept(store: ConfigStore, cut: float) -> None:
    whole = store.path.read_bytes()
    truncated = whole[:int(len(whole) * cut)] if isinstance(cut, float) else whole[:cut]
    store.path.write_bytes(truncated)
    for read in (store.load, store.load_raw, ConfigStore(store.path, read_only=True).load):
        with pytest.raises(StoreError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"{store.path}: not valid JSON (")
        assert "the file was left as it is" in message
    assert store.path.read_bytes() == truncated


def test_restoring_over_a_truncated_config_keeps_the_broken_file_aside(
        store: ConfigStore) -> None:
    whole = store.path.read_bytes()
    broken = whole[: len(whole) // 2]
    store.path.write_bytes(broken)
    good = with_secrets(demo())
    store.save(good)
    assert store.load_raw() == good
    (kept,) = store.path.parent.glob("config.json.unreadable-*")
    assert kept.read_bytes() == broken


def test_top_level_that_is_not_an_object(store: ConfigStore) -> None:
    store.path.write_text("[]\n", encoding="utf-8")
    with pytest.raises(StoreError, match="expected a JSON object at the top level"):
        store.load()
    assert store.path.read_text(encoding="utf-8") == "[]\n"


@pytest.mark.parametrize("content", [None, b"", b"  \n"])
def test_missing_or_empty_config_says_how_to_import(data_dir: Path, content: bytes | None) -> None:
    path = data_dir / "config.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StoreError, match="no config yet; import one with"):
        ConfigStore(path).load()
    assert other_files(data_dir) == []
    assert (path.read_bytes() if path.exists() else None) == content


def test_leftover_temp_files_are_ignored(store: ConfigStore) -> None:
    """A writer killed mid-write leaves its temp file; loads and later saves ignore it."""
    leftover = store.path.with_name(".config.json.999999.tmp")
    leftover.write_bytes(store.path.read_bytes()[:100])
    empty = store.path.with_name(".config.json.999998.tmp")
    empty.write_bytes(b"")
    doc = store.load_raw()
    assert ConfigStore(store.path, read_only=True).load_raw() == doc
    store.save(changed(doc))
    assert store.load()["site"]["name"] == "Changed"
    assert other_files(store.path.parent) == [empty.name, leftover.name]
