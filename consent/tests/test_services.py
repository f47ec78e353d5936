from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent import selectors, services
from consent.models import AuditChainHead, AuditEvent, Consent, PolicyVersion, Purpose, UploadDefault
from platformkit.request_meta import RequestMeta
from tracks.models import Track

pytestmark = pytest.mark.django_db

META = RequestMeta(ip="203.0.113.7", user_agent="pytest-browser/1.0", request_id="req-12345678")


def save(actor, tracks, changes, **kwargs):
    kwargs.setdefault("source", AuditEvent.Source.WEB)
    kwargs.setdefault("request_meta", META)
    return services.change_consent(actor=actor, tracks=tracks, changes=changes, **kwargs)


def test_new_track_has_no_purpose_granted(artist, make_track):
    track = make_track(owner=artist)
    assert not Consent.objects.filter(track=track, granted=True).exists()
    assert selectors.granted_slugs([track.pk]) == set()


@pytest.mark.parametrize("slug", ["recommendation", "fraud_detection"])
def test_artist_grants_and_withdraws_one_purpose_with_one_event_each(artist, make_track, slug):
    track = make_track(owner=artist)
    granted = save(artist, Track.objects.filter(pk=track.pk), {slug: True})
    withdrawn = save(artist, Track.objects.filter(pk=track.pk), {slug: False})

    assert granted.counts == {slug: {"granted": 1, "withdrawn": 0}}
    assert withdrawn.counts == {slug: {"granted": 0, "withdrawn": 1}}
    events = list(AuditEvent.objects.order_by("seq"))
    assert [(e.old_value, e.new_value) for e in events] == [("not_granted", "granted"), ("granted", "not_granted")]
    first = events[0]
    assert (first.artist_id, first.actor_id, first.actor_kind, first.source) == (artist.pk, artist.pk, "artist", "web")
    assert (first.track_uuid, first.track_title, first.purpose_slug) == (track.uuid, track.title, slug)
    assert (first.ip, first.user_agent, first.request_id) == (META.ip, META.user_agent, META.request_id)
    assert first.policy_version == PolicyVersion.objects.in_force()
    assert first.receipt_id == granted.receipt_id


def test_a_save_that_changes_nothing_writes_nothing(artist, make_track):
    track = make_track(owner=artist)
    result = save(artist, Track.objects.filter(pk=track.pk), {"recommendation": False})
    assert not result.changed and result.receipt_id is None
    save(artist, Track.objects.filter(pk=track.pk), {"recommendation": True})
    again = save(artist, Track.objects.filter(pk=track.pk), {"recommendation": True})
    assert not again.changed
    assert AuditEvent.objects.count() == 1
    assert Consent.objects.count() == 1


def test_generative_training_grant_requires_confirmation(artist, make_track):
    track = make_track(owner=artist)
    with pytest.raises(services.ConfirmationRequired):
        save(artist, Track.objects.filter(pk=track.pk), {"generative_training": True, "recommendation": True})
    # Nothing of the refused save was written, not even the other purpose.
    assert not Consent.objects.exists() and not AuditEvent.objects.exists()

    save(
        artist,
        Track.objects.filter(pk=track.pk),
        {"generative_training": True},
        confirmed_purposes={"generative_training"},
    )
    assert Consent.objects.get(track=track, purpose__slug="generative_training").granted


def test_withdrawing_generative_training_needs_no_confirmation(artist, make_track):
    track = make_track(owner=artist)
    tracks = Track.objects.filter(pk=track.pk)
    save(artist, tracks, {"generative_training": True}, confirmed_purposes={"generative_training"})
    result = save(artist, tracks, {"generative_training": False})
    assert result.counts == {"generative_training": {"granted": 0, "withdrawn": 1}}


@pytest.mark.parametrize("granted", [True, False])
def test_another_artist_can_neither_grant_nor_withdraw(artist, other_artist, make_track, granted):
    track = make_track(owner=artist)
    with pytest.raises(services.ConsentPermissionDenied):
        save(other_artist, Track.objects.filter(pk=track.pk), {"recommendation": granted})
    assert not AuditEvent.objects.exists()


def test_staff_can_withdraw_but_never_grant(artist, staff_user, make_track):
    track = make_track(owner=artist)
    tracks = Track.objects.filter(pk=track.pk)
    save(artist, tracks, {"recommendation": True})
    with pytest.raises(services.ConsentPermissionDenied, match="never grant"):
        save(staff_user, tracks, {"fraud_detection": True}, source=AuditEvent.Source.ADMIN)
    result = save(staff_user, tracks, {"recommendation": False}, source=AuditEvent.Source.ADMIN)
    assert result.changed
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.actor_id, event.actor_kind, event.source, event.artist_id) == (
        staff_user.pk,
        "staff",
        "admin",
        artist.pk,
    )


def test_unknown_purpose_is_a_clear_error(artist, make_track):
    track = make_track(owner=artist)
    with pytest.raises(services.UnknownPurpose, match="no_such_use"):
        save(artist, Track.objects.filter(pk=track.pk), {"no_such_use": True})


def test_one_save_over_many_tracks_shares_one_receipt_and_chains_in_order(artist, make_tracks):
    make_tracks(20, owner=artist)
    result = save(artist, Track.objects.filter(owner=artist), {"recommendation": True, "fraud_detection": True})
    assert result.event_count == 40
    assert AuditEvent.objects.filter(receipt_id=result.receipt_id).count() == 40
    head = AuditChainHead.objects.get(artist=artist)
    assert result.chain_heads == {artist.pk: {"seq": 40, "hash": head.hash}}
    assert selectors.verify_chains().ok


def save_query_count(artist, tracks, changes) -> int:
    with CaptureQueriesContext(connection) as ctx:
        save(artist, tracks, changes)
    return len(ctx.captured_queries)


def test_query_count_of_a_save_is_the_same_for_10_and_1000_tracks(artist, other_artist, make_tracks):
    make_tracks(10, owner=artist)
    make_tracks(1000, owner=other_artist)
    few = Track.objects.filter(owner=artist)
    many = Track.objects.filter(owner=other_artist)
    # Mixed: half already granted, so both the INSERT and the UPDATE paths run.
    save(artist, few.filter(pk__in=few.values("pk")[:5]), {"recommendation": True})
    save(other_artist, many.filter(pk__in=many.values("pk")[:500]), {"recommendation": True})

    changes = {"recommendation": False, "fraud_detection": True}
    assert save_query_count(artist, few, changes) == save_query_count(other_artist, many, changes)
    assert (
        Consent.objects.filter(track__owner=other_artist, purpose__slug="fraud_detection", granted=True).count() == 1000
    )


def test_per_track_states_are_saved_under_one_receipt(artist, make_tracks):
    a, b = make_tracks(2, owner=artist)
    result = services.set_track_consents(
        actor=artist,
        tracks=Track.objects.filter(owner=artist),
        states={a.uuid: {"recommendation": True}, b.uuid: {"fraud_detection": True, "recommendation": False}},
        source=AuditEvent.Source.WEB,
    )
    assert result.counts == {
        "recommendation": {"granted": 1, "withdrawn": 0},
        "fraud_detection": {"granted": 1, "withdrawn": 0},
    }
    assert selectors.granted_slugs([a.pk, b.pk]) == {(a.pk, "recommendation"), (b.pk, "fraud_detection")}


def test_upload_defaults_start_off_and_are_audited(artist):
    assert selectors.upload_defaults(artist) == dict.fromkeys(Purpose.objects.values_list("slug", flat=True), False)
    result = services.set_upload_defaults(
        actor=artist, artist=artist, choices={"recommendation": True, "fraud_detection": False}
    )
    assert result.event_count == 1
    event = AuditEvent.objects.get()
    assert (event.kind, event.source, event.purpose_slug, event.new_value) == (
        "defaults_changed",
        "account_default",
        "recommendation",
        "granted",
    )


def test_generative_default_requires_confirmation(artist):
    with pytest.raises(services.ConfirmationRequired):
        services.set_upload_defaults(actor=artist, artist=artist, choices={"generative_training": True})
    assert not UploadDefault.objects.exists()


def test_new_upload_gets_nothing_unless_defaults_or_choices_say_so(artist, make_track):
    track = make_track(owner=artist)
    one = Track.objects.filter(pk=track.pk)
    assert not services.apply_upload_consent(actor=artist, tracks=one, choices={"recommendation": False}).changed
    assert not Consent.objects.exists()


def test_upload_defaults_are_applied_to_new_tracks_only_when_set(artist, make_track):
    services.set_upload_defaults(
        actor=artist,
        artist=artist,
        choices={"fraud_detection": True, "generative_training": True},
        confirmed_purposes={"generative_training"},
    )
    track = make_track(owner=artist)
    services.apply_upload_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), choices={"recommendation": True}
    )
    assert selectors.granted_slugs([track.pk]) == {
        (track.pk, "fraud_detection"),
        (track.pk, "generative_training"),
        (track.pk, "recommendation"),
    }
    sources = dict(AuditEvent.objects.filter(track_uuid=track.uuid).values_list("purpose_slug", "source"))
    assert sources == {
        "fraud_detection": "account_default",
        "generative_training": "account_default",
        "recommendation": "upload",
    }


def test_generative_choice_on_upload_needs_confirmation(artist, make_track):
    track = make_track(owner=artist)
    with pytest.raises(services.ConfirmationRequired):
        services.apply_upload_consent(
            actor=artist, tracks=Track.objects.filter(pk=track.pk), choices={"generative_training": True}
        )


def test_deleting_a_track_removes_consent_keeps_events_and_chain_verifies(artist, make_track):
    from django.db import transaction

    track = make_track(owner=artist, title="Keep my history")
    services.record_track_uploaded(actor=artist, track=track)
    save(artist, Track.objects.filter(pk=track.pk), {"recommendation": True})
    with transaction.atomic():
        services.record_track_deleted(actor=artist, track=track)
        track.delete()

    assert not Consent.objects.exists()
    kinds = list(AuditEvent.objects.order_by("seq").values_list("kind", "subject_data__track_title", "new_value"))
    assert kinds == [
        ("track_uploaded", "Keep my history", ""),
        ("consent_changed", "Keep my history", "granted"),
        ("consent_changed", "Keep my history", "not_granted"),
        ("track_deleted", "Keep my history", ""),
    ]
    assert selectors.verify_chains().ok


def test_record_track_deleted_outside_a_transaction_is_refused(artist, make_track, django_db_blocker):
    track = make_track(owner=artist)
    # Inside the test's wrapping transaction in_atomic_block is True, so
    # simulate a caller that forgot the transaction by checking the guard directly.
    connection.in_atomic_block, previous = False, connection.in_atomic_block
    try:
        with pytest.raises(RuntimeError, match="transaction"):
            services.record_track_deleted(actor=artist, track=track)
    finally:
        connection.in_atomic_block = previous


def test_request_meta_from_request_drops_a_bogus_address(rf):
    request = rf.get("/", HTTP_USER_AGENT="x" * 600, REMOTE_ADDR="not-an-ip")
    request.request_id = "abc12345"
    meta = RequestMeta.from_request(request)
    assert meta == RequestMeta(ip="", user_agent="x" * 512, request_id="abc12345")


def test_per_track_states_accept_uuid_strings_and_refuse_garbage(artist, make_track):
    track = make_track(owner=artist)
    tracks = Track.objects.filter(pk=track.pk)
    result = services.set_track_consents(
        actor=artist, tracks=tracks, states={str(track.uuid): {"recommendation": True}}, source="web"
    )
    assert result.event_count == 1
    with pytest.raises(services.ConsentError, match="not a track id"):
        services.set_track_consents(
            actor=artist, tracks=tracks, states={"nope": {"recommendation": True}}, source="web"
        )


def test_unknown_source_is_refused(artist, make_track):
    track = make_track(owner=artist)
    with pytest.raises(services.ConsentError, match="Unknown source"):
        save(artist, Track.objects.filter(pk=track.pk), {"recommendation": True}, source="carrier_pigeon")


def test_request_meta_strips_control_characters_from_the_user_agent(rf, artist, make_track):
    request = rf.get("/", HTTP_USER_AGENT="evil\x00agent\r\nX-Injected: 1", REMOTE_ADDR="2001:db8::1")
    meta = RequestMeta.from_request(request)
    assert meta.user_agent == "evilagentX-Injected: 1"
    assert meta.ip == "2001:db8::1"
    track = make_track(owner=artist)
    save(artist, Track.objects.filter(pk=track.pk), {"recommendation": True}, request_meta=meta)
    assert AuditEvent.objects.get().user_agent == "evilagentX-Injected: 1"
    assert selectors.verify_chains().ok


def test_a_sliced_or_ordered_queryset_is_accepted(artist, make_tracks):
    make_tracks(5, owner=artist)
    result = save(artist, Track.objects.filter(owner=artist).order_by("title")[:2], {"recommendation": True})
    assert result.event_count == 2
