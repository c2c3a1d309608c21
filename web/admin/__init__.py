"""Settings pages for the admin: one module per kind of setting, one blueprint.

Every page works without JavaScript: plain forms that post back, and errors
shown next to the field they are about. Nothing here writes a file: each save
asks the engine (:mod:`web.admin.common`), which validates, stores atomically
and applies the change. Every page reads its form and words its problems with
:mod:`web.admin.forms`; where a call goes is :mod:`web.admin.destinations`.
"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("admin", __name__, url_prefix="/settings")


@bp.get("/")
def index() -> str:
    """What can be set up, in the order a new office does it."""
    return render_template("admin/index.html")


# The view modules register their routes on ``bp`` when imported.
from web.admin import (  # noqa: E402
    backup,  # noqa: F401
    box,  # noqa: F401
    deskphones,  # noqa: F401
    diversions,  # noqa: F401
    lines,  # noqa: F401
    mailboxes,  # noqa: F401
    media,  # noqa: F401
    menus,  # noqa: F401
    phones,  # noqa: F401
    queues,  # noqa: F401
    rules,  # noqa: F401
    survey_audio,  # noqa: F401
)
