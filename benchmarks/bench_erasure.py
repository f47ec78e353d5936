"""Erasure benchmark: a save with personal data, "download my data" and account deletion at 10,000 tracks.

Runs against the database in DATABASE_URL and creates its own artist there
(audit events cannot be deleted, so use a throwaway database). Stored files
and the filesystem broker go to a temporary folder:

    createdb -h 127.0.0.1 -U postgres bench_erasure
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_erasure \\
        .venv/bin/python benchmarks/bench_erasure.py

Options: --tracks N (default 10000).
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

_scratch = tempfile.mkdtemp(prefix="bench-erasure-")
os.environ.setdefault("PORTAL_VAR_DIR", _scratch)
os.environ.setdefault("MEDIA_ROOT", str(Path(_scratch) / "media"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts import services as account_services  # noqa: E402
from accounts.export import build_archive  # noqa: E402
from accounts.models import User  # noqa: E402
from consent import selectors, services  # noqa: E402
from platformkit.request_meta import RequestMeta  # noqa: E402
from tracks.models import Track  # noqa: E402

META = RequestMeta(ip="203.0.113.7", user_agent="Mozilla/5.0 (X11; Linux x86_64) Bench/1.0", request_id="b")


class Counter:
    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def timed(label: str, fn):
    counter = Counter()
    with connection.execute_wrapper(counter):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:.2f} s, {counter.n} statements")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=10_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}, {args.tracks:,} tracks")

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
            for i in range(args.tracks)
        ],
        batch_size=5000,
    )
    for slug in ("recommendation", "fraud_detection"):
        timed(
            f"save granting {slug} on every track, with request data (actor + subject rows)",
            lambda slug=slug: services.change_consent(
                actor=artist,
                tracks=Track.objects.filter(owner=artist),
                changes={slug: True},
                source="web",
                request_meta=META,
            ),
        )
    built = timed("build the data export (zip in default storage)", lambda: build_archive(artist))
    print(f"  archive: {built.size_bytes / 1e6:.1f} MB, {len(built.files)} files")
    report = timed(
        "delete the account (withdraw, delete tracks, close chain, erase personal data)",
        lambda: account_services.delete_account(user=artist, actor=None),
    )
    print(f"  {report.summary.get('tracks_deleted')} tracks deleted")
    start = time.perf_counter()
    verified = selectors.verify_chains(artist_id=report.user_id)
    elapsed = time.perf_counter() - start
    assert verified.ok, verified.breaks
    print(
        f"verify the deleted artist's chain: {verified.events:,} events in {elapsed:.2f} s "
        f"({verified.events / elapsed:,.0f} events/s), {verified.erased:,} with personal data erased"
    )


if __name__ == "__main__":
    main()
