"""Audit chain verification against its plain-Python floor, in one run.

On the database in DATABASE_URL (a throwaway PostgreSQL database):

- floor: fetch the same events (the same SELECT the verifier runs, server-side
  cursor), build each one's canonical bytes and SHA-256 them, nothing else;
- full verification (`verify_audit_chains(full=True)`: links, hashes, the
  erasable parts' HMACs, heads, the checkpoint's anchors), and the previous
  verifier (`consent.selectors.verify_chains`) for comparison;
- incremental verification after a signed checkpoint and one more save.

Each is run --repeat times, alternating, and the ratios are taken per round.

    createdb -h 127.0.0.1 -U postgres bench_verify
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_verify .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_verify .venv/bin/python benchmarks/bench_verify.py

Options: --artists 4, --tracks 5000 (per artist), --saves 4 (per artist), --repeat 3.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from accounts.models import User  # noqa: E402
from consent import selectors, services  # noqa: E402
from consent.audit_verify import create_checkpoint, verify_audit_chains  # noqa: E402
from consent.audit_walk import V2, fetch_rows  # noqa: E402
from consent.models import AuditEvent  # noqa: E402
from platformkit.request_meta import RequestMeta  # noqa: E402
from tracks.models import Track  # noqa: E402

META = RequestMeta(ip="198.51.100.20", user_agent="BenchBrowser/1.0", request_id="bench")


def make_artist(tracks: int) -> User:
    tag = uuid.uuid4().hex[:10]
    artist = User.objects.create_user(email=f"verify-{tag}@example.test", display_name=f"Verify {tag}")
    Track.objects.bulk_create(
        [
            Track(
                owner=artist,
                title=f"Verify track {i}",
                audio_file=f"audio/verify-{tag}-{i}.flac",
                sha256=hashlib.sha256(f"{tag}-{i}".encode()).hexdigest(),
                status=Track.Status.READY,
            )
            for i in range(tracks)
        ],
        batch_size=5000,
    )
    return artist


def save(artist: User, value: bool) -> None:
    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(owner=artist),
        changes={"recommendation": value},
        source="web",
        request_meta=META,
    )


def floor() -> tuple[int, float]:
    """Fetch + canonical bytes + SHA-256 of every event, and nothing else."""
    started = time.perf_counter()
    count = 0
    with transaction.atomic():
        for row in fetch_rows(anchors={}, artist_id=None, chunk_size=5000):
            hashlib.sha256((row[1] + V2(row)).encode()).hexdigest()
            count += 1
    return count, time.perf_counter() - started


def timed(function) -> tuple[int, float]:
    started = time.perf_counter()
    report = function()
    elapsed = time.perf_counter() - started
    assert report.ok, report.breaks[:3]
    return report.events, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artists", type=int, default=4)
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--saves", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("needs PostgreSQL in DATABASE_URL")
    settings.AUDIT_CHECKPOINT_DIR = Path(tempfile.mkdtemp(prefix="bench-checkpoints-"))
    settings.AUDIT_CHECKPOINT_KEY_FILE = settings.AUDIT_CHECKPOINT_DIR.parent / f"{uuid.uuid4().hex}.pem"
    settings.AUDIT_CHECKPOINT_CREATE_KEY = True

    artists = [make_artist(args.tracks) for _ in range(args.artists)]
    for n in range(args.saves):
        for artist in artists:
            save(artist, n % 2 == 0)
    events = AuditEvent.objects.count()
    print(f"{events:,} events in {AuditEvent.objects.values('artist_id').distinct().count()} chains")
    print(f"load average before: {os.getloadavg()}")
    for round_number in range(1, args.repeat + 1):
        base_n, base_s = floor()
        full_n, full_s = timed(lambda: verify_audit_chains(full=True).report)
        old_n, old_s = timed(lambda: selectors.verify_chains())
        print(
            f"round {round_number}: floor {base_n / base_s:,.0f} events/s; full verification "
            f"{full_n / full_s:,.0f} events/s, ratio {(full_n / full_s) / (base_n / base_s):.2f}; "
            f"previous verifier {old_n / old_s:,.0f} events/s, ratio {(old_n / old_s) / (base_n / base_s):.2f}"
        )
    checkpoint = create_checkpoint()
    save(artists[0], args.saves % 2 == 0)  # the next value in the sequence: a change on every track
    for round_number in range(1, args.repeat + 1):
        inc = verify_audit_chains()
        assert inc.incremental and not inc.breaks
        inc_n, inc_s = timed(lambda: verify_audit_chains().report)
        full_n, full_s = timed(lambda: verify_audit_chains(full=True).report)
        print(
            f"incremental round {round_number}, after checkpoint {checkpoint.number} and one save: "
            f"{inc_n:,} events checked in {inc_s:.2f} s; full: {full_n:,} events in {full_s:.2f} s"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
