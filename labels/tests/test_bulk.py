from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from consent import services as consent_services
from consent.models import AuditEvent, BulkChange
from consent.selectors import verify_chains
from labels import bulk as bulk_changes
from labels import services
from labels.services import LabelError
from labels.tests.conftest import granted
from notifications.models import Notification
from tracks.models import Track

GW_REC = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}


@pytest.fixture
def roster(label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup
    artists = [make_user(display_name=f"Roster {i}") for i in range(3)]
    for a in artists:
        make_tracks(5, owner=a)
        delegate(a, GW_REC)
    return label, manager, artists


def _bulk(manager, label, changes, selection=None, confirmed=()):
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes=changes,
        filter_params={},
        selection=selection,
        confirmed=confirmed,
    )
    bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    bulk.refresh_from_db()
    return bulk


def test_each_affected_artist_gets_exactly_one_email_per_bulk_change(
    roster, django_capture_on_commit_callbacks, mailoutbox
):
    label, manager, artists = roster
    with django_capture_on_commit_callbacks(execute=True):
        # two purposes, one granted and one refused for fraud (withdraw only): still one email each
        bulk = _bulk(manager, label, {"recommendation": True, "fraud_detection": True})
    assert bulk.applied == 15 and bulk.refused == 15
    assert bulk.artists_notified == 3
    assert sorted(m.to[0] for m in mailoutbox) == sorted(a.email for a in artists)
    # The notice names the label and tells the artist how to take the power back.
    body = mailoutbox[0].body
    assert f"of {label.name} changed how your music may be used" in body
    assert "/labels/delegations/" in body
    consent_notices = Notification.objects.filter(recipient__in=artists).exclude(kind="delegation_changed")
    assert sorted(consent_notices.values_list("kind", flat=True)) == ["changed_on_behalf"] * 3


def test_small_chunks_still_mean_one_email_per_artist(roster, settings):
    settings.LABELS_BULK_CHUNK_TRACKS = 1
    label, manager, artists = roster
    bulk = _bulk(manager, label, {"recommendation": True})
    assert bulk.applied == 15
    for a in artists:
        assert Notification.objects.filter(recipient=a, kind="changed_on_behalf").count() == 1


def test_every_audit_event_links_to_the_bulk_change_and_the_chain_verifies(roster):
    label, manager, _ = roster
    bulk = _bulk(manager, label, {"recommendation": True})
    events = AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_CHANGED)
    assert events.count() == 15
    assert set(events.values_list("bulk_change_id", "label_id", "source", "actor_kind").distinct()) == {
        (bulk.pk, label.pk, "bulk", "label")
    }
    assert verify_chains().ok


def test_preview_counts_changes_already_so_and_refusals_per_artist(roster, set_state):
    label, manager, artists = roster
    set_state(artists[0], list(Track.objects.filter(owner=artists[0])[:2]), "recommendation", True)
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"recommendation": True, "generative_training": True},
        filter_params={},
        selection=None,
        confirmed=["generative_training"],
    )
    assert bulk.status == BulkChange.Status.DRAFT
    assert (bulk.will_change, bulk.already, bulk.refused) == (13, 2, 15)
    assert {(r["artist"], r["reason"]) for r in bulk.refused_detail} == {
        (a.display_name, "not delegated") for a in artists
    }
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_CHANGED, actor=manager).exists()


def test_bulk_grant_of_generative_training_needs_its_confirmation(roster):
    label, manager, _ = roster
    with pytest.raises(LabelError, match="confirmation"):
        bulk_changes.preview_bulk_edit(
            actor=manager,
            label=label,
            tracks=Track.objects.all(),
            changes={"generative_training": True},
            filter_params={},
            selection=None,
        )


def test_undo_applies_the_reverse_change_audited_too(client, roster):
    label, manager, artists = roster
    bulk = _bulk(manager, label, {"recommendation": True})
    # The artist changes one cell afterwards; the undo leaves it alone.
    mine = Track.objects.filter(owner=artists[0]).first()
    from consent import services as consent_services

    consent_services.change_consent(
        actor=artists[0], tracks=Track.objects.filter(pk=mine.pk), changes={"recommendation": False}, source="web"
    )
    consent_services.change_consent(
        actor=artists[0], tracks=Track.objects.filter(pk=mine.pk), changes={"recommendation": True}, source="web"
    )
    client.force_login(manager)
    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/undo/")
    undo = BulkChange.objects.get(undo_of=bulk)
    assert response.status_code == 302
    assert undo.status == BulkChange.Status.DONE and undo.applied == 14
    assert granted(mine, "recommendation")
    assert Track.objects.filter(consents__granted=True).count() == 1
    assert AuditEvent.objects.filter(bulk_change=undo).count() == 14
    with pytest.raises(LabelError, match="already undone"):
        bulk_changes.undo_bulk_change(actor=manager, bulk_change=bulk)
    assert verify_chains().ok


def test_undo_is_refused_after_the_window(roster, settings):
    settings.LABELS_UNDO_WINDOW_SECONDS = 60
    label, manager, _ = roster
    bulk = _bulk(manager, label, {"recommendation": True})
    BulkChange.objects.filter(pk=bulk.pk).update(finished_at=timezone.now() - datetime.timedelta(minutes=2))
    bulk.refresh_from_db()
    with pytest.raises(LabelError, match="undo window"):
        bulk_changes.undo_bulk_change(actor=manager, bulk_change=bulk)


def test_large_change_is_queued_and_reports_progress(client, roster, settings, django_capture_on_commit_callbacks):
    settings.LABELS_BULK_SYNC_MAX_CELLS = 1
    label, manager, _ = roster
    client.force_login(manager)
    client.post(
        f"/labels/{label.slug}/bulk/preview/", {"all_matching": "1", "purpose": "recommendation", "action": "grant"}
    )
    bulk = BulkChange.objects.get()
    page = client.get(f"/labels/{label.slug}/bulk/{bulk.pk}/").content.decode()
    assert "Apply 15 changes" in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    data = client.get(f"/labels/{label.slug}/bulk/{bulk.pk}/progress.json").json()
    assert data["status"] == "queued" and data["total"] == 15
    # Celery runs eagerly in unit tests: the task runs when the callback fires.
    for callback in callbacks:
        callback()
    data = client.get(f"/labels/{label.slug}/bulk/{bulk.pk}/progress.json").json()
    assert data == {"status": "done", "done": 15, "total": 15, "applied": 15, "finished": True}


def test_progress_page_of_a_running_change_refreshes_without_javascript(client, roster):
    label, manager, _ = roster
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, progress_done=5)
    client.force_login(manager)
    body = client.get(f"/labels/{label.slug}/bulk/{bulk.pk}/").content.decode()
    assert '<noscript><meta http-equiv="refresh"' in body
    assert '<progress max="15" value="5">' in body


def test_a_change_is_applied_once_even_if_confirmed_twice(client, roster):
    label, manager, _ = roster
    client.force_login(manager)
    client.post(
        f"/labels/{label.slug}/bulk/preview/", {"all_matching": "1", "purpose": "recommendation", "action": "grant"}
    )
    bulk = BulkChange.objects.get()
    client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/", follow=True)
    assert "already confirmed" in response.content.decode()
    assert AuditEvent.objects.filter(bulk_change=bulk).count() == 15


def test_preview_without_purpose_or_selection_explains_itself(client, roster):
    label, manager, _ = roster
    client.force_login(manager)
    response = client.post(
        f"/labels/{label.slug}/bulk/preview/", {"purpose": "recommendation", "action": "grant"}, follow=True
    )
    assert "Tick some tracks" in response.content.decode()
    response = client.post(f"/labels/{label.slug}/bulk/preview/", {"all_matching": "1", "action": "grant"}, follow=True)
    assert "Choose at least one purpose" in response.content.decode()
    response = client.post(
        f"/labels/{label.slug}/bulk/preview/", {"all_matching": "1", "purpose": "nope", "action": "grant"}, follow=True
    )
    assert "Choose at least one purpose" in response.content.decode()
    assert not BulkChange.objects.exists()


def test_filter_is_saved_and_applied_at_confirm_time(client, roster):
    label, manager, artists = roster
    client.force_login(manager)
    client.post(
        f"/labels/{label.slug}/bulk/preview/",
        {"all_matching": "1", "artist": str(artists[1].pk), "purpose": "recommendation", "action": "grant"},
    )
    bulk = BulkChange.objects.get()
    assert bulk.filter == {"artist": str(artists[1].pk)} and bulk.will_change == 5
    client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    assert set(Track.objects.filter(consents__granted=True).values_list("owner_id", flat=True)) == {artists[1].pk}


def test_undo_that_grants_generative_training_again_needs_the_confirmation(
    client, label_setup, make_user, make_tracks, set_state
):
    label, manager, delegate = label_setup
    ada = make_user()
    tracks = make_tracks(2, owner=ada)
    set_state(ada, tracks, "generative_training", True)
    delegate(ada, {"recommendation": "none", "fraud_detection": "none", "generative_training": "grant_withdraw"})
    bulk = _bulk(manager, label, {"generative_training": False})
    assert bulk.applied == 2
    client.force_login(manager)
    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/undo/", follow=True)
    assert "tick the box to confirm" in response.content.decode()
    assert not BulkChange.objects.filter(undo_of=bulk).exists()
    client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/undo/", {"confirm": "1"})
    assert BulkChange.objects.get(undo_of=bulk).applied == 2
    assert all(granted(t, "generative_training") for t in tracks)


def test_a_change_whose_manager_account_was_deactivated_is_not_applied(roster):
    label, manager, _ = roster
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"fraud_detection": False},
        filter_params={},
        selection=None,
    )
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
    type(manager).objects.filter(pk=manager.pk).update(is_active=False)
    result = bulk_changes.apply_bulk_change(bulk.pk)
    assert result.status == BulkChange.Status.FAILED
    assert "no longer has an active account" in result.error
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()


def test_a_manager_removed_from_the_label_cannot_apply_a_queued_change(roster):
    label, manager, _ = roster
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
    label.memberships.filter(user=manager).delete()
    result = bulk_changes.apply_bulk_change(bulk.pk)
    assert result.applied == 0 and result.refused == 15
    reasons = {r["reason"] for r in result.refused_detail}
    assert reasons == {"the delegation no longer allows it; nothing changed for them"}
    assert Track.objects.filter(consents__granted=True).count() == 0


def test_a_delegation_narrowed_during_the_apply_is_reported_and_the_rest_goes_on(roster, monkeypatch, settings):
    settings.LABELS_BULK_CHUNK_TRACKS = 5  # one artist per consent call
    label, manager, artists = roster
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
    # The artist narrows the delegation after the label's own check has read it:
    # the label side sees the old scopes, the service (under the lock) the new.
    stale = bulk_changes.delegated_scopes(manager, [a.pk for a in artists], label_id=label.pk)
    monkeypatch.setattr(bulk_changes, "delegated_scopes", lambda *a, **k: stale)
    delegation = artists[1].delegations.get()
    services.change_scopes(artist=artists[1], delegation=delegation, scopes={**GW_REC, "recommendation": "withdraw"})
    result = bulk_changes.apply_bulk_change(bulk.pk)
    assert result.status == BulkChange.Status.DONE
    assert result.applied == 10
    assert not Track.objects.filter(owner=artists[1], consents__granted=True).exists()
    assert any("changed the delegation while" in r["reason"] for r in result.refused_detail)
    assert verify_chains().ok


def test_the_bulk_change_link_is_covered_by_the_hash_and_old_events_keep_theirs():
    from consent.chain import event_hash

    base = {
        "artist_id": 1,
        "seq": 1,
        "actor_id": 2,
        "actor_kind": "label",
        "source": "bulk",
        "kind": "consent_changed",
        "track_id": 3,
        "track_uuid": None,
        "track_title": "t",
        "purpose_id": 1,
        "purpose_slug": "recommendation",
        "old_value": "not_granted",
        "new_value": "granted",
        "policy_version_id": 1,
        "ip": "",
        "user_agent": "",
        "request_id": "",
        "receipt_id": None,
        "created_at": timezone.now(),
    }
    before_the_columns_existed = event_hash("0" * 64, base)
    # An event without a label or bulk change hashes exactly as before.
    assert event_hash("0" * 64, {**base, "label_id": None, "bulk_change_id": None}) == before_the_columns_existed
    linked = event_hash("0" * 64, {**base, "label_id": 7, "bulk_change_id": 9})
    assert linked != before_the_columns_existed
    assert linked != event_hash("0" * 64, {**base, "label_id": 7, "bulk_change_id": 10})


def test_the_shared_state_filter_is_saved_with_a_bulk_change_and_read_again_at_confirm(client, roster):
    """The catalogue filter the artist's matrix uses (use, state) narrows a label's bulk change too."""
    label, manager, artists = roster
    first = list(Track.objects.filter(owner=artists[0]).order_by("pk")[:2])
    for track, states in ((first[0], [True]), (first[1], [True, False])):
        for allow in states:
            consent_services.change_consent(
                actor=artists[0],
                tracks=Track.objects.filter(pk=track.pk),
                changes={"recommendation": allow},
                source="web",
            )
    client.force_login(manager)
    client.post(
        f"/labels/{label.slug}/bulk/preview/",
        {
            "all_matching": "1",
            "use": "recommendation",
            "state": "withdrawn",
            "purpose": "recommendation",
            "action": "grant",
        },
    )
    bulk = BulkChange.objects.get()
    # Only the withdrawn track matches; without the filter 14 tracks would change.
    assert bulk.filter == {"use": "recommendation", "state": "withdrawn"} and bulk.will_change == 1
    client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    assert set(Track.objects.filter(consents__granted=True)) == set(first)
