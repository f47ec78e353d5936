"""The filtered label catalogue against a bare queryset render, side by side in one run (issue 15 point 3).

100,000 tracks across 200 artists, every artist delegated to one label; each
(track, purpose) cell is granted, withdrawn, lapsed or never set, spread
evenly (a fixed function of the track id, so runs are comparable). Measured
on PostgreSQL through django.test.Client (the whole middleware stack, session
and login), logged in as the label's manager, median of --repeat requests:

  * the catalogue filtered by "recommendation: opted in", sorted by title (--sort), at
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
  * a second, looser floor: the same rows found by the plain ORM queryset one
    would write without the summary (the label's roster, a join on the consent
    rows granting recommendation, ORDER BY, a slice at the page's offset),
    rendered by the same plain view. It pays for finding the rows as
    PostgreSQL sees fit (at 100,000 tracks: hash joins and a sort of every
    match), so its cost grows with the catalogue; the first floor's does not.

It prints each median, the ratios catalogue / floor and catalogue /
self-filtering queryset, and the statements each request ran. Goal (against
the first floor, the stricter): <= 2x and <= 12 statements.

It creates its own database and drops it afterwards:

    .venv/bin/python benchmarks/bench_catalogue.py            # bench_catalogue
    .venv/bin/python benchmarks/bench_catalogue.py --keep     # leaves it for EXPLAIN

Options: --artists N (200), --tracks-per-artist N (500), --repeat N (9), --per-page 50|500, --db NAME,
--sort title|-title|uploaded|-uploaded (title: its index order is unrelated to where the rows sit).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench_setup import PG, ROOT, StatementCounter, label_roster, prepare_database

FILTER = "state_recommendation=granted"
# The catalogue's sorts the script can measure, and the track field each sorts by (ties: the id, in the same direction).
SORT_KEYS = {"title": "title", "-title": "title", "uploaded": "created_at", "-uploaded": "created_at"}
DEEP_OFFSET = 40_000


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

    from consent.models import PolicyVersion
    from tracks.models import Track

    artists, manager, label = label_roster(n_artists)
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
        # What autovacuum leaves on a settled table: statistics, and a visibility map (index-only scans).
        cursor.execute("VACUUM ANALYZE")
    return manager, label


def _medians(client, counter, urls: list[str], repeat: int) -> list[tuple[float, int]]:
    """Median time and statements of each URL, requested in turn so that the machine's load hits all alike."""
    from django.db import connection

    for url in urls:
        client.get(url)
    times: list[list[float]] = [[] for _ in urls]
    statements = [0] * len(urls)
    for _ in range(repeat):
        for i, url in enumerate(urls):
            counter.n = 0
            with connection.execute_wrapper(counter):
                start = time.perf_counter()
                response = client.get(url)
                times[i].append(time.perf_counter() - start)
            assert response.status_code == 200, (url, response.status_code)
            statements[i] = counter.n
    return [(statistics.median(t), n) for t, n in zip(times, statements, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artists", type=int, default=200)
    parser.add_argument("--tracks-per-artist", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--per-page", type=int, default=50, choices=(50, 500))
    parser.add_argument("--sort", default="title", choices=tuple(SORT_KEYS))
    parser.add_argument("--db", default="bench_catalogue")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--setup-only", action="store_true")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = prepare_database(args.db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import django

    django.setup()
    from bench_catalogue_urls import filtering_queryset
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from consent.models import Purpose
    from labels import selectors

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.ROOT_URLCONF = "bench_catalogue_urls"

    total = args.artists * args.tracks_per_artist
    print(f"{args.artists} artists x {args.tracks_per_artist} tracks = {total:,} tracks; load {os.getloadavg()}")
    t0 = time.perf_counter()
    manager, label = _setup(args.artists, args.tracks_per_artist)
    print(f"  setup {time.perf_counter() - t0:.1f} s")
    if args.setup_only:
        connection.close()
        return

    purposes = list(Purpose.objects.all())
    flt = selectors.parse_filter({"state_recommendation": "granted"}, purposes)
    # The matching rows in the catalogue's order, computed outside the timing (the floor gets them for free).
    ordered = list(
        selectors.apply_filter(selectors.roster_tracks(label), flt, purposes)
        .order_by(*selectors.SORTS[args.sort])
        .values_list("pk", SORT_KEYS[args.sort])
    )
    matching = len(ordered)
    per = args.per_page
    deep = min(DEEP_OFFSET, matching - per)
    cursor = selectors.encode_cursor(args.sort, (ordered[deep - 1][1], ordered[deep - 1][0]))
    base = f"/labels/{label.slug}/?{FILTER}&sort={args.sort}&per_page={per}"
    cases = [
        ("page 1", base, 0),
        # Past the last page (500 rows a page) the catalogue shows the last page: the floor shows the same rows.
        ("?page=100", f"{base}&page=100", min(99, (matching - 1) // per) * per),
        (f"keyset page at row {deep:,}", f"{base}&after={cursor}&page={deep // per + 1}", deep),
    ]
    client = Client()
    client.force_login(manager)
    counter = StatementCounter()
    print(f"  {matching:,} tracks match; {per} rows per page; median of {args.repeat}, catalogue and floor alternating")
    results = []
    for name, url, offset in cases:
        ids = [pk for pk, _title in ordered[offset : offset + per]]
        # The floor must show the rows the catalogue shows: checked through the same selector the view calls.
        query = dict(pair.split("=", 1) for pair in url.split("?", 1)[1].split("&"))
        shown = selectors.catalogue_page(
            label,
            flt,
            purposes,
            sort=args.sort,
            per_page=per,
            page=query.get("page"),
            after=query.get("after"),
            roster=selectors.roster_choices(label),
        )
        assert [t.pk for t, _cells in shown.rows] == ids, name
        order = ",".join(selectors.SORTS[args.sort])
        floor_url = f"/bench/floor?order={order}&ids=" + ",".join(map(str, ids))
        # The second floor finds the rows itself; it must find these rows too (checked outside the timing).
        found = filtering_queryset(label.slug, "recommendation", order.split(","))[offset : offset + per]
        assert [t.pk for t in found] == ids, name
        filtered_url = (
            f"/bench/floor-filtered?label={label.slug}&purpose=recommendation&order={order}"
            f"&offset={offset}&per_page={per}"
        )
        (page_s, page_q), (floor_s, floor_q), (filtered_s, filtered_q) = _medians(
            client, counter, [url, floor_url, filtered_url], args.repeat
        )
        results.append((name, page_s, page_q, floor_s, floor_q, filtered_s, filtered_q))
        print(
            f"  {name}: catalogue {page_s * 1000:.1f} ms ({page_q} statements), "
            f"floor {floor_s * 1000:.1f} ms ({floor_q} statements), ratio {page_s / floor_s:.2f}x; "
            f"self-filtering queryset {filtered_s * 1000:.1f} ms ({filtered_q} statements), "
            f"ratio {page_s / filtered_s:.2f}x"
        )
    print(f"  load afterwards {os.getloadavg()}")
    print(
        "\n| page | catalogue | statements | floor (bare queryset render) | statements | ratio "
        "| self-filtering queryset render | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, page_s, page_q, floor_s, floor_q, filtered_s, _filtered_q in results:
        print(
            f"| {name} | {page_s * 1000:.1f} ms | {page_q} | {floor_s * 1000:.1f} ms | {floor_q} "
            f"| {page_s / floor_s:.2f}x | {filtered_s * 1000:.1f} ms | {page_s / filtered_s:.2f}x |"
        )
    connection.close()
    if not args.keep:
        subprocess.run(["dropdb", *PG, "--if-exists", args.db], check=False)


if __name__ == "__main__":
    main()
