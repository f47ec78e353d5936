"""The plain one-track read (GET, no query string) skips ninja: it must answer exactly as ninja's view does."""

from __future__ import annotations

import uuid

import pytest

from consent.models import Purpose

PROBLEM = "application/problem+json"

pytestmark = pytest.mark.django_db


def _without_as_of(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "as_of"}


def _through_ninja(api, track, slugs) -> dict:
    # Any query string takes ninja's view; naming every purpose of the scope asks the same question.
    response = api.get(f"/tracks/{track.uuid}/consent", purpose=slugs)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_plain_read_answers_as_ninja_does(artist, make_track, make_api_client, caller, set_consent):
    track = make_track(owner=artist, isrc="GBAYE2400010")
    set_consent(track, recommendation=True)
    set_consent(track, fraud_detection=True)
    set_consent(track, fraud_detection=False)
    slugs = list(Purpose.objects.order_by("ordering", "id").values_list("slug", flat=True))
    _, token = make_api_client(purposes=slugs)
    api = caller(token)

    plain = api.get(f"/tracks/{track.uuid}/consent")

    assert plain.status_code == 200, plain.content
    assert plain["Content-Type"] == "application/json"
    assert _without_as_of(plain.json()) == _without_as_of(_through_ninja(api, track, slugs))
    assert list(plain.json()["purposes"]) == slugs  # the scope's order


def test_the_plain_read_shows_only_the_clients_purposes(artist, make_track, make_api_client, caller, set_consent):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True, fraud_detection=True)
    _, token = make_api_client(purposes=["fraud_detection"])

    body = caller(token).get(f"/tracks/{track.uuid}/consent").json()

    assert list(body["purposes"]) == ["fraud_detection"]
    assert body["purposes"]["fraud_detection"]["allowed"] is True


def test_a_client_with_no_purposes_reads_the_track_and_nothing_else(artist, make_track, make_api_client, caller):
    track = make_track(owner=artist)
    _, token = make_api_client(purposes=[])

    response = caller(token).get(f"/tracks/{track.uuid}/consent")

    assert response.status_code == 200, response.content
    assert response.json()["purposes"] == {} and response.json()["track"] == str(track.uuid)


def test_the_plain_read_is_one_query(artist, make_track, make_api_client, caller, django_assert_num_queries):
    track = make_track(owner=artist)
    _, token = make_api_client(purposes=["recommendation", "fraud_detection"])
    api = caller(token)

    # Token, scope, track and consent together; the rate limit is in the cache.
    with django_assert_num_queries(1):
        assert api.get(f"/tracks/{track.uuid}/consent").status_code == 200


def test_revocation_stops_the_plain_read_on_the_next_request(artist, make_track, make_api_client, caller):
    from downstream import services

    track = make_track(owner=artist)
    client, token = make_api_client()
    api = caller(token)
    assert api.get(f"/tracks/{track.uuid}/consent").status_code == 200

    services.revoke_client(client=client)

    response = api.get(f"/tracks/{track.uuid}/consent")
    assert response.status_code == 401 and response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_scope_taken_away_is_gone_on_the_next_plain_read(artist, make_track, make_api_client, caller):
    track = make_track(owner=artist)
    client, token = make_api_client(purposes=["recommendation", "fraud_detection"])
    api = caller(token)
    assert set(api.get(f"/tracks/{track.uuid}/consent").json()["purposes"]) == {"recommendation", "fraud_detection"}

    client.purposes.remove(Purpose.objects.get(slug="fraud_detection"))

    assert set(api.get(f"/tracks/{track.uuid}/consent").json()["purposes"]) == {"recommendation"}


@pytest.mark.parametrize(
    "authorization", ["", "Bearer ", "Bearer ccp_not-a-real-token", "Token abc", "Bearer " + "x" * 201]
)
def test_the_plain_read_without_a_valid_token_is_401(artist, make_track, api, authorization):
    track = make_track(owner=artist)
    response = api.http.get(f"/api/v1/tracks/{track.uuid}/consent", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401 and response["Content-Type"] == PROBLEM


def test_the_plain_read_counts_against_the_rate_limit(artist, make_track, make_api_client, caller):
    track = make_track(owner=artist)
    _, token = make_api_client(rate_limit=2)
    api = caller(token)
    path = f"/tracks/{track.uuid}/consent"

    assert [api.get(path).status_code for _ in range(2)] == [200, 200]
    response = api.get(path)

    assert response.status_code == 429 and response["Content-Type"] == PROBLEM
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_deleted_track_is_answered_from_the_log_by_the_plain_read(
    artist, make_track, make_api_client, caller, set_consent, delete_track
):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    _, token = make_api_client(purposes=["recommendation"])
    delete_track(track)

    body = caller(token).get(f"/tracks/{track.uuid}/consent").json()

    assert body["status"] == "deleted"
    assert body["purposes"]["recommendation"]["allowed"] is False
    assert body["purposes"]["recommendation"]["event"] is not None  # the deletion event


def test_an_unknown_track_is_404_and_a_bad_uuid_422_on_the_plain_path(api):
    unknown = api.get(f"/tracks/{uuid.uuid4()}/consent")
    assert unknown.status_code == 404 and unknown["Content-Type"] == PROBLEM
    bad = api.get("/tracks/not-a-uuid/consent")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "uuid"


def test_other_methods_on_the_read_are_405_problems(artist, make_track, api):
    track = make_track(owner=artist)
    response = api.post(f"/tracks/{track.uuid}/consent", {})
    assert response.status_code == 405 and response["Content-Type"] == PROBLEM
    assert "GET" in response["Allow"]


def test_a_database_error_on_the_plain_read_is_a_logged_500_problem(artist, make_track, api, monkeypatch, caplog):
    from downstream import selectors

    track = make_track(owner=artist)

    def explode(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(selectors, "track_consent_for_token", explode)
    response = api.get(f"/tracks/{track.uuid}/consent")

    assert response.status_code == 500 and response["Content-Type"] == PROBLEM
    assert any("database gone" in (record.exc_text or str(record.exc_info)) for record in caplog.records)
