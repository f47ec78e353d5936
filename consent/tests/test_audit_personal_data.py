"""Personal data in the audit log is erasable without breaking the chain (chain version 2).

IP address, user agent and track title live outside the hashed body; the
body commits to each with HMAC-SHA256 under a key kept beside the data.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from consent import services
from consent.chain import canonical_json, event_hash
from consent.models import AuditActorData, AuditEvent, AuditSubjectData
from consent.selectors import verify_chains
from consent.services.audit import policy_in_force
from platformkit.request_meta import RequestMeta
from tracks.models import Track

pytestmark = pytest.mark.django_db

META = RequestMeta(ip="203.0.113.7", user_agent="ArtistBrowser/1.0", request_id="req-1")


@pytest.fixture
def logged(artist, make_track):
    track = make_track(owner=artist, title="Ada's wedding song")
    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(pk=track.pk),
        changes={"recommendation": True},
        source="web",
        request_meta=META,
    )
    return AuditEvent.objects.get(artist=artist)


def raw(sql: str, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_personal_data_is_kept_out_of_the_hashed_body(logged):
    body = json.loads(canonical_json(AuditEvent.objects.filter(pk=logged.pk).values()[0]))
    assert body["chain_version"] == "2"
    assert not {"ip", "user_agent", "track_title"} & body.keys()
    flat = json.dumps(body)
    assert META.ip not in flat and "wedding" not in flat

    actor = AuditActorData.objects.get(event=logged)
    subject = AuditSubjectData.objects.get(event=logged)
    assert (actor.ip, actor.user_agent, subject.track_title) == (META.ip, META.user_agent, "Ada's wedding song")
    # The body holds a keyed hash of each part, under a key that lives (and dies) with the data.
    expected = hmac.new(
        bytes.fromhex(actor.key),
        json.dumps({"ip": META.ip, "user_agent": META.user_agent}, sort_keys=True, separators=(",", ":")).encode(),
        hashlib.sha256,
    ).hexdigest()
    assert logged.actor_data_digest == expected
    assert (logged.ip, logged.user_agent, logged.track_title) == (META.ip, META.user_agent, "Ada's wedding song")


def test_erasing_personal_data_keeps_the_chain_verifiable(artist, logged, capsys):
    services.erase_personal_data(user_id=artist.pk, reason="test")

    assert not AuditActorData.objects.exists() and not AuditSubjectData.objects.exists()
    logged = AuditEvent.objects.get(pk=logged.pk)
    assert (logged.ip, logged.track_title) == ("", "")
    report = verify_chains()
    assert report.ok and report.erased == 1
    call_command("verify_audit_log")
    assert "Personal data erased from 1 event(s)" in capsys.readouterr().out


def test_personal_data_altered_behind_the_services_back_is_reported(logged, capsys):
    raw("UPDATE consent_auditactordata SET ip = %s", ["192.0.2.66"])
    with pytest.raises(CommandError, match="1 broken chain"):
        call_command("verify_audit_log")
    assert "actor data does not match the digest" in capsys.readouterr().err


def test_personal_data_deleted_without_a_recorded_erasure_is_reported(logged, capsys):
    raw("DELETE FROM consent_auditsubjectdata")
    with pytest.raises(CommandError):
        call_command("verify_audit_log")
    assert "subject data is missing and no recorded erasure covers it" in capsys.readouterr().err


def test_personal_data_added_to_an_event_that_had_none_is_reported(artist, make_track, capsys):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    event = AuditEvent.objects.get()
    assert event.actor_data_digest == ""
    raw(
        "INSERT INTO consent_auditactordata (event_id, key, ip, user_agent) VALUES (%s, '', '192.0.2.1', 'x')",
        [event.hash],
    )
    with pytest.raises(CommandError):
        call_command("verify_audit_log")
    assert "actor data exists for an event that committed to none" in capsys.readouterr().err


# --- Events chained before the split --------------------------------------------------------


def _v1_event(artist, *, seq: int, prev_hash: str, ip: str, title: str) -> dict:
    """A version-1 event as the writer before the split computed it (personal data in the hash)."""
    event = {
        "artist_id": artist.pk,
        "seq": seq,
        "actor_id": artist.pk,
        "actor_kind": "artist",
        "source": "web",
        "kind": "track_uploaded",
        "track_id": None,
        "track_uuid": uuid.uuid4(),
        "track_title": title,
        "purpose_id": None,
        "purpose_slug": "",
        "old_value": "",
        "new_value": "",
        "policy_version_id": None,
        "ip": ip,
        "user_agent": "OldBrowser/0.9",
        "request_id": f"old-{seq}",
        "receipt_id": None,
        "created_at": datetime.datetime(2026, 1, seq, 12, 0, tzinfo=datetime.UTC),
    }
    event["prev_hash"] = prev_hash
    event["hash"] = event_hash(prev_hash, event)
    return event


@pytest.mark.django_db(transaction=True)
def test_events_chained_before_the_split_still_verify_after_the_migration(artist, capsys):
    """Migrate back to before the split, write version-1 events as the old code did, migrate forward."""
    from django.db.migrations.executor import MigrationExecutor

    from consent.models import GENESIS_HASH

    executor = MigrationExecutor(connection)
    executor.migrate([("consent", "0007_third_party_ai_training")])
    first = _v1_event(artist, seq=1, prev_hash=GENESIS_HASH, ip="203.0.113.1", title="Old song one")
    second = _v1_event(artist, seq=2, prev_hash=first["hash"], ip="203.0.113.2", title="Old song two")
    columns = [name for name in first if name not in {"track_id", "purpose_id", "policy_version_id", "receipt_id"}]
    for event in (first, second):
        raw(
            f"INSERT INTO consent_auditevent ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",  # noqa: S608 -- column names from this test's own dict
            [event[name] for name in columns],
        )
    raw("INSERT INTO consent_auditchainhead (artist_id, seq, hash) VALUES (%s, 2, %s)", [artist.pk, second["hash"]])

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert set(AuditEvent.objects.values_list("chain_version", flat=True)) == {1}
    assert AuditActorData.objects.get(event_id=first["hash"]).ip == "203.0.113.1"
    assert AuditSubjectData.objects.get(event_id=second["hash"]).track_title == "Old song two"
    call_command("verify_audit_log", chains_only=True)
    assert "OK: 2 events in 1 chain(s)" in capsys.readouterr().out

    # A version-1 value altered is caught: the old hash covers it.
    raw("UPDATE consent_auditsubjectdata SET track_title = 'Forged' WHERE event_id = %s", [second["hash"]])
    assert not verify_chains().ok
    raw("UPDATE consent_auditsubjectdata SET track_title = 'Old song two' WHERE event_id = %s", [second["hash"]])

    # New events chain on in version 2 after the old ones.
    services.acknowledge_policy(actor=artist, version=policy_in_force(), request_meta=META)
    assert list(AuditEvent.objects.order_by("seq").values_list("chain_version", flat=True)) == [1, 1, 2]

    # Erased, the version-1 events can only be checked by their links; the chain still holds.
    services.erase_personal_data(user_id=artist.pk, reason="test")
    report = verify_chains()
    assert report.ok
    assert (report.erased, report.linkage_only) == (3, 2)


def test_the_audit_tables_stay_append_only_after_the_split(logged):
    from django.db import DatabaseError

    with pytest.raises(DatabaseError, match="append-only"):
        raw("UPDATE consent_auditevent SET actor_data_digest = '' WHERE id = %s", [logged.pk])
