from __future__ import annotations

import pytest

from consent import summary as consent_summary
from labels import services
from labels.models import BulkChange, Delegation
from labels.tests.conftest import granted, preview
from tracks.models import Track


@pytest.fixture
def two_labels(all_none, make_user, label_setup, make_tracks):
    """Label A with Ada on its roster; label B (another manager) with Otto on its roster."""
    label_a, manager_a, delegate = label_setup
    manager_b = make_user(display_name="Ben B")
    label_b = services.create_label(owner=manager_b, name="Southern Sounds")
    ada = make_user(display_name="Ada")
    otto = make_user(display_name="Otto")
    make_tracks(3, owner=ada)
    make_tracks(2, owner=otto)
    delegate(ada, dict.fromkeys(all_none, "withdraw"))
    delegate(otto, dict.fromkeys(all_none, "withdraw"), to=label_b)
    return label_a, manager_a, label_b, manager_b, ada, otto


def test_catalogue_lists_only_the_labels_roster(client, two_labels):
    label_a, manager_a, _, _, ada, _otto = two_labels
    client.force_login(manager_a)
    response = client.get(f"/labels/{label_a.slug}/")
    assert response.status_code == 200
    assert response.context["total"] == 3
    assert {t.owner_id for t, _ in response.context["rows"]} == {ada.pk}
    assert "Otto" not in response.content.decode()


def test_manager_of_one_label_gets_404_everywhere_in_another(client, two_labels):
    label_a, manager_a, label_b, manager_b, _, _otto = two_labels
    client.force_login(manager_b)
    other = preview(manager_b, label_b, {"recommendation": False})
    client.force_login(manager_a)
    slug = label_b.slug
    for url in (
        f"/labels/{slug}/",
        f"/labels/{slug}/roster/",
        f"/labels/{slug}/bulk/",
        f"/labels/{slug}/bulk/{other.pk}/",
        f"/labels/{slug}/bulk/{other.pk}/progress.json",
        f"/labels/{slug}/export.csv",
        f"/labels/{slug}/import/",
        # label A's URL with label B's bulk change
        f"/labels/{label_a.slug}/bulk/{other.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/labels/{slug}/bulk/preview/",
        f"/labels/{slug}/bulk/{other.pk}/confirm/",
        f"/labels/{slug}/bulk/{other.pk}/undo/",
        f"/labels/{label_a.slug}/bulk/{other.pk}/confirm/",
        f"/labels/{slug}/roster/invite/artist/",
    ):
        assert client.post(url, {"email": "x@example.test", "all_matching": "1"}).status_code == 404, url
    other.refresh_from_db()
    assert other.status == BulkChange.Status.DRAFT


def test_artist_and_stranger_cannot_reach_a_catalogue(client, two_labels, make_user):
    label_a, _, _, _, ada, _ = two_labels
    client.force_login(ada)
    assert client.get(f"/labels/{label_a.slug}/").status_code == 404
    client.logout()
    assert client.get(f"/labels/{label_a.slug}/").status_code == 302


def test_selecting_another_labels_track_by_uuid_changes_nothing(client, two_labels, set_state):
    label_a, manager_a, _, _, _, otto = two_labels
    otto_track = Track.objects.filter(owner=otto).first()
    set_state(otto, [otto_track], "recommendation", True)
    client.force_login(manager_a)
    client.post(
        f"/labels/{label_a.slug}/bulk/preview/",
        {"track": [str(otto_track.uuid)], "purpose": "recommendation", "action": "withdraw"},
    )
    bulk = BulkChange.objects.get()
    assert bulk.will_change == 0
    assert granted(otto_track, "recommendation")


def test_ending_a_delegation_refuses_the_managers_next_action(client, two_labels, set_state):
    label_a, manager_a, _, _, ada, _ = two_labels
    tracks = list(Track.objects.filter(owner=ada))
    set_state(ada, tracks, "recommendation", True)
    client.force_login(manager_a)
    assert client.get(f"/labels/{label_a.slug}/").status_code == 200
    client.post(
        f"/labels/{label_a.slug}/bulk/preview/",
        {"all_matching": "1", "purpose": "recommendation", "action": "withdraw"},
    )
    bulk = BulkChange.objects.get()
    assert bulk.will_change == 3
    # Meanwhile the artist ends the delegation.
    delegation = Delegation.objects.get(artist=ada, label=label_a)
    services.end_delegation(artist=ada, delegation=delegation)
    client.post(f"/labels/{label_a.slug}/bulk/{bulk.pk}/confirm/")
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.STALE and bulk.applied == 0
    assert all(granted(t, "recommendation") for t in tracks)
    page = client.get(f"/labels/{label_a.slug}/bulk/{bulk.pk}/").content.decode()
    assert "This preview no longer holds" in page
    assert "3 tracks in the preview are no longer in your roster (the artist ended the delegation)." in page
    # and the catalogue no longer shows the tracks
    assert client.get(f"/labels/{label_a.slug}/").context["total"] == 0


def test_filters_narrow_the_catalogue(all_none, client, label_setup, make_tracks, make_user, set_state):
    label, manager, delegate = label_setup
    ada = make_user(display_name="Ada")
    bo = make_user(display_name="Bo")
    ada_tracks = make_tracks(4, owner=ada, isrc_prefix="GBAAA")
    make_tracks(2, owner=bo, status=Track.Status.FAILED)
    delegate(ada, all_none)
    delegate(bo, all_none)
    set_state(ada, ada_tracks[:1], "fraud_detection", True)
    client.force_login(manager)
    url = f"/labels/{label.slug}/"
    assert client.get(url).context["total"] == 6
    assert client.get(url, {"artist": bo.pk}).context["total"] == 2
    assert client.get(url, {"status": "failed"}).context["total"] == 2
    assert client.get(url, {"state_fraud_detection": "granted"}).context["total"] == 1
    assert client.get(url, {"state_fraud_detection": "not_granted"}).context["total"] == 5
    assert client.get(url, {"q": ada_tracks[2].isrc}).context["total"] == 1
    assert client.get(url, {"q": ada_tracks[3].title}).context["total"] == 1
    assert client.get(url, {"from": "2000-01-01", "to": "2999-01-01"}).context["total"] == 6
    assert client.get(url, {"to": "2000-01-01"}).context["total"] == 0
    # bad values are reported, never a 500
    response = client.get(url, {"from": "yesterday", "artist": "x", "status": "nope", "per_page": "7", "sort": "zz"})
    assert response.status_code == 200
    assert response.context["total"] == 6


def test_coverage_chart_is_drawn_by_the_server_without_style_attributes(
    all_none, client, label_setup, make_tracks, make_user, set_state
):
    label, manager, delegate = label_setup
    ada = make_user()
    tracks = make_tracks(4, owner=ada)
    set_state(ada, tracks[:1], "recommendation", True)
    delegate(ada, all_none)
    client.force_login(manager)
    response = client.get(f"/labels/{label.slug}/")
    body = response.content.decode()
    assert "<svg" in body and "style=" not in body
    bars = {b["purpose"].slug: b["percent"] for b in response.context["bars"]}
    assert bars == {**dict.fromkeys(all_none, 0.0), "recommendation": 25.0}


@pytest.mark.parametrize("per_page", [50, 500])
def test_catalogue_query_count_is_pinned_whatever_the_page_size(
    all_none, client, label_setup, make_tracks, make_user, per_page, django_assert_num_queries, set_state
):
    label, manager, delegate = label_setup
    for _ in range(3):
        artist = make_user()
        tracks = make_tracks(200, owner=artist)
        set_state(artist, tracks[:50], "recommendation", True)
        delegate(artist, all_none)
    client.force_login(manager)
    url = f"/labels/{label.slug}/"
    client.get(url, {"per_page": per_page})
    # session, user, label, purposes, the roster with each artist's grant counts (the coverage bars), the
    # count of tracks (tracks with no grant are not in the grant counts), the page (summary rows with their
    # tracks), policy banner: the same eight at any page size. Without the summary (SQLite, the quick start)
    # the roster, the count, the coverage and the page's consent cells are read apart: ten.
    without_summary = 0 if consent_summary.available() else 1
    with django_assert_num_queries(8 + 2 * without_summary):
        response = client.get(url, {"per_page": per_page})
    assert response.status_code == 200
    assert len(response.context["rows"]) == per_page
    # A filter that requires a grant is counted from the grant counts alone: one fewer (with the summary only).
    with django_assert_num_queries(7 + 3 * without_summary):
        response = client.get(url, {"per_page": per_page, "state_recommendation": "granted"})
    assert len(response.context["rows"]) == min(per_page, 150)


def test_sorting_orders_the_catalogue(all_none, client, label_setup, make_tracks, make_user):
    label, manager, delegate = label_setup
    ada = make_user()
    tracks = make_tracks(3, owner=ada)
    Track.objects.filter(pk=tracks[0].pk).update(title="Charlie")
    Track.objects.filter(pk=tracks[1].pk).update(title="alpha")
    Track.objects.filter(pk=tracks[2].pk).update(title="Bravo")
    delegate(ada, all_none)
    client.force_login(manager)
    rows = client.get(f"/labels/{label.slug}/", {"sort": "title"}).context["rows"]
    titles = [t.title for t, _ in rows]
    assert titles == sorted(titles)
    rows = client.get(f"/labels/{label.slug}/", {"sort": "-title"}).context["rows"]
    assert [t.title for t, _ in rows] == sorted(titles, reverse=True)
