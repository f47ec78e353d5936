"""The delegation matrix: every scope x purpose x direction, through the catalogue form,
the bulk-edit service and a CSV import alike."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labels import bulk as bulk_changes
from labels import csvio
from labels.models import BulkChange
from labels.tests.conftest import granted, preview

SCOPES = ["none", "withdraw", "grant_withdraw"]
PURPOSES = ["recommendation", "fraud_detection", "generative_training"]
CASES = [(scope, slug, g) for scope in SCOPES for slug in PURPOSES for g in (True, False)]


def _allowed(scope: str, grant: bool) -> bool:
    return scope == "grant_withdraw" if grant else scope in ("withdraw", "grant_withdraw")


def _case_id(case):
    scope, slug, g = case
    return f"{scope}-{slug}-{'grant' if g else 'withdraw'}"


@pytest.fixture
def one_track(artist, label_setup, make_tracks, set_state):
    def setup(scope: str, slug: str, grant: bool):
        label, manager, delegate = label_setup
        [track] = make_tracks(1, owner=artist)
        # Start from the opposite state so the action would change something.
        if not grant:
            set_state(artist, [track], slug, True)
        delegate(artist, {**dict.fromkeys(PURPOSES, "none"), slug: scope})
        return label, manager, track

    return setup


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matrix_through_the_catalogue_form(client, one_track, case):
    scope, slug, grant = case
    label, manager, track = one_track(scope, slug, grant)
    client.force_login(manager)
    response = client.post(
        f"/labels/{label.slug}/bulk/preview/",
        {
            "track": [str(track.uuid)],
            "purpose": slug,
            "action": "grant" if grant else "withdraw",
            f"confirm_{slug}": "1",
        },
    )
    assert response.status_code == 302
    bulk = BulkChange.objects.get()
    assert (bulk.will_change, bulk.refused) == ((1, 0) if _allowed(scope, grant) else (0, 1))
    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    assert response.status_code == 302
    assert granted(track, slug) == (grant if _allowed(scope, grant) else not grant)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matrix_through_the_bulk_edit_service(one_track, case):
    scope, slug, grant = case
    label, manager, track = one_track(scope, slug, grant)
    bulk = preview(manager, label, {slug: grant}, confirmed=[slug])
    bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.DONE
    assert bulk.applied == (1 if _allowed(scope, grant) else 0)
    assert granted(track, slug) == (grant if _allowed(scope, grant) else not grant)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matrix_through_csv_import(client, one_track, case):
    scope, slug, grant = case
    label, manager, track = one_track(scope, slug, grant)
    client.force_login(manager)
    body = f"track_id,{slug}\n{track.uuid},{'granted' if grant else 'not_granted'}\n".encode()
    response = client.post(
        f"/labels/{label.slug}/import/",
        {"file": SimpleUploadedFile("c.csv", body, content_type="text/csv"), "confirm_generative": "on"},
    )
    text = response.content.decode()
    if not _allowed(scope, grant):
        assert "Outside the delegation" in text
        assert not BulkChange.objects.exists()
        assert granted(track, slug) == (not grant)
        return
    bulk = BulkChange.objects.get()
    client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    assert granted(track, slug) == grant


def test_csv_generative_grant_needs_the_confirmation_box(artist, label_setup, make_tracks):
    label, manager, delegate = label_setup
    [track] = make_tracks(1, owner=artist)
    delegate(artist, {**dict.fromkeys(PURPOSES, "none"), "generative_training": "grant_withdraw"})
    upload = io.BytesIO(f"track_id,generative_training\n{track.uuid},granted\n".encode())
    upload.size = len(upload.getvalue())
    report = csvio.check_import(actor=manager, label=label, upload=upload, confirmed=set())
    assert "needs the confirmation box" in report.errors[0][1]
