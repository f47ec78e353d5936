from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pytest
from django.urls import reverse

from consent import services
from consent.models import AuditEvent, Consent, PolicyVersion, UploadDefault
from tracks.models import Track

pytestmark = pytest.mark.django_db


def grant(actor, track, slug, **kwargs):
    return services.change_consent(
        actor=actor, tracks=Track.objects.filter(pk=track.pk), changes={slug: True}, source="web", **kwargs
    )


@pytest.fixture
def owned(artist, make_track):
    """A track of `artist` with one saved change, so every URL has something to show."""
    track = make_track(owner=artist, title="Secret Demo")
    result = grant(artist, track, "recommendation")
    return track, result.receipt_id


def artist_urls(track, receipt_id):
    return [
        reverse("consent:matrix"),
        reverse("consent:track_update", args=[track.uuid]),
        reverse("consent:defaults"),
        reverse("consent:audit_log"),
        reverse("consent:audit_export_csv"),
        reverse("consent:audit_export_json"),
        reverse("consent:receipt", args=[receipt_id]),
        f"{reverse('consent:confirm')}?purpose=generative_training&track={track.uuid}",
    ]


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.mark.parametrize("index", range(8), ids=lambda i: f"url{i}")
def test_anonymous_visitor_is_sent_to_sign_in(client, owned, index):
    url = artist_urls(*owned)[index]
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("role", ["other_artist", "staff_user"])
@pytest.mark.parametrize("index", range(8), ids=lambda i: f"url{i}")
def test_other_people_never_see_an_artists_consent_or_log(client, owned, request, role, index):
    client.force_login(request.getfixturevalue(role))
    url = artist_urls(*owned)[index]
    response = client.get(url)
    assert response.status_code in {200, 302, 404}
    if response.status_code == 200:
        assert "Secret Demo" not in body(response)
        assert str(owned[0].uuid) not in body(response)


@pytest.mark.parametrize("role", ["other_artist", "staff_user"])
def test_other_people_cannot_post_consent_for_an_artists_track(client, owned, request, role):
    track, _ = owned
    client.force_login(request.getfixturevalue(role))
    response = client.post(reverse("consent:track_update", args=[track.uuid]), {"purpose": ["fraud_detection"]})
    assert response.status_code == 404
    response = client.post(
        reverse("consent:matrix"), {"tracks": [str(track.uuid)], "consent": [f"{track.uuid}:fraud_detection"]}
    )
    assert response.status_code == 302
    response = client.post(
        reverse("consent:confirm"),
        {"purpose": "generative_training", "scope": "tracks", "track": [str(track.uuid)], "understand": "on"},
    )
    assert response.status_code == 302
    assert set(Consent.objects.filter(granted=True).values_list("purpose__slug", flat=True)) == {"recommendation"}


@pytest.mark.parametrize("index", range(8), ids=lambda i: f"url{i}")
def test_owner_sees_every_consent_page(artist_client, owned, index):
    response = artist_client.get(artist_urls(*owned)[index])
    assert response.status_code in {200, 302}


def test_matrix_shows_tracks_and_who_changed_them(artist_client, owned):
    response = artist_client.get(reverse("consent:matrix"))
    html = body(response)
    assert "Secret Demo" in html
    assert "granted by you" in html


def test_matrix_save_grants_and_withdraws(artist_client, artist, owned, make_track):
    track, _ = owned
    second = make_track(owner=artist)
    response = artist_client.post(
        reverse("consent:matrix"),
        {
            "tracks": [str(track.uuid), str(second.uuid)],
            "consent": [f"{second.uuid}:recommendation", f"{second.uuid}:fraud_detection"],
        },
    )
    assert response.status_code == 302
    granted = set(Consent.objects.filter(granted=True).values_list("track_id", "purpose__slug"))
    assert granted == {(second.pk, "recommendation"), (second.pk, "fraud_detection")}
    # The whole page save is one receipt.
    assert AuditEvent.objects.exclude(receipt_id=owned[1]).values("receipt_id").distinct().count() == 1


def test_matrix_form_alone_never_grants_generative_training(artist_client, artist, owned):
    track, _ = owned
    response = artist_client.post(
        reverse("consent:matrix"),
        {
            "tracks": [str(track.uuid)],
            "consent": [f"{track.uuid}:generative_training", f"{track.uuid}:fraud_detection"],
        },
    )
    assert response.status_code == 302
    assert response.url.startswith(reverse("consent:confirm"))
    granted = set(Consent.objects.filter(granted=True).values_list("purpose__slug", flat=True))
    # The other purpose was saved; generative training waits for confirmation.
    assert granted == {"fraud_detection"}

    page = artist_client.get(response.url)
    assert "Nothing has been granted yet" in body(page)
    assert "Secret Demo" in body(page)

    # Submitting the confirmation without ticking the box grants nothing.
    post = {"purpose": "generative_training", "scope": "tracks", "track": [str(track.uuid)]}
    refused = artist_client.post(reverse("consent:confirm"), post)
    assert refused.status_code == 400
    assert not Consent.objects.filter(purpose__slug="generative_training", granted=True).exists()

    confirmed = artist_client.post(reverse("consent:confirm"), {**post, "understand": "on"})
    assert confirmed.status_code == 302
    assert Consent.objects.get(track=track, purpose__slug="generative_training").granted


def test_withdrawing_generative_training_is_one_step(artist_client, artist, owned):
    track, _ = owned
    grant(artist, track, "generative_training", confirmed_purposes={"generative_training"})
    response = artist_client.post(reverse("consent:track_update", args=[track.uuid]), {"purpose": []})
    assert response.status_code == 302
    assert not Consent.objects.filter(track=track, granted=True).exists()


def test_track_panel_post_holds_generative_grant_for_confirmation(artist_client, owned):
    track, _ = owned
    response = artist_client.post(
        reverse("consent:track_update", args=[track.uuid]), {"purpose": ["recommendation", "generative_training"]}
    )
    assert response.url.startswith(reverse("consent:confirm"))
    assert not Consent.objects.filter(purpose__slug="generative_training", granted=True).exists()


def test_track_panel_renders_state_and_description(artist_client, owned):
    track, _ = owned
    html = body(artist_client.get(reverse("consent:track_update", args=[track.uuid])))
    assert "How this track may be used" in html
    assert "train AI models" in html
    assert "granted by you" in html


@pytest.mark.parametrize(
    "data",
    [
        {"tracks": ["not-a-uuid"]},
        {"tracks": [str(uuid.uuid4())], "consent": ["garbage"]},
        {"tracks": [str(uuid.uuid4())], "consent": [f"{uuid.uuid4()}:no_such_purpose"]},
    ],
    ids=["bad-track", "bad-cell", "bad-purpose"],
)
def test_damaged_matrix_form_gets_a_clear_message_and_saves_nothing(artist_client, owned, data):
    response = artist_client.post(reverse("consent:matrix"), data, follow=True)
    assert response.status_code == 200
    assert "nothing was saved" in body(response)
    assert Consent.objects.count() == 1


@pytest.mark.parametrize(
    "query",
    ["purpose=recommendation&track=nope", "purpose=fraud_detection", "purpose=generative_training&scope=weird"],
)
def test_bad_confirmation_links_get_a_clear_message(artist_client, owned, query):
    response = artist_client.get(f"{reverse('consent:confirm')}?{query}", follow=True)
    assert response.status_code == 200
    assert "not valid" in body(response)


def test_defaults_start_off_and_generative_default_needs_confirmation(artist_client, artist):
    html = body(artist_client.get(reverse("consent:defaults")))
    assert not re.search(r"<input[^>]*\schecked[\s>=]", html)
    response = artist_client.post(reverse("consent:defaults"), {"purpose": ["recommendation", "generative_training"]})
    assert response.url.startswith(reverse("consent:confirm"))
    assert dict(UploadDefault.objects.values_list("purpose__slug", "granted")) == {"recommendation": True}
    artist_client.post(
        reverse("consent:confirm"), {"purpose": "generative_training", "scope": "defaults", "understand": "on"}
    )
    assert UploadDefault.objects.get(purpose__slug="generative_training").granted
    assert AuditEvent.objects.filter(kind="defaults_changed").count() == 2


def test_audit_log_lists_newest_first_with_who_and_terms(artist_client, artist, staff_user, owned):
    track, _ = owned
    services.change_consent(
        actor=staff_user, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": False}, source="admin"
    )
    html = body(artist_client.get(reverse("consent:audit_log")))
    assert html.index("<td>Staff</td>") < html.index("<td>You</td>")
    assert f"Version {PolicyVersion.objects.in_force().version}" in html and "Receipt" in html


@pytest.mark.parametrize("query", ["date_from=2026-13-01", "date_from=2026-05-02&date_to=2026-05-01", "purpose=x"])
def test_audit_log_bad_filter_is_explained_not_a_500(artist_client, owned, query):
    response = artist_client.get(f"{reverse('consent:audit_log')}?{query}")
    assert response.status_code == 200
    assert 'class="error"' in body(response) or "start date is after" in body(response)
    export = artist_client.get(f"{reverse('consent:audit_export_csv')}?{query}")
    assert export.status_code == 302


@pytest.fixture
def busy_log(artist, other_artist, staff_user, make_tracks):
    mine = make_tracks(3, owner=artist)
    theirs = make_tracks(2, owner=other_artist)
    everything = Track.objects.filter(pk__in=[t.pk for t in mine])
    services.change_consent(
        actor=artist, tracks=everything, changes={"recommendation": True, "fraud_detection": True}, source="web"
    )
    services.change_consent(actor=staff_user, tracks=everything, changes={"recommendation": False}, source="admin")
    services.change_consent(
        actor=other_artist,
        tracks=Track.objects.filter(pk__in=[t.pk for t in theirs]),
        changes={"recommendation": True},
        source="web",
    )
    return mine


@pytest.mark.parametrize(
    "query",
    [
        "",
        "purpose=recommendation",
        "actor=staff",
        "actor=you",
        "source=admin",
        "purpose=fraud_detection&source=web",
        "title=Track",
        "date_from=2000-01-01&date_to=2999-12-31",
    ],
)
def test_csv_and_json_exports_contain_exactly_the_filtered_events(artist_client, artist, busy_log, query):
    from consent.forms import AuditFilterForm
    from consent.selectors import audit_events, purposes

    form = AuditFilterForm(dict(p.split("=") for p in query.split("&") if p), purposes=purposes())
    assert form.is_valid()
    expected = list(audit_events(artist=artist, filters=form.to_filter()).values_list("hash", flat=True))
    assert expected

    csv_body = body(artist_client.get(f"{reverse('consent:audit_export_csv')}?{query}"))
    rows = list(csv.DictReader(io.StringIO(csv_body)))
    assert [r["hash"] for r in rows] == expected

    data = json.loads(body(artist_client.get(f"{reverse('consent:audit_export_json')}?{query}")))
    assert [e["hash"] for e in data["events"]] == expected
    in_force = PolicyVersion.objects.in_force().version
    assert all(e["policy_version"] == in_force for e in data["events"])


def test_export_filtered_by_track_contains_only_that_track(artist_client, busy_log):
    track = busy_log[0]
    rows = list(
        csv.DictReader(
            io.StringIO(body(artist_client.get(f"{reverse('consent:audit_export_csv')}?track={track.uuid}")))
        )
    )
    assert {r["track_uuid"] for r in rows} == {str(track.uuid)}
    assert len(rows) == 3


def test_export_streams(artist_client, busy_log):
    response = artist_client.get(reverse("consent:audit_export_csv"))
    assert response.streaming
    assert response["Content-Disposition"].startswith("attachment;")


def test_csv_export_neutralises_spreadsheet_formulas(artist_client, artist, make_track):
    track = make_track(owner=artist, title='=HYPERLINK("http://evil")')
    grant(artist, track, "recommendation")
    rows = list(csv.DictReader(io.StringIO(body(artist_client.get(reverse("consent:audit_export_csv"))))))
    assert rows[0]["track_title"].startswith("'=")


def test_receipt_names_principal_purposes_policy_and_chain_head(artist_client, artist, owned):
    track, receipt_id = owned
    response = artist_client.get(reverse("consent:receipt", args=[receipt_id]))
    receipt = json.loads(response.content)
    assert receipt["receipt_id"] == str(receipt_id)
    assert receipt["piiPrincipalId"] == str(artist.pk)
    in_force = PolicyVersion.objects.in_force().version
    assert receipt["policy"]["version"] == in_force
    assert receipt["policy"]["url"].endswith(f"/consent/policy/{in_force}/")
    assert receipt["purposes"][0]["purpose"] == "recommendation"
    assert receipt["purposes"][0]["state"] == "granted"
    assert receipt["purposes"][0]["granted"] == [{"track_uuid": str(track.uuid), "title": "Secret Demo"}]
    head = AuditEvent.objects.get(receipt_id=receipt_id).hash
    assert receipt["chain"]["head_hash_after_change"] == head


def test_unknown_receipt_is_404(artist_client, owned):
    assert artist_client.get(reverse("consent:receipt", args=[uuid.uuid4()])).status_code == 404


def test_policy_page_is_public(client):
    response = client.get(reverse("consent:policy", args=[1]))
    assert response.status_code == 200
    assert "Opt-in only" in body(response)
    assert client.get(reverse("consent:policy", args=[99])).status_code == 404


def page_queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_matrix_and_log_query_counts_do_not_grow_with_the_page(artist_client, artist, make_tracks):
    make_tracks(1, owner=artist)
    everything = Track.objects.filter(owner=artist)
    services.change_consent(actor=artist, tracks=everything, changes={"recommendation": True}, source="web")
    small = (
        page_queries(artist_client, reverse("consent:matrix")),
        page_queries(artist_client, reverse("consent:audit_log")),
    )

    make_tracks(40, owner=artist)
    services.change_consent(
        actor=artist, tracks=everything, changes={"recommendation": True, "fraud_detection": True}, source="web"
    )
    full = (
        page_queries(artist_client, reverse("consent:matrix")),
        page_queries(artist_client, reverse("consent:audit_log")),
    )
    assert full == small


def test_export_outside_the_date_range_is_empty_but_well_formed(artist_client, busy_log):
    query = "date_from=2001-01-01&date_to=2001-12-31"
    rows = list(csv.DictReader(io.StringIO(body(artist_client.get(f"{reverse('consent:audit_export_csv')}?{query}")))))
    assert rows == []
    data = json.loads(body(artist_client.get(f"{reverse('consent:audit_export_json')}?{query}")))
    assert data["events"] == [] and data["filters"] == {"date_from": "2001-01-01", "date_to": "2001-12-31"}


@pytest.mark.parametrize("next_url", ["https://evil.example/phish", "//evil.example/", "javascript:alert(1)"])
def test_saves_never_redirect_off_site(artist_client, owned, next_url):
    track, _ = owned
    response = artist_client.post(
        reverse("consent:track_update", args=[track.uuid]), {"purpose": ["recommendation"], "next": next_url}
    )
    assert response.status_code == 302
    assert response.url == reverse("consent:track_update", args=[track.uuid])


def test_track_panel_with_an_unknown_purpose_saves_nothing(artist_client, owned):
    track, _ = owned
    response = artist_client.post(
        reverse("consent:track_update", args=[track.uuid]), {"purpose": ["mind_reading"]}, follow=True
    )
    assert "nothing was saved" in body(response)
    assert Consent.objects.get().granted


@pytest.mark.parametrize("page", ["abc", "-1", "99999"])
def test_odd_page_numbers_still_show_a_page(artist_client, owned, page):
    assert artist_client.get(reverse("consent:matrix"), {"page": page}).status_code == 200
    assert artist_client.get(reverse("consent:audit_log"), {"page": page}).status_code == 200
