"""The menu report: per menu and key, what callers did (issue 18, reports)."""

from __future__ import annotations

from appliance.core.reports import MenuOptionRow, MenuReportRow, menu_report
from appliance.store.menu_events import MenuEventRow


def ev(at: float, menu: str, event: str, uid: str, key: str = "",
       detail: str = "") -> MenuEventRow:
    return MenuEventRow(at=at, menu=menu, event=event, key=key, call_uid=uid, detail=detail)


EVENTS = [
    # c1: a wrong key, then 1 (queue support)
    ev(100, "main", "invalid", "c1", "7"),
    ev(105, "main", "chosen", "c1", "1", "queue support"),
    # c2: 2 into the shop menu, then hangs up there
    ev(110, "main", "chosen", "c2", "2", "menu shop"),
    ev(115, "shop", "hung_up", "c2"),
    # c3: silence twice, then the final destination
    ev(120, "main", "timeout", "c3"),
    ev(127, "main", "timeout", "c3"),
    ev(127, "main", "tries_out", "c3", detail="extension 201"),
    # c4: types extension 204; c5: 1 as well
    ev(130, "main", "dialled", "c4", "204"),
    ev(140, "main", "chosen", "c5", "1", "queue support"),
    # outside the period
    ev(99, "main", "chosen", "c0", "2", "menu shop"),
    ev(200, "main", "chosen", "c9", "1", "queue support"),
]


def test_each_menu_counts_callers_choices_and_failures() -> None:
    assert menu_report(EVENTS, since=100, until=200) == [
        MenuReportRow(menu="main", callers=5, chosen=3, dialled=1, invalid=1, timeouts=2,
                      tries_out=1, hung_up=0,
                      options=(MenuOptionRow("1", "queue support", 2),
                               MenuOptionRow("2", "menu shop", 1))),
        MenuReportRow(menu="shop", callers=1, chosen=0, dialled=0, invalid=0, timeouts=0,
                      tries_out=0, hung_up=1, options=()),
    ]


def test_no_events_no_rows() -> None:
    assert menu_report([], since=0, until=1e12) == []
    assert menu_report(EVENTS, since=300, until=400) == []
