"""The sweeper's retention pass, with the fake clock: old finished sagas go to an archive file."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from archived_rows import rows_of
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from factories import UserFactory

from bpm import clock, retention, sweeper
from bpm.api.models import IdempotencyRecord
from bpm.models import SagaInstance

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 24 * 3600


def archives(settings) -> list:
    return sorted(settings.BPM_ARCHIVE_DIR.glob("sagas-*.jsonl.gz"))


def test_a_sweep_archives_then_deletes_finished_sagas_older_than_the_retention(finished, settings):
    settings.BPM_RETAIN_DAYS = 30
    kept = {name: finished[name].id for name in ("stuck", "running")}
    old = [finished[name].id for name in ("completed", "compensated", "aborted")]
    before = rows_of(old)

    clock.advance(29 * DAY)
    sweeper.sweep_once()
    assert SagaInstance.objects.count() == 5, "younger than 30 days: kept"

    clock.advance(2 * DAY)
    retention.forget_last_pass()
    sweeper.sweep_once()
    assert set(SagaInstance.objects.values_list("id", flat=True)) == set(kept.values())
    [path] = archives(settings)
    assert oct(settings.BPM_ARCHIVE_DIR.stat().st_mode & 0o777) == "0o700"

    call_command("restore_sagas", str(path))
    assert rows_of(old) == before, "nothing accepted is lost"


def test_passes_come_at_most_once_a_minute_unless_a_backlog_remains(finished, settings):
    settings.BPM_RETAIN_BATCH = 1
    clock.advance(31 * DAY)
    report = retention.purge_due()
    assert report is not None
    assert (report.sagas_archived, report.sagas_deleted) == (3, 3)
    assert not report.backlog
    assert retention.purge_due() is None, "the next sweep, a second later, does no pass"
    clock.advance(retention.PASS_INTERVAL)
    assert retention.purge_due() is not None
    assert len(archives(settings)) == 3, "one file per batch of one"


def test_a_backlog_continues_on_the_next_sweep(finished, settings):
    settings.BPM_RETAIN_BATCH = 1
    clock.advance(31 * DAY)
    first = retention.purge(now=clock.now(), batches=2)
    assert (first.sagas_deleted, first.backlog) == (2, True)
    retention.forget_last_pass()
    assert retention.purge_due().sagas_deleted == 1


def test_zero_days_keeps_every_saga_forever(finished, settings):
    settings.BPM_RETAIN_DAYS = 0
    clock.advance(10_000 * DAY)
    sweeper.sweep_once()
    assert SagaInstance.objects.count() == 5
    assert archives(settings) == []


def test_expired_idempotency_records_sessions_and_rq_jobs_are_purged(settings):
    user = UserFactory(username="shop")
    now = clock.now()
    for key, expires in (("old", now - timedelta(seconds=1)), ("live", now + timedelta(hours=1))):
        IdempotencyRecord.objects.create(user=user, key=key, fingerprint="f", expires_at=expires)
    for age in (0, 30):
        session = SessionStore()
        session.set_expiry(3600)
        session.create()
        Session.objects.filter(pk=session.session_key).update(
            expire_date=now + timedelta(hours=1) - timedelta(days=age)
        )
    queue = django_rq.get_queue("default")
    queue.finished_job_registry.connection.zadd(queue.finished_job_registry.key, {"gone": 1})
    queue.failed_job_registry.connection.zadd(queue.failed_job_registry.key, {"gone-too": 1})

    report = retention.purge(now=now)

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["live"]
    assert Session.objects.count() == 1
    assert (report.idempotency_records, report.sessions, report.rq_jobs) == (1, 1, 2)
    assert queue.finished_job_registry.count == 0
    assert queue.failed_job_registry.count == 0


@pytest.mark.django_db(transaction=False)
def test_retention_deletes_every_table_that_points_at_a_saga():
    pointing = {relation.related_model for relation in SagaInstance._meta.related_objects}
    assert pointing == set(retention.OWNED)


def test_a_failing_retention_pass_is_logged_and_the_sweep_goes_on(finished, settings, caplog):
    blocker = settings.BPM_ARCHIVE_DIR.parent / "a-file"
    blocker.write_text("")
    settings.BPM_ARCHIVE_DIR = blocker / "archive"
    clock.advance(31 * DAY)
    report = sweeper.sweep_once()
    assert report.stalled == 1, "the running saga was still flagged after retention failed"
    assert SagaInstance.objects.count() == 5, "nothing deleted without its archive"
    assert "retention pass failed" in caplog.text
