"""The do-not-disturb file: survives a restart, written atomically, a bad file ignored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from appliance.store.dnd import DndStore, load_dnd


def test_dnd_is_stored_and_read_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "dnd.json"
    store = DndStore(path)
    assert store.set("202", True) and store.set("204", True)
    assert not store.set("202", True)  # no change
    assert DndStore(path).all() == frozenset({"202", "204"})
    assert store.set("202", False)
    assert DndStore(path).is_on("204") and not DndStore(path).is_on("202")
    assert path.read_text() == '{"on": ["204"]}\n'
    assert not list(tmp_path.glob("*.tmp*"))  # no temporary file left behind


@pytest.mark.parametrize("text", ["{", '{"on": "202"}', '{"on": ["x"]}', "[]"])
def test_an_unreadable_file_means_every_phone_rings(tmp_path: Path, text: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "dnd.json"
    path.write_text(text)
    with caplog.at_level(logging.ERROR):
        assert load_dnd(path) == frozenset()
    assert str(path) in caplog.text


def test_a_disk_that_refuses_the_write_keeps_the_change_in_memory(tmp_path: Path) -> None:
    store = DndStore(tmp_path / "missing-dir" / "dnd.json")
    assert store.set("202", True)
    assert store.is_on("202")
