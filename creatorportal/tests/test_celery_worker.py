import os

import pytest
from django.core.cache import cache

from conftest import service_missing
from creatorportal.tasks import WORKER_HEARTBEAT_KEY, worker_heartbeat
from tests.utils import wait_until


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_runs_a_task_through_redis(start_celery_worker, settings):
    if not os.environ.get("REDIS_URL"):
        service_missing("REDIS_URL is not set; this test is about the Redis broker")
    cache.delete(WORKER_HEARTBEAT_KEY)
    worker = start_celery_worker()

    worker_heartbeat.delay()

    # The worker process wrote to the shared Redis cache: it consumed the task.
    value = wait_until(lambda: cache.get(WORKER_HEARTBEAT_KEY), timeout=30, message="heartbeat from the worker")
    assert value
    assert "worker_heartbeat" in worker.log()
    assert worker.process.poll() is None


def test_celery_is_configured_for_safe_redelivery():
    from creatorportal.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
