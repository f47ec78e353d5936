"""Moving the label models into labels (migrations accounts 0004-0005, consent 0010-0011, labels 0002) keeps every row.

The database is migrated back to the state before the move (the last migrations
of main before it), filled through the historical models of that state, then
migrated forward; every row, every foreign key and the many-to-many rows must
read back the same through the moved models, with no table created or dropped.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE_MOVE = [
    ("accounts", "0003_account_deletion_and_data_export"),
    ("consent", "0009_auditevent_commit_order"),
    ("labels", "0001_artist_invitations"),
]
# Right after the move: later migrations (consent 0012's catalogue summary) create tables of their own.
AFTER_MOVE = [
    ("accounts", "0005_label_models_move_out"),
    ("consent", "0011_bulk_change_models_move_out"),
    ("labels", "0002_label_models_move_in"),
]
MOVED_TABLES = {
    "accounts_label",
    "accounts_labelmembership",
    "accounts_labelinvitation",
    "accounts_delegation",
    "consent_bulkchange",
    "consent_bulkchangeitem",
    "consent_consentproposal",
    "consent_consentproposal_tracks",
}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _leaf_nodes():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _fill(apps) -> dict:
    """One of each moved model, linked the way the portal links them, through the models as they were."""
    User = apps.get_model("accounts", "User")
    Label = apps.get_model("accounts", "Label")
    LabelMembership = apps.get_model("accounts", "LabelMembership")
    LabelInvitation = apps.get_model("accounts", "LabelInvitation")
    Delegation = apps.get_model("accounts", "Delegation")
    BulkChange = apps.get_model("consent", "BulkChange")
    BulkChangeItem = apps.get_model("consent", "BulkChangeItem")
    ConsentProposal = apps.get_model("consent", "ConsentProposal")
    AuditEvent = apps.get_model("consent", "AuditEvent")
    Purpose = apps.get_model("consent", "Purpose")
    Track = apps.get_model("tracks", "Track")
    ArtistInvitation = apps.get_model("labels", "ArtistInvitation")

    artist = User.objects.create(email="artist@example.com", display_name="Ada")
    manager = User.objects.create(email="manager@example.com")
    purpose = Purpose.objects.get(slug="recommendation")
    track = Track.objects.create(owner=artist, title="Song", audio_file="audio/a.mp3", sha256="a" * 64)
    label = Label.objects.create(name="Indie Label", slug="indie-label")
    membership = LabelMembership.objects.create(label=label, user=manager, role="owner")
    manager_invitation = LabelInvitation.objects.create(
        label=label, email="new@example.com", token="t" * 32, invited_by=manager
    )
    delegation = Delegation.objects.create(
        artist=artist, label=label, status="active", scopes={"recommendation": "grant_withdraw"}, created_by=manager
    )
    artist_invitation = ArtistInvitation.objects.create(
        label=label, email="artist@example.com", token="u" * 32, invited_by=manager, delegation=delegation
    )
    bulk = BulkChange.objects.create(label=label, created_by=manager, kind="edit", changes={"recommendation": True})
    undo = BulkChange.objects.create(label=label, created_by=manager, kind="undo", undo_of=bulk)
    item = BulkChangeItem.objects.create(
        bulk_change=bulk, artist=artist, track=track, purpose=purpose, shown_granted=False, new_granted=True,
        action="change",
    )  # fmt: skip
    proposal = ConsentProposal.objects.create(label=label, artist=artist, proposed_by=manager, purpose=purpose)
    proposal.tracks.add(track)
    event = AuditEvent.objects.create(
        artist=artist, seq=1, actor=manager, actor_kind="label", source="bulk", kind="consent_changed",
        track=track, purpose=purpose, label=label, bulk_change=bulk, created_at=timezone.now(), chain_version=2,
        prev_hash="0" * 64, hash="f" * 64,
    )  # fmt: skip
    return {
        "artist": artist.pk, "manager": manager.pk, "track": track.pk, "purpose": purpose.pk, "label": label.pk,
        "membership": membership.pk, "manager_invitation": manager_invitation.pk, "delegation": delegation.pk,
        "artist_invitation": artist_invitation.pk, "bulk": bulk.pk, "undo": undo.pk, "item": item.pk,
        "proposal": proposal.pk, "event": event.pk,
    }  # fmt: skip


def _tables() -> set[str]:
    return set(connection.introspection.table_names())


@pytest.mark.django_db(transaction=True)
def test_moving_the_label_models_keeps_every_row_and_foreign_key():
    leaves = _leaf_nodes()
    try:
        old_apps = _migrate(BEFORE_MOVE)
        ids = _fill(old_apps)
        tables_before = _tables()

        _migrate(AFTER_MOVE)
        assert _tables() == tables_before
        _migrate(leaves)
        assert tables_before >= MOVED_TABLES

        from consent.models import AuditEvent
        from labels.models import (
            ArtistInvitation,
            BulkChange,
            BulkChangeItem,
            ConsentProposal,
            Delegation,
            Label,
            LabelInvitation,
            LabelMembership,
        )

        label = Label.objects.get()
        assert (label.pk, label.name, label.slug) == (ids["label"], "Indie Label", "indie-label")
        membership = LabelMembership.objects.get()
        assert (membership.pk, membership.label_id, membership.user_id, membership.role) == (
            ids["membership"], ids["label"], ids["manager"], "owner",
        )  # fmt: skip
        invitation = LabelInvitation.objects.get()
        assert (invitation.pk, invitation.label_id, invitation.invited_by_id) == (
            ids["manager_invitation"], ids["label"], ids["manager"],
        )  # fmt: skip
        delegation = Delegation.objects.active().get()
        assert (delegation.pk, delegation.artist_id, delegation.label_id, delegation.created_by_id) == (
            ids["delegation"], ids["artist"], ids["label"], ids["manager"],
        )  # fmt: skip
        assert delegation.scope_for("recommendation") == Delegation.Scope.GRANT_WITHDRAW
        artist_invitation = ArtistInvitation.objects.get()
        assert (artist_invitation.label_id, artist_invitation.delegation_id) == (ids["label"], ids["delegation"])
        bulk = BulkChange.objects.get(pk=ids["bulk"])
        assert (bulk.label_id, bulk.created_by_id) == (ids["label"], ids["manager"])
        assert bulk.changes == {"recommendation": True}
        assert BulkChange.objects.get(pk=ids["undo"]).undo_of_id == ids["bulk"]
        assert bulk.undone_by.pk == ids["undo"]
        item = BulkChangeItem.objects.get()
        assert (item.bulk_change_id, item.artist_id, item.track_id, item.purpose_id, item.new_granted) == (
            ids["bulk"], ids["artist"], ids["track"], ids["purpose"], True,
        )  # fmt: skip
        assert list(bulk.items.all()) == [item]
        proposal = ConsentProposal.objects.get()
        assert (proposal.pk, proposal.label_id, proposal.artist_id) == (ids["proposal"], ids["label"], ids["artist"])
        assert list(proposal.tracks.values_list("pk", flat=True)) == [ids["track"]]
        event = AuditEvent.objects.select_related("label", "bulk_change").get()
        assert (event.label.name, event.bulk_change.pk) == ("Indie Label", ids["bulk"])
        assert list(label.delegations.values_list("pk", flat=True)) == [ids["delegation"]]
        assert list(label.bulk_changes.order_by("pk").values_list("pk", flat=True)) == [ids["bulk"], ids["undo"]]
    finally:
        _migrate(leaves)


@pytest.mark.django_db(transaction=True)
def test_the_move_can_be_reversed_without_touching_a_table():
    leaves = _leaf_nodes()
    try:
        _migrate(AFTER_MOVE)
        tables = _tables()
        _migrate(BEFORE_MOVE)
        assert _tables() == tables
        _migrate(AFTER_MOVE)
        assert _tables() == tables
    finally:
        _migrate(leaves)


def test_moved_models_keep_their_tables():
    from django.apps import apps

    tables = {model._meta.db_table for model in apps.get_app_config("labels").get_models()}
    assert MOVED_TABLES - {"consent_consentproposal_tracks"} <= tables
