"""Retention on a real data dir: old recordings, messages and call records go, files
first; what points at what stays consistent; newer things are kept."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.core.retention import DAY_S, Policy
from appliance.store.history import History
from appliance.store.retention import apply_retention
from tests.support.retention_data import add_call, add_message, inconsistencies, seed, stores

NOW = time.time()


def uids(history: History) -> list[str]:
    return sorted(c.call_uid for c in history.last(1000))


def test_a_run_deletes_what_is_too_old_and_keeps_the_rest_consistent(tmp_path: Path) -> None:
    seed(tmp_path, NOW)
    history, _, _ = stores(tmp_path)
    files = sorted(p.name for p in tmp_path.rglob("*.wav"))
    assert len(files) == 5 and inconsistencies(tmp_path) == []

    dry = apply_retention(history, tmp_path, Policy(), now=NOW, dry_run=True)
    assert [(d.item.kind, d.reason) for d in dry.deletions] == [
        ("recording", "its call record is older than 730 days"),
        ("call", "older than 730 days"),
        ("call", "older than 730 days"),
        ("recording", "older than 90 days"),
        ("voicemail", "older than 60 days"),
    ]
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == files  # a dry run deletes nothing

    run = apply_retention(history, tmp_path, Policy(), now=NOW)
    assert [d.item for d in run.deletions] == [d.item for d in dry.deletions]
    assert inconsistencies(tmp_path) == []
    assert uids(history) == ["mid", "new"]
    assert [r.call_uid for r in history.recordings()] == ["new"]
    assert [m.call_uid for m in history.messages()] == ["vm-new"]
    assert len(list(tmp_path.rglob("*.wav"))) == 2
    # Everything recorded of the deleted calls went with them; the kept calls keep theirs.
    assert history.wrapups_of(["old-rec", "old-bare", "mid", "new"]).keys() == {"mid", "new"}
    assert history.survey_answers_of(["old-rec", "mid"]).keys() == {"mid"}
    assert [(e.event, e.call_uid) for e in history.queue_events(
        queue="support", since=0, until=NOW + 1) if e.call_uid in ("old-rec", "old-bare", "")] == [
        ("agent_login", "")]  # the one older than 730 days went, the recent one stays
    assert len(history.health_events(since=0, until=NOW + 1)) == 1
    assert history.callbacks() == []
    assert run.boxes == {"201"}
    assert {(e.user, e.target.split()[0], e.detail) for e in history.audit()} == {
        ("retention", "recording", "its call record is older than 730 days"),
        ("retention", "recording", "older than 90 days"),
        ("retention", "voicemail", "older than 60 days")}
    lines = run.lines()
    assert lines[0].startswith("recordings: 2 deleted (")
    assert "1 its call record is older than 730 days; 1 older than 90 days)" in lines[0]
    assert lines[1].startswith("voicemail messages: 1 deleted (")
    assert lines[2].startswith("call records: 2 deleted (2 older than 730 days); oldest kept ")
    assert lines[3] == "older events of no kept call: 2 deleted"

    again = apply_retention(history, tmp_path, Policy(), now=NOW)
    assert again.deletions == [] and again.events == 0  # nothing left to do


def test_the_audio_cap_deletes_the_oldest_audio_of_either_kind(tmp_path: Path) -> None:
    for i, days in enumerate((10, 9, 8, 7)):
        add_call(tmp_path, f"c{i}", NOW - days * DAY_S, events=False, seconds=40)
    add_message(tmp_path, "vm", NOW - 8.5 * DAY_S, seconds=40)
    history, _, _ = stores(tmp_path)
    # Five files of 0.64 MB, a cap of 1 MB: the four oldest go, whatever their kind.
    run = apply_retention(history, tmp_path, Policy(audio_max_mb=1), now=NOW)
    assert [(d.item.kind, d.item.call_uid) for d in run.deletions] == [
        ("recording", "c0"), ("recording", "c1"), ("voicemail", "vm"), ("recording", "c2")]
    assert {d.reason for d in run.deletions} == {"the audio stays under 1 MB"}
    assert [r.call_uid for r in history.recordings()] == ["c3"]
    assert history.messages() == []
    assert uids(history) == ["c0", "c1", "c2", "c3"]  # a recording leaves its call record
    assert inconsistencies(tmp_path) == []


def test_a_run_cut_off_between_files_and_rows_is_finished_by_the_next(tmp_path: Path) -> None:
    seed(tmp_path, NOW)
    history, recordings, _ = stores(tmp_path)
    # As if a power cut came after the files went and before their rows did.
    for d in apply_retention(history, tmp_path, Policy(), now=NOW, dry_run=True).deletions:
        rec = history.recording(int(d.item.id)) if d.item.kind == "recording" else None
        if rec is not None:
            recordings.audio_path(rec).unlink()
    assert inconsistencies(tmp_path, files_may_be_gone=True) == []
    apply_retention(history, tmp_path, Policy(), now=NOW)
    assert inconsistencies(tmp_path) == []
    assert uids(history) == ["mid", "new"]
