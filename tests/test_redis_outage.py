"""Redis down never takes a page down (DESIGN.md rule 9).

A redis-server of the test's own is both the cache and the broker; it is
stopped by its pid in the middle of the test. Every page a signed-in artist
and a label manager use must answer, every save must be kept, and the emails
those saves owe must go out once Redis is back (a real worker, the sweep, a
real SMTP server), each exactly once.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consent import policy, services
from consent.models import AuditEvent, Consent
from notifications.models import Notification
from notifications.tasks import sweep_notifications
from tests.utils import wait_until
from tracks.models import Track
from tracks.tasks import requeue_stalled_tracks
from tracks.tests.conftest import as_upload

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def outage(redis_cache, broker, settings):
    """The throwaway Redis as cache and broker, with the sweep's grace period off."""
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    return redis_cache


@pytest.fixture
def manager(make_user):
    return make_user(display_name="Mia Manager")


@pytest.fixture
def material_version(artist, manager, new_policy_version):
    """The next version, material, published after both users joined."""
    version = new_policy_version(
        summary="Fraud detection now includes payment fraud.",
        full_text="The terms, now with payment fraud.",
        effective_at=timezone.now() - timedelta(minutes=1),
        is_material=True,
    )
    # Published a minute ago: the banner is on every signed-in page.
    assert policy.publish_policy_version(version=version)
    return version


def sign_in(client: Client, user, password: str):
    return client.post(reverse("account_login"), {"login": user.email, "password": password})


def outage_warnings(caplog, role: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "platformkit.outage" and r.getMessage().startswith(f"{role} ") and "unreachable" in r.message
    ]


def test_with_redis_down_every_page_answers_nothing_is_lost_and_the_notices_follow(
    outage, artist, manager, material_version, password, smtp_server, start_celery_worker, caplog, settings
):
    from labels.services import create_label

    label = create_label(owner=manager, name="Northern Records")
    services.set_upload_defaults(actor=artist, artist=artist, choices={"recommendation": True})
    caplog.set_level(logging.WARNING, logger="platformkit.outage")

    outage.stop()

    client = Client()
    response = sign_in(client, artist, password)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")

    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert f"Our terms have changed (version {material_version.version})" in dashboard.content.decode()

    upload = client.post(reverse("tracks:upload"), {"files": [as_upload("good.mp3"), as_upload("good.flac")]})
    assert upload.status_code == 200
    tracks = list(Track.objects.filter(owner=artist).order_by("pk"))
    assert len(tracks) == 2

    save = client.post(
        reverse("consent:track_update", args=[tracks[0].uuid]), {"purpose": ["recommendation", "fraud_detection"]}
    )
    assert save.status_code == 302
    assert Consent.objects.get(track=tracks[0], purpose__slug="fraud_detection").granted

    assert client.get(reverse("consent:audit_log")).status_code == 200
    acknowledged = client.post(
        reverse("policy:acknowledge", args=[material_version.version]), {"next": reverse("dashboard")}
    )
    assert acknowledged.status_code == 302
    assert "Our terms have changed" not in client.get(reverse("dashboard")).content.decode()

    label_client = Client()
    assert sign_in(label_client, manager, password).status_code == 302
    assert label_client.get(reverse("labels:catalogue", args=[label.slug])).status_code == 200

    health = client.get(reverse("healthz"))
    # Degraded, not down: a load balancer keeps a node whose pages answer.
    assert health.status_code == 200 and not health.json()["checks"]["cache"]["ok"]

    # Nothing the artist did while Redis was down is lost.
    kinds = Counter(AuditEvent.objects.filter(artist=artist).values_list("kind", flat=True))
    assert kinds == {"track_uploaded": 2, "consent_changed": 3, "defaults_changed": 1, "policy_acknowledged": 1}
    waiting = Notification.objects.exclude(status=Notification.Status.SENT)
    assert waiting.filter(recipient=artist, kind=Notification.Kind.CONSENT_RECEIPT).count() == 3
    # The outage was logged once for the cache and once for the broker, not once per call.
    assert len(outage_warnings(caplog, "cache")) == 1
    assert len(outage_warnings(caplog, "broker")) == 1

    outage.start()
    start_celery_worker(REDIS_URL=outage.url, EMAIL_URL=smtp_server.url)
    sweep_notifications()  # what beat does every minute; it also restarts the policy fan-out
    settings.TRACKS_SWEEP_GRACE_SECONDS = 0
    requeue_stalled_tracks()  # what beat does every five minutes

    expected = 3 + 2  # the artist's receipts (defaults, upload, save); a policy notice to each user
    wait_until(lambda: len(smtp_server.messages) >= expected, timeout=90, message="the owed emails")
    wait_until(
        lambda: not Notification.objects.exclude(status=Notification.Status.SENT).exists(),
        timeout=30,
        message="every outbox row sent",
    )
    rows = list(Notification.objects.all())
    assert len(rows) == expected
    assert Counter(smtp_server.message_ids()) == Counter({row.message_id: 1 for row in rows})
    assert {m["To"] for m in smtp_server.messages} == {artist.email, manager.email}
    wait_until(
        lambda: not Track.objects.filter(status=Track.Status.PROCESSING).exists(), timeout=60, message="processing"
    )
    assert set(Track.objects.values_list("status", flat=True)) == {Track.Status.READY}


def test_a_hung_redis_holds_no_page_for_long(outage, artist, manager, material_version, password, caplog):
    import threading

    from django.db import connections

    from tracks import services as track_services

    track = track_services.create_track(owner=artist, upload=as_upload("good.mp3"))
    caplog.set_level(logging.WARNING, logger="platformkit.outage")
    outage.hang()  # the connection stays open, nothing answers

    client = Client()
    answers = {}

    def use_the_site():
        try:
            answers["sign_in"] = sign_in(client, artist, password).status_code
            dashboard = client.get(reverse("dashboard"))
            answers["dashboard"] = dashboard.status_code
            answers["banner"] = (
                f"Our terms have changed (version {material_version.version})" in dashboard.content.decode()
            )
            answers["save"] = client.post(
                reverse("consent:track_update", args=[track.uuid]), {"purpose": ["recommendation"]}
            ).status_code
            answers["audit_log"] = client.get(reverse("consent:audit_log")).status_code
        finally:
            connections.close_all()  # this thread's database connection

    visit = threading.Thread(target=use_the_site)
    visit.start()
    visit.join(timeout=60)  # a bound for a hang, far above the socket timeouts

    assert not visit.is_alive(), f"a page is still waiting on the hung Redis; answered so far: {answers}"
    assert answers == {"sign_in": 302, "dashboard": 200, "banner": True, "save": 302, "audit_log": 200}
    assert Consent.objects.get(track=track, purpose__slug="recommendation").granted
    assert len(outage_warnings(caplog, "cache")) == 1
