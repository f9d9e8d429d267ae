"""manage.py archive_sagas and restore_sagas: archive, delete, restore, and nothing changed."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from io import StringIO

import pytest
from archived_rows import rows_of
from django.core.management import CommandError, call_command

from bpm import clock
from bpm.models import SagaInstance

# The engine rings doorbells on commit: tests that run sagas need real transactions.
with_sagas = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def tomorrow() -> str:
    return (clock.now() + timedelta(days=1)).date().isoformat()


@pytest.fixture
def archived(finished, tmp_path):
    """Archive and delete the finished sagas; return (file, their rows before)."""
    ids = [finished[name].id for name in ("completed", "compensated", "aborted")]
    before = rows_of(ids)
    path = tmp_path / "old.jsonl.gz"
    output = run("archive_sagas", "--before", tomorrow(), "--to", str(path), "--delete")
    assert "archived 3 sagas" in output
    assert "deleted 3 of them" in output
    return path, ids, before


@with_sagas
def test_archive_delete_restore_gives_back_every_row_as_it_was_and_twice_adds_nothing(archived):
    path, ids, before = archived
    assert rows_of(ids) == {"sagas": [], "runs": [], "events": [], "barriers": []}
    assert run("restore_sagas", str(path)).strip() == "restored: 3, already present: 0"
    assert rows_of(ids) == before
    assert before["barriers"], "the transactional saga's barrier rows went and came back"
    assert run("restore_sagas", str(path)).strip() == "restored: 0, already present: 3"
    assert rows_of(ids) == before


@with_sagas
def test_each_line_is_one_finished_saga_with_its_rows_and_the_others_stay(archived, finished):
    path, _, before = archived
    with gzip.open(path, "rt") as lines:
        entries = [json.loads(line) for line in lines]
    assert {e["archive"] for e in entries} == {"bpm-saga-archive"}
    keys = {"archive", "version", "saga", "step_runs", "events", "barriers"}
    assert all(set(e) == keys for e in entries)
    assert sum(len(e["events"]) for e in entries) == len(before["events"])
    assert sum(len(e["step_runs"]) for e in entries) == len(before["runs"])
    archived_ids = {e["saga"]["id"] for e in entries}
    for name in ("stuck", "running"):
        assert str(finished[name].id) not in archived_ids
        assert SagaInstance.objects.filter(pk=finished[name].id).exists()


@with_sagas
def test_archiving_without_delete_keeps_the_sagas_and_never_replaces_a_file(finished, tmp_path):
    path = tmp_path / "copy.jsonl.gz"
    assert "archived 3 sagas" in run("archive_sagas", "--before", tomorrow(), "--to", str(path))
    assert SagaInstance.objects.count() == 5
    with pytest.raises(CommandError, match="already exists"):
        run("archive_sagas", "--before", tomorrow(), "--to", str(path))


@with_sagas
def test_sagas_finished_after_the_date_stay(finished, tmp_path):
    path = tmp_path / "none.jsonl.gz"
    day = clock.now().date().isoformat()
    assert "archived 0 sagas" in run(
        "archive_sagas", "--before", day, "--to", str(path), "--delete"
    )
    assert SagaInstance.objects.count() == 5


@pytest.mark.parametrize(
    ("before", "message"),
    [("last week", "is not a date or time"), ("2026-02-30", "day is out of range")],
)
def test_a_bad_date_is_refused_with_what_is_wrong(before, message, tmp_path):
    with pytest.raises(CommandError, match=message):
        run("archive_sagas", "--before", before, "--to", str(tmp_path / "a.gz"))


def write_gzip(path, *lines: str):
    with gzip.open(path, "wt") as out:
        out.write("".join(f"{line}\n" for line in lines))
    return path


def test_a_file_that_is_not_gzip_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(CommandError, match="not a complete gzip file"):
        run("restore_sagas", str(path))


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("restore_sagas", str(tmp_path / "nope.gz"))


def test_a_gzip_of_something_else_is_refused(tmp_path):
    path = write_gzip(tmp_path / "other.gz", '{"hello": "world"}')
    with pytest.raises(CommandError, match="line 1 is not a saga archive line"):
        run("restore_sagas", str(path))


@with_sagas
def test_a_bad_line_is_named_and_nothing_of_its_chunk_is_written(archived, tmp_path):
    path, ids, _ = archived
    with gzip.open(path, "rt") as lines:
        good = json.loads(next(iter(lines)))
    broken = json.loads(json.dumps(good))
    broken["saga"]["id"] = "00000000-0000-0000-0000-00000000000x"
    cases = {
        "not JSON": ("{", "line 2 is not JSON"),
        "bad uuid": (json.dumps(broken), "line 2: sagainstance.id: .* is not a valid UUID"),
    }
    running = json.loads(json.dumps(good))
    running["saga"]["status"] = "RUNNING"
    cases["active"] = (json.dumps(running), "line 2: status 'RUNNING': only finished sagas")
    extra = json.loads(json.dumps(good))
    extra["saga"]["evil"] = 1
    cases["unknown column"] = (json.dumps(extra), "line 2: sagainstance has unknown column")
    for name, (second, message) in cases.items():
        bad = write_gzip(tmp_path / f"{name}.gz", json.dumps(good), second)
        with pytest.raises(CommandError, match=message):
            run("restore_sagas", str(bad))
        assert not SagaInstance.objects.filter(pk__in=ids).exists(), name
