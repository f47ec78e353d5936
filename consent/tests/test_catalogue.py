"""The catalogue filter shared by the artist's pages and the label catalogue, the dashboard counts,
and the artist's change of every matching track through a preview."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consent import selectors
from consent.models import AuditEvent, Consent, Purpose
from tests.demo import change, lapse_now
from tracks.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(artist, make_track):
    """Six tracks: granted by the artist, withdrawn, lapsed, never granted, with ISRCs."""
    tracks = [make_track(owner=artist, title=f"Tune {n}", isrc=f"GBAAA26{n:05d}") for n in range(6)]
    change(artist, tracks[:4], {"generative_training": True}, confirmed_purposes={"generative_training"})
    change(artist, tracks[1:2], {"generative_training": False})
    lapse_now("generative_training", "Generative training now covers voice models.")
    change(artist, tracks[3:4], {"generative_training": True}, confirmed_purposes={"generative_training"})
    return tracks


def titles(queryset) -> set[str]:
    return set(queryset.values_list("title", flat=True))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("granted", {"Tune 3"}),
        ("withdrawn", {"Tune 1"}),
        ("lapsed", {"Tune 0", "Tune 2"}),
        ("never", {"Tune 4", "Tune 5"}),
    ],
)
def test_filter_tells_every_state_apart(artist, catalogue, state, expected):
    flt = selectors.TrackFilter(purpose="generative_training", state=state)
    assert titles(selectors.filter_tracks(Track.objects.filter(owner=artist), flt)) == expected


def test_search_finds_an_isrc_however_it_is_written_and_titles_by_part(artist, catalogue):
    own = Track.objects.filter(owner=artist)
    assert titles(selectors.filter_tracks(own, selectors.TrackFilter(q="gb-aaa-26-00002"))) == {"Tune 2"}
    assert titles(selectors.filter_tracks(own, selectors.TrackFilter(q="une 5"))) == {"Tune 5"}


def test_counts_per_use_add_up_and_match_the_filter(artist, catalogue):
    own = Track.objects.filter(owner=artist)
    counts = {c.purpose.slug: c for c in selectors.purpose_counts(own, selectors.purposes())}
    gen = counts["generative_training"]
    assert (gen.granted, gen.withdrawn, gen.lapsed, gen.never, gen.total) == (1, 1, 2, 2, 6)
    for state in selectors.STATES:
        flt = selectors.TrackFilter(purpose="generative_training", state=state)
        assert selectors.filter_tracks(own, flt).count() == getattr(gen, state)


def test_matrix_page_filters_and_says_each_state_in_words(artist_client, catalogue):
    html = artist_client.get(reverse("consent:matrix") + "?use=generative_training&state=lapsed").content.decode()
    assert "Tune 0" in html and "Tune 2" in html and "Tune 4" not in html
    assert "lapsed under policy" in html
    html = artist_client.get(reverse("consent:matrix")).content.decode()
    assert "withdrawn by you" in html and "never granted" in html and "granted by you" in html
    html = artist_client.get(reverse("consent:matrix") + "?q=Tune").content.decode()
    assert "Generative AI training: 1 allowed" in html  # counts of what the filter matched


def test_a_bad_filter_value_is_reported_not_a_500(artist_client, catalogue):
    response = artist_client.get(reverse("consent:matrix") + "?changed_from=yesterday&state=maybe")
    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()


def test_dashboard_counts_link_to_the_filtered_list(artist_client, catalogue):
    html = artist_client.get(reverse("dashboard")).content.decode()
    assert "?use=generative_training&amp;state=lapsed" in html
    assert "What your music is used for" in html


def bulk(client, **data):
    """Preview a change of one use from the matrix's bulk form; the preview is a draft bulk change."""
    return client.post(reverse("own_bulk:preview"), {"scope": "all", **data})


def previewed(artist):
    from labels.models import BulkChange

    return BulkChange.objects.filter(artist=artist).latest("pk")


def confirm(client, bulk_change, **data):
    return client.post(reverse("own_bulk:confirm", args=[bulk_change.pk]), data)


def test_select_all_matching_previews_then_withdraws_every_matching_track(artist, artist_client, catalogue):
    from notifications.models import Notification

    change(artist, catalogue, {"recommendation": True})
    Notification.objects.all().delete()
    response = bulk(artist_client, q="Tune", bulk_purpose="recommendation", bulk_action="withdraw")
    assert response.status_code == 302
    draft = previewed(artist)
    assert (draft.label_id, draft.artist_id, draft.selection) == (None, artist.pk, None)
    page = artist_client.get(response.url).content.decode()
    assert "data-will-change>6<" in page
    assert Consent.objects.filter(purpose__slug="recommendation", granted=True).count() == 6  # nothing yet

    done = confirm(artist_client, draft)
    assert done.status_code == 302
    assert Consent.objects.filter(purpose__slug="recommendation", granted=True).count() == 0
    draft.refresh_from_db()
    assert (draft.status, draft.applied) == ("done", 6)
    # The artist's own change: their own actor kind, no label, one receipt (not "your label changed ...").
    events = AuditEvent.objects.filter(bulk_change_id=draft.pk)
    assert events.count() == 6
    assert set(events.values_list("actor_kind", "actor_id", "label_id")) == {("artist", artist.pk, None)}
    assert events.values("receipt_id").distinct().count() == 1
    assert list(Notification.objects.filter(recipient=artist).values_list("kind", flat=True)) == ["consent_receipt"]


def test_ticked_tracks_only_change_those(artist, artist_client, catalogue):
    picked = [str(catalogue[0].uuid), str(catalogue[4].uuid)]
    response = artist_client.post(
        reverse("own_bulk:preview"),
        {"scope": "ticked", "track": picked, "bulk_purpose": "recommendation", "bulk_action": "grant"},
    )
    assert response.status_code == 302
    confirm(artist_client, previewed(artist))
    assert titles(Track.objects.filter(consents__granted=True, consents__purpose__slug="recommendation")) == {
        "Tune 0",
        "Tune 4",
    }


def test_ticking_nothing_is_refused_with_a_message(artist, artist_client, catalogue):
    response = artist_client.post(
        reverse("own_bulk:preview"),
        {"scope": "ticked", "bulk_purpose": "recommendation", "bulk_action": "grant"},
        follow=True,
    )
    assert "Tick the tracks to change" in response.content.decode()
    assert not Consent.objects.filter(purpose__slug="recommendation").exists()


def test_a_preview_that_went_out_of_date_is_not_applied(artist, artist_client, catalogue, make_track):
    bulk(artist_client, use="generative_training", state="never", bulk_purpose="recommendation", bulk_action="grant")
    draft = previewed(artist)
    make_track(owner=artist, title="Tune 6")  # matches the filter now, and the preview did not list it
    response = confirm(
        artist_client,
        draft,
    )
    page = artist_client.get(response.url).content.decode()
    assert "This preview no longer holds" in page
    assert "1 track that the preview did not list" in page
    assert not Consent.objects.filter(purpose__slug="recommendation").exists()
    again = artist_client.post(reverse("own_bulk:again", args=[draft.pk]))
    fresh = previewed(artist)
    assert again.url == reverse("own_bulk:detail", args=[fresh.pk]) and fresh.will_change == 3


def test_granting_generative_training_in_bulk_needs_its_confirmation(artist, artist_client, catalogue):
    bulk(
        artist_client, use="generative_training", state="never", bulk_purpose="generative_training", bulk_action="grant"
    )
    draft = previewed(artist)
    page = artist_client.get(reverse("own_bulk:detail", args=[draft.pk])).content.decode()
    assert 'name="understand"' in page and "on these 2 tracks" in page
    refused = confirm(artist_client, draft)
    assert "needs its own confirmation" in artist_client.get(refused.url).content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert titles(Track.objects.filter(consents__granted=True, consents__purpose__slug="generative_training")) == {
        "Tune 3"
    }
    confirm(artist_client, draft, understand="1")
    assert titles(Track.objects.filter(consents__granted=True, consents__purpose__slug="generative_training")) == {
        "Tune 3",
        "Tune 4",
        "Tune 5",
    }


def test_bulk_never_reaches_another_artists_tracks(artist, other_artist, artist_client, make_track, catalogue):
    theirs = make_track(owner=other_artist, title="Tune 99")
    # Even named explicitly, another artist's track is not in the preview.
    artist_client.post(
        reverse("own_bulk:preview"),
        {"scope": "ticked", "track": [str(theirs.uuid)], "bulk_purpose": "recommendation", "bulk_action": "grant"},
    )
    assert previewed(artist).will_change == 0
    bulk(artist_client, bulk_purpose="recommendation", bulk_action="grant")
    confirm(artist_client, previewed(artist))
    assert not Consent.objects.filter(track=theirs).exists()
    assert Consent.objects.filter(purpose__slug="recommendation", granted=True).count() == 6


def test_another_artist_cannot_see_or_confirm_the_preview(artist, other_artist, artist_client, client, catalogue):
    bulk(artist_client, bulk_purpose="recommendation", bulk_action="grant")
    draft = previewed(artist)
    client.force_login(other_artist)
    assert client.get(reverse("own_bulk:detail", args=[draft.pk])).status_code == 404
    assert client.post(reverse("own_bulk:confirm", args=[draft.pk])).status_code == 404
    assert not Consent.objects.filter(purpose__slug="recommendation").exists()


def test_the_artist_can_undo_their_change(artist, artist_client, catalogue):
    bulk(artist_client, bulk_purpose="recommendation", bulk_action="grant")
    draft = previewed(artist)
    confirm(artist_client, draft)
    assert Consent.objects.filter(purpose__slug="recommendation", granted=True).count() == 6
    page = artist_client.get(reverse("own_bulk:detail", args=[draft.pk])).content.decode()
    assert "Undo this change" in page and "See each change in your audit log" in page
    artist_client.post(reverse("own_bulk:undo", args=[draft.pk]))
    assert not Consent.objects.filter(purpose__slug="recommendation", granted=True).exists()
    undo = previewed(artist)
    assert (undo.kind, undo.undo_of_id, undo.status) == ("undo", draft.pk, "done")
    assert set(AuditEvent.objects.filter(bulk_change_id=undo.pk).values_list("actor_kind", flat=True)) == {"artist"}


def test_after_acknowledging_new_terms_the_grants_to_confirm_again_stay_on_the_dashboard(
    artist, artist_client, make_track, new_policy_version
):
    from datetime import timedelta

    from django.utils import timezone

    from consent.policy import publish_policy_version

    tracks = [make_track(owner=artist, title=f"Early {n}") for n in range(2)]
    change(artist, tracks, {"generative_training": True}, confirmed_purposes={"generative_training"})
    version = new_policy_version(summary="Voice models too.")
    version.purposes_changed.add(Purpose.objects.get(slug="generative_training"))
    publish_policy_version(version=version, effective_at=timezone.now() + timedelta(days=30))
    reconfirm = reverse("policy:reconfirm", args=[version.version])

    before = artist_client.get(reverse("dashboard")).content.decode()
    assert before.count(f'href="{reconfirm}"') == 2  # the banner's link and the dashboard's
    artist_client.post(reverse("policy:acknowledge", args=[version.version]), {"next": reverse("dashboard")})
    after = artist_client.get(reverse("dashboard")).content.decode()
    assert "policy-banner" not in after
    assert after.count(f'href="{reconfirm}"') == 1
    assert "confirm 2 tracks again" in after
