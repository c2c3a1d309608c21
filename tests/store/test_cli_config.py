"""``python -m appliance config ...`` and ``extension password`` as an admin runs them."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.store.config import ConfigStore, ha1
from tests.store.conftest import STRATEGY_CHOICES, Cli, demo

PASSWORD_LINE = re.compile(
    r"^  extension (?P<ext>\d+)  user (?P=ext)  password (?P<pw>\S+)  domain (?P<realm>\S+)$",
    re.M,
)

WriteJson = Callable[[str, Any], Path]


def passwords(stdout: str) -> dict[str, tuple[str, str]]:
    """extension -> (password, realm) as printed by import / extension password."""
    found = {m["ext"]: (m["pw"], m["realm"]) for m in PASSWORD_LINE.finditer(stdout)}
    assert len(found) == len(PASSWORD_LINE.findall(stdout)), "an extension printed twice"
    return found


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to prove that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def bad_file(write_json: WriteJson) -> Path:
    doc = demo()
    doc["queues"][0]["strategy"] = "rand"
    return write_json("bad.json", doc)


@pytest.fixture
def imported(cli: Cli, write_json: WriteJson, data_dir: Path) -> dict[str, tuple[str, str]]:
    """The demo imported into data_dir; returns the passwords it printed."""
    done = cli("config", "import", write_json("demo.json", demo()))
    assert done.returncode == 0, done.stderr
    return passwords(done.stdout)


# config check


def test_check_good_file_exits_0_and_writes_nothing(
        cli: Cli, write_json: WriteJson, data_dir: Path) -> None:
    path = write_json("demo.json", demo())
    done = cli("config", "check", path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{path}: valid\n", "")
    assert snapshot(data_dir) == {}


def test_check_bad_file_exits_2_naming_field_and_reason(cli: Cli, bad_file: Path) -> None:
    done = cli("config", "check", bad_file)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: queues[0].strategy: unknown strategy 'rand' (expected one of: "
        f"{STRATEGY_CHOICES})",
        "nothing was changed",
    ]
    assert done.stdout == ""


def test_check_reports_every_problem_one_per_line(cli: Cli, write_json: WriteJson) -> None:
    doc = demo()
    doc["queues"][0]["strategy"] = "rand"
    doc["trunks"][0]["allow"] = ["10.0.0.256"]
    del doc["site"]["name"]
    done = cli("config", "check", write_json("bad.json", doc))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: site.name: required field is missing",
        f"error: queues[0].strategy: unknown strategy 'rand' (expected one of: "
        f"{STRATEGY_CHOICES})",
        "error: trunks[0].allow[0]: '10.0.0.256' is not an IPv4 address",
        "nothing was changed",
    ]


@pytest.mark.parametrize("action", ["check", "import"])
def test_file_that_is_not_json_names_line_and_column(
        cli: Cli, tmp_path: Path, data_dir: Path, action: str) -> None:
    path = tmp_path / "typo.json"
    path.write_text('{\n  "schema": 1,\n  "site": {"name": "x",}\n}\n', encoding="utf-8")
    done = cli("config", action, path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {path}: line 3 column 24: Expecting property name enclosed in double quotes",
        "nothing was changed",
    ]
    assert snapshot(data_dir) == {}


def test_check_missing_file_exits_2(cli: Cli, tmp_path: Path) -> None:
    done = cli("config", "check", tmp_path / "nope.json")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {tmp_path / 'nope.json'}: cannot read (")


# config import


def test_bad_import_into_empty_box_creates_nothing(
        cli: Cli, bad_file: Path, tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    done = cli("config", "import", bad_file, data=data)
    assert done.returncode == 2
    assert "error: queues[0].strategy: unknown strategy 'rand'" in done.stderr
    assert not data.exists()


def test_bad_import_leaves_config_byte_identical(
        cli: Cli, imported: dict[str, tuple[str, str]], bad_file: Path, tmp_path: Path,
        data_dir: Path) -> None:
    before = snapshot(data_dir)
    assert "config.json" in before
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00\x01 not json")
    for path in (bad_file, garbage):
        done = cli("config", "import", path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.endswith("nothing was changed\n")
        assert "password" not in done.stdout
        assert snapshot(data_dir) == before


def test_import_prints_four_passwords_once_and_stores_only_ha1(
        cli: Cli, write_json: WriteJson, data_dir: Path) -> None:
    done = cli("config", "import", write_json("demo.json", demo()))
    assert done.returncode == 0, done.stderr
    printed = passwords(done.stdout)
    assert sorted(printed) == ["201", "202", "203", "204"]
    assert done.stdout.count("shown once") == 1
    assert len({pw for pw, _ in printed.values()}) == 4, "passwords must differ"
    assert all(len(pw) >= 12 for pw, _ in printed.values())

    config_path = data_dir / "config.json"
    stored = ConfigStore(config_path).load()
    realm = stored["site"]["sip_domain"]
    assert {realm} == {r for _, r in printed.values()} == {"127.0.0.1"}
    for ext in stored["extensions"]:
        password = printed[ext["number"]][0]
        assert ext["ha1"] == ha1(ext["number"], realm, password)
    # Check one by hand, as Kamailio would: md5(user:realm:password).
    pw201 = printed["201"][0]
    ha1_201 = next(e["ha1"] for e in stored["extensions"] if e["number"] == "201")
    assert ha1_201 == hashlib.md5(f"201:127.0.0.1:{pw201}".encode()).hexdigest()

    raw = config_path.read_text(encoding="utf-8")
    for pw, _ in printed.values():
        assert pw not in raw
    assert "password" not in raw
    assert stat.S_IMODE(config_path.stat().st_mode) & 0o007 == 0, "config.json is world-readable"
    assert sorted(p.name for p in data_dir.iterdir()) == ["config.json"]


def test_reimport_keeps_ha1s_and_prints_no_passwords(
        cli: Cli, imported: dict[str, tuple[str, str]], write_json: WriteJson,
        data_dir: Path) -> None:
    store = ConfigStore(data_dir / "config.json")
    first = store.load_raw()
    done = cli("config", "import", write_json("demo.json", demo()))
    assert done.returncode == 0, done.stderr
    assert "password" not in done.stdout
    assert passwords(done.stdout) == {}
    assert store.load_raw() == first


def test_reimport_with_a_new_extension_prints_only_its_password(
        cli: Cli, imported: dict[str, tuple[str, str]], write_json: WriteJson,
        data_dir: Path) -> None:
    store = ConfigStore(data_dir / "config.json")
    old = {e["number"]: e["ha1"] for e in store.load()["extensions"]}
    doc = demo()
    doc["site"]["name"] = "Renamed office"
    doc["extensions"].append({"number": "205", "name": "Warehouse"})
    done = cli("config", "import", write_json("more.json", doc))
    assert done.returncode == 0, done.stderr
    printed = passwords(done.stdout)
    assert list(printed) == ["205"]
    now = {e["number"]: e["ha1"] for e in store.load()["extensions"]}
    assert now == old | {"205": ha1("205", "127.0.0.1", printed["205"][0])}
    assert store.load()["site"]["name"] == "Renamed office"


def test_changing_the_sip_domain_makes_new_passwords(
        cli: Cli, imported: dict[str, tuple[str, str]], write_json: WriteJson,
        data_dir: Path) -> None:
    """The realm is part of HA1, so old digests cannot work for a new domain."""
    doc = demo()
    doc["site"]["sip_domain"] = "pbx.example.com"
    done = cli("config", "import", write_json("moved.json", doc))
    assert done.returncode == 0, done.stderr
    printed = passwords(done.stdout)
    assert sorted(printed) == ["201", "202", "203", "204"]
    for ext in ConfigStore(data_dir / "config.json").load()["extensions"]:
        assert ext["ha1"] == ha1(ext["number"], "pbx.example.com", printed[ext["number"]][0])


# config export


def test_export_reimports_to_an_identical_config(
        cli: Cli, imported: dict[str, tuple[str, str]], tmp_path: Path, data_dir: Path) -> None:
    done = cli("config", "export")
    assert done.returncode == 0, done.stderr
    exported = json.loads(done.stdout)
    stored = ConfigStore(data_dir / "config.json").load_raw()
    assert exported == stored

    path = tmp_path / "exported.json"
    path.write_text(done.stdout, encoding="utf-8")
    # Into the same box: nothing changes, no passwords.
    before = (data_dir / "config.json").read_bytes()
    again = cli("config", "import", path)
    assert again.returncode == 0, again.stderr
    assert "password" not in again.stdout
    assert (data_dir / "config.json").read_bytes() == before
    # Into a fresh box (a restore): identical config, same HA1s, no passwords.
    fresh = tmp_path / "fresh"
    restored = cli("config", "import", path, data=fresh)
    assert restored.returncode == 0, restored.stderr
    assert "password" not in restored.stdout
    assert ConfigStore(fresh / "config.json").load_raw() == stored
    assert cli("config", "export", data=fresh).stdout == done.stdout


def test_export_to_file(
        cli: Cli, imported: dict[str, tuple[str, str]], tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "backup.json"
    done = cli("config", "export", "-o", out)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert json.loads(out.read_text(encoding="utf-8")) == \
        ConfigStore(data_dir / "config.json").load_raw()
    assert out.read_text(encoding="utf-8") == cli("config", "export").stdout
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0, "the backup holds HA1s"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_to_a_folder_that_does_not_exist(
        cli: Cli, imported: dict[str, tuple[str, str]], tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "backup.json"
    done = cli("config", "export", "-o", out)
    assert done.returncode == 1
    assert done.stderr == f"error: {out}: could not write (No such file or directory)\n"
    assert not out.parent.exists()


def test_export_without_config_says_how_to_import(cli: Cli) -> None:
    done = cli("config", "export")
    assert done.returncode == 1
    assert "no config yet" in done.stderr
    assert "config import" in done.stderr
    assert done.stdout == ""


# extension password


def test_extension_password_stores_new_ha1(
        cli: Cli, imported: dict[str, tuple[str, str]], data_dir: Path) -> None:
    store = ConfigStore(data_dir / "config.json")
    before = {e["number"]: e["ha1"] for e in store.load()["extensions"]}
    done = cli("extension", "password", "201")
    assert done.returncode == 0, done.stderr
    printed = passwords(done.stdout)
    assert list(printed) == ["201"]
    new_pw, realm = printed["201"]
    assert new_pw != imported["201"][0]
    after = {e["number"]: e["ha1"] for e in store.load()["extensions"]}
    assert after["201"] == ha1("201", realm, new_pw) != before["201"]
    assert {k: v for k, v in after.items() if k != "201"} == \
        {k: v for k, v in before.items() if k != "201"}
    assert new_pw not in (data_dir / "config.json").read_text(encoding="utf-8")


def test_extension_password_for_unknown_extension(
        cli: Cli, imported: dict[str, tuple[str, str]], data_dir: Path) -> None:
    before = snapshot(data_dir)
    done = cli("extension", "password", "299")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: extensions: no extension '299'",
        "nothing was changed",
    ]
    assert done.stdout == ""
    assert snapshot(data_dir) == before


def test_stored_config_that_fails_the_schema_is_reported_with_its_path(
        cli: Cli, imported: dict[str, tuple[str, str]], data_dir: Path) -> None:
    """A hand-edited config.json: the error names the file and the field."""
    path = data_dir / "config.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["config"]["1"]["queues"][0]["strategy"] = "rand"
    path.write_text(json.dumps(raw), encoding="utf-8")
    done = cli("config", "export")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"error: {path}: queues[0].strategy: unknown strategy 'rand' (expected one of: "
        f"{STRATEGY_CHOICES})")
