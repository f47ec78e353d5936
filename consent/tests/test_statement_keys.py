"""The keys checked once per statement (consent/statement_keys_sql.py) hold what PostgreSQL's own foreign keys held.

A missing purpose, policy version or actor fails the writing statement; a
referenced row cannot be deleted or re-keyed; a writer's row locks make a
concurrent delete wait for it; and the ORM's PROTECT and SET_NULL still act
first, so the portal's own deletions never trip them.
"""

from __future__ import annotations

import importlib
import threading

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from conftest import service_missing
from consent import services, statement_keys_sql
from consent.models import AuditEvent, Consent, PolicyVersion, Purpose


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: the statement-level key triggers are installed only there; set DATABASE_URL")


def test_the_live_sql_is_what_the_migration_installed():
    installed = importlib.import_module("consent.migrations.0014_statement_level_keys")
    assert installed.PG_INSTALL == statement_keys_sql.PG_INSTALL
    assert installed.PG_UNINSTALL == statement_keys_sql.PG_UNINSTALL


def test_the_triggers_are_installed_on_every_table_they_guard(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE tgname LIKE '%%_keys_%%'")
        installed = set(cursor.fetchall())
    expected = set()
    for table, _, referenced in statement_keys_sql.KEYS:
        expected |= {(table, f"{table}_keys_insert"), (table, f"{table}_keys_update")}
        expected |= {(referenced, f"{referenced}_keys_delete"), (referenced, f"{referenced}_keys_rekey")}
    assert installed == expected


def _insert_consent(track, *, purpose_id, policy_version_id, changed_by_id=None):
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO consent_consent
                   (track_id, purpose_id, granted, changed_at, changed_by_id, changed_by_kind, policy_version_id)
               VALUES (%s, %s, true, now(), %s, 'artist', %s)""",
            [track.pk, purpose_id, changed_by_id, policy_version_id],
        )


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["purpose_id", "policy_version_id", "changed_by_id"])
def test_a_consent_row_naming_no_row_fails_its_statement_and_writes_nothing(make_track, artist, purposes, column):
    track = make_track(owner=artist)
    values = {
        "purpose_id": purposes["recommendation"].pk,
        "policy_version_id": PolicyVersion.objects.in_force().pk,
        "changed_by_id": artist.pk,
        column: 987654,
    }
    with pytest.raises(IntegrityError, match=column), transaction.atomic():
        _insert_consent(track, **values)
    assert not Consent.objects.filter(track=track).exists()


@pytest.mark.django_db
def test_moving_consent_rows_to_a_missing_policy_version_fails(make_track, artist, purposes):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=track.__class__.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    before = Consent.objects.get(track=track).policy_version_id
    with pytest.raises(IntegrityError, match="policy_version_id"), transaction.atomic():
        Consent.objects.filter(track=track).update(policy_version_id=987654)
    assert Consent.objects.get(track=track).policy_version_id == before


@pytest.mark.django_db
def test_an_audit_event_naming_a_missing_purpose_fails(artist):
    with pytest.raises(IntegrityError, match="purpose_id"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO consent_auditevent (artist_id, seq, actor_kind, source, kind, purpose_id, purpose_slug,
                   old_value, new_value, request_id, created_at, chain_version, actor_data_digest,
                   subject_data_digest, prev_hash, hash)
               VALUES (%s, 1, 'artist', 'web', 'consent_changed', 987654, 'x', '', '', '', now(), 2, '', '',
                   %s, %s)""",
            [artist.pk, "0" * 64, "f" * 64],
        )
    assert not AuditEvent.objects.filter(artist=artist).exists()


@pytest.mark.django_db
def test_a_referenced_purpose_or_policy_version_cannot_be_deleted_or_rekeyed_but_an_unused_one_can(make_track, artist):
    track = make_track(owner=artist)
    services.change_consent(
        actor=artist, tracks=track.__class__.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    consent = Consent.objects.get(track=track)
    for table, key in (("consent_purpose", consent.purpose_id), ("consent_policyversion", consent.policy_version_id)):
        with pytest.raises(IntegrityError, match="still referenced"), transaction.atomic(), connection.cursor() as c:
            c.execute(f"DELETE FROM {table} WHERE id = %s", [key])  # noqa: S608 -- the two tables above
        with pytest.raises(IntegrityError, match="still referenced"), transaction.atomic(), connection.cursor() as c:
            c.execute(f"UPDATE {table} SET id = id + 1000 WHERE id = %s", [key])  # noqa: S608
    # The ORM refuses first, as before.
    with pytest.raises(ProtectedError):
        Purpose.objects.filter(pk=consent.purpose_id).delete()
    unused = Purpose.objects.create(slug="unused_purpose", name="Unused", description="")
    Purpose.objects.filter(pk=unused.pk).delete()
    assert not Purpose.objects.filter(pk=unused.pk).exists()


@pytest.mark.django_db
def test_deleting_an_actor_leaves_their_consent_rows_with_no_actor(make_track, make_user, artist):
    manager = make_user(display_name="Gone Manager")
    track = make_track(owner=artist)
    now = timezone.now()
    Consent.objects.create(
        track=track,
        purpose=Purpose.objects.get(slug="fraud_detection"),
        granted=True,
        changed_at=now,
        changed_by=manager,
        changed_by_kind="label",
        policy_version=PolicyVersion.objects.in_force(),
    )
    with connection.cursor() as cursor, pytest.raises(IntegrityError), transaction.atomic():
        cursor.execute("DELETE FROM accounts_user WHERE id = %s", [manager.pk])
    manager.delete()  # SET_NULL runs before the delete reaches the database
    assert Consent.objects.get(track=track).changed_by_id is None


@pytest.mark.django_db(transaction=True)
def test_a_writer_holds_the_rows_it_names_until_it_commits(make_track, artist):
    """As PostgreSQL's own check does: the referenced row is locked FOR KEY SHARE, a delete waits and then fails."""
    track = make_track(owner=artist)
    purpose = Purpose.objects.create(slug="short_lived", name="Short lived", description="")
    policy_id = PolicyVersion.objects.in_force().pk
    written = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            with transaction.atomic():
                _insert_consent(track, purpose_id=purpose.pk, policy_version_id=policy_id)
                written.set()
                release.wait(timeout=20)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert written.wait(timeout=20)
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SET LOCAL lock_timeout = '300ms'")
            cursor.execute("DELETE FROM consent_purpose WHERE id = %s", [purpose.pk])
    finally:
        release.set()
        thread.join(timeout=20)
    assert not errors, errors
    with pytest.raises(IntegrityError, match="still referenced"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM consent_purpose WHERE id = %s", [purpose.pk])
    assert Consent.objects.filter(track=track, purpose=purpose).exists()
