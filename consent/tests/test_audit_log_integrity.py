from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from conftest import service_missing
from consent import services
from consent.chain import BODY_COLUMNS, event_hash
from consent.models import AuditEvent, AuditLogImmutable
from tracks.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(artist, make_track):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": False}, source="web"
    )
    return AuditEvent.objects.order_by("seq").first()


def raw(sql: str, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_can_write_audit_events_and_still_be_flushed(artist, make_track):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    assert AuditEvent.objects.count() == 1


def test_after_a_flush_the_guards_and_the_seeded_purposes_are_back(logged):
    assert AuditEvent.objects.count() == 2
    with pytest.raises(DatabaseError, match="append-only"):
        raw("DELETE FROM consent_auditevent")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE consent_auditevent SET new_value = 'granted' WHERE id = %s",
        "UPDATE consent_auditevent SET hash = 'x' WHERE id = %s",
        "DELETE FROM consent_auditevent WHERE id = %s",
    ],
    ids=["update-value", "update-hash", "delete-row"],
)
def test_database_refuses_raw_update_and_delete_of_audit_events(logged, sql):
    assert connection.vendor in {"sqlite", "postgresql"}
    with pytest.raises(DatabaseError, match="append-only"):
        raw(sql, [logged.pk])
    assert AuditEvent.objects.filter(pk=logged.pk, new_value="granted").exists()


def test_database_refuses_deleting_every_audit_event(logged):
    with pytest.raises(DatabaseError, match="append-only"):
        raw("DELETE FROM consent_auditevent")
    assert AuditEvent.objects.count() == 2


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        # The erasable personal-data tables reference the events, so a plain
        # TRUNCATE is refused before the trigger even runs...
        ("TRUNCATE consent_auditevent", "truncate a table referenced in a foreign key|append-only"),
        # ...and one that would take them along is refused by the trigger.
        ("TRUNCATE consent_auditevent CASCADE", "append-only"),
    ],
    ids=["truncate", "truncate-cascade"],
)
def test_postgresql_refuses_truncate_of_audit_events(logged, sql, refusal):
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: TRUNCATE exists only there (SQLite's DELETE is covered above); set DATABASE_URL")
    # The rows were inserted in this test's transaction: run their deferred FK
    # checks now, or PostgreSQL refuses TRUNCATE for that reason instead.
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match=refusal):
        raw(sql)
    assert AuditEvent.objects.count() == 2


def test_model_refuses_save_update_and_delete(logged):
    with pytest.raises(AuditLogImmutable):
        logged.save()
    with pytest.raises(AuditLogImmutable):
        logged.delete()
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.filter(pk=logged.pk).update(new_value="granted")
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.bulk_update([logged], ["new_value"])
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.create(artist_id=logged.artist_id, seq=99, created_at=logged.created_at)
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.bulk_create([AuditEvent(artist_id=logged.artist_id, seq=99)])


def test_verify_audit_log_passes_an_intact_log(logged, capsys):
    call_command("verify_audit_log")
    assert "OK: 2 events in 1 chain(s); chains verified; consent state matches the log." in capsys.readouterr().out


def _insert_behind_the_back(artist, *, seq, prev_hash, hash_):
    # Every column written explicitly, as an intruder with SQL access would.
    raw(
        "INSERT INTO consent_auditevent (artist_id, seq, actor_id, actor_kind, source, kind, "
        "purpose_slug, old_value, new_value, request_id, created_at, chain_version, actor_data_digest, "
        "subject_data_digest, prev_hash, hash) "
        "VALUES (%s, %s, %s, 'artist', 'web', 'consent_changed', 'generative_training', "
        "'not_granted', 'granted', '', %s, 2, '', '', %s, %s)",
        [artist.pk, seq, artist.pk, "2026-01-01 00:00:00+00", prev_hash, hash_],
    )


def test_verify_audit_log_reports_a_row_with_a_bogus_hash(artist, logged, capsys):
    last = AuditEvent.objects.order_by("-seq").first()
    _insert_behind_the_back(artist, seq=3, prev_hash=last.hash, hash_="f" * 64)
    with pytest.raises(CommandError, match="1 broken chain"):
        call_command("verify_audit_log")
    err = capsys.readouterr().err
    assert f"artist {artist.pk}, seq 3" in err and "hash does not match" in err


def test_verify_audit_log_reports_a_row_with_the_wrong_prev_hash(artist, logged, capsys):
    _insert_behind_the_back(artist, seq=3, prev_hash="0" * 64, hash_="e" * 64)
    with pytest.raises(CommandError):
        call_command("verify_audit_log")
    assert "prev_hash does not link" in capsys.readouterr().err


def test_verify_audit_log_reports_a_forged_row_whose_hash_is_correct(artist, logged, capsys):
    """Even a correctly chained forgery is caught: the chain head was not moved."""
    last = AuditEvent.objects.order_by("-seq").first()
    forged = AuditEvent.objects.filter(pk=last.pk).values(*BODY_COLUMNS)[0]
    forged["seq"] = 3
    good_hash = event_hash(last.hash, forged)
    raw(
        "INSERT INTO consent_auditevent (artist_id, seq, actor_id, actor_kind, source, kind, track_id, track_uuid, "
        "purpose_id, purpose_slug, old_value, new_value, policy_version_id, request_id, receipt_id, created_at, "
        "chain_version, actor_data_digest, subject_data_digest, prev_hash, hash) "
        "SELECT artist_id, 3, actor_id, actor_kind, source, kind, track_id, track_uuid, purpose_id, "
        "purpose_slug, old_value, new_value, policy_version_id, request_id, receipt_id, created_at, "
        "chain_version, actor_data_digest, subject_data_digest, %s, %s FROM consent_auditevent WHERE id = %s",
        [last.hash, good_hash, last.pk],
    )
    with pytest.raises(CommandError):
        call_command("verify_audit_log")
    assert "chain head does not match" in capsys.readouterr().err


def test_verify_audit_log_only_checks_the_requested_artist(artist, other_artist, logged, capsys):
    _insert_behind_the_back(artist, seq=3, prev_hash="0" * 64, hash_="d" * 64)
    call_command("verify_audit_log", artist=other_artist.pk)
    assert "OK: 0 events" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_verify_audit_log_command_exits_non_zero_on_a_break(artist, make_track):
    """The real command line, in its own process, against this test's database."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import _database_url_for_subprocess

    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": _database_url_for_subprocess()}
    command = [sys.executable, str(root / "manage.py"), "verify_audit_log"]

    ok = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 1 events" in ok.stdout

    last = AuditEvent.objects.get()
    _insert_behind_the_back(artist, seq=2, prev_hash=last.hash, hash_="a" * 64)
    broken = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0
    assert f"artist {artist.pk}, seq 2" in broken.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE consent_consent SET granted = %s",
        "DELETE FROM consent_consent WHERE granted = %s OR granted <> %s",
    ],
    ids=["flip-consent", "drop-consent-rows"],
)
def test_verify_audit_log_reports_consent_changed_behind_the_services_back(artist, make_track, capsys, sql):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    call_command("verify_audit_log")
    raw(sql, [False] * sql.count("%s"))
    with pytest.raises(CommandError, match="0 broken chain\\(s\\) and 1 state mismatch"):
        call_command("verify_audit_log")
    err = capsys.readouterr().err
    assert f"MISMATCH: track {track.pk}" in err and "the audit log says granted" in err


def test_verify_audit_log_reports_a_forged_upload_default(artist, capsys):
    from consent.models import Purpose

    purpose = Purpose.objects.get(slug="generative_training")
    raw(
        "INSERT INTO consent_uploaddefault (artist_id, purpose_id, granted, changed_at) VALUES (%s, %s, %s, %s)",
        [artist.pk, purpose.pk, True, "2026-01-01 00:00:00"],
    )
    with pytest.raises(CommandError, match="1 state mismatch"):
        call_command("verify_audit_log")
    assert "upload default of artist" in capsys.readouterr().err
    call_command("verify_audit_log", chains_only=True)


def test_a_logged_track_deletion_is_not_a_mismatch(artist, make_track, capsys):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    with transaction.atomic():
        services.record_track_deleted(actor=artist, track=track)
        track.delete()
    call_command("verify_audit_log")
    assert "consent state matches the log" in capsys.readouterr().out
