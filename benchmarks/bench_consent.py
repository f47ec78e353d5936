"""Consent benchmark: one save on 10,000 tracks, and verify_audit_log throughput.

Runs against the database in DATABASE_URL and creates its own artist and
tracks there (audit events cannot be deleted, so use a throwaway database):

    createdb -h 127.0.0.1 -U postgres bench_consent
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_consent \\
        .venv/bin/python benchmarks/bench_consent.py

Options: --tracks N (default 10000), --events N (default 100000).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from consent import selectors, services  # noqa: E402
from consent.models import AuditEvent  # noqa: E402
from tracks.models import Track  # noqa: E402


def make_artist(count: int) -> User:
    tag = uuid.uuid4().hex[:10]
    artist = User.objects.create_user(email=f"bench-{tag}@example.test", display_name=f"Bench {tag}")
    Track.objects.bulk_create(
        [
            Track(
                owner=artist,
                title=f"Bench track {i}",
                audio_file=f"audio/bench-{tag}-{i}.flac",
                sha256=hashlib.sha256(f"{tag}-{i}".encode()).hexdigest(),
                status=Track.Status.READY,
            )
            for i in range(count)
        ],
        batch_size=5000,
    )
    return artist


def timed_save(artist: User, changes: dict[str, bool]) -> tuple[float, int, int]:
    # A counting wrapper, not CaptureQueriesContext: that one copies every SQL
    # text (megabytes of JSON here) and would be part of what is measured.
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        start = time.perf_counter()
        result = services.change_consent(
            actor=artist, tracks=Track.objects.filter(owner=artist), changes=changes, source="web"
        )
        elapsed = time.perf_counter() - start
    return elapsed, statements, result.event_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    if args.tracks < 1 or args.events < args.tracks:
        parser.error("--tracks must be positive and --events at least --tracks.")

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")

    artist = make_artist(args.tracks)
    grant = timed_save(artist, {"recommendation": True})
    print(f"save 1 (INSERT path): {args.tracks} tracks, {grant[2]} events, {grant[1]} queries, {grant[0]:.3f} s")
    withdraw = timed_save(artist, {"recommendation": False})
    print(
        f"save 2 (UPDATE path): {args.tracks} tracks, {withdraw[2]} events, {withdraw[1]} queries, {withdraw[0]:.3f} s"
    )
    noop = timed_save(artist, {"recommendation": False})
    print(f"save 3 (no change):   {args.tracks} tracks, {noop[2]} events, {noop[1]} queries, {noop[0]:.3f} s")

    # Fill the chain up to --events with alternating saves.
    value = True
    while AuditEvent.objects.filter(artist=artist).count() < args.events:
        timed_save(artist, {"fraud_detection": value})
        value = not value
    events = AuditEvent.objects.filter(artist=artist).count()

    start = time.perf_counter()
    report = selectors.verify_chains(artist_id=artist.pk)
    elapsed = time.perf_counter() - start
    assert report.ok, report.breaks
    print(f"verify_audit_log: {report.events} events in {elapsed:.2f} s = {report.events / elapsed:,.0f} events/s")
    assert report.events == events

    start = time.perf_counter()
    mismatches = list(selectors.iter_state_mismatches(artist_id=artist.pk))
    elapsed = time.perf_counter() - start
    assert mismatches == [], mismatches[:5]
    print(f"state check (replay {events} events against {args.tracks * 2} consent rows): {elapsed:.2f} s")


if __name__ == "__main__":
    main()
