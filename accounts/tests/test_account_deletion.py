"""Deleting an account: one service behind the settings page, the admin and the ORM.

Every path must withdraw every grant first (logged, so downstream readers of
the log see it), end delegations and tell the label, delete tracks and their
files after the commit, erase the personal data in the log, and leave every
chain verifiable.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import models as db_models
from django.db.models import ProtectedError
from django.urls import reverse

from accounts import hooks
from accounts.models import User
from accounts.tests.conftest import ARTIST_REQUEST, MANAGER_REQUEST
from consent.models import (
    AuditActorData,
    AuditChainHead,
    AuditErasure,
    AuditEvent,
    AuditSubjectData,
    Consent,
    UploadDefault,
)
from labels.models import Delegation, LabelMembership
from notifications.models import Notification
from tests.utils import totp
from tracks.models import Track
from tracks.tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def assert_log_verifies(capsys) -> str:
    call_command("verify_audit_log")
    out = capsys.readouterr().out
    assert "consent state matches the log" in out
    return out


def assert_erased_the_way_every_path_must(history, media, capsys) -> None:
    """What every deletion path owes the artist, the label and the log."""
    artist_id = history.artist.pk
    assert not User.objects.filter(pk=artist_id).exists()
    assert not Track.objects.filter(owner_id=artist_id).exists()
    assert not Consent.objects.exists() and not UploadDefault.objects.exists()
    assert not Delegation.objects.filter(artist_id=artist_id).exists()
    assert stored_files(media) == []

    events = list(AuditEvent.objects.filter(artist_id=artist_id).order_by("seq"))
    withdrawals = [e for e in events if e.source == "account_deletion" and e.kind == "consent_changed"]
    # Withdrawn first, each one logged: one grant of recommendation was left
    # (the manager withdrew the other) and both generative-training grants.
    assert sorted((e.purpose_slug, e.new_value) for e in withdrawals) == [
        ("generative_training", "not_granted"),
        ("generative_training", "not_granted"),
        ("recommendation", "not_granted"),
    ]
    # In this order: grants withdrawn, the delegation ended, the tracks deleted, the account closed.
    ended = [e.seq for e in events if e.kind == "delegation_changed" and e.new_value == "ended"]
    deleted = [e.seq for e in events if e.kind == "track_deleted"]
    assert len(ended) == 1 and len(deleted) == 2
    assert max(e.seq for e in withdrawals) < ended[0] < min(deleted)
    assert ("defaults_changed", "not_granted") in [(e.kind, e.new_value) for e in events]
    assert events[-1].kind == "account_deleted"
    assert AuditChainHead.objects.get(artist_id=artist_id).seq == events[-1].seq

    # The personal data in the log is gone, the chain is not.
    assert not AuditSubjectData.objects.filter(event__artist_id=artist_id).exists()
    assert not AuditActorData.objects.filter(event__artist_id=artist_id).exists()
    assert not AuditActorData.objects.filter(ip=ARTIST_REQUEST["ip"]).exists()
    out = assert_log_verifies(capsys)
    assert "Personal data erased from" in out

    # The label heard of it; the artist's outbox holds only the farewell.
    manager_notices = Notification.objects.filter(recipient=history.manager, kind="delegation_changed")
    assert any(n.context["event"] == "account_deleted" for n in manager_notices)
    [farewell] = Notification.objects.filter(to_email__iexact=history.artist.email)
    assert farewell.recipient_id is None
    assert farewell.context["subject"] == "Your account has been deleted"
    head = AuditChainHead.objects.get(artist_id=artist_id)
    assert head.hash in farewell.context["body"]


# --- The three paths ---------------------------------------------------------------------------


def test_artist_deletes_their_account_from_settings_and_the_log_still_verifies(
    artist_with_history, reauthenticated_client, media, capsys, django_capture_on_commit_callbacks
):
    client = reauthenticated_client(artist_with_history.artist)
    page = client.get(reverse("accounts:delete"))
    assert page.status_code == 200
    assert "Northern Records" in page.text and "Your 2 tracks" in page.text

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:delete"), {"email": artist_with_history.artist.email.upper()})

    assert response.status_code == 302 and response["Location"] == reverse("accounts:deleted")
    assert "_auth_user_id" not in client.session
    assert_erased_the_way_every_path_must(artist_with_history, media, capsys)
    actors = set(
        AuditEvent.objects.filter(artist_id=artist_with_history.artist.pk, source="account_deletion").values_list(
            "actor_id", "actor_kind"
        )
    )
    assert actors == {(artist_with_history.artist.pk, "artist")}


def test_staff_delete_an_account_in_the_admin_through_the_same_service(
    artist_with_history, staff_user, client, media, capsys, django_capture_on_commit_callbacks
):
    client.force_login(staff_user)
    url = reverse("admin:accounts_user_delete", args=[artist_with_history.artist.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "withdrawn" in confirm.text and "Protected" not in confirm.text

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert_erased_the_way_every_path_must(artist_with_history, media, capsys)
    withdrawals = AuditEvent.objects.filter(artist_id=artist_with_history.artist.pk, source="account_deletion")
    assert set(withdrawals.values_list("actor_id", "actor_kind")) == {(staff_user.pk, "staff")}
    entry = LogEntry.objects.get(object_id=str(artist_with_history.artist.pk))
    assert entry.object_repr == f"account #{artist_with_history.artist.pk}"


def test_the_admin_delete_action_routes_every_selected_account_through_the_service(
    artist_with_history, other_artist, staff_user, client, media, capsys, django_capture_on_commit_callbacks
):
    client.force_login(staff_user)
    selected = [artist_with_history.artist.pk, other_artist.pk]
    changelist = reverse("admin:accounts_user_changelist")
    confirm = client.post(changelist, {"action": "delete_selected", "_selected_action": selected})
    assert confirm.status_code == 200 and "withdrawn" in confirm.text

    with django_capture_on_commit_callbacks(execute=True):
        client.post(changelist, {"action": "delete_selected", "_selected_action": selected, "post": "yes"})

    assert_erased_the_way_every_path_must(artist_with_history, media, capsys)
    assert not User.objects.filter(pk=other_artist.pk).exists()
    assert AuditEvent.objects.filter(artist_id=other_artist.pk, kind="account_deleted").exists()


def test_staff_cannot_delete_their_own_account_in_the_admin(staff_user, client):
    client.force_login(staff_user)
    url = reverse("admin:accounts_user_delete", args=[staff_user.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 200
    assert "settings page" in response.text
    assert User.objects.filter(pk=staff_user.pk).exists()


def test_user_delete_from_the_shell_is_routed_through_the_service(
    artist_with_history, media, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        artist_with_history.artist.delete()

    assert_erased_the_way_every_path_must(artist_with_history, media, capsys)
    withdrawals = AuditEvent.objects.filter(artist_id=artist_with_history.artist.pk, source="account_deletion")
    assert set(withdrawals.values_list("actor_id", "actor_kind")) == {(None, "system")}


def test_queryset_delete_is_routed_through_the_service_too(
    artist_with_history, media, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        count, _ = User.objects.filter(pk=artist_with_history.artist.pk).delete()

    assert count == 1
    assert_erased_the_way_every_path_must(artist_with_history, media, capsys)


# --- Nothing reaches consent or the log silently ------------------------------------------------


def test_a_bare_orm_delete_that_skips_the_service_is_refused(artist_with_history):
    artist = artist_with_history.artist
    with pytest.raises(ProtectedError):
        db_models.Model.delete(artist)
    with pytest.raises(ProtectedError):
        Track.objects.filter(owner=artist).delete()
    assert Consent.objects.filter(track__owner=artist, granted=True).exists()
    with pytest.raises(TypeError):
        User.objects.filter(pk=artist.pk)._raw_delete("default")


def _cascade_reach(model) -> set[str]:
    """Every model whose rows an ORM delete of `model` would delete or change (CASCADE, SET_*)."""
    silent = {db_models.CASCADE, db_models.SET_NULL, db_models.SET_DEFAULT}
    reached, todo = set(), [model]
    while todo:
        current = todo.pop()
        for relation in current._meta.related_objects:
            if relation.on_delete in silent and relation.related_model._meta.label not in reached:
                reached.add(relation.related_model._meta.label)
                if relation.on_delete is db_models.CASCADE:
                    todo.append(relation.related_model)
    return reached


@pytest.mark.parametrize("start", ["accounts.User", "tracks.Track", "labels.Label", "consent.Purpose"])
def test_no_orm_cascade_reaches_consent_tracks_delegations_or_the_log(start):
    from django.apps import apps

    guarded = {
        "consent.Consent",
        "consent.UploadDefault",
        "consent.AuditEvent",
        "consent.AuditChainHead",
        "consent.AuditActorData",
        "consent.AuditSubjectData",
        "consent.AuditErasure",
        "tracks.Track",
    }
    if start == "accounts.User":
        # Ending a delegation is audited and told to both sides: never a cascade.
        guarded.add("labels.Delegation")
    assert _cascade_reach(apps.get_model(start)) & guarded == set()


def test_a_step_that_fails_rolls_the_whole_deletion_back(artist_with_history, media):
    def broken(deletion):
        raise RuntimeError("the label service is down")

    hooks.erasure_steps.register(hooks.ErasureStep("test.broken", broken, order=85))
    events_before = AuditEvent.objects.count()
    try:
        with pytest.raises(RuntimeError):
            artist_with_history.artist.delete()
    finally:
        hooks.erasure_steps.unregister("test.broken")

    assert User.objects.filter(pk=artist_with_history.artist.pk).exists()
    assert Track.objects.filter(owner=artist_with_history.artist).count() == 2
    assert Consent.objects.filter(granted=True).count() == 3
    assert AuditEvent.objects.count() == events_before
    assert Delegation.objects.active().filter(artist=artist_with_history.artist).exists()
    assert len(stored_files(media)) == 4


# --- The settings page ------------------------------------------------------------------------


def test_the_delete_page_asks_for_the_password_again_first(artist, client, password):
    client.force_login(artist)
    response = client.get(reverse("accounts:delete"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_reauthenticate')}?next=%2Faccount%2Fdelete%2F"

    # A POST without re-authentication deletes nothing and is not replayed later.
    response = client.post(reverse("accounts:delete"), {"email": artist.email})
    assert response.status_code == 302 and User.objects.filter(pk=artist.pk).exists()

    back = client.post(response["Location"], {"password": password})
    assert back.status_code == 302 and back["Location"] == reverse("accounts:delete")
    assert client.get(reverse("accounts:delete")).status_code == 200
    assert User.objects.filter(pk=artist.pk).exists()


def test_with_two_factor_on_the_delete_page_asks_for_a_code_not_just_the_password(artist, reauthenticated_client):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(artist, secret)
    client = reauthenticated_client(artist)

    response = client.get(reverse("accounts:delete"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))

    wrong = client.post(response["Location"], {"code": "000000"})
    assert wrong.status_code == 200
    assert client.get(reverse("accounts:delete")).status_code == 302

    right = client.post(response["Location"], {"code": totp(secret, time.time())})
    assert right.status_code == 302 and right["Location"] == reverse("accounts:delete")
    assert client.get(reverse("accounts:delete")).status_code == 200


def test_a_mistyped_confirmation_deletes_nothing(artist_with_history, reauthenticated_client):
    client = reauthenticated_client(artist_with_history.artist)
    response = client.post(reverse("accounts:delete"), {"email": "someone-else@example.test"})
    assert response.status_code == 200
    assert "nothing was deleted" in response.text
    assert User.objects.filter(pk=artist_with_history.artist.pk).exists()
    assert Consent.objects.filter(granted=True).count() == 3


def test_the_delete_page_needs_a_signed_in_user(client):
    response = client.get(reverse("accounts:delete"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


# --- Other people's data in the log ---------------------------------------------------------------


def test_deleting_a_label_manager_erases_their_request_data_in_the_artists_log_and_nothing_else(
    artist_with_history, capsys, django_capture_on_commit_callbacks
):
    history = artist_with_history
    in_artist_chain = AuditEvent.objects.filter(artist=history.artist, actor=history.manager)
    assert AuditActorData.objects.filter(event__in=in_artist_chain, ip=MANAGER_REQUEST["ip"]).exists()

    with django_capture_on_commit_callbacks(execute=True):
        history.manager.delete()

    assert not LabelMembership.objects.filter(user_id=history.manager.pk).exists()
    assert not AuditActorData.objects.filter(ip=MANAGER_REQUEST["ip"]).exists()
    # The artist's own data and the track titles in their log are untouched.
    assert AuditActorData.objects.filter(event__artist=history.artist, ip=ARTIST_REQUEST["ip"]).exists()
    assert AuditSubjectData.objects.filter(event__artist=history.artist, track_title="Song for Ada 0").exists()
    assert AuditErasure.objects.filter(user_id=history.manager.pk, scope="actor").exists()
    # What the manager did stays on record, by account id.
    assert in_artist_chain.filter(kind="consent_changed", new_value="not_granted").exists()
    out = assert_log_verifies(capsys)
    assert "Personal data erased from" in out


def test_staff_still_see_a_deleted_accounts_log_and_its_erasures_in_the_admin(
    artist_with_history, staff_user, client, django_capture_on_commit_callbacks
):
    artist_id = artist_with_history.artist.pk
    with django_capture_on_commit_callbacks(execute=True):
        artist_with_history.artist.delete()
    client.force_login(staff_user)

    events = client.get(reverse("admin:consent_auditevent_changelist"))
    assert events.status_code == 200
    assert f"deleted account #{artist_id}" in events.text
    assert "Song for Ada" not in events.text
    erasures = client.get(reverse("admin:consent_auditerasure_changelist"))
    assert erasures.status_code == 200 and "account deleted" in erasures.text
