"""The hand-set failover switches survive a restart, and a bad file never stops the box."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from appliance.store.switches import Switches, load_switches, save_switches
from tests.store.test_atomic import _fail_with_enospc


@pytest.mark.parametrize("switches", [Switches(), Switches(disaster=True),
                                      Switches(override="night"),
                                      Switches(disaster=True, override="day")])
def test_saved_switches_load_back(tmp_path: Path, switches: Switches) -> None:
    path = tmp_path / "switches.json"
    save_switches(path, switches)
    assert load_switches(path) == switches
    assert path.stat().st_mode & 0o777 == 0o640


def test_no_file_means_all_off(tmp_path: Path) -> None:
    assert load_switches(tmp_path / "switches.json") == Switches()


@pytest.mark.parametrize("content", [
    b'{"disaster": tr', b"", b"\xff\xfe", b"[]", b'{"disaster": "yes", "override": null}',
    b'{"disaster": true, "override": "evening"}', b'{"override": "night"}',
])
def test_a_file_that_cannot_be_read_is_logged_and_ignored(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "switches.json"
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="appliance.store.switches"):
        assert load_switches(path) == Switches()
    assert str(path) in caplog.text
    assert path.read_bytes() == content  # kept as it was, for a person to look at


def test_a_full_disk_keeps_the_switches_stored_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "switches.json"
    save_switches(path, Switches(disaster=True))
    _fail_with_enospc(monkeypatch, "write")
    with pytest.raises(OSError) as caught:
        save_switches(path, Switches())
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_switches(path) == Switches(disaster=True)
