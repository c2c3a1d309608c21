"""What every settings page shares: asking the engine to save, and showing its errors.

The engine answers a refused save with ``details.fields``: field path ->
problem, e.g. ``{"queues[0].ring_s": "expected 5 to 120"}``. Pages map their
form fields to those paths, so the message appears next to the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.control.client import EngineClient, EngineRefused, EngineUnavailable
from web import engine


@dataclass
class Outcome:
    """What a save did: the engine's answer, or why it did not happen."""

    result: dict[str, Any] | None = None
    #: Field path -> problem, from the engine's validation.
    fields: dict[str, str] = field(default_factory=dict)
    #: A message for the top of the page when the problem is not about one field.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.fields

    def under(self, prefix: str) -> dict[str, str]:
        """The field problems below ``prefix`` (e.g. ``queues[2]``), keyed by the rest.

        ``queues[2].ring_s`` under ``queues[2]`` is ``ring_s``; the prefix itself
        becomes ``""``.
        """
        out: dict[str, str] = {}
        for path, problem in self.fields.items():
            if path == prefix:
                out.setdefault("", problem)
            elif path.startswith(prefix + "."):
                out.setdefault(path[len(prefix) + 1:], problem)
            elif path.startswith(prefix + "["):
                out.setdefault(path[len(prefix):], problem)
        return out


def ask_engine(method: str, path: str, body: dict[str, Any] | None = None, *,
               timeout: float | None = None) -> Outcome:
    """Send a settings request to the engine and sort its answer for the page.

    ``timeout`` is for slow work such as converting hold music; the default is
    the app's engine timeout.
    """
    client = engine() if timeout is None else EngineClient(engine().socket_path,
                                                           timeout=timeout)
    try:
        result = client.request(method, path, body)
    except EngineUnavailable as e:
        if str(e).startswith("engine not reachable"):
            return Outcome(error=f"The phone system is not reachable, so nothing was saved "
                                 f"({e}).")
        return Outcome(error=f"The phone system did not answer in time ({e}). Reload the "
                             "page to see whether the change was saved.")
    except EngineRefused as e:
        details = e.details if isinstance(e.details, dict) else {}
        fields = details.get("fields") or {}
        if isinstance(details.get("field"), str):
            fields = {details["field"]: str(e), **fields}
        if fields:
            return Outcome(fields={str(k): str(v) for k, v in fields.items()})
        return Outcome(error=str(e))
    except ValueError as e:  # an answer that is not JSON
        return Outcome(error=f"The phone system gave an answer this page cannot read ({e}).")
    return Outcome(result=result if isinstance(result, dict) else {"result": result})


def save_section(section: str, value: Any, *, timeout: float | None = None) -> Outcome:
    """Replace one config section through the engine (validated, atomic, applied);
    ``timeout`` for a save that does slow work (menus speak their greetings)."""
    return ask_engine("PUT", f"/config/{section}", {"value": value}, timeout=timeout)
