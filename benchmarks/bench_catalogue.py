"""The filtered label catalogue against a bare queryset render, side by side in one run (issue 15 point 3).

100,000 tracks across 200 artists, every artist delegated to one label; each
(track, purpose) cell is granted, withdrawn, lapsed or never set, spread
evenly (a fixed function of the track id, so runs are comparable). Measured
on PostgreSQL through django.test.Client (the whole middleware stack, session
and login), logged in as the label's manager, median of --repeat requests:

  * the catalogue filtered by "recommendation: opted in", sorted by title, at
    page 1, at ?page=100 (the link people have), and at a deep keyset page
    (the cursor of the row 40,000 rows into the filtered list);
  * the floor for each: the SAME rows (the same track ids, in the same order)
    fetched by a bare queryset, ``Track.objects.filter(pk__in=ids)
    .select_related("owner").order_by("title", "id")``, and rendered by a plain
    view through the same middleware and login into a page that extends the
    same base template, one table row per track with the same columns the
    catalogue shows for a track (title, ISRC, artist, status, upload date).
    The ids are computed before the timing, so the floor does no filtering,
    counting, sorting of the whole roster or consent lookup at all: it is what
    showing those rows costs when somebody else has already found them.
    The catalogue additionally shows the total, the coverage bars, the filter
    form and each row's consent cells; that work is what the ratio measures.

It prints each median, the ratio catalogue / floor and the statements each
request ran. Goal: <= 2x and <= 12 statements.

It creates its own database and drops it afterwards:

    .venv/bin/python benchmarks/bench_catalogue.py            # bench_catalogue
    .venv/bin/python benchmarks/bench_catalogue.py --keep     # leaves it for EXPLAIN

Options: --artists N (200), --tracks-per-artist N (500), --repeat N (9), --per-page 50|500, --db NAME.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = ["-h", "127.0.0.1", "-U", "postgres"]
FILTER = "state_recommendation=granted&sort=title"
DEEP_OFFSET = 40_000


def _prepare_database(name: str) -> str:
    subprocess.run(["dropdb", *PG, "--if-exists", name], check=True)
    subprocess.run(["createdb", *PG, name], check=True)
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


class Counter:
    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


# Each cell's state, from (track id * 7 + purpose id) % 10: 4 granted, 2 withdrawn, 1 lapsed, 3 never.
CONSENT_SQL = """
    INSERT INTO consent_consent (track_id, purpose_id, granted, changed_at, changed_by_id, changed_by_kind,
        policy_version_id)
    SELECT t.id, p.id, (t.id * 7 + p.id) %% 10 < 4, t.created_at + interval '1 day',
        CASE WHEN (t.id * 7 + p.id) %% 10 = 6 THEN NULL ELSE t.owner_id END,
        CASE WHEN (t.id * 7 + p.id) %% 10 = 6 THEN 'system' ELSE 'artist' END, %s
    FROM tracks_track t CROSS JOIN consent_purpose p
    WHERE (t.id * 7 + p.id) %% 10 < 7
"""

WORDS = ("amber", "blue", "cold", "dawn", "echo", "fire", "glass", "harbor", "iron", "june", "kite", "low")


def _setup(n_artists: int, per_artist: int):
    import hashlib

    from django.db import connection

    from accounts.models import User
    from consent.models import PolicyVersion
    from labels.models import Delegation, Label, LabelMembership
    from tracks.models import Track

    artists = User.objects.bulk_create(
        [User(email=f"artist{i}@bench.test", display_name=f"Artist {i:03d}", password="!") for i in range(n_artists)]
    )
    manager = User.objects.create_user(email="manager@bench.test", display_name="Manager")
    label = Label.objects.create(name="Bench Records", slug="bench-records")
    LabelMembership.objects.create(label=label, user=manager, role="owner")
    scopes = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}
    Delegation.objects.bulk_create(
        [Delegation(artist=a, label=label, status=Delegation.Status.ACTIVE, scopes=scopes) for a in artists]
    )
    n = len(WORDS)
    Track.objects.bulk_create(
        [
            Track(
                owner=a,
                # Titles in no relation to the artist or the upload order, so a title sort is a real sort.
                title=f"{WORDS[(i * 5 + k) % n].title()} {WORDS[(i * 7 + k * 3) % n]} {(i * 7919 + k) % 100_000:05d}",
                isrc=f"GB{k:03d}{i:07d}"[:12],
                audio_file=f"audio/bench-{k}-{i}.flac",
                sha256=hashlib.sha256(f"{k}-{i}".encode()).hexdigest(),
                status=Track.Status.READY,
            )
            for k, a in enumerate(artists)
            for i in range(per_artist)
        ],
        batch_size=5000,
    )
    policy = PolicyVersion.objects.in_force()
    assert policy is not None
    with connection.cursor() as cursor:
        cursor.execute(CONSENT_SQL, [policy.pk])
        cursor.execute("ANALYZE")
    return manager, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artists", type=int, default=200)
    parser.add_argument("--tracks-per-artist", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--db", default="bench_catalogue")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--setup-only", action="store_true")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = _prepare_database(args.db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    total = args.artists * args.tracks_per_artist
    print(f"{args.artists} artists x {args.tracks_per_artist} tracks = {total:,} tracks; load {os.getloadavg()}")
    t0 = time.perf_counter()
    manager, label = _setup(args.artists, args.tracks_per_artist)
    print(f"  setup {time.perf_counter() - t0:.1f} s")
    if args.setup_only:
        connection.close()
        return


if __name__ == "__main__":
    main()
