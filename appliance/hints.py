"""Where to run an admin command, and how: the ``keepline`` script's data dir and the hints.

The box prints admin commands in places a newcomer copies them from (the first-start
banner, the login page). Each hint must work where it is printed: under ``make run``
there is no ``.venv/bin`` on PATH and the data lives in ``./var``; on an installed box
the data is ``/var/lib/keepline``, owned by the ``keepline`` user.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from appliance.settings import DEFAULT_DATA_DIR

#: Installed by image/install.sh next to the venv's script, so it is on root's PATH.
INSTALLED_SCRIPT = "keepline"
#: The make targets (see the Makefile) for the commands a newcomer needs first.
MAKE_FORMS = {
    ("extension", "password"): "password EXT={0}",
    ("user", "reset-password"): "reset-password USER={0}",
}


def find_data_dir(env: Mapping[str, str], cwd: Path) -> Path:
    """The ``keepline`` script's data dir when no ``--data-dir`` is given.

    ``KEEPLINE_DATA_DIR`` wins; else ``./var`` when it holds a config (a ``make run``
    checkout: a bare ``var`` folder, e.g. ``/var`` seen from ``/``, does not count);
    else the installed box's ``/var/lib/keepline``.
    """
    if env.get("KEEPLINE_DATA_DIR"):
        return Path(env["KEEPLINE_DATA_DIR"])
    local = cwd / "var"
    if (local / "config.json").is_file():
        return local
    return DEFAULT_DATA_DIR


def admin_command(args: Sequence[str], *, data_dir: Path, cwd: Path, python: str) -> str:
    """The exact command that runs ``python -m appliance ARGS`` on ``data_dir`` from a shell.

    A ``make run`` checkout (``data_dir`` is ``cwd/var`` beside a Makefile) gets its make
    target when there is one (``make -C DIR ...``, so it works from any folder); the
    installed box gets the ``keepline`` script run as the ``keepline`` user (so files it
    writes stay readable by the services); anything else gets the interpreter that runs
    now with an explicit ``--data-dir``.
    """
    checkout = cwd.resolve()
    if data_dir.resolve() == checkout / "var" and (checkout / "Makefile").is_file():
        form = MAKE_FORMS.get((args[0], args[1])) if len(args) >= 2 else None
        if form is not None and len(args) == 3:
            return f"make -C {shlex.quote(str(checkout))} {form.format(shlex.quote(args[2]))}"
    quoted = shlex.join(args)
    if data_dir.resolve() == DEFAULT_DATA_DIR:
        return f"runuser -u keepline -- {INSTALLED_SCRIPT} {quoted}"
    return (f"{shlex.quote(python)} -m appliance --data-dir "
            f"{shlex.quote(str(data_dir.resolve()))} {quoted}")


def keepline_argv(argv: Sequence[str], env: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> list[str]:
    """``argv`` for ``python -m appliance`` with the found data dir unless one is given."""
    if any(a == "--data-dir" or a.startswith("--data-dir=") for a in argv):
        return list(argv)
    found = find_data_dir(os.environ if env is None else env, Path.cwd() if cwd is None else cwd)
    return ["--data-dir", str(found), *argv]
