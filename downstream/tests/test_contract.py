"""The /api/v1 contract, end to end through HTTP, on the real database."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid

import pytest
from django.utils import timezone

from consent.models import AuditEvent
from downstream.models import ApiClient, IdempotencyRecord, UsageRecord
from tracks.models import Track

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def latest_event(track, slug: str) -> AuditEvent:
    event = AuditEvent.objects.filter(track_uuid=track.uuid, purpose_slug=slug).order_by("-seq").first()
    assert event is not None, f"no {slug} event for the track"
    return event


# --- One track -------------------------------------------------------------------------------


def test_track_consent_answers_each_purpose_of_the_client_with_the_event_that_set_it(
    artist, make_track, make_api_client, caller, set_consent
):
    track = make_track(owner=artist, isrc="GBAYE2400001")
    set_consent(track, recommendation=True)
    set_consent(track, fraud_detection=True)
    set_consent(track, fraud_detection=False)
    _, token = make_api_client(purposes=["recommendation", "fraud_detection"])

    response = caller(token).get(f"/tracks/{track.uuid}/consent")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["track"] == str(track.uuid)
    assert body["isrc"] == "GBAYE2400001"
    assert body["sha256"] == track.sha256
    assert set(body["purposes"]) == {"recommendation", "fraud_detection"}
    rec, fraud = body["purposes"]["recommendation"], body["purposes"]["fraud_detection"]
    assert rec["allowed"] is True
    assert rec["event"] == latest_event(track, "recommendation").hash
    assert fraud["allowed"] is False
    assert fraud["event"] == latest_event(track, "fraud_detection").hash
    assert datetime.datetime.fromisoformat(fraud["since"]) == latest_event(track, "fraud_detection").created_at


def test_a_purpose_never_asked_is_not_allowed_with_no_event(artist, make_track, api):
    track = make_track(owner=artist)
    body = api.get(f"/tracks/{track.uuid}/consent").json()
    assert all(state == {"allowed": False, "since": None, "event": None} for state in body["purposes"].values())


def test_as_of_answers_what_was_true_then_from_the_audit_log(artist, make_track, api, set_consent):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    granted_at = latest_event(track, "recommendation").created_at
    set_consent(track, recommendation=False)
    withdrawn_at = latest_event(track, "recommendation").created_at
    tick = datetime.timedelta(microseconds=1)

    def state_at(moment):
        body = api.get(f"/tracks/{track.uuid}/consent", as_of=moment.isoformat(), purpose="recommendation").json()
        assert set(body["purposes"]) == {"recommendation"}
        return body["purposes"]["recommendation"]

    assert state_at(granted_at - tick) == {"allowed": False, "since": None, "event": None}
    assert state_at(granted_at)["allowed"] is True
    assert datetime.datetime.fromisoformat(state_at(withdrawn_at - tick)["since"]) == granted_at
    assert state_at(withdrawn_at)["allowed"] is False
    assert state_at(withdrawn_at)["event"] == latest_event(track, "recommendation").hash
    # The future is not known: a later instant is answered as of now, and the answer says so.
    future = timezone.now() + datetime.timedelta(days=365)
    body = api.get(f"/tracks/{track.uuid}/consent", as_of=future.isoformat()).json()
    assert datetime.datetime.fromisoformat(body["as_of"]) <= timezone.now()


def test_a_deleted_track_is_answered_from_the_log_and_was_allowed_before(
    artist, make_track, api, set_consent, delete_track
):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    before = timezone.now()
    delete_track(track)

    now = api.get(f"/tracks/{track.uuid}/consent", purpose="recommendation").json()
    then = api.get(f"/tracks/{track.uuid}/consent", purpose="recommendation", as_of=before.isoformat()).json()

    assert now["status"] == "deleted" and now["purposes"]["recommendation"]["allowed"] is False
    assert then["purposes"]["recommendation"]["allowed"] is True


def test_unknown_track_is_404_and_bad_input_is_422_naming_the_field(api):
    problem(api.get(f"/tracks/{uuid.uuid4()}/consent"), 404)
    body = problem(api.get("/tracks/not-a-uuid/consent"), 422)
    assert body["errors"][0]["field"] == "uuid"
    naive = api.get(f"/tracks/{uuid.uuid4()}/consent", as_of="2024-01-01T00:00:00")
    assert problem(naive, 422)["errors"][0]["field"] == "as_of"


# --- Bulk check --------------------------------------------------------------------------------


def test_check_answers_in_the_order_asked_and_denies_by_default(
    artist, other_artist, make_track, api, set_consent, delete_track
):
    granted = make_track(owner=artist, isrc="GBAYE2400002")
    withheld = make_track(owner=artist)
    processing = make_track(owner=artist, status=Track.Status.PROCESSING)
    gone = make_track(owner=artist)
    set_consent([granted, processing, gone], recommendation=True)
    delete_track(gone)
    unknown = uuid.uuid4()
    ids = [str(withheld.uuid), "nonsense", str(granted.uuid), str(unknown), str(processing.uuid), str(gone.uuid)]

    response = api.post("/consent/check", {"purpose": "recommendation", "id_type": "uuid", "ids": ids})

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids
    assert [(r["allowed"], r["reason"]) for r in results] == [
        (False, "not_granted"),
        (False, "invalid_id"),
        (True, None),
        (False, "not_found"),
        (False, "not_processed"),
        (False, "deleted"),
    ]
    assert results[2]["track"] == str(granted.uuid)


def test_check_by_isrc_is_ambiguous_when_two_tracks_share_it(artist, other_artist, make_track, api, set_consent):
    mine = make_track(owner=artist, isrc="GBAYE2400003")
    theirs = make_track(owner=other_artist, isrc="GBAYE2400003")
    single = make_track(owner=artist, isrc="GBAYE2400004")
    set_consent(mine, recommendation=True)
    set_consent(theirs, recommendation=True)
    set_consent(single, recommendation=True)

    body = api.post(
        "/consent/check", {"purpose": "recommendation", "id_type": "isrc", "ids": ["GB-AYE-24-00003", "gbaye2400004"]}
    ).json()

    assert [(r["allowed"], r["reason"]) for r in body["results"]] == [(False, "ambiguous"), (True, None)]


def test_check_by_sha256_of_the_audio_file(artist, make_track, api, set_consent):
    track = make_track(owner=artist)
    set_consent(track, fraud_detection=True)
    body = api.post(
        "/consent/check", {"purpose": "fraud_detection", "id_type": "sha256", "ids": [track.sha256.upper()]}
    ).json()
    assert body["results"] == [{"id": track.sha256.upper(), "allowed": True, "track": str(track.uuid), "reason": None}]


def test_check_of_10000_ids_runs_a_constant_number_of_queries(
    artist, make_tracks, make_api_client, caller, set_consent, django_assert_num_queries
):
    tracks = make_tracks(3000, owner=artist)
    set_consent(tracks[:1500], recommendation=True)
    _, token = make_api_client(purposes=["recommendation"])
    ids = [str(t.uuid) for t in tracks] + [str(uuid.uuid4()) for _ in range(7000)]

    # Authentication (with the client's purposes), the tracks, and the log lookup of unknown uuids.
    with django_assert_num_queries(3):
        response = caller(token).post("/consent/check", {"purpose": "recommendation", "id_type": "uuid", "ids": ids})

    results = response.json()["results"]
    assert len(results) == 10_000
    assert sum(r["allowed"] for r in results) == 1500


def test_more_than_10000_ids_is_refused_naming_the_field(api):
    ids = [str(uuid.uuid4()) for _ in range(10_001)]
    body = problem(api.post("/consent/check", {"purpose": "recommendation", "id_type": "uuid", "ids": ids}), 422)
    assert body["errors"][0]["field"] == "ids"


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(api, settings):
    settings.API_MAX_BODY_BYTES = 2048
    not_even_json = "{" * 5000
    response = api.http.post("/api/v1/consent/check", not_even_json, content_type="application/json")
    assert problem(response, 413)["type"].endswith("too-large")


# --- Manifests --------------------------------------------------------------------------------------


def test_manifest_cites_the_granting_event_is_canonical_and_verifies_offline(
    artist, make_track, api, set_consent, tmp_path
):
    from django.core.management import call_command

    from downstream.signing import canonical, verify_manifest

    granted = make_track(owner=artist)
    withheld = make_track(owner=artist)
    set_consent(granted, generative_training=True)

    ids = [str(granted.uuid), str(withheld.uuid)]
    response = api.post(
        "/manifests", {"purpose": "generative_training", "name": "run 7", "id_type": "uuid", "ids": ids}
    )

    assert response.status_code == 201, response.content
    manifest = response.json()
    assert [t["track"] for t in manifest["tracks"]] == [str(granted.uuid)]
    entry = manifest["tracks"][0]
    assert entry["consent_event"] == latest_event(granted, "generative_training").hash
    assert entry["sha256"] == granted.sha256
    assert entry["chain_head"] == AuditEvent.objects.filter(artist=artist).order_by("-seq").first().hash
    assert manifest["excluded"] == [{"id": str(withheld.uuid), "reason": "not_granted"}]
    core = {k: v for k, v in manifest.items() if k not in ("id", "signature")}
    assert manifest["id"] == hashlib.sha256(canonical(core)).hexdigest()
    assert response.content == canonical(manifest)

    jwks = api.get("/keys").json()
    assert verify_manifest(manifest, jwks)
    fetched = api.get(f"/manifests/{manifest['id']}")
    assert fetched.content == response.content

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    call_command("verify_manifest", str(path))
    manifest["tracks"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="INVALID"):
        call_command("verify_manifest", str(path))


def test_manifest_withdrawals_list_tracks_withdrawn_or_deleted_since(
    artist, make_track, api, set_consent, delete_track
):
    kept, withdrawn, deleted = make_track(owner=artist), make_track(owner=artist), make_track(owner=artist)
    set_consent([kept, withdrawn, deleted], recommendation=True)
    ids = [str(t.uuid) for t in (kept, withdrawn, deleted)]
    manifest = api.post("/manifests", {"purpose": "recommendation", "name": "r", "id_type": "uuid", "ids": ids}).json()
    assert len(manifest["tracks"]) == 3
    assert api.get(f"/manifests/{manifest['id']}/withdrawals").json()["withdrawals"] == []

    set_consent(withdrawn, recommendation=False)
    delete_track(deleted)

    body = api.get(f"/manifests/{manifest['id']}/withdrawals").json()
    # Deleting a track withdraws its grants first (so every reader sees a withdrawal), then deletes it.
    assert [(w["track"], w["change"], w["allowed_now"]) for w in body["withdrawals"]] == [
        (str(withdrawn.uuid), "withdrawn", False),
        (str(deleted.uuid), "withdrawn", False),
        (str(deleted.uuid), "deleted", False),
    ]
    problem(api.get(f"/manifests/{'0' * 64}"), 404)


# --- Usage ledger --------------------------------------------------------------------------------------


def test_usage_is_recorded_for_allowed_tracks_and_refused_per_id_otherwise(artist, make_track, api, set_consent):
    allowed, refused = make_track(owner=artist), make_track(owner=artist)
    set_consent(allowed, recommendation=True)

    all_ok = api.post(
        "/usage", {"purpose": "recommendation", "id_type": "uuid", "ids": [str(allowed.uuid)], "description": "nightly"}
    )
    assert all_ok.status_code == 201, all_ok.content
    assert all_ok.json()["accepted"] == [{"id": str(allowed.uuid), "track": str(allowed.uuid)}]

    ids = [str(allowed.uuid), str(refused.uuid)]
    mixed = api.post("/usage", {"purpose": "recommendation", "id_type": "uuid", "ids": ids, "description": "x"})
    body = problem(mixed, 409)
    assert body["refused"] == [{"id": str(refused.uuid), "reason": "not_granted"}]
    assert body["accepted"] == [{"id": str(allowed.uuid), "track": str(allowed.uuid)}]

    rows = list(UsageRecord.objects.filter(track_uuid=allowed.uuid))
    assert len(rows) == 2
    assert rows[0].consent_event.hash == latest_event(allowed, "recommendation").hash
    assert not UsageRecord.objects.filter(track_uuid=refused.uuid).exists()


def test_the_usage_ledger_is_append_only_in_the_orm_and_the_database(artist, make_track, api, set_consent):
    from django.db import DatabaseError, connection, transaction

    from downstream.models import UsageRecordImmutable

    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    api.post("/usage", {"purpose": "recommendation", "id_type": "uuid", "ids": [str(track.uuid)], "description": "d"})
    with pytest.raises(UsageRecordImmutable):
        UsageRecord.objects.all().update(description="rewritten")
    with pytest.raises(UsageRecordImmutable):
        UsageRecord.objects.first().delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE downstream_usagerecord SET description = 'rewritten'")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM downstream_usagerecord")
    assert UsageRecord.objects.get().description == "d"


def test_idempotency_key_replays_the_first_answer_and_refuses_a_different_body(artist, make_track, api, set_consent):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    body = {"purpose": "recommendation", "id_type": "uuid", "ids": [str(track.uuid)], "description": "batch 1"}

    first = api.post("/usage", body, HTTP_IDEMPOTENCY_KEY="retry-me-1")
    again = api.post("/usage", body, HTTP_IDEMPOTENCY_KEY="retry-me-1")
    other = api.post("/usage", {**body, "description": "batch 2"}, HTTP_IDEMPOTENCY_KEY="retry-me-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert UsageRecord.objects.count() == 1
    assert problem(other, 422)["type"].endswith("idempotency-key-reused")
    assert IdempotencyRecord.objects.count() == 1


def test_a_manifest_retried_with_the_same_key_is_the_same_manifest(artist, make_track, api, set_consent):
    track = make_track(owner=artist)
    set_consent(track, recommendation=True)
    body = {"purpose": "recommendation", "name": "n", "id_type": "uuid", "ids": [str(track.uuid)]}
    first = api.post("/manifests", body, HTTP_IDEMPOTENCY_KEY="m-1").json()
    second = api.post("/manifests", body, HTTP_IDEMPOTENCY_KEY="m-1").json()
    assert first == second


# --- Tokens, revocation, rate limit, logs ------------------------------------------------------------------


def test_no_token_or_a_bad_one_is_401_with_a_problem(api, caller):
    for token in (None, "ccp_not-a-real-token"):
        response = caller(token).get("/client")
        problem(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_revocation_takes_effect_on_the_next_request(make_api_client, caller):
    from downstream import services

    client, token = make_api_client()
    api = caller(token)
    assert api.get("/client").status_code == 200
    services.revoke_client(client=client)
    problem(api.get("/client"), 401)


def test_only_the_token_hash_is_stored(make_api_client):
    client, token = make_api_client()
    stored = ApiClient.objects.filter(pk=client.pk).values()[0]
    assert token not in json.dumps(stored, default=str)
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()


def test_over_the_rate_limit_is_429_with_retry_after(make_api_client, caller):
    _, token = make_api_client(rate_limit=2)
    api = caller(token)
    assert [api.get("/client").status_code for _ in range(2)] == [200, 200]
    response = api.get("/client")
    problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_with_the_cache_down_the_api_still_answers(make_api_client, caller, settings):
    from conftest import free_port

    # A Redis URL where nothing listens: every cache call fails, the API must not.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    _, token = make_api_client(rate_limit=1)
    api = caller(token)
    assert [api.get("/client").status_code for _ in range(3)] == [200, 200, 200]


def test_tokens_never_reach_the_logs(make_api_client, caller, caplog, artist, make_track, monkeypatch):
    import logging

    from downstream import selectors, services

    _, token = make_api_client()
    revoked, revoked_token = make_api_client()

    services.revoke_client(client=revoked)
    caplog.set_level(logging.DEBUG)
    api = caller(token)
    api.get("/client")
    api.get(f"/tracks/{uuid.uuid4()}/consent")
    api.post("/consent/check", {"purpose": "fraud_detection", "id_type": "uuid", "ids": ["x"]})
    api.post("/consent/check", {"purpose": "recommendation"})
    caller(revoked_token).get("/client")
    caller(token + "x").get("/client")
    api.http.get("/api/v1/client", HTTP_AUTHORIZATION=f"Token {token}")

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "judge_ids", explode)
    failed = api.post("/consent/check", {"purpose": "recommendation", "id_type": "uuid", "ids": ["x"]})
    problem(failed, 500)

    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {getattr(r, 'request', '')!r}" for r in caplog.records)
    assert "boom" in logged  # the error itself is logged...
    for secret in (token, revoked_token, token[8:]):
        assert secret not in logged  # ...but never a token


def test_a_client_registers_and_removes_its_own_https_webhook(api):
    assert api.get("/webhook").json() == {"url": None, "secret": None}
    refused = api.http.put("/api/v1/webhook", {"url": "http://example.test/hook"}, content_type="application/json")
    assert problem(refused, 422)["errors"][0]["field"] == "url"

    put = api.http.put("/api/v1/webhook", {"url": "https://example.test/hook"}, content_type="application/json")
    assert put.status_code == 200, put.content
    assert put.json()["secret"].startswith("whsec_")
    again = api.http.put("/api/v1/webhook", {"url": "https://example.test/other"}, content_type="application/json")
    assert again.json() == {"url": "https://example.test/other", "secret": None}  # the secret is shown once

    assert api.http.delete("/api/v1/webhook").status_code == 204
    assert api.get("/webhook").json()["url"] is None


def test_every_error_under_the_api_is_a_problem_document(api):
    not_allowed = api.http.delete("/api/v1/consent/check")
    assert problem(not_allowed, 405)
    assert "POST" in not_allowed["Allow"]
    assert problem(api.http.get("/api/v1/no/such/thing"), 404)
