"""The catalogue's consent summary equals the consent table after every kind of write; keyset pages; query counts."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection

from conftest import service_missing
from consent import services as consent_services
from consent.models import Consent, OwnerGrantCount, Purpose, TrackConsentSummary
from consent.summary import bit, iter_summary_mismatches
from labels import bulk as bulk_changes
from labels.tests.conftest import REC_SCOPES, preview
from tracks.models import Track


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: the catalogue summary is kept by its triggers; set DATABASE_URL")


def _masks(track) -> tuple[int, int, int]:
    row = TrackConsentSummary.objects.get(track_id=track.pk)
    return row.granted, row.withdrawn, row.lapsed


def _bit(slug: str) -> int:
    return bit(Purpose.objects.get(slug=slug))


def _clean() -> None:
    assert list(iter_summary_mismatches()) == []


@pytest.fixture
def roster(make_roster):
    return make_roster("Roster", artists=2, tracks_each=4)


def test_single_writes_grant_withdraw_and_lapse_show_in_the_summary(roster, set_state):
    _label, _manager, (ada, _bo) = roster
    track = Track.objects.filter(owner=ada).first()
    assert _masks(track) == (0, 0, 0)
    set_state(ada, [track], "recommendation", True)
    assert _masks(track) == (_bit("recommendation"), 0, 0)
    set_state(ada, [track], "fraud_detection", True)
    set_state(ada, [track], "recommendation", False)
    assert _masks(track) == (_bit("fraud_detection"), _bit("recommendation"), 0)
    # The system withdrawing (a policy lapse) is "lapsed", not "withdrawn".
    consent_services.change_consent(
        actor=None, tracks=Track.objects.filter(pk=track.pk), changes={"fraud_detection": False}, source="system"
    )
    assert _masks(track) == (0, _bit("recommendation"), _bit("fraud_detection"))
    # The title is copied too.
    Track.objects.filter(pk=track.pk).update(title="Renamed")
    assert TrackConsentSummary.objects.get(track_id=track.pk).title == "Renamed"
    _clean()


def test_statements_that_move_delete_and_mix_consent_rows_keep_the_masks_exact(roster, set_state):
    """The trigger moves masks by what a statement changed: rows moved to another track or purpose, several
    rows of one track in one statement, lapses and deletions all end where a recomputation ends."""
    _label, _manager, (ada, bo) = roster
    first, second, third = Track.objects.filter(owner=ada).order_by("pk")[:3]
    other = Track.objects.filter(owner=bo).first()
    for slug in ("recommendation", "fraud_detection"):
        set_state(ada, [first, second], slug, True)
    set_state(ada, [third], "recommendation", False)
    rec, fraud = (Purpose.objects.get(slug=s).pk for s in ("recommendation", "fraud_detection"))
    gen = Purpose.objects.get(slug="generative_training").pk
    with connection.cursor() as cursor:
        # One statement: a grant becomes a lapse, another a person's withdrawal, on the same track.
        cursor.execute(
            """UPDATE consent_consent SET granted = false,
                   changed_by_kind = CASE WHEN purpose_id = %s THEN 'system' ELSE 'artist' END
               WHERE track_id = %s""",
            [rec, first.pk],
        )
        assert _masks(first) == (0, 1 << _bit_of(fraud), 1 << _bit_of(rec))
        # A row moved to another purpose, and one moved to another artist's track.
        cursor.execute(
            "UPDATE consent_consent SET purpose_id = %s WHERE track_id = %s AND purpose_id = %s",
            [gen, second.pk, fraud],
        )
        cursor.execute("UPDATE consent_consent SET track_id = %s WHERE track_id = %s", [other.pk, third.pk])
        _clean()
        # Deleted rows take their bits with them; a track's other rows keep theirs.
        cursor.execute("DELETE FROM consent_consent WHERE track_id = %s AND purpose_id = %s", [second.pk, gen])
        assert _masks(second) == (1 << _bit_of(rec), 0, 0)
        cursor.execute("DELETE FROM consent_consent WHERE track_id IN (%s, %s)", [first.pk, other.pk])
    assert _masks(first) == (0, 0, 0) and _masks(third) == (0, 0, 0) and _masks(other) == (0, 0, 0)
    _clean()


def _bit_of(purpose_id: int) -> int:
    mask_bit = Purpose.objects.get(pk=purpose_id).mask_bit
    assert mask_bit is not None  # given by a trigger on PostgreSQL
    return mask_bit


def test_a_bulk_apply_keeps_summary_and_counts_equal_to_the_consent_table(roster, settings):
    settings.LABELS_BULK_CHUNK_TRACKS = 3  # several chunks, each one set-based statement per step
    label, manager, artists = roster
    bulk = preview(manager, label, {"recommendation": True})
    bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    rec = _bit("recommendation")
    assert set(TrackConsentSummary.objects.filter(owner__in=artists).values_list("granted", flat=True)) == {rec}
    assert dict(OwnerGrantCount.objects.filter(granted=rec).values_list("owner_id", "tracks")) == {
        a.pk: 4 for a in artists
    }
    undo = preview(manager, label, {"recommendation": False})
    bulk_changes.confirm_bulk_change(actor=manager, bulk_change=undo)
    assert set(TrackConsentSummary.objects.filter(owner__in=artists).values_list("granted", flat=True)) == {0}
    assert set(OwnerGrantCount.objects.filter(owner__in=artists).values_list("tracks", flat=True)) <= {0}
    _clean()


def test_a_csv_import_keeps_the_summary(client, roster, django_capture_on_commit_callbacks):
    label, manager, (ada, _bo) = roster
    tracks = list(Track.objects.filter(owner=ada).order_by("pk"))
    body = "track_id,recommendation\n" + "".join(f"{t.uuid},granted\n" for t in tracks[:2])
    client.force_login(manager)
    response = client.post(
        f"/labels/{label.slug}/import/",
        {"file": SimpleUploadedFile("import.csv", body.encode(), content_type="text/csv")},
    )
    bulk = response.context["bulk"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    assert [_masks(t)[0] for t in tracks] == [_bit("recommendation")] * 2 + [0, 0]
    _clean()


def test_upload_defaults_are_in_the_summary_of_new_tracks(make_user, make_tracks):
    artist = make_user()
    consent_services.set_upload_defaults(actor=artist, artist=artist, choices={"recommendation": True})
    tracks = make_tracks(2, owner=artist)
    consent_services.apply_upload_consent(actor=artist, tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]))
    assert {_masks(t) for t in tracks} == {(_bit("recommendation"), 0, 0)}
    _clean()


def test_track_deletion_and_account_erasure_remove_the_rows(roster, set_state):
    from accounts.services import delete_account
    from tracks.services import delete_track

    _label, _manager, (ada, bo) = roster
    ada_tracks = list(Track.objects.filter(owner=ada))
    set_state(ada, ada_tracks, "recommendation", True)
    delete_track(track=ada_tracks[0], actor=ada)
    assert not TrackConsentSummary.objects.filter(track_id=ada_tracks[0].pk).exists()
    assert OwnerGrantCount.objects.get(owner=ada, granted=_bit("recommendation")).tracks == 3
    bo_tracks = list(Track.objects.filter(owner=bo))
    set_state(bo, bo_tracks, "fraud_detection", True)
    delete_account(user=bo, actor=None)
    assert not TrackConsentSummary.objects.filter(track_id__in=[t.pk for t in bo_tracks]).exists()
    assert set(OwnerGrantCount.objects.filter(owner_id=bo.pk).values_list("tracks", flat=True)) <= {0}
    _clean()


def test_verify_audit_log_reports_a_tampered_summary(roster, set_state):
    _label, _manager, (ada, _bo) = roster
    track = Track.objects.filter(owner=ada).first()
    set_state(ada, [track], "recommendation", True)
    call_command("verify_audit_log", stdout=io.StringIO(), stderr=io.StringIO())
    # Behind the triggers' back: grant fraud detection in the summary only.
    TrackConsentSummary.objects.filter(track_id=track.pk).update(
        granted=_bit("recommendation") | _bit("fraud_detection")
    )
    stderr = io.StringIO()
    with pytest.raises(CommandError, match="1 state mismatch"):
        call_command("verify_audit_log", stdout=io.StringIO(), stderr=stderr)
    assert (
        f"MISMATCH: track {track.pk}: the consent table says granted: recommendation; withdrawn: none; lapsed: none, "
        "the catalogue summary says granted: recommendation, fraud_detection; withdrawn: none; lapsed: none"
    ) in stderr.getvalue()


@pytest.mark.parametrize("per_page", [50, 500])
def test_catalogue_page_runs_the_same_few_queries_at_any_size_and_depth(
    client, label_setup, make_user, make_tracks, set_state, per_page, django_assert_max_num_queries
):
    label, manager, delegate = label_setup
    for _ in range(3):
        artist = make_user()
        tracks = make_tracks(400, owner=artist)
        set_state(artist, tracks, "recommendation", True)
        delegate(artist, REC_SCOPES)
    client.force_login(manager)
    url = f"/labels/{label.slug}/"
    query = {"per_page": per_page, "state_recommendation": "granted", "sort": "title"}
    client.get(url, query)
    counts = []
    for extra in ({}, {"page": 2}):
        with django_assert_max_num_queries(12) as captured:
            response = client.get(url, {**query, **extra})
        counts.append(len(captured.captured_queries))
        assert response.status_code == 200 and response.context["total"] == 1200
    next_link = unescape(re.search(r'href="([^"]+)" rel="next"', response.content.decode()).group(1))
    with django_assert_max_num_queries(12) as captured:
        response = client.get(url + next_link)
    counts.append(len(captured.captured_queries))
    assert response.context["page"].number == 3
    assert len(set(counts)) == 1, counts


def test_keyset_pages_return_every_row_once_while_rows_are_inserted(client, label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup
    artist = make_user()
    originals = make_tracks(120, owner=artist)
    for i, track in enumerate(originals):
        track.title = f"Song {i * 2:03d}"
    Track.objects.bulk_update(originals, ["title"])
    delegate(artist, REC_SCOPES)
    client.force_login(manager)
    url = f"/labels/{label.slug}/"
    page_url = f"{url}?sort=title&per_page=50"
    seen: list[int] = []
    for _ in range(10):
        response = client.get(page_url)
        seen += [t.pk for t, _ in response.context["rows"]]
        # Between two pages, new tracks arrive before and after the position reached.
        for title in ("Song 000a", "Song 999"):
            Track.objects.filter(pk=make_tracks(1, owner=artist)[0].pk).update(title=title)
        match = re.search(r'href="([^"]+)" rel="next"', response.content.decode())
        if match is None:
            break
        assert "after=" in match.group(1)
        page_url = url + unescape(match.group(1))
    original_ids = {t.pk for t in originals}
    assert [pk for pk in seen if pk in original_ids] == [t.pk for t in originals]
    assert len(seen) == len(set(seen))
    # An old ?page=N link still works, and a damaged cursor falls back to the first page, never a 500.
    assert client.get(url, {"sort": "title", "page": 2}).context["page"].number == 2
    response = client.get(url, {"sort": "title", "after": "not-a-cursor"})
    assert response.status_code == 200 and response.context["rows"][0][0].pk == originals[0].pk


def _link(response, rel: str) -> str | None:
    match = re.search(rf'href="([^"]+)" rel="{rel}"', response.content.decode())
    return unescape(match.group(1)) if match else None


@pytest.mark.parametrize("sort", ["title", "-title", "-uploaded", "artist"])
def test_previous_links_carry_a_before_cursor_and_show_the_rows_just_before_the_page(
    client, label_setup, make_user, make_tracks, set_state, sort
):
    from labels.selectors import SORTS

    label, manager, delegate = label_setup
    artist = make_user()
    tracks = make_tracks(160, owner=artist)
    for i, track in enumerate(tracks):
        track.title = f"Song {(i * 37) % 160 * 2:03d}"
    Track.objects.bulk_update(tracks, ["title"])
    # A state filter too: the cursor pages the filtered list (130 of the 160 tracks).
    set_state(artist, tracks[:130], "recommendation", True)
    delegate(artist, REC_SCOPES)
    client.force_login(manager)
    url = f"/labels/{label.slug}/"
    listed = Track.objects.filter(owner=artist, pk__in=[t.pk for t in tracks[:130]]).order_by(*SORTS[sort])
    expected = [t.pk for t in listed]

    def shown(response) -> list[int]:
        return [t.pk for t, _ in response.context["rows"]]

    response = client.get(url, {"sort": sort, "per_page": 50, "state_recommendation": "granted"})
    forward = [shown(response)]
    forward_links = []
    for _ in range(2):
        forward_links.append(_link(response, "next"))
        response = client.get(url + forward_links[-1])
        forward.append(shown(response))
    assert forward == [expected[:50], expected[50:100], expected[100:]]
    assert response.context["page"].number == 3

    # Back from page 3: a cursor on its first row, the page number only for display.
    previous = _link(response, "prev")
    assert "before=" in previous and "page=2" in previous
    response = client.get(url + previous)
    assert shown(response) == expected[50:100]
    assert response.context["page"].number == 2
    # From page 2 the way back is the first page itself, without a cursor.
    previous = _link(response, "prev")
    assert "before=" not in previous and "page=1" in previous
    response = client.get(url + previous)
    assert shown(response) == expected[:50] and _link(response, "prev") is None

    # A before= page is the 50 rows just before that row, whatever arrived since: a new track sorting into
    # page 2's range (same title and date as one there; by artist, the same artist sorts it last) is on it.
    third = client.get(url + forward_links[1])
    previous = _link(third, "prev")
    newcomer = make_tracks(1, owner=artist)[0]
    middle = Track.objects.get(pk=expected[75])
    Track.objects.filter(pk=newcomer.pk).update(title=middle.title, created_at=middle.created_at)
    set_state(artist, [newcomer], "recommendation", True)
    now = [t.pk for t in Track.objects.filter(pk__in=[*expected, newcomer.pk]).order_by(*SORTS[sort])]
    response = client.get(url + previous)
    start = now.index(expected[100])
    assert shown(response) == now[start - 50 : start]
    assert (newcomer.pk in shown(response)) == (sort != "artist")


def test_a_damaged_before_cursor_is_ignored_for_the_page_number(client, label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup
    artist = make_user()
    make_tracks(60, owner=artist)
    delegate(artist, REC_SCOPES)
    client.force_login(manager)
    url = f"/labels/{label.slug}/"
    second = [t.pk for t, _ in client.get(url, {"sort": "title", "page": 2}).context["rows"]]
    assert len(second) == 10
    # Not base64, not JSON, the wrong shape, a boolean id, and a cursor made for another sort.
    other = re.search(r"after=([^&\"]+)", client.get(url, {"sort": "-uploaded"}).content.decode()).group(1)
    for cursor in ("not-a-cursor", "W10", "WyJ0aXRsZSIsIFsiYSIsIHRydWVdXQ", other):
        response = client.get(url, {"sort": "title", "before": cursor, "page": 2})
        assert response.status_code == 200
        assert [t.pk for t, _ in response.context["rows"]] == second, cursor


@pytest.mark.parametrize(
    "states",
    [
        {"recommendation": "granted"},
        {"recommendation": "granted", "fraud_detection": "not_granted"},
        {"recommendation": "granted", "fraud_detection": "granted"},
        {"fraud_detection": "not_granted"},
        {},
    ],
)
@pytest.mark.parametrize("one_artist", [False, True])
def test_the_total_and_coverage_bars_count_what_the_filter_picks(
    client, label_setup, make_user, make_tracks, set_state, states, one_artist
):
    """The roster's query brings each artist's grant counts: their sums are the tracks the filter picks."""
    label, manager, delegate = label_setup
    purposes = list(Purpose.objects.all())
    artists = []
    for n in range(3):
        artist = make_user()
        tracks = make_tracks(12, owner=artist)
        set_state(artist, tracks[: 3 + n * 3], "recommendation", True)
        set_state(artist, tracks[2 + n : 9], "fraud_detection", True)
        set_state(artist, tracks[7:8], "recommendation", False)
        delegate(artist, REC_SCOPES)
        artists.append(artist)
    outsider = make_user()  # not on the roster: never counted
    set_state(outsider, make_tracks(5, owner=outsider), "recommendation", True)
    query = {f"state_{slug}": state for slug, state in states.items()}
    owners = [a.pk for a in artists]
    if one_artist:
        query["artist"] = artists[1].pk
        owners = [artists[1].pk]

    def granted_ids(slug):
        return set(Consent.objects.filter(purpose__slug=slug, granted=True).values_list("track_id", flat=True))

    picked = set(Track.objects.filter(owner_id__in=owners).values_list("pk", flat=True))
    for slug, state in states.items():
        picked = picked & granted_ids(slug) if state == "granted" else picked - granted_ids(slug)
    client.force_login(manager)
    response = client.get(f"/labels/{label.slug}/", query)
    assert response.context["total"] == len(picked)
    bars = {bar["purpose"].slug: bar["granted"] for bar in response.context["bars"]}
    assert bars == {p.slug: len(picked & granted_ids(p.slug)) for p in purposes}


def test_the_live_trigger_sql_is_what_the_migration_installed():
    import importlib

    from consent import summary_sql

    installed = importlib.import_module("consent.migrations.0012_track_consent_summary")
    assert installed.PG_INSTALL == summary_sql.PG_INSTALL_0012
    assert installed.PG_UNINSTALL == summary_sql.PG_UNINSTALL
    # 0017 replaced the consent trigger's function (it had recomputed the masks from every consent row).
    replaced = importlib.import_module("consent.migrations.0017_summary_moved_by_the_statement")
    assert replaced.FROM_CONSENT == summary_sql.FROM_CONSENT
    assert replaced.FROM_CONSENT_RECOMPUTED == summary_sql.FROM_CONSENT_RECOMPUTED


def test_a_new_purpose_takes_the_lowest_free_bit_and_is_summarised(make_user, make_tracks):
    taken = set(Purpose.objects.values_list("mask_bit", flat=True))
    purpose = Purpose.objects.create(slug="lyrics_display", name="Lyrics", description="Show the lyrics.")
    purpose.refresh_from_db()
    assert purpose.mask_bit == min(set(range(63)) - taken)
    artist = make_user()
    track = make_tracks(1, owner=artist)[0]
    consent_services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"lyrics_display": True}, source="web"
    )
    assert _masks(track) == (1 << purpose.mask_bit, 0, 0)
    _clean()
