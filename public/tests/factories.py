"""Building test state: consent changes as the artist makes them, and many granted public tracks set-based.

Used by the public/ tests and by benchmarks/bench_public.py.
"""

from __future__ import annotations


def set_third_party(artist, track, granted: bool) -> None:
    """Change the answer as the artist does, through consent.services (confirmed, as the page asks)."""
    from consent import services
    from consent.models import AuditEvent, Purpose
    from tracks.models import Track

    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(pk=track.pk),
        changes={Purpose.THIRD_PARTY_AI_TRAINING: granted},
        source=AuditEvent.Source.WEB,
        confirmed_purposes=[Purpose.THIRD_PARTY_AI_TRAINING],
    )


def copy_granted_public_track(first, count: int) -> None:
    """`count` more tracks of `first`'s artist, public and granted like `first`, in three statements.

    Writing 100,000 grants through consent.services, with their audit events, is
    what the consent and label tests and benchmarks measure; here only the
    resulting state matters, so rows are copied from one real, fully made track.
    """
    from consent.models import Consent
    from public.models import PublicTrack
    from tracks.models import Track

    clone_rows(
        Track,
        template_pk=first.pk,
        count=count,
        replace={
            "uuid": {"postgresql": "gen_random_uuid()", "sqlite": "lower(hex(randomblob(16)))"},
            "sha256": {
                "postgresql": "md5(random()::text) || md5(random()::text)",
                "sqlite": "lower(hex(randomblob(32)))",
            },
            "title": {"postgresql": "'Track ' || s.n", "sqlite": "'Track ' || s.n"},
        },
    )
    for model, template in ((PublicTrack, first.pk), (Consent, Consent.objects.get(track=first).pk)):
        copy_rows_for_tracks(model, template_pk=template, owner_id=first.owner_id, except_track_id=first.pk)


def clone_rows(model, *, template_pk: int, count: int, replace: dict[str, dict[str, str]]) -> None:
    """INSERT ... SELECT `count` copies of one row, in one statement; `replace` gives per-vendor SQL
    expressions (over the series number `n`) for the columns that must differ.

    Copying every other column from a real row keeps this working when a model gains a field.
    """
    from django.db import connection

    vendor = connection.vendor
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key or f.column in replace]
    quote = connection.ops.quote_name
    selected = ", ".join(replace[c][vendor] if c in replace else f"t.{quote(c)}" for c in columns)
    table = quote(model._meta.db_table)
    pk = quote(model._meta.pk.column)
    if vendor == "postgresql":
        series = "generate_series(1, %s) AS s(n)"
    else:
        series = "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s) AS s"
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 -- names from model metadata
        f"SELECT {selected} FROM {table} t, {series} WHERE t.{pk} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, template_pk])


def copy_rows_for_tracks(model, *, template_pk: int, owner_id: int, except_track_id: int) -> None:
    """One row per other track of the owner, each a copy of the template row but for its track."""
    from django.db import connection

    from tracks.models import Track

    quote = connection.ops.quote_name
    tracks = quote(Track._meta.db_table)
    columns = [f.column for f in model._meta.concrete_fields if not (f.primary_key and f.column != "track_id")]
    selected = ", ".join("x.id" if c == "track_id" else f"t.{quote(c)}" for c in columns)
    table = quote(model._meta.db_table)
    pk = quote(model._meta.pk.column)
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 -- names from model metadata
        f"SELECT {selected} FROM {table} t, {tracks} x WHERE t.{pk} = %s AND x.owner_id = %s AND x.id <> %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [template_pk, owner_id, except_track_id])
