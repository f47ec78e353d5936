"""Webhooks: HTTPS only, signed per Standard Webhooks, retried with backoff, one message id per change."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from downstream import services, webhooks
from downstream.models import WebhookDelivery
from tests.utils import wait_until


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class HookServer:
    """A local HTTPS endpoint that records every request and can answer 503 to the first few."""

    def __init__(self, tmp_path):
        self.cert, key = _self_signed(tmp_path)
        self.received: list[dict] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with server.lock:
                    failing = server.fail_next > 0
                    server.fail_next -= failing
                    server.received.append(
                        {"headers": dict(self.headers), "body": body, "status": 503 if failing else 204}
                    )
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def delivered(self) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["status"] == 204]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook_server(tmp_path, settings):
    server = HookServer(tmp_path)
    settings.API_WEBHOOK_CA_BUNDLE = str(server.cert)
    yield server
    server.stop()


@pytest.fixture
def held_deliveries(monkeypatch):
    """These tests drive delivery themselves: the hand-off to Celery after the fan-out commits is held back."""
    monkeypatch.setattr(webhooks, "enqueue", lambda ids: None)


def fanned_out(client) -> list[int]:
    """The fan-out hands out changes once no older transaction is still open anywhere: wait for that."""
    ids: list[int] = []

    def some():
        ids.extend(webhooks.fan_out(client_id=client.pk))
        return ids

    wait_until(some, timeout=60, message="the committed change to settle in the feed")
    return ids


def _verify(secret: str, request: dict) -> dict:
    headers = {k.lower(): v for k, v in request["headers"].items()}
    return Webhook(secret).verify(request["body"], headers)


@pytest.mark.django_db(transaction=True)
def test_a_change_is_delivered_signed_retried_after_a_failure_and_once_by_id(
    hook_server, make_api_client, artist, make_track, set_consent, held_deliveries
):
    client, _ = make_api_client(purposes=["recommendation"])
    secret = services.set_webhook(client=client, url=hook_server.url)
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    hook_server.fail_next = 1

    ids = fanned_out(client)
    assert len(ids) == 1
    counts, retry_ids, countdown = webhooks.deliver(ids)
    assert counts == {"sent": 0, "retry": 1, "failed": 0} and retry_ids == ids and countdown > 0
    assert webhooks.deliver(ids)[0] == {"sent": 0, "retry": 0, "failed": 0}  # not due yet: nothing sent

    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=countdown + 1)):
        counts, _, _ = webhooks.deliver(ids)
    assert counts == {"sent": 1, "retry": 0, "failed": 0}
    assert webhooks.fan_out(client_id=client.pk) == []  # the same change is never fanned out twice

    first, second = hook_server.received
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    message = _verify(secret, second)
    assert message["type"] == "consent.change"
    assert message["data"]["track"] == str(track.uuid) and message["data"]["change"] == "granted"
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status) == ("sent", 2, 204)


@pytest.mark.django_db(transaction=True)
def test_a_deletion_is_told_for_each_purpose_and_a_4xx_is_not_retried(
    hook_server, make_api_client, artist, make_track, set_consent, delete_track, held_deliveries
):
    client, _ = make_api_client(purposes=["recommendation", "fraud_detection"])
    services.set_webhook(client=client, url=hook_server.url)
    track = make_track(owner=artist)
    delete_track(track)

    ids = fanned_out(client)
    assert sorted(WebhookDelivery.objects.values_list("purpose__slug", flat=True)) == [
        "fraud_detection",
        "recommendation",
    ]
    webhooks.deliver(ids)
    assert {json.loads(r["body"])["data"]["change"] for r in hook_server.delivered()} == {"deleted"}

    WebhookDelivery.objects.update(status="pending", next_attempt_at=timezone.now())
    hook_server.httpd.RequestHandlerClass.do_POST = lambda self: (self.send_response(410), self.end_headers())
    counts, retry_ids, _ = webhooks.deliver(ids)
    assert counts == {"sent": 0, "retry": 0, "failed": 2} and retry_ids == []


@pytest.mark.django_db
def test_only_https_endpoints_are_accepted(make_api_client):
    client, _ = make_api_client()
    with pytest.raises(services.DownstreamError, match="https"):
        services.set_webhook(client=client, url="http://example.test/hook")


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_with_an_untrusted_certificate_is_retried_not_sent(
    hook_server, make_api_client, artist, make_track, set_consent, settings, held_deliveries
):
    settings.API_WEBHOOK_CA_BUNDLE = ""  # the system store does not trust the test certificate
    client, _ = make_api_client(purposes=["recommendation"])
    services.set_webhook(client=client, url=hook_server.url)
    set_consent(make_track(owner=artist), recommendation=True)
    counts, _, _ = webhooks.deliver(fanned_out(client))
    assert counts["retry"] == 1 and hook_server.delivered() == []
    assert "SSL" in WebhookDelivery.objects.get().last_error


@pytest.mark.real_worker
def test_a_real_worker_delivers_with_retries_and_backoff(
    hook_server, start_celery_worker, make_api_client, artist, make_track, set_consent
):
    from downstream.tasks import sweep_webhooks

    start_celery_worker(API_WEBHOOK_CA_BUNDLE=str(hook_server.cert), API_WEBHOOK_RETRY_BASE_MS="200")
    client, _ = make_api_client(purposes=["recommendation"])
    secret = services.set_webhook(client=client, url=hook_server.url)
    track = make_track(owner=artist)
    hook_server.fail_next = 2
    set_consent(track, recommendation=True)

    # Beat runs the sweep every few seconds; here the test plays beat.
    wait_until(
        lambda: sweep_webhooks.delay() and hook_server.delivered(),
        timeout=60,
        interval=1,
        message="the webhook to be delivered",
    )
    wait_until(
        lambda: WebhookDelivery.objects.filter(status="sent").exists(), timeout=30, message="the delivery to be marked"
    )
    assert len(hook_server.received) == 3
    assert len({r["headers"]["webhook-id"] for r in hook_server.received}) == 1
    assert _verify(secret, hook_server.delivered()[0])["data"]["track"] == str(track.uuid)
    assert WebhookDelivery.objects.get().attempts == 3
