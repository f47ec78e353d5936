import os

import pytest

from conftest import service_missing
from creatorportal.health.models import WorkerHeartbeat
from creatorportal.tasks import worker_heartbeat
from tests.utils import wait_until


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_runs_a_task_through_redis(start_celery_worker, settings):
    if not os.environ.get("REDIS_URL"):
        service_missing("REDIS_URL is not set; this test is about the Redis broker")
    worker = start_celery_worker()

    worker_heartbeat.delay()

    # The worker process recorded its heartbeat: it consumed the task from Redis.
    beat = wait_until(WorkerHeartbeat.objects.first, timeout=30, message="heartbeat from the worker")
    assert beat.hostname.startswith("portal-test-")
    assert "worker_heartbeat" in worker.log()
    assert worker.process.poll() is None


def test_celery_is_configured_for_safe_redelivery():
    from creatorportal.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
