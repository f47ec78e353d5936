"""Bulk consent apply against its floor, side by side in one run (issue 15 point 1).

100,000 tracks across 200 artists on one label's roster; the label may grant
recommendation. Measured on PostgreSQL, in one process, one after the other:

  * apply: a confirmed bulk edit granting recommendation on every track, from
    its items, through labels.bulk.apply_bulk_change (permission per track,
    consent rows, one chained audit event per cell, one outbox row per artist,
    progress and lease per chunk);
  * floor: a raw INSERT ... SELECT of the same number of audit rows (no hashing,
    permission, state or notices), rolled back;

and prints both times, the ratio, and the statements: in all, and per chunk
(grouped by their first words with --statements). Email delivery is not
measured: the outbox rows are written inside the apply, no task is enqueued.

It creates its own database (the audit log cannot be emptied, by design):

    .venv/bin/python benchmarks/bench_bulk_apply.py              # bench_bulk_apply, dropped afterwards
    .venv/bin/python benchmarks/bench_bulk_apply.py --profile    # also a cProfile of the apply (top 30)

Options: --artists N (200), --tracks-per-artist N (500), --rounds N (1: grant; 2: then withdraw),
--floors N (3: the floor's samples after each apply, median taken),
--db NAME, --keep, --statements (the apply's statements by kind).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import hashlib
import os
import pstats
import re
import statistics
import subprocess
import sys
import time

from bench_setup import PG, ROOT, label_roster, prepare_database

FLOOR_SQL = """
    INSERT INTO consent_auditevent (artist_id, seq, actor_id, actor_kind, source, kind, track_id,
        track_uuid, purpose_slug, old_value, new_value, request_id, created_at, chain_version,
        actor_data_digest, subject_data_digest, prev_hash, hash)
    SELECT t.owner_id, 1000000 + t.id, %s, 'label', 'bulk', 'consent_changed', t.id, t.uuid,
        'recommendation', 'not_granted', 'granted', '', now(), 2, '', md5(t.title),
        md5(t.id::text) || md5('p'), md5(t.id::text) || md5(t.uuid::text)
    FROM tracks_track t
"""


class StatementLog:
    """Counts statements and groups them by their first words (never copies the megabyte payloads)."""

    def __init__(self):
        self.n = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        kind = re.sub(r"SAVEPOINT \S+", "SAVEPOINT", " ".join(sql[:120].split())[:80])
        self.kinds[kind] += 1
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds[kind] += time.perf_counter() - start

    def reset(self) -> None:
        self.n = 0
        self.kinds.clear()
        self.seconds.clear()


def _setup(n_artists: int, per_artist: int):
    from tracks.models import Track

    artists, manager, label = label_roster(n_artists)
    Track.objects.bulk_create(
        [
            Track(
                owner=a,
                title=f"Song {a.pk}-{i}",
                isrc=f"GB{a.pk:03d}{i:07d}"[:12],
                audio_file=f"audio/bench-{a.pk}-{i}.flac",
                sha256=hashlib.sha256(f"{a.pk}-{i}".encode()).hexdigest(),
                status=Track.Status.READY,
            )
            for a in artists
            for i in range(per_artist)
        ],
        batch_size=5000,
    )
    return manager, label


def _apply_once(manager, label, granted: bool, log: StatementLog, profile: cProfile.Profile | None):
    from django.db import connection

    from labels import bulk as bulk_changes
    from labels import selectors
    from labels.models import BulkChange

    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=selectors.roster_tracks(label),
        changes={"recommendation": granted},
        filter_params={},
        selection=None,
    )
    assert bulk_changes.find_drift(bulk_change=bulk, actor=manager) == []
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    log.reset()
    commit = connection.commit
    commits = []

    def timed_commit():
        start = time.perf_counter()
        try:
            return commit()
        finally:
            commits.append(time.perf_counter() - start)

    # The deferred foreign-key checks run at each chunk's commit: timed apart from the statements.
    connection.commit = timed_commit
    with connection.execute_wrapper(log):
        if profile:
            profile.enable()
        start = time.perf_counter()
        bulk = bulk_changes.apply_bulk_change(bulk.pk)
        seconds = time.perf_counter() - start
        if profile:
            profile.disable()
    del connection.commit
    assert bulk.status == BulkChange.Status.DONE, bulk.error
    return bulk, seconds, sum(commits)


def _floor(manager) -> tuple[int, float]:
    from django.db import connection, transaction

    with transaction.atomic():
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(FLOOR_SQL, [manager.pk])
            rows = cursor.rowcount
        seconds = time.perf_counter() - start
        transaction.set_rollback(True)
    return rows, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artists", type=int, default=200)
    parser.add_argument("--tracks-per-artist", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--floors", type=int, default=3)
    parser.add_argument("--db", default="bench_bulk_apply")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--statements", action="store_true")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = prepare_database(args.db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    import notifications.services
    from consent.models import AuditEvent
    from notifications.models import Notification

    # Delivery is not what is measured: the outbox rows are written in the apply, no task is enqueued.
    notifications.services.enqueue_delivery = lambda ids, **kwargs: True

    total = args.artists * args.tracks_per_artist
    print(f"{args.artists} artists x {args.tracks_per_artist} tracks = {total:,} tracks; load {os.getloadavg()}")
    t0 = time.perf_counter()
    manager, label = _setup(args.artists, args.tracks_per_artist)
    print(f"  setup {time.perf_counter() - t0:.1f} s; chunk {settings.LABELS_BULK_CHUNK_TRACKS:,} tracks")

    log = StatementLog()
    profile = cProfile.Profile() if args.profile else None
    rows = []
    for round_no in range(args.rounds):
        granted = round_no % 2 == 0
        bulk, apply_s, commit_s = _apply_once(manager, label, granted, log, profile)
        statement_s = sum(log.seconds.values())
        events = AuditEvent.objects.filter(bulk_change=bulk).count()
        emails = Notification.objects.filter(dedupe_key__startswith="consent:").count()
        assert events == total, (events, total)
        chunks = -(-total // settings.LABELS_BULK_CHUNK_TRACKS)
        # The floor is a few seconds of one statement: on a shared machine one sample can be off by half,
        # so it is taken --floors times right after the apply and the median is the floor.
        floors = [_floor(manager) for _ in range(args.floors)]
        # The floors' rolled-back rows leave dead heap and index entries that would slow the next round's
        # apply (and not its floor, taken after it): cleared as autovacuum would.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM consent_auditevent")
        raw_rows = floors[0][0]
        floor_s = statistics.median(seconds for _, seconds in floors)
        ratio = apply_s / floor_s
        print(
            f"  round {round_no + 1} ({'grant' if granted else 'withdraw'}): apply {apply_s:.2f} s, "
            f"{log.n} statements (~{chunks} chunks), {events:,} events, {bulk.artists_notified} emails "
            f"({emails} outbox rows so far); floor {floor_s:.2f} s for {raw_rows:,} rows "
            f"(median of {', '.join(f'{seconds:.2f}' for _, seconds in floors)}); ratio {ratio:.2f}x"
        )
        print(
            f"    apply: statements {statement_s:.2f} s, commits {commit_s:.2f} s, "
            f"Python and round trips {apply_s - statement_s - commit_s:.2f} s"
        )
        rows.append((round_no + 1, granted, apply_s, log.n, floor_s, ratio))
        if args.statements:
            print("      count  seconds  statement (first words), slowest first")
            for text, seconds in log.seconds.most_common():
                print(f"      {log.kinds[text]:5d}  {seconds:7.2f}  {text}")
    print(f"  load afterwards {os.getloadavg()}")
    print("\n| round | apply | statements | floor (raw INSERT ... SELECT) | ratio |\n| --- | --- | --- | --- | --- |")
    for round_no, granted, apply_s, n, floor_s, ratio in rows:
        what = "grant" if granted else "withdraw"
        print(f"| {round_no} ({what}) | {apply_s:.2f} s | {n} | {floor_s:.2f} s | {ratio:.2f}x |")
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    connection.close()
    if not args.keep:
        subprocess.run(["dropdb", *PG, "--if-exists", args.db], check=False)


if __name__ == "__main__":
    main()
