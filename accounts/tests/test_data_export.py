""" "Download my data": built by a worker, linked by email, served only to its owner, expiring."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import json
import re
import zipfile

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from accounts import hooks, tasks
from accounts.models import DataExport
from consent.chain import event_hash
from consent.models import GENESIS_HASH, AuditEvent, Purpose
from notifications.models import Notification
from tests.utils import wait_until
from tracks.tests.conftest import stored_files

SECTIONS = {
    "profile.json",
    "tracks.json",
    "consent/current.json",
    "consent/audit_log.json",
    "consent/receipts.json",
    "labels/delegations.json",
    "notices.json",
    "downstream/usage_ledger.json",
    "manifest.json",
    "README.txt",
}


def link_in(text: str) -> str:
    match = re.search(re.escape(settings.SITE_URL) + r"(/account/data/[0-9a-f-]+/)", text)
    assert match, text
    return match.group(1)


def open_zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "no-store"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def assert_exported_chain_verifies(log: dict) -> None:
    """Recompute the exported chain from the archive alone, as the artist could."""
    prev = GENESIS_HASH
    for event in log["events"]:
        personal = event["personal"]
        body = {k: v for k, v in event.items() if k != "personal"}
        body["created_at"] = datetime.datetime.fromisoformat(body["created_at"])
        assert body["prev_hash"] == prev
        assert event_hash(prev, body) == body["hash"]
        if body["actor_data_digest"]:
            message = json.dumps(
                {"ip": personal["ip"], "user_agent": personal["user_agent"]}, sort_keys=True, separators=(",", ":")
            )
            key = bytes.fromhex(personal["actor_data_key"])
            assert hmac.new(key, message.encode(), hashlib.sha256).hexdigest() == body["actor_data_digest"]
        prev = body["hash"]
    assert log["chain_head"]["hash"] == prev


@pytest.fixture
def export_ready(artist_with_history, reauthenticated_client, django_capture_on_commit_callbacks):
    """The artist asks for an archive and the (eager) worker builds it."""
    client = reauthenticated_client(artist_with_history.artist)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:data"))
    assert response.status_code == 302
    return DataExport.objects.get(user=artist_with_history.artist)


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_download_my_data_is_built_by_a_worker_and_the_link_arrives_by_email(
    smtp_server, start_celery_worker, artist_with_history, reauthenticated_client, make_user
):
    worker = start_celery_worker(EMAIL_URL=smtp_server.url)
    artist = artist_with_history.artist
    client = reauthenticated_client(artist)

    response = client.post(reverse("accounts:data"), follow=True)
    assert "being prepared" in response.text

    def ready_email():
        return [m for m in smtp_server.to(artist.email) if m["Subject"] == "Your data is ready to download"]

    [email] = wait_until(ready_email, timeout=60, message="the export email")
    assert "accounts.build_data_export" in worker.log()
    path = link_in(email.get_body(("plain",)).get_content())

    archive = open_zip(client.get(path))
    assert set(archive.namelist()) == SECTIONS
    assert_exported_chain_verifies(json.loads(archive.read("consent/audit_log.json")))

    stranger = make_user()
    client.force_login(stranger)
    assert client.get(path).status_code == 404


def test_the_archive_holds_every_section_with_what_the_portal_knows(export_ready, artist_with_history, client):
    artist = artist_with_history.artist
    assert export_ready.status == DataExport.Status.READY
    [notice] = Notification.objects.filter(to_email=artist.email, context__subject="Your data is ready to download")
    archive = open_zip(client.get(link_in(notice.context["body"])))
    assert set(archive.namelist()) == SECTIONS
    read = {name: archive.read(name) for name in archive.namelist()}

    manifest = json.loads(read["manifest.json"])
    for entry in manifest["files"]:
        assert hashlib.sha256(read[entry["file"]]).hexdigest() == entry["sha256"]

    profile = json.loads(read["profile.json"])
    assert (profile["email"], profile["display_name"]) == (artist.email, "Ada Artist")
    tracks = json.loads(read["tracks.json"])
    assert sorted(t["title"] for t in tracks) == ["Song for Ada 0", "Song for Ada 1"]
    current = json.loads(read["consent/current.json"])
    states = {t["title"]: {s: c["granted"] for s, c in t["consent"].items()} for t in current["tracks"]}
    granted_first = {slug for slug, granted in states["Song for Ada 0"].items() if granted}
    assert set(states["Song for Ada 0"]) == set(Purpose.objects.values_list("slug", flat=True))
    assert granted_first == {"generative_training"}
    assert current["upload_defaults"]["fraud_detection"] is True

    log = json.loads(read["consent/audit_log.json"])
    assert len(log["events"]) == AuditEvent.objects.filter(artist=artist).count()
    assert {e["personal"]["ip"] for e in log["events"]} >= {"203.0.113.7", "198.51.100.9"}
    assert_exported_chain_verifies(log)
    receipts = json.loads(read["consent/receipts.json"])
    receipt_ids = set(AuditEvent.objects.filter(artist=artist, receipt_id__isnull=False).values_list("receipt_id"))
    assert len(receipts) == len(receipt_ids)
    delegations = json.loads(read["labels/delegations.json"])
    assert [(d["label"], d["status"]) for d in delegations["delegations"]] == [("Northern Records", "active")]
    notices = json.loads(read["notices.json"])
    assert {"consent_receipt", "changed_on_behalf", "delegation_changed"} <= {n["kind"] for n in notices}
    assert "consent/audit_log.json: Your whole audit log" in read["README.txt"].decode()


def test_the_archive_is_served_only_to_its_owner(export_ready, client, other_artist):
    url = reverse("accounts:data_export_download", args=[export_ready.uuid])
    client.logout()
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("account_login"))
    client.force_login(other_artist)
    assert client.get(url).status_code == 404


def test_taking_the_archive_away_needs_the_password_again(export_ready, client, password):
    url = reverse("accounts:data_export_download", args=[export_ready.uuid])
    # Ten minutes after the password was last entered, the session alone (one
    # left open, or stolen) does not hand the archive over.
    with time_machine.travel(datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10), tick=True):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('account_reauthenticate')}?next={url.replace('/', '%2F')}"
        back = client.post(response["Location"], {"password": password})
        assert back["Location"] == url
        open_zip(client.get(url))


def test_an_expired_archive_is_removed_by_the_beat_task_and_its_link_says_so(
    export_ready, client, media, django_capture_on_commit_callbacks
):
    url = reverse("accounts:data_export_download", args=[export_ready.uuid])
    assert export_ready.storage_name in stored_files(media)
    later = export_ready.expires_at + datetime.timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        # Past its date the link is refused at once, before the sweep ran.
        early = client.get(url)
        assert early.status_code == 410 and "This link has expired" in early.text
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.sweep_data_exports() == {"expired": 1, "requeued": 0}
        assert tasks.sweep_data_exports() == {"expired": 0, "requeued": 0}

    assert [name for name in stored_files(media) if name.startswith("exports/")] == []
    export_ready.refresh_from_db()
    assert export_ready.status == DataExport.Status.EXPIRED
    response = client.get(url)
    assert response.status_code == 410 and "This link has expired" in response.text
    assert "<td>Expired</td>" in client.get(reverse("accounts:data")).text


def test_the_build_task_is_idempotent_and_a_second_request_reuses_the_pending_archive(artist, client):
    client.force_login(artist)
    # Without running on-commit work the export stays pending, as if the broker were slow.
    client.post(reverse("accounts:data"))
    client.post(reverse("accounts:data"))
    export = DataExport.objects.get(user=artist)
    assert export.status == DataExport.Status.PENDING

    assert tasks.build_data_export(export.pk) == "ready"
    assert tasks.build_data_export(export.pk) == "skipped"
    assert Notification.objects.filter(dedupe_key=f"data-export:{export.uuid}").count() == 1


def test_the_sweep_builds_an_export_whose_task_the_broker_lost(artist, client, django_capture_on_commit_callbacks):
    client.force_login(artist)
    client.post(reverse("accounts:data"))
    export = DataExport.objects.get(user=artist)
    grace = datetime.timedelta(seconds=settings.ACCOUNTS_EXPORT_SWEEP_GRACE_SECONDS + 1)
    with time_machine.travel(export.created_at + grace, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_data_exports()["requeued"] == 1
    export.refresh_from_db()
    assert export.status == DataExport.Status.READY


def test_adding_an_export_section_is_one_line(artist, reauthenticated_client, django_capture_on_commit_callbacks):
    hooks.export_sections.register(
        hooks.ExportSection("api/usage.json", lambda user: ({"n": n} for n in range(3)), order=70, description="x")
    )
    try:
        client = reauthenticated_client(artist)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("accounts:data"))
        export = DataExport.objects.get(user=artist)
        archive = open_zip(client.get(reverse("accounts:data_export_download", args=[export.uuid])))
        assert json.loads(archive.read("api/usage.json")) == [{"n": 0}, {"n": 1}, {"n": 2}]
    finally:
        hooks.export_sections.unregister("api/usage.json")


def test_a_build_that_fails_says_so_plainly_and_stores_nothing(
    artist, client, media, django_capture_on_commit_callbacks
):
    def broken(user):
        raise RuntimeError("database went away")

    hooks.export_sections.register(hooks.ExportSection("broken.json", broken, order=99, description="x"))
    try:
        client.force_login(artist)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("accounts:data"))
    finally:
        hooks.export_sections.unregister("broken.json")
    export = DataExport.objects.get(user=artist)
    assert export.status == DataExport.Status.FAILED
    assert stored_files(media) == []
    page = client.get(reverse("accounts:data_export_download", args=[export.uuid]))
    assert page.status_code == 200 and "could not be built" in page.text
    assert "database went away" not in page.text


def test_deleting_the_account_removes_its_archives_and_their_files(
    export_ready, artist_with_history, media, django_capture_on_commit_callbacks
):
    assert export_ready.storage_name in stored_files(media)
    with django_capture_on_commit_callbacks(execute=True):
        artist_with_history.artist.delete()
    assert not DataExport.objects.exists()
    assert stored_files(media) == []  # the archive and the tracks' files alike
