"""Whether a call is recorded (FreePBX's precedence), and what an agent's keys do."""

from __future__ import annotations

import pytest

from appliance.core.recording import key_action, path_policies, should_record


@pytest.mark.parametrize(("policies", "recorded"), [
    ([], False),
    ([None, "dontcare", None], False),
    (["yes"], True),
    (["no", "yes"], False),  # the first yes or no decides
    (["yes", "no"], True),
    (["no", "force"], True),  # force wins wherever it is
    (["yes", "never"], False),  # never too
    (["force", "never"], True),  # the first of them met
    (["never", "force"], False),
    ([None, "dontcare", "yes", None], True),
])
def test_force_and_never_win_else_the_first_yes_or_no(policies: list[str | None],
                                                      recorded: bool) -> None:
    assert should_record(policies) is recorded


def test_the_path_is_route_queue_answering_phone_then_calling_phone() -> None:
    config = {"queues": [{"name": "support", "record": "yes"}],
              "extensions": [{"number": "202", "record": "never"}, {"number": "201"}]}
    assert path_policies(config, route={"did": "1", "record": "no"}, queue="support",
                         answered_by="202", called_from="201") == ["no", "yes", "never", None]
    assert path_policies(config, route=None, queue=None, answered_by=None,
                         called_from=None) == [None, None, None, None]


def test_star_one_toggles_and_star_two_pauses_only_a_running_recording() -> None:
    assert key_action("*", "1", recording=False, paused=False) == "start"
    assert key_action("*", "1", recording=True, paused=False) == "stop"
    assert key_action("*", "2", recording=True, paused=False) == "pause"
    assert key_action("*", "2", recording=True, paused=True) == "resume"
    assert key_action("*", "2", recording=False, paused=False) is None
    assert key_action("5", "1", recording=False, paused=False) is None
    assert key_action("*", "9", recording=True, paused=False) is None
