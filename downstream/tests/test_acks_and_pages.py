"""Acknowledgements, what the artist sees, the staff side (admin, notices) and the shell commands."""

from __future__ import annotations

import ast
import datetime
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from downstream.models import ApiClient, WithdrawalAck
from notifications.models import Notification
from tests.utils import wait_until

# --- Acknowledgements --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_ack_covers_every_withdrawal_up_to_its_cursor_and_the_artist_sees_who_applied_it(
    artist, make_track, make_api_client, caller, set_consent, client
):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    set_consent(track, recommendation=False)
    make_api_client(purposes=["recommendation"], name="Recommender A")
    make_api_client(purposes=["recommendation"], name="Recommender B")
    make_api_client(purposes=["fraud_detection"], name="Fraud model")  # not in this purpose's scope
    _, applied_token = make_api_client(purposes=["recommendation"], name="Recommender C")
    api = caller(applied_token)

    feed = wait_until(lambda: (c := api.get("/consent/changes", purpose="recommendation").json()["changes"]) and c)
    assert [c["change"] for c in feed] == ["granted", "withdrawn"]
    response = api.post("/consent/acks", {"purpose": "recommendation", "cursor": feed[-1]["cursor"]})
    assert response.status_code == 200, response.content
    assert response.json()["withdrawals_acknowledged"] == 1
    again = api.post("/consent/acks", {"purpose": "recommendation", "cursor": feed[0]["cursor"]}).json()
    assert again["cursor"] == feed[-1]["cursor"] and again["withdrawals_acknowledged"] == 0  # never moves back

    client.force_login(artist)
    page = client.get(reverse("downstream:track", kwargs={"uuid": track.uuid}))
    assert page.status_code == 200
    systems = [s.system for s in page.context["withdrawals"][0].systems]
    assert systems == ["Recommender A", "Recommender B", "Recommender C"]
    acked = {s.system: s.acknowledged_at for s in page.context["withdrawals"][0].systems}
    assert acked["Recommender C"] is not None and acked["Recommender A"] is None
    html = page.content.decode()
    assert "Applied" in html and "Not yet" in html and "Fraud model" not in html
    assert WithdrawalAck.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_cursor_ahead_of_the_feed_cannot_be_acknowledged(make_api_client, caller):
    _, token = make_api_client(purposes=["recommendation"])
    response = caller(token).post("/consent/acks", {"purpose": "recommendation", "cursor": "999999999.999999999"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"


# --- The artist's pages ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_downstream_page_is_the_owners_alone(artist, other_artist, make_track, client):
    track = make_track(owner=artist)
    url = reverse("downstream:track", kwargs={"uuid": track.uuid})
    assert client.get(url).status_code == 404
    client.force_login(other_artist)
    assert client.get(url).status_code == 404
    client.force_login(artist)
    assert client.get(url).status_code == 200
    detail = client.get(track.get_absolute_url()).content.decode()
    assert url in detail


@pytest.mark.django_db
def test_the_artist_sees_manifests_and_use_per_track_and_totals_on_the_dashboard(
    artist, make_track, api, set_consent, client
):
    from django.template.loader import render_to_string

    from downstream.selectors import usage_ledger_for_artist

    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    api.post(
        "/manifests", {"purpose": "recommendation", "name": "spring run", "id_type": "uuid", "ids": [str(track.uuid)]}
    )
    for _ in range(3):
        api.post(
            "/usage", {"purpose": "recommendation", "id_type": "uuid", "ids": [str(track.uuid)], "description": "d"}
        )

    client.force_login(artist)
    html = client.get(reverse("downstream:track", kwargs={"uuid": track.uuid})).content.decode()
    assert "spring run" in html
    today = timezone.now()
    assert f"Used for recommendation by {ApiClient.objects.get().name}, " in html
    assert f"{today:%-d %b %Y}</time>, 3 times" in html

    request = client.get(reverse("dashboard")).wsgi_request
    panel = render_to_string("downstream/_dashboard_usage.html", {"user": artist}, request=request)
    assert "3 times on 1 track" in panel

    ledger = usage_ledger_for_artist(artist.pk)
    assert len(ledger) == 3 and ledger[0]["track"] == str(track.uuid) and ledger[0]["purpose"] == "recommendation"
    assert ledger[0]["consent_event"]


# --- Staff: admin and notices --------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_register_a_client_in_the_admin_and_see_the_token_once(staff_user, client, purposes):
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:downstream_apiclient_add"),
        {"name": "Fraud model", "contact": "fraud@example.test", "purposes": [purposes["fraud_detection"].pk]},
    )
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    token = response.context["token"]
    assert token.startswith("ccp_") and token in response.content.decode()
    row = ApiClient.objects.get(name="Fraud model")
    assert token not in str(ApiClient.objects.filter(pk=row.pk).values()[0])
    assert client.get(reverse("admin:downstream_apiclient_change", args=[row.pk])).content.decode().count(token) == 0
    listing = client.get(reverse("admin:downstream_apiclient_changelist")).content.decode()
    assert reverse("api-v1:openapi-view") in listing
    assert "fraud_detection: 0" in listing  # its lag

    client.post(reverse("admin:downstream_apiclient_changelist"), {"action": "revoke", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.revoked_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_left_unacknowledged_past_the_deadline_raises_one_staff_notice(
    artist, staff_user, make_track, make_api_client, set_consent, django_capture_on_commit_callbacks
):
    import time_machine

    from downstream.tasks import check_ack_deadlines

    make_api_client(purposes=["recommendation"], name="Slow recommender")
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    set_consent(track, recommendation=False)

    with django_capture_on_commit_callbacks(execute=False):
        assert check_ack_deadlines() == {"notices": 0}  # within the deadline
        later = timezone.now() + datetime.timedelta(hours=25)
        with time_machine.travel(later):
            assert check_ack_deadlines() == {"notices": 1}
            assert check_ack_deadlines() == {"notices": 0}  # the same backlog is told once
    notice = Notification.objects.get(kind=Notification.Kind.API_ACK_OVERDUE)
    assert notice.to_email == staff_user.email
    assert notice.context["client"] == "Slow recommender" and notice.context["count"] == 1
    from notifications.rendering import build_message

    message = build_message(notice)
    assert "Slow recommender" in message.subject and "recommendation" in message.body


# --- Shell ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_api_client_prints_the_token_alone_on_its_last_line(caller):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_client", "Trainer", "--purpose", "generative_training", "--manifests", stdout=out, stderr=err
    )
    token = out.getvalue().strip().splitlines()[-1]
    row = ApiClient.objects.get(name="Trainer")
    assert row.can_write_manifests and not row.can_write_usage
    assert list(row.purposes.values_list("slug", flat=True)) == ["generative_training"]
    assert caller(token).get("/client").json()["purposes"] == ["generative_training"]


@pytest.mark.django_db
def test_create_api_client_refuses_an_unknown_purpose():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown purpose"):
        call_command("create_api_client", "X", "--purpose", "nope", stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiClient.objects.exists()


# --- Layering ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["consent", "tracks", "notifications", "accounts", "labels"])
def test_lower_and_sibling_apps_never_import_downstream(app):
    root = Path(__file__).resolve().parents[2] / app
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n == "downstream" or n.startswith("downstream.")]
    assert offenders == []


def test_the_usage_ledger_is_in_the_artists_data_export(artist, make_track, api, set_consent):
    import json
    import zipfile

    from django.core.files.storage import default_storage

    from accounts.export import build_archive

    track = make_track(owner=artist, title="Used Song")
    set_consent(track, recommendation=True)
    answer = api.post(
        "/usage", {"purpose": "recommendation", "id_type": "uuid", "ids": [str(track.uuid)], "description": "nightly"}
    )
    assert answer.status_code == 201, answer.content

    built = build_archive(artist)
    with default_storage.open(built.storage_name) as stored, zipfile.ZipFile(stored) as archive:
        ledger = json.loads(archive.read("downstream/usage_ledger.json"))
        readme = archive.read("README.txt").decode()

    assert [(row["track"], row["purpose"], row["description"]) for row in ledger] == [
        (str(track.uuid), "recommendation", "nightly")
    ]
    assert "downstream/usage_ledger.json: Every recorded use of your tracks" in readme
