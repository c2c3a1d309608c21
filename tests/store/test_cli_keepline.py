"""The ``keepline`` command, the make targets and the admin commands the box prints.

Each printed hint must work where it is printed: a ``make run`` checkout (no
``.venv/bin`` on PATH, data in ``./var``), an installed box (``/var/lib/keepline``,
owned by the ``keepline`` user), or any other data dir.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from appliance import cli, hints
from appliance.hints import admin_command, find_data_dir, keepline_argv
from appliance.launcher import ensure_config
from appliance.settings import DEFAULT_DATA_DIR, Runtime
from appliance.store.config import ConfigStore
from tests.store.conftest import DEMO_PATH, REPO, child_env


def _checkout(tmp_path: Path) -> Path:
    """A folder that looks like a ``make run`` checkout: a Makefile and ``var/``."""
    (tmp_path / "Makefile").write_text("run:\n")
    (tmp_path / "var").mkdir()
    return tmp_path


def test_the_data_dir_is_the_env_then_a_local_var_with_a_config_then_the_box(
        tmp_path: Path) -> None:
    assert find_data_dir({"KEEPLINE_DATA_DIR": "/srv/kl"}, tmp_path) == Path("/srv/kl")
    # A bare var folder (e.g. /var seen from /) is not a data dir.
    (tmp_path / "var").mkdir()
    assert find_data_dir({}, tmp_path) == DEFAULT_DATA_DIR
    (tmp_path / "var" / "config.json").write_text("{}")
    assert find_data_dir({}, tmp_path) == tmp_path / "var"
    assert find_data_dir({"KEEPLINE_DATA_DIR": ""}, tmp_path) == tmp_path / "var"


def test_a_given_data_dir_is_kept(tmp_path: Path) -> None:
    assert keepline_argv(["--data-dir", "x", "user", "list"], {}, tmp_path) == \
        ["--data-dir", "x", "user", "list"]
    assert keepline_argv(["--data-dir=x", "user", "list"], {}, tmp_path) == \
        ["--data-dir=x", "user", "list"]
    assert keepline_argv(["user", "list"], {}, tmp_path) == \
        ["--data-dir", str(DEFAULT_DATA_DIR), "user", "list"]


def test_a_checkout_is_told_its_make_target_from_any_folder(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    for args, target in ((["extension", "password", "201"], "password EXT=201"),
                         (["user", "reset-password", "admin"], "reset-password USER=admin")):
        command = admin_command(args, data_dir=repo / "var", cwd=repo, python="/x/python")
        assert command == f"make -C {repo} {target}"
    # No make target for this one: the interpreter, with the data dir spelled out.
    other = admin_command(["user", "list"], data_dir=repo / "var", cwd=repo, python="/x/py")
    assert other == f"/x/py -m appliance --data-dir {repo / 'var'} user list"


def test_the_installed_box_runs_the_keepline_script_as_its_user(tmp_path: Path) -> None:
    command = admin_command(["user", "reset-password", "admin"], data_dir=DEFAULT_DATA_DIR,
                            cwd=tmp_path, python="/opt/keepline/venv/bin/python")
    assert command == "runuser -u keepline -- keepline user reset-password admin"


def test_any_other_data_dir_gets_the_running_interpreter_quoted(tmp_path: Path) -> None:
    data = tmp_path / "my data"
    command = admin_command(["extension", "password", "NUMBER"], data_dir=data, cwd=tmp_path,
                            python=sys.executable)
    assert shlex.split(command) == [sys.executable, "-m", "appliance", "--data-dir",
                                    str(data), "extension", "password", "NUMBER"]


def test_first_start_under_make_run_prints_the_make_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = _checkout(tmp_path)
    monkeypatch.chdir(repo)
    ensure_config(Runtime(data_dir=repo / "var"), DEMO_PATH)
    out = capsys.readouterr().out
    assert f"Lost one? make -C {repo} password EXT=NUMBER\n" in out
    assert "python -m appliance extension password" not in out


def test_the_console_script_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["keepline"] == "appliance.cli:keepline"
    assert callable(cli.keepline) and hints.INSTALLED_SCRIPT == "keepline"


def test_keepline_finds_a_checkouts_var_and_resets_a_password(tmp_path: Path) -> None:
    """The entry point as the console script runs it, from a checkout's folder."""
    data = tmp_path / "var"
    data.mkdir()
    env = child_env()
    subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(data), "config",
                    "import", str(DEMO_PATH)], env=env, capture_output=True, check=True,
                   timeout=60)
    store = ConfigStore(data / "config.json")
    before = {e["number"]: e["ha1"] for e in store.load()["extensions"]}
    script = "import sys; from appliance.cli import keepline; sys.exit(keepline())"
    result = subprocess.run([sys.executable, "-c", script, "extension", "password", "201"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "extension 201" in result.stdout and "password" in result.stdout
    after = {e["number"]: e["ha1"] for e in store.load()["extensions"]}
    assert after["201"] != before["201"] and after["202"] == before["202"]


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "USER": "root"}  # a shell's login name must not become the login
    return subprocess.run(["make", "-C", str(REPO), "-n", *args], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


def test_make_targets_call_keepline_on_var() -> None:
    password = _make("password", "EXT=201")
    assert password.returncode == 0, password.stderr
    assert f'.venv/bin/keepline --data-dir "{REPO}/var" extension password "201"' \
        in password.stdout
    reset = _make("reset-password")
    assert 'user reset-password "admin"' in reset.stdout
    assert 'user reset-password "bob"' in _make("reset-password", "USER=bob").stdout
    missing = _make("password")
    assert missing.returncode != 0 and "usage: make password EXT=201" in missing.stderr
