import os
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from conftest import service_missing
from creatorportal.health import views as health
from creatorportal.health.models import WorkerHeartbeat
from creatorportal.tasks import worker_heartbeat
from tests.utils import wait_until


def heartbeat_recorded():
    return WorkerHeartbeat.objects.exists()


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_when_database_cache_broker_and_a_real_worker_answer(client, start_celery_worker):
    if not os.environ.get("REDIS_URL"):
        service_missing("REDIS_URL is not set; this test is about the Redis cache and broker")
    start_celery_worker()
    worker_heartbeat.delay()
    wait_until(heartbeat_recorded, timeout=30, message="a heartbeat from the worker")

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "worker"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["database"]["age_seconds"] == 0
    worker = body["checks"]["worker"]
    (hostname,) = worker["workers"]
    assert hostname.startswith("portal-test-")  # the worker process's own name, not this process's
    assert 0 <= worker["age_seconds"] < 30


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_healthz_stays_200_with_redis_stopped_and_says_since_when(client, redis_cache, broker, start_celery_worker):
    start_celery_worker(REDIS_URL=redis_cache.url)
    worker_heartbeat.delay()
    wait_until(heartbeat_recorded, timeout=30, message="a heartbeat from the worker")
    before = client.get(reverse("healthz")).json()
    assert before["status"] == "ok", before
    last_seen_answering = time.time()

    redis_cache.stop()
    time.sleep(1)
    asked_at = time.time()
    response = client.get(reverse("healthz"))

    # Pages still answer without Redis (DESIGN.md rule 9): the load balancer keeps this node.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    for name in ("cache", "broker"):
        check = body["checks"][name]
        assert check["ok"] is False and check["error"]
        assert check["age_seconds"] >= round(asked_at - last_seen_answering, 1) - 0.1
    # The heartbeat is in the database: its age is still known while the broker is down.
    assert body["checks"]["worker"]["ok"] is True
    assert body["checks"]["worker"]["age_seconds"] >= 1


@pytest.mark.django_db
def test_healthz_reports_a_stale_worker_heartbeat_with_its_age(client):
    WorkerHeartbeat.objects.create(hostname="celery@gone", last_seen=timezone.now() - timedelta(minutes=10))

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    worker = body["checks"]["worker"]
    assert worker["ok"] is False
    assert 600 <= worker["age_seconds"] < 630
    assert worker["workers"] == {"celery@gone": worker["age_seconds"]}
    assert worker["error"].startswith("the last worker heartbeat is 6") and worker["error"].endswith("(limit 180 s)")


@pytest.mark.django_db
def test_healthz_says_when_no_worker_ever_beat(client):
    body = client.get(reverse("healthz")).json()

    assert body["checks"]["worker"] == {
        "ok": False,
        "error": "no worker heartbeat in the last day",
        "age_seconds": None,
        "workers": {},
    }


@pytest.mark.django_db
def test_the_heartbeat_task_keeps_one_row_per_worker_and_forgets_old_ones():
    WorkerHeartbeat.objects.create(hostname="celery@retired", last_seen=timezone.now() - timedelta(days=8))
    worker_heartbeat.apply()
    worker_heartbeat.apply()

    (row,) = WorkerHeartbeat.objects.all()
    assert row.hostname != "celery@retired"
    assert timezone.now() - row.last_seen < timedelta(seconds=30)


@pytest.mark.django_db
def test_healthz_is_503_only_when_the_database_does_not_answer(client, monkeypatch):
    def database_down():
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", database_down)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"] == "OperationalError: connection refused"


@pytest.mark.django_db
def test_healthz_names_a_broker_that_points_nowhere_and_stays_200(client):
    # A real connection attempt to a port nothing listens on, not a mock.
    from creatorportal.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get(reverse("healthz"))
    finally:
        app.conf.broker_url = previous

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["broker"]["ok"] is False
