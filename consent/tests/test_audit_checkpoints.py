"""Signed checkpoints anchor the audit chains outside the database.

A superuser can switch the append-only triggers off and rewrite events and
chain head consistently; the chain then verifies on its own. The checkpoint
signed before the rewrite still says what the chain was, and names the first
event rewritten.
"""

from __future__ import annotations

import gzip
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from consent import checkpoints, services
from consent.audit_verify import CheckpointRefused, create_checkpoint, verify_audit_chains
from consent.audit_walk import COLUMNS, canonical_from_row, fetch_rows
from consent.chain import BODY_COLUMNS, canonical_json, event_hash
from consent.models import GENESIS_HASH, AuditEvent
from platformkit.request_meta import RequestMeta
from tracks.models import Track

pytestmark = pytest.mark.django_db

META = RequestMeta(ip="203.0.113.9", user_agent="Browser/2.0", request_id="req-cp")


def _toggle(artist, track, times: int, *, meta=META):
    for n in range(times):
        services.change_consent(
            actor=artist,
            tracks=Track.objects.filter(pk=track.pk),
            changes={"recommendation": n % 2 == 0},
            source="web",
            request_meta=meta,
        )


@pytest.fixture
def history(artist, other_artist, make_track):
    """Two artists with a few events each."""
    mine, theirs = make_track(owner=artist, title="Mine"), make_track(owner=other_artist, title="Theirs")
    _toggle(artist, mine, 4)
    _toggle(other_artist, theirs, 2, meta=None)
    return mine, theirs


def _rewrite_consistently(artist_id: int, *, seq: int) -> AuditEvent:
    """What a superuser could do: triggers off, one event's value changed, every later hash and the head recomputed."""
    events = list(AuditEvent.objects.filter(artist_id=artist_id).order_by("seq").values("id", "hash", *BODY_COLUMNS))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # no triggers, no foreign-key checks
        prev = events[seq - 2]["hash"] if seq > 1 else GENESIS_HASH
        for event in events[seq - 1 :]:
            old = event["hash"]
            if event["seq"] == seq:
                event["new_value"] = "granted" if event["new_value"] != "granted" else "withdrawn"
            new = event_hash(prev, event)
            cursor.execute(
                "UPDATE consent_auditevent SET new_value = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [event["new_value"], prev, new, event["id"]],
            )
            for table in ("consent_auditactordata", "consent_auditsubjectdata"):
                cursor.execute(f"UPDATE {table} SET event_id = %s WHERE event_id = %s", [new, old])  # noqa: S608
            prev = new
        cursor.execute("UPDATE consent_auditchainhead SET hash = %s WHERE artist_id = %s", [prev, artist_id])
    return AuditEvent.objects.get(artist_id=artist_id, seq=seq)


def test_the_fast_walk_computes_exactly_the_chains_canonical_form(history, artist):
    services.erase_personal_data(user_id=artist.pk, reason="test")  # erased parts as well as kept ones
    with transaction.atomic():
        rows = list(fetch_rows(anchors={}, artist_id=None, chunk_size=3))
    assert len(rows) == AuditEvent.objects.count() >= 6

    for row in rows:
        event = dict(zip(COLUMNS, row, strict=True))
        assert canonical_from_row(row) == canonical_json(event)
        assert event_hash(event["prev_hash"], event) == event["hash"]


def test_a_checkpoint_is_signed_and_its_files_are_never_overwritten(history, settings):
    first = create_checkpoint()
    store = checkpoints.CheckpointStore.from_settings()
    document = json.loads(store.path(first.number, "statement.json").read_text())
    statement = document["statement"]
    assert statement["chains"] == 2 and statement["events"] == AuditEvent.objects.count()
    heads = json.loads(gzip.decompress(store.path(first.number, "heads.json.gz").read_bytes()))
    assert checkpoints.heads_root(heads) == statement["merkle_root"]
    public = checkpoints.signing_key().public_key()
    public.verify(bytes.fromhex(document["signature"]), checkpoints.canonical(statement))

    with pytest.raises(FileExistsError):
        store.create(first.number, "statement.json", b"{}")
    second = create_checkpoint()
    assert second.number == first.number + 1
    assert second.statement["previous"] == first.digest
    assert second.statement["events_recorded"] == 0


def test_verification_is_incremental_from_the_last_checkpoint(history, artist, capsys):
    mine, _theirs = history
    create_checkpoint()
    _toggle(artist, mine, 3)

    incremental = verify_audit_chains()
    full = verify_audit_chains(full=True)

    assert incremental.breaks == [] and full.breaks == []
    assert incremental.incremental and incremental.report.events == 3
    assert full.report.events == AuditEvent.objects.count()
    call_command("verify_audit_log")
    assert "Anchored at signed checkpoint 1" in capsys.readouterr().out


def test_a_consistent_rewrite_before_the_checkpoint_is_found_and_its_first_event_named(history, artist, capsys):
    mine, _theirs = history
    create_checkpoint()
    _toggle(artist, mine, 2)  # after the checkpoint: its walk starts from the anchor
    rewritten = _rewrite_consistently(artist.pk, seq=2)

    with pytest.raises(CommandError, match="1 broken chain"):
        call_command("verify_audit_log", chains_only=True)
    err = capsys.readouterr().err
    assert f"artist {artist.pk}, seq 2, event id {rewritten.pk}: event rewritten or removed since checkpoint 1" in err
    assert err.count("BROKEN") == 1

    with pytest.raises(CommandError):
        call_command("verify_audit_log", chains_only=True, full=True)
    assert f"artist {artist.pk}, seq 2, event id {rewritten.pk}: event rewritten" in capsys.readouterr().err


def test_the_rewritten_chain_alone_verifies_so_only_the_checkpoint_catches_it(history, artist, settings, tmp_path):
    create_checkpoint()
    _rewrite_consistently(artist.pk, seq=1)
    assert verify_audit_chains().breaks  # anchored

    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "elsewhere"  # as if there were no checkpoint
    assert verify_audit_chains(full=True).breaks == []


def test_a_checkpoint_that_does_not_verify_is_reported_and_the_one_before_is_used(history, artist, capsys):
    create_checkpoint()
    second = create_checkpoint()
    store = checkpoints.CheckpointStore.from_settings()
    path = store.path(second.number, "statement.json")
    document = json.loads(path.read_text())
    document["statement"]["chains"] += 1  # a forged statement without the key
    path.chmod(0o644)
    path.write_text(json.dumps(document))

    good, problems = checkpoints.last_good()
    assert good.number == second.number - 1
    assert problems == [f"checkpoint {second.number}: the signature does not verify"]
    with pytest.raises(CommandError):
        call_command("verify_audit_log", chains_only=True)
    assert "CHECKPOINT: checkpoint 2: the signature does not verify" in capsys.readouterr().err


def test_no_checkpoint_vouches_for_a_broken_chain(history, artist):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE consent_auditevent SET new_value = 'granted' WHERE artist_id = %s AND seq = 2", [artist.pk]
        )

    with pytest.raises(CheckpointRefused):
        create_checkpoint()
    assert checkpoints.CheckpointStore.from_settings().numbers() == []


def test_beat_writes_checkpoints_on_its_schedule(history, settings):
    from consent.checkpoint_tasks import create_audit_checkpoint

    schedule = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert schedule == {
        "task": "consent.create_audit_checkpoint",
        "schedule": float(settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS),
    }
    assert create_audit_checkpoint.name == schedule["task"]
    assert create_audit_checkpoint.delay().get() == 1


def test_the_command_writes_a_checkpoint(history, capsys):
    call_command("create_audit_checkpoint")
    assert "Checkpoint 1 written" in capsys.readouterr().out
