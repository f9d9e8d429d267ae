"""The job behind every doorbell: take ids, call the engine, continue inline while it may.

No RQ here (bpm.dispatch enqueues it by dotted path, and takes the queue's next doorbells for it):
a job function is a plain function."""

from __future__ import annotations

import time

from django.conf import settings

from bpm import alert_delivery, batches, dispatch, engine


def answer_doorbell(run_id: int, token: str) -> None:
    """Run the step behind this doorbell, then go on in the same job while the budget allows.

    First inline continuation: the saga's next steps, sharing the runs the first step read
    (engine.SagaRows), so a continued step reads only its own run and the saga row. Then the next
    doorbells waiting in the job's queue, other sagas' steps, each continued inline in turn: a
    busy worker pays RQ's per-job bookkeeping once for many steps instead of once per saga.
    """
    budget = _Budget()
    _answer(run_id, token, budget)
    job = dispatch.current_job()
    while job is not None and budget.left():
        taken = dispatch.take_doorbell(job.queue, max_timeout=budget.job_limit_left(job))
        if taken is None:
            return
        _answer(*taken, budget)


# The name doorbells enqueued before the rename still carry.
ring = answer_doorbell


class _Budget:
    """What one job may still run: BPM_JOB_MAX_STEPS steps within BPM_INLINE_MAX_SECONDS."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> bool:
        if dispatch.stopping():  # the worker is shutting down: the next step goes to another
            return False
        return (
            self.steps < settings.BPM_JOB_MAX_STEPS
            and self.elapsed() < settings.BPM_INLINE_MAX_SECONDS
        )

    def job_limit_left(self, job: dispatch.CurrentJob) -> float:
        """The longest job limit a doorbell taken now may have to end within this job's limit.

        A doorbell's limit is its step's timeout + BPM_INLINE_MAX_SECONDS + a margin
        (`dispatch.job_limit`), and a step starts within BPM_INLINE_MAX_SECONDS of its job's
        start: so a step taken now, at `elapsed`, ends before this job's margin if its limit is at
        most this job's limit - elapsed + BPM_INLINE_MAX_SECONDS (any step whose timeout is no
        longer than this job's).
        """
        return job.timeout - self.elapsed() + settings.BPM_INLINE_MAX_SECONDS

    def fits(self, step_timeout: float) -> bool:
        """Whether a step with this timeout may run now in this job (outside a job: always)."""
        if dispatch.stopping():  # the worker is shutting down: the step goes to another
            return False
        job = dispatch.current_job()
        return job is None or dispatch.job_limit(step_timeout) <= self.job_limit_left(job)

    def inline(self, chain: int) -> bool:
        """Whether the step `chain` of one saga's inline chain may be followed by the next."""
        return chain < settings.BPM_INLINE_MAX_STEPS and self.left()


def _answer(run_id: int, token: str, budget: _Budget) -> None:
    """Run one doorbell's step and its saga's inline continuation, counting them in the budget.

    A continued run's doorbell was not rung: when the job may not run it after all (the worker
    is stopping, or the step's timeout would outlast the job's limit), it is rung now.
    """
    chain = 1
    budget.steps += 1
    following = engine.execute(run_id, token, inline=budget.inline(chain))
    while following is not None:
        if not budget.fits(following.timeout):
            following.ring()
            return
        chain += 1
        budget.steps += 1
        following = engine.execute(
            following.run_id,
            following.token,
            view=following.view,
            inline=budget.inline(chain),
        )


def answer_alert_doorbell(notice_id: int, token: str) -> None:
    """Deliver the alert notice behind this doorbell (bpm/alert_delivery.py)."""
    alert_delivery.deliver(notice_id, token)


def work_batch(batch_id: int) -> None:
    """Work through a batch repair's sagas (bpm.batches): the job behind its doorbell."""
    batches.batch_work(batch_id=batch_id)
