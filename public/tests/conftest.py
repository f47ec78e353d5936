"""Fixtures for the public/ tests: a C2PA test certificate and public tracks made from real audio files."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

FIXTURES = Path(__file__).resolve().parents[2] / "tracks" / "tests" / "fixtures"


@pytest.fixture(scope="session")
def c2pa_credentials(tmp_path_factory):
    """A local test CA and signing certificate, made once per test run (as the quick start does)."""
    from public import devcert

    return devcert.generate(tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(autouse=True)
def _c2pa_settings(settings, c2pa_credentials):
    settings.PUBLIC_C2PA_CERT_CHAIN = str(c2pa_credentials.chain_path)
    settings.PUBLIC_C2PA_PRIVATE_KEY = str(c2pa_credentials.key_path)
    settings.SITE_URL = "http://testserver"


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


@pytest.fixture
def change_answer(django_capture_on_commit_callbacks):
    """Grant or withdraw, running the on-commit work (the rebuild task, eagerly) as a commit would."""

    def change(track, granted: bool, *, run_on_commit: bool = True):
        with django_capture_on_commit_callbacks(execute=run_on_commit):
            set_third_party(track.owner, track, granted)

    return change


@pytest.fixture
def make_public_track(artist, django_capture_on_commit_callbacks):
    """Upload a fixture file through the real service, process it, optionally grant, then make it public."""
    from public import services
    from tests.utils import wait_until
    from tracks import services as track_services
    from tracks.models import Track

    def make(name: str = "good.mp3", *, owner=None, granted: bool = False, public: bool = True) -> Track:
        owner = owner or artist
        upload = SimpleUploadedFile(name, (FIXTURES / name).read_bytes())
        with django_capture_on_commit_callbacks(execute=True):
            track = track_services.create_track(owner=owner, upload=upload)
        # Processed in-process, or by the test's real worker.
        wait_until(lambda: Track.objects.get(pk=track.pk).is_settled, timeout=60, message="the track to be processed")
        track.refresh_from_db()
        assert track.status == Track.Status.READY, track.failure_reason
        if granted:
            with django_capture_on_commit_callbacks(execute=True):
                set_third_party(owner, track, True)
        if public:
            with django_capture_on_commit_callbacks(execute=True):
                services.set_track_public(actor=owner, track=track, public=True)
        return track

    return make


def _clone_rows(model, *, template_pk: int, count: int, replace: dict[str, dict[str, str]]) -> None:
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


@pytest.fixture
def many_granted_public_tracks(artist, make_track_row):
    """`count` public tracks whose artist granted AI training by others, set-based.

    One real track is made public and granted through the services; the rest
    are copies of its rows made by INSERT ... SELECT (a handful of statements
    whatever the count): writing 100,000 grants through consent.services, with
    their audit events, is what the consent and label tests and benchmarks
    measure; here only the resulting state matters.
    """
    from consent.models import Consent
    from public.models import PublicTrack
    from public.services import set_track_public
    from tracks.models import Track

    def make(count: int) -> Track:
        first = make_track_row(owner=artist)
        set_third_party(artist, first, True)
        set_track_public(actor=artist, track=first, public=True)
        random_uuid = {"postgresql": "gen_random_uuid()", "sqlite": "lower(hex(randomblob(16)))"}
        random_sha = {
            "postgresql": "md5(random()::text) || md5(random()::text)",
            "sqlite": "lower(hex(randomblob(32)))",
        }
        _clone_rows(
            Track,
            template_pk=first.pk,
            count=count - 1,
            replace={
                "uuid": random_uuid,
                "sha256": random_sha,
                "title": {"postgresql": "'Track ' || s.n", "sqlite": "'Track ' || s.n"},
            },
        )
        for model, template in ((PublicTrack, first.pk), (Consent, Consent.objects.get(track=first).pk)):
            _copy_for_tracks(model, template_pk=template, owner_id=artist.pk, except_track_id=first.pk)
        return first

    return make


def _copy_for_tracks(model, *, template_pk: int, owner_id: int, except_track_id: int) -> None:
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


@pytest.fixture
def make_track_row(db):
    """A ready Track row without a stored file (for tests of the site-wide files only)."""
    import hashlib
    import itertools

    from tracks.models import Track

    numbers = itertools.count(1)

    def make(*, owner, **fields) -> Track:
        n = next(numbers)
        fields.setdefault("status", Track.Status.READY)
        fields.setdefault("container", "MPEG audio")
        return Track.objects.create(
            owner=owner,
            title=f"Row {n}",
            audio_file=f"audio/row-{n}.mp3",
            sha256=hashlib.sha256(f"row-{n}-{owner.pk}".encode()).hexdigest(),
            **fields,
        )

    return make
