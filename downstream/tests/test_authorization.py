"""The authorization matrix: every endpoint x every purpose x a client in scope / out of scope.

Purposes are read from the database, so a purpose added later (by staff or by a
migration) is covered without touching this file.
"""

from __future__ import annotations

import uuid

import pytest

from consent.models import Purpose

pytestmark = pytest.mark.django_db


def _all_purposes() -> list[str]:
    return list(Purpose.objects.order_by("ordering", "id").values_list("slug", flat=True))


@pytest.fixture
def ready(artist, make_track, set_consent, make_api_client, caller):
    """A granted track for every purpose, and a manifest for every purpose made by a client allowed everything."""
    track = make_track(owner=artist)
    slugs = _all_purposes()
    set_consent(track, **dict.fromkeys(slugs, True))
    _, token = make_api_client(purposes=slugs, manifests=True, usage=True)
    full = caller(token)
    manifests = {}
    for slug in slugs:
        body = {"purpose": slug, "name": "m", "id_type": "uuid", "ids": [str(track.uuid)]}
        manifests[slug] = full.post("/manifests", body).json()["id"]
    return track, manifests


def _requests(slug: str, track, manifests) -> dict[str, tuple]:
    ids = [str(track.uuid)]
    return {
        "track consent": ("get", f"/tracks/{track.uuid}/consent", {"purpose": slug}),
        "check": ("post", "/consent/check", {"purpose": slug, "id_type": "uuid", "ids": ids}),
        "changes": ("get", "/consent/changes", {"purpose": slug}),
        "acks": ("post", "/consent/acks", {"purpose": slug, "cursor": "0.0"}),
        "manifest create": ("post", "/manifests", {"purpose": slug, "name": "n", "id_type": "uuid", "ids": ids}),
        "manifest get": ("get", f"/manifests/{manifests[slug]}", {}),
        "manifest withdrawals": ("get", f"/manifests/{manifests[slug]}/withdrawals", {}),
        "usage": ("post", "/usage", {"purpose": slug, "id_type": "uuid", "ids": ids, "description": "d"}),
    }


SUCCESS = {
    "track consent": 200,
    "check": 200,
    "changes": 200,
    "acks": 200,
    "manifest create": 201,
    "manifest get": 200,
    "manifest withdrawals": 200,
    "usage": 201,
}


def _send(api, method, path, data):
    return api.get(path, **data) if method == "get" else api.post(path, data)


@pytest.mark.parametrize("endpoint", sorted(SUCCESS))
def test_each_endpoint_serves_each_purpose_only_to_clients_scoped_to_it(
    endpoint, ready, make_api_client, caller, subtests
):
    track, manifests = ready
    slugs = _all_purposes()
    for slug in slugs:
        others = [s for s in slugs if s != slug]
        for scope, expected in (("in scope", SUCCESS[endpoint]), ("out of scope", 403)):
            with subtests.test(purpose=slug, scope=scope):
                _, token = make_api_client(
                    purposes=[slug] if scope == "in scope" else others, manifests=True, usage=True
                )
                method, path, data = _requests(slug, track, manifests)[endpoint]
                response = _send(caller(token), method, path, data)
                assert response.status_code == expected, (slug, scope, response.content)
                if expected == 403:
                    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(("endpoint", "flag"), [("manifest create", "manifests"), ("usage", "usage")])
def test_writing_needs_the_clients_write_permission_as_well_as_the_purpose(
    endpoint, flag, ready, make_api_client, caller
):
    track, manifests = ready
    for slug in _all_purposes():
        _, token = make_api_client(purposes=[slug], manifests=flag != "manifests", usage=flag != "usage")
        method, path, data = _requests(slug, track, manifests)[endpoint]
        response = _send(caller(token), method, path, data)
        assert response.status_code == 403, response.content
        assert response.json()["type"].endswith("not-permitted")


def test_the_track_read_without_a_purpose_shows_exactly_the_clients_purposes(ready, make_api_client, caller):
    track, _ = ready
    slugs = _all_purposes()
    for size in range(len(slugs) + 1):
        _, token = make_api_client(purposes=slugs[:size])
        body = caller(token).get(f"/tracks/{track.uuid}/consent").json()
        assert set(body["purposes"]) == set(slugs[:size])


def test_an_unknown_purpose_is_outside_every_scope(ready, api):
    response = api.post("/consent/check", {"purpose": "no_such_purpose", "id_type": "uuid", "ids": [str(uuid.uuid4())]})
    assert response.status_code == 403
    assert response.json()["type"].endswith("forbidden-purpose")


def test_every_endpoint_but_the_keys_and_schema_needs_a_token(ready, caller):
    track, manifests = ready
    anonymous = caller(None)
    for endpoint, (method, path, data) in _requests("recommendation", track, manifests).items():
        assert _send(anonymous, method, path, data).status_code == 401, endpoint
    assert anonymous.get("/keys").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200
