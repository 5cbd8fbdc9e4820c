"""A real Celery worker runs tasks under the `worker` channel (or `scheduler` for beat's messages)."""

import time

from apps.audit.models import AuditEvent
from apps.audit.tasks import audit_verify_chain
from apps.core.context import Channel, acting
from apps.core.signals import CHANNEL_HEADER


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the worker")


def test_worker_runs_task_with_worker_channel(celery_worker, user):
    with acting(channel=Channel.UI, user=user, ip="192.0.2.1"):
        audit_verify_chain.delay()
    event = wait_for(lambda: AuditEvent.objects.filter(verb="audit.verified").first())
    # Work done by the worker keeps the person who asked for it, but not their address.
    assert (event.channel, event.actor, event.ip) == ("worker", user, "")


def test_beat_messages_run_with_scheduler_channel(celery_worker):
    audit_verify_chain.apply_async(headers={CHANNEL_HEADER: "scheduler"})
    event = wait_for(lambda: AuditEvent.objects.filter(verb="audit.verified").first())
    assert (event.channel, event.actor_name) == ("scheduler", "system")


def test_forged_channel_header_falls_back_to_worker(celery_worker):
    audit_verify_chain.apply_async(headers={CHANNEL_HEADER: "ui"})
    event = wait_for(lambda: AuditEvent.objects.filter(verb="audit.verified").first())
    assert event.channel == "worker"
