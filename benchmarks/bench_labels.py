"""Labels benchmark: 100,000 tracks across 200 artists on one label's roster.

Measures, on PostgreSQL, in one run:
  * a bulk edit of one purpose on every track (preview, then apply through
    consent.services), wall time and statement count, and the ratio to a raw
    INSERT ... SELECT of the same number of audit rows (rolled back);
  * the catalogue page at 50 and 500 rows per page;
  * a CSV import of 100,000 rows: dry run, then apply.

It creates its own database (the audit log cannot be emptied, by design):

    .venv/bin/python benchmarks/bench_labels.py            # creates bench_labels
    .venv/bin/python benchmarks/bench_labels.py --keep     # leaves it afterwards

Options: --artists N (200), --tracks-per-artist N (500), --db NAME.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import subprocess
import sys
import time

from bench_setup import PG, ROOT, StatementCounter, label_roster, prepare_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artists", type=int, default=200)
    parser.add_argument("--tracks-per-artist", type=int, default=500)
    parser.add_argument("--db", default="bench_labels")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = prepare_database(args.db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.test import Client

    import notifications.services
    from consent.models import AuditEvent
    from labels import bulk as bulk_changes
    from labels import csvio, selectors
    from labels.models import BulkChange
    from tracks.models import Track

    # Email delivery is not what is measured: the outbox rows are written (in
    # the measured transaction) but no Celery task is enqueued for them.
    notifications.services.enqueue_delivery = lambda ids: True
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.LABELS_CSV_MAX_BYTES = 100 * 1024 * 1024

    total_tracks = args.artists * args.tracks_per_artist
    print(f"Setting up {args.artists} artists x {args.tracks_per_artist} tracks = {total_tracks:,} tracks ...")
    t0 = time.perf_counter()
    artists, manager, label = label_roster(args.artists)
    for a in artists:
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
                for i in range(args.tracks_per_artist)
            ],
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  setup {time.perf_counter() - t0:.1f} s")
    results: list[tuple[str, str]] = []

    # --- Bulk edit -----------------------------------------------------------------------
    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        start = time.perf_counter()
        bulk = bulk_changes.preview_bulk_edit(
            actor=manager,
            label=label,
            tracks=selectors.roster_tracks(label),
            changes={"recommendation": True},
            filter_params={},
            selection=None,
        )
        preview_s = time.perf_counter() - start
        preview_q = counter.n
        counter.n = 0
        start = time.perf_counter()
        drift = bulk_changes.find_drift(bulk_change=bulk, actor=manager)
        check_s = time.perf_counter() - start
        check_q = counter.n
        assert drift == [], drift
        BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
        counter.n = 0
        start = time.perf_counter()
        bulk = bulk_changes.apply_bulk_change(bulk.pk)
        apply_s = time.perf_counter() - start
        apply_q = counter.n
    assert bulk.status == BulkChange.Status.DONE, bulk.error
    assert bulk.applied == total_tracks, bulk.applied
    events = AuditEvent.objects.filter(bulk_change=bulk).count()
    print(
        f"  bulk edit: preview {preview_s:.2f} s / {preview_q} statements; "
        f"confirm check {check_s:.2f} s / {check_q} statements; apply {apply_s:.2f} s / {apply_q} statements"
    )

    # The floor: the same number of audit rows written by one INSERT ... SELECT,
    # without hashing, permission, state or notices. Rolled back.
    with transaction.atomic():
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO consent_auditevent (artist_id, seq, actor_id, actor_kind, source, kind, track_id,
                    track_uuid, purpose_slug, old_value, new_value, request_id, created_at, chain_version,
                    actor_data_digest, subject_data_digest, prev_hash, hash)
                SELECT t.owner_id, 1000000 + t.id, %s, 'label', 'bulk', 'consent_changed', t.id, t.uuid,
                    'recommendation', 'not_granted', 'granted', '', now(), 2, '', md5(t.title),
                    md5(t.id::text) || md5('p'), md5(t.id::text) || md5(t.uuid::text)
                FROM tracks_track t
                """,
                [manager.pk],
            )
            raw_rows = cursor.rowcount
        raw_s = time.perf_counter() - start
        transaction.set_rollback(True)
    print(f"  raw INSERT ... SELECT of {raw_rows:,} audit rows: {raw_s:.2f} s; ratio {apply_s / raw_s:.1f}x")
    results += [
        ("Bulk edit, preview (every cell stored, INSERT ... SELECT)", f"{preview_s:.2f} s, {preview_q} statements"),
        ("Bulk edit, confirm check (does the preview still hold?)", f"{check_s:.2f} s, {check_q} statements"),
        (
            f"Bulk edit, apply ({events:,} audit events, {bulk.artists_notified} emails queued)",
            f"{apply_s:.2f} s, {apply_q} statements",
        ),
        (f"Raw INSERT ... SELECT of {raw_rows:,} audit rows (floor)", f"{raw_s:.2f} s, 1 statement"),
        ("Ratio apply / raw insert", f"{apply_s / raw_s:.1f}x"),
    ]

    # --- Catalogue page ------------------------------------------------------------------
    client = Client()
    client.force_login(manager)
    for per_page in (50, 500):
        url = f"/labels/{label.slug}/?per_page={per_page}"
        client.get(url)
        times = []
        for _ in range(5):
            counter.n = 0
            with connection.execute_wrapper(counter):
                start = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - start)
            assert response.status_code == 200
        filtered = []
        for _ in range(5):
            start = time.perf_counter()
            client.get(url + "&state_recommendation=granted&sort=title&page=100")
            filtered.append(time.perf_counter() - start)
        line = f"{statistics.median(times) * 1000:.0f} ms ({counter.n} statements)"
        line += f"; filtered by state, sorted by title, page 100: {statistics.median(filtered) * 1000:.0f} ms"
        print(f"  catalogue at {per_page} rows: {line}")
        results.append((f"Catalogue page, {per_page} rows (median of 5)", line))

    # --- CSV -----------------------------------------------------------------------------
    purposes = list(__import__("consent.models", fromlist=["Purpose"]).Purpose.objects.all())
    start = time.perf_counter()
    exported = "".join(csvio.export_rows(selectors.roster_tracks(label), purposes))
    export_s = time.perf_counter() - start
    # Withdraw recommendation everywhere, by file.
    body = exported.replace(",granted,not_granted,not_granted", ",not_granted,not_granted,not_granted").encode()
    upload = io.BytesIO(body)
    upload.size = len(body)
    counter.n = 0
    with connection.execute_wrapper(counter):
        start = time.perf_counter()
        report = csvio.check_import(actor=manager, label=label, upload=upload, confirmed=set())
        dry_s = time.perf_counter() - start
        dry_q = counter.n
    assert report.ok and report.will_change == total_tracks, (report.errors[:3], report.will_change)
    draft = csvio.draft_import(actor=manager, label=label, report=report, filename="bench.csv", confirmed=set())
    BulkChange.objects.filter(pk=draft.pk).update(status=BulkChange.Status.QUEUED)
    counter.n = 0
    with connection.execute_wrapper(counter):
        start = time.perf_counter()
        applied = bulk_changes.apply_bulk_change(draft.pk)
        csv_apply_s = time.perf_counter() - start
        csv_apply_q = counter.n
    assert applied.status == BulkChange.Status.DONE and applied.applied == total_tracks, applied.error
    print(f"  CSV: export {export_s:.2f} s ({len(body) / 1e6:.1f} MB); dry run {dry_s:.2f} s / {dry_q} statements;")
    print(f"       apply {csv_apply_s:.2f} s / {csv_apply_q} statements")
    results += [
        (f"CSV export, {total_tracks:,} rows ({len(body) / 1e6:.1f} MB)", f"{export_s:.2f} s"),
        (f"CSV import dry run, {report.rows:,} rows", f"{dry_s:.2f} s, {dry_q} statements"),
        (f"CSV import apply, {applied.applied:,} changes", f"{csv_apply_s:.2f} s, {csv_apply_q} statements"),
    ]

    print("\n| measurement | result |\n| --- | --- |")
    for name, value in results:
        print(f"| {name} | {value} |")
    connection.close()
    if not args.keep:
        subprocess.run(["dropdb", *PG, "--if-exists", args.db], check=False)


if __name__ == "__main__":
    main()
