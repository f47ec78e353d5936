import pytest
from django.urls import reverse

from creatorportal import health

pytestmark = pytest.mark.django_db


def test_healthz_reports_ok_when_database_cache_and_broker_answer(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert all(check["ok"] for check in body["checks"].values())


def test_healthz_is_503_and_names_the_failing_part(client, monkeypatch):
    def broker_down():
        raise ConnectionRefusedError("broker refused the connection")

    monkeypatch.setitem(health.CHECKS, "broker", broker_down)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"] == {"ok": False, "error": "ConnectionRefusedError: broker refused the connection"}
    assert body["checks"]["database"]["ok"] is True


def test_healthz_is_503_when_the_broker_url_points_nowhere(client, settings):
    # A real connection attempt to a port nothing listens on, not a mock.
    from creatorportal.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get(reverse("healthz"))
    finally:
        app.conf.broker_url = previous

    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
