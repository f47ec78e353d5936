"""Ending a delegation while a bulk change runs: it is either before or after, never during."""

from __future__ import annotations

import pytest
from django.db import connection

from conftest import service_missing
from consent.models import AuditEvent
from consent.selectors import verify_chains
from consent.tests.test_concurrency import run_concurrently
from labels import bulk as bulk_changes
from labels import services
from labels.models import BulkChange, Delegation
from labels.tests.conftest import REC_SCOPES, preview

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: row locks (SELECT ... FOR UPDATE) exist only there; set DATABASE_URL")


@pytest.mark.parametrize("attempt", range(3))
def test_no_label_change_is_written_after_the_artist_ended_the_delegation(attempt, label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup
    ada = make_user()
    make_tracks(300, owner=ada)
    delegation = delegate(ada, REC_SCOPES)
    bulk = preview(manager, label, {"recommendation": True})
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)

    run_concurrently(
        lambda: bulk_changes.apply_bulk_change(bulk.pk),
        lambda: services.end_delegation(artist=ada, delegation=Delegation.objects.get(pk=delegation.pk)),
    )

    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.DONE
    ended_seq = AuditEvent.objects.get(artist=ada, kind="delegation_changed", new_value="ended").seq
    label_seqs = list(AuditEvent.objects.filter(artist=ada, bulk_change=bulk).values_list("seq", flat=True))
    # all or nothing, and only before the end
    assert len(label_seqs) in (0, 300)
    assert all(seq < ended_seq for seq in label_seqs)
    assert verify_chains().ok
