from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from consent.models import AuditEvent
from labels import services
from labels.models import BulkChange
from labels.tests.conftest import REC_SCOPES, granted
from tracks.models import Track


@pytest.fixture
def catalogue(label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup
    ada = make_user(display_name="Ada")
    outsider = make_user(display_name="Outsider")
    tracks = make_tracks(4, owner=ada, isrc_prefix="GBAAA")
    outside = make_tracks(1, owner=outsider, isrc_prefix="USZZZ")
    delegate(ada, REC_SCOPES)
    return label, manager, ada, tracks, outside[0]


def _post(client, label, body: bytes, name="import.csv", **extra):
    return client.post(
        f"/labels/{label.slug}/import/", {"file": SimpleUploadedFile(name, body, content_type="text/csv"), **extra}
    )


def test_import_page_names_a_column_for_every_purpose(client, catalogue, purpose_slugs):
    label, manager, *_ = catalogue
    client.force_login(manager)
    page = client.get(f"/labels/{label.slug}/import/").content.decode()
    assert all(f"<code>{slug}</code>" in page for slug in purpose_slugs)


def test_import_reports_every_kind_of_bad_row_and_applies_nothing(client, catalogue):
    label, manager, _, tracks, outside = catalogue
    t0, t1, t2, t3 = tracks
    body = "\n".join(
        [
            "track_id,isrc,recommendation,fraud_detection",
            f"{uuid.uuid4()},,granted,",  # 2 unknown track
            ",XX0000000000,granted,",  # 3 unknown ISRC
            f"{outside.uuid},,granted,",  # 4 another artist's track (not in the roster)
            f",{outside.isrc},granted,",  # 5 the same, by ISRC
            f"{t0.uuid},,,granted",  # 6 outside the delegation (fraud is withdraw only)
            f"{t1.uuid},,maybe,",  # 7 bad value
            f"{t2.uuid},,granted,",  # 8 fine
            f",{t2.isrc},not_granted,",  # 9 duplicate of line 8
            "not-a-uuid,,granted,",  # 10 not a track id
            ",,granted,",  # 11 no id at all
        ]
    ).encode()
    client.force_login(manager)
    response = _post(client, label, body)
    assert response.status_code == 200
    errors = dict(response.context["errors"])
    assert errors[2].startswith("Unknown track")
    assert errors[3] == "Unknown ISRC XX0000000000."
    # Another artist's track reads exactly like one that does not exist.
    assert errors[4] == f"Unknown track {outside.uuid}."
    assert errors[5] == f"Unknown ISRC {outside.isrc}."
    assert errors[6].startswith("Outside the delegation")
    assert errors[7].startswith("Bad value")
    assert 8 not in errors
    assert errors[9].startswith("Duplicate row") and "line 8" in errors[9]
    assert "not a track id" in errors[10]
    assert errors[11] == "No track_id or ISRC on this row."
    # a file with bad rows is not applicable
    assert response.context["bulk"] is None
    assert not BulkChange.objects.exists()
    assert not granted(t2, "recommendation") and not granted(t3, "recommendation")


def test_import_of_a_clean_file_applies_as_one_bulk_change(
    client, catalogue, django_capture_on_commit_callbacks, mailoutbox
):
    label, manager, ada, tracks, _ = catalogue
    body = "track_id,isrc,recommendation\n" + "".join(f"{t.uuid},,granted\n" for t in tracks[:2])
    body += f",{tracks[2].isrc},yes\n,{tracks[3].isrc},\n"
    client.force_login(manager)
    response = _post(client, label, body.encode("utf-8-sig"))
    report = response.context["report"]
    assert report.ok and report.will_change == 3
    bulk = response.context["bulk"]
    assert bulk.kind == BulkChange.Kind.CSV and bulk.status == BulkChange.Status.DRAFT
    assert not granted(tracks[0], "recommendation")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    bulk.refresh_from_db()
    assert bulk.applied == 3
    assert [granted(t, "recommendation") for t in tracks] == [True, True, True, False]
    assert set(AuditEvent.objects.filter(bulk_change=bulk).values_list("source", flat=True)) == {"csv"}
    assert [m.to for m in mailoutbox] == [[ada.email]]


@pytest.mark.parametrize(
    "body, message",
    [
        ("track_id,recommendation\n".encode("utf-16"), "not UTF-8"),
        (b"track_id,recommendation\nabc,\xff\xfe\n", "not UTF-8"),
        (b"", "empty"),
        (b"title,recommendation\nx,granted\n", "track_id or isrc"),
        (b"track_id,colour\nx,blue\n", "No purpose column"),
        (b"track_id,recommendation\n\x00\n", "NUL"),
    ],
    ids=["utf16", "latin1-bytes", "empty", "no-id-column", "no-purpose-column", "nul"],
)
def test_unreadable_files_get_a_clear_message_not_a_500(client, catalogue, body, message):
    label, manager, *_ = catalogue
    client.force_login(manager)
    response = _post(client, label, body)
    assert response.status_code == 400
    assert message in response.context["problem"]


def test_too_big_and_too_many_rows_are_refused_with_the_limit(client, catalogue, settings):
    label, manager, *_ = catalogue
    client.force_login(manager)
    settings.LABELS_CSV_MAX_BYTES = 50
    response = _post(client, label, b"track_id,recommendation\n" + b"x" * 100)
    assert response.status_code == 400 and "the limit is 50 bytes" in response.context["problem"]
    settings.LABELS_CSV_MAX_BYTES = 10_000
    settings.LABELS_CSV_MAX_ROWS = 2
    body = b"track_id,recommendation\n" + b"".join(f"{uuid.uuid4()},granted\n".encode() for _ in range(3))
    response = _post(client, label, body)
    assert response.status_code == 400 and "more than 2 rows" in response.context["problem"]


def test_export_streams_the_catalogue_and_neutralises_formulas(client, catalogue, set_state, purpose_slugs):
    label, manager, ada, tracks, outside = catalogue
    Track.objects.filter(pk=tracks[0].pk).update(title='=HYPERLINK("http://evil")')
    Track.objects.filter(pk=tracks[1].pk).update(title="+1+2")
    Track.objects.filter(pk=tracks[2].pk).update(title="-3")
    Track.objects.filter(pk=tracks[3].pk).update(title="@SUM(A1)")
    type(ada).objects.filter(pk=ada.pk).update(display_name="=cmd|' /C calc'!A0")
    set_state(ada, tracks[:1], "recommendation", True)
    client.force_login(manager)
    response = client.get(f"/labels/{label.slug}/export.csv")
    assert response.status_code == 200 and response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["track_id", "isrc", "title", "artist", *purpose_slugs]
    assert len(rows) == 5
    assert str(outside.uuid) not in {r[0] for r in rows}
    titles = {r[2] for r in rows[1:]}
    assert titles == {'\'=HYPERLINK("http://evil")', "'+1+2", "'-3", "'@SUM(A1)"}
    assert {r[3] for r in rows[1:]} == {"'=cmd|' /C calc'!A0"}
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id[str(tracks[0].uuid)][4:] == ["granted"] + ["not_granted"] * (len(purpose_slugs) - 1)


def test_export_then_import_round_trips(client, catalogue, purpose_slugs):
    label, manager, _, tracks, _ = catalogue
    client.force_login(manager)
    exported = b"".join(client.get(f"/labels/{label.slug}/export.csv").streaming_content).decode()
    assert purpose_slugs[0] == "recommendation"
    nothing = ",".join(["not_granted"] * len(purpose_slugs))
    recommended = ",".join(["granted"] + ["not_granted"] * (len(purpose_slugs) - 1))
    edited = exported.replace(nothing, recommended, 2)
    response = _post(client, label, edited.encode())
    report = response.context["report"]
    assert report.ok, report.errors
    assert report.will_change == 2 and report.already == 4 * len(purpose_slugs) - 2
    client.post(f"/labels/{label.slug}/bulk/{response.context['bulk'].pk}/confirm/")
    assert sum(granted(t, "recommendation") for t in tracks) == 2


def test_import_rows_of_an_artist_who_left_since_the_dry_run_are_refused(client, catalogue):
    label, manager, ada, tracks, _ = catalogue
    client.force_login(manager)
    response = _post(client, label, f"track_id,recommendation\n{tracks[0].uuid},granted\n".encode())
    bulk = response.context["bulk"]
    services.end_delegation(artist=ada, delegation=ada.delegations.get())
    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/", follow=True)
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.STALE
    assert bulk.applied == 0 and not granted(tracks[0], "recommendation")
    page = response.content.decode()
    assert "1 track in the preview is no longer in your roster (the artist ended the delegation)." in page
    assert "Check the file again" in page
