"""POST /consent/check validates its own body (no pydantic object per id): the same rules and 422s as CheckIn."""

from __future__ import annotations

import json
import uuid

import pytest

PROBLEM = "application/problem+json"

pytestmark = pytest.mark.django_db

A_UUID = "7c6c4d16-b213-4fae-b8f3-8e7d5cce6ffa"
GOOD = {"purpose": "recommendation", "id_type": "uuid", "ids": [A_UUID]}


def _post(api, body):
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return api.http.post("/api/v1/consent/check", raw, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"[]", ["purpose", "id_type", "ids"]),
        (b"null", ["purpose", "id_type", "ids"]),
        ({}, ["purpose", "id_type", "ids"]),
        ({"purpose": "recommendation"}, ["id_type", "ids"]),
        ({**GOOD, "purpose": "Not A Slug"}, ["purpose"]),
        ({**GOOD, "purpose": "recommendation\n"}, ["purpose"]),
        ({**GOOD, "purpose": 5}, ["purpose"]),
        ({**GOOD, "id_type": "ean"}, ["id_type"]),
        ({**GOOD, "id_type": ["uuid"]}, ["id_type"]),
        ({**GOOD, "ids": []}, ["ids"]),
        ({**GOOD, "ids": A_UUID}, ["ids"]),
        ({**GOOD, "ids": [A_UUID] * 10_001}, ["ids"]),
        ({**GOOD, "ids": [A_UUID, 1, None, True]}, ["ids.1", "ids.2", "ids.3"]),
        ({**GOOD, "ids": [A_UUID, ""]}, ["ids.1"]),
        ({**GOOD, "ids": [A_UUID, "x" * 201]}, ["ids.1"]),
        ({"purpose": 1, "id_type": 2, "ids": 3}, ["purpose", "id_type", "ids"]),
    ],
)
def test_bad_input_is_422_naming_each_field(api, body, fields):
    response = _post(api, body)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == fields
    assert all(e["message"] for e in problem["errors"])
    assert problem["detail"] == f"Invalid: {', '.join(fields)}."


def test_a_body_that_is_not_json_is_400(api):
    response = _post(api, b"{not json")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM


def test_a_lone_surrogate_in_an_id_is_json_all_the_same(api):
    response = _post(api, b'{"purpose": "recommendation", "id_type": "uuid", "ids": ["\\ud800"]}')
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["reason"] == "invalid_id"


def test_a_purpose_outside_the_scope_is_403_after_the_body_is_valid(make_api_client, caller):
    _, token = make_api_client(purposes=["recommendation"])
    response = _post(caller(token), {**GOOD, "purpose": "fraud_detection"})
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM


def test_uuids_in_any_spelling_are_answered_in_the_order_asked(artist, make_track, api, set_consent):
    granted, withheld = make_track(owner=artist), make_track(owner=artist)
    set_consent(granted, recommendation=True)
    canonical = str(granted.uuid)
    ids = [
        canonical.upper(),  # upper case: still canonical once lowered
        f" {withheld.uuid} ",  # spaces: normalised one by one
        granted.uuid.hex,  # no hyphens
        f"{granted.uuid}\n{withheld.uuid}",  # two in one: not an id, and the others keep their place
        canonical,
        str(uuid.uuid4()),
    ]

    results = _post(api, {**GOOD, "ids": ids}).json()["results"]

    assert [r["id"] for r in results] == ids
    assert [(r["allowed"], r["reason"], r["track"]) for r in results] == [
        (True, None, canonical),
        (False, "not_granted", str(withheld.uuid)),
        (True, None, canonical),
        (False, "invalid_id", None),
        (True, None, canonical),
        (False, "not_found", None),
    ]


def test_the_check_schema_is_still_checkin(api):
    schema = api.http.get("/api/v1/openapi.json").json()
    body = schema["paths"]["/api/v1/consent/check"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckIn"}
    check_in = schema["components"]["schemas"]["CheckIn"]
    assert check_in["required"] == ["purpose", "id_type", "ids"]
    assert check_in["properties"]["ids"]["maxItems"] == 10_000
