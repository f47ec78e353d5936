from __future__ import annotations

import pytest

from labels import bulk as bulk_changes
from labels import services
from labels.models import BulkChange, LabelMembership
from labels.tests.conftest import REC_SCOPES, preview
from tracks.models import Track


@pytest.fixture
def world(label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup
    ada = make_user(display_name="Ada")
    make_tracks(3, owner=ada)
    delegation = delegate(ada, REC_SCOPES)
    [proposal] = services.propose_grant(
        actor=manager, label=label, tracks=Track.objects.all(), purpose_slug="generative_training"
    )
    bulk = preview(manager, label, {"recommendation": True})
    bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    return label, manager, ada, delegation, proposal, bulk


def test_admin_lists_labels_memberships_delegations_proposals_and_bulk_changes_read_only(admin_client, world):
    label, _, _, delegation, _proposal, bulk = world
    for model in ("labels/label", "labels/labelmembership", "labels/delegation", "labels/consentproposal"):
        response = admin_client.get(f"/admin/{model}/")
        assert response.status_code == 200, model
    body = admin_client.get("/admin/labels/bulkchange/").content.decode()
    assert "Bulk edit" in body and ">3<" in body  # applied count
    assert admin_client.get(f"/admin/labels/bulkchange/{bulk.pk}/change/").status_code == 200
    assert admin_client.get(f"/admin/labels/delegation/{delegation.pk}/change/").status_code == 200
    # read-only: no add, and a POST changes nothing
    assert admin_client.get("/admin/labels/delegation/add/").status_code == 403
    admin_client.post(f"/admin/labels/delegation/{delegation.pk}/change/", {"status": "ended"})
    delegation.refresh_from_db()
    assert delegation.status == "active"
    label_page = admin_client.get("/admin/labels/label/").content.decode()
    assert label.name in label_page


def test_artist_pages_are_scoped_to_the_artist(client, world, make_user):
    _, _, _, delegation, proposal, _ = world
    stranger = make_user()
    client.force_login(stranger)
    assert client.get(f"/labels/proposals/{proposal.pk}/").status_code == 404
    assert client.post(f"/labels/proposals/{proposal.pk}/", {"decision": "accept"}).status_code == 404
    for action in ("end", "scopes", "accept", "decline"):
        assert client.post(f"/labels/delegations/{delegation.pk}/{action}/").status_code == 404
    delegation.refresh_from_db()
    assert delegation.status == "active"


def test_the_label_cannot_end_or_change_the_artists_delegation(client, world):
    label, manager, _, delegation, _, _ = world
    client.force_login(manager)
    assert client.post(f"/labels/delegations/{delegation.pk}/end/").status_code == 404
    assert client.post(f"/labels/delegations/{delegation.pk}/scopes/").status_code == 404
    # nor decline it from the roster once it is active
    client.post(f"/labels/{label.slug}/roster/{delegation.pk}/decline/")
    delegation.refresh_from_db()
    assert delegation.status == "active"


def test_bulk_changes_of_another_manager_of_the_same_label_can_be_seen_but_not_confirmed(client, world, make_user):
    label, manager, _, _, _, _ = world
    colleague = make_user()
    label.memberships.create(user=colleague, role="manager")
    draft = preview(manager, label, {"recommendation": False})
    client.force_login(colleague)
    assert client.get(f"/labels/{label.slug}/bulk/{draft.pk}/").status_code == 200
    response = client.post(f"/labels/{label.slug}/bulk/{draft.pk}/confirm/", follow=True)
    assert "Only the manager who previewed" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == BulkChange.Status.DRAFT


def test_pages_render_for_each_role(client, world):
    label, manager, ada, _, proposal, bulk = world
    client.force_login(manager)
    for url in (
        "/labels/",
        f"/labels/{label.slug}/",
        f"/labels/{label.slug}/roster/",
        f"/labels/{label.slug}/bulk/",
        f"/labels/{label.slug}/bulk/{bulk.pk}/",
        f"/labels/{label.slug}/import/",
    ):
        assert client.get(url).status_code == 200, url
    client.force_login(ada)
    for url in ("/labels/", "/labels/delegations/", f"/labels/proposals/{proposal.pk}/"):
        assert client.get(url).status_code == 200, url


def test_staff_cannot_add_or_promote_a_label_member_in_the_admin(admin_client, world, make_user):
    label, manager, _, delegation, _, _ = world
    outsider = make_user(email="outsider@example.test")
    membership = label.memberships.get(user=manager)
    before = list(LabelMembership.objects.values_list("label_id", "user_id", "role"))

    # The membership admin: no add, no change, no delete.
    assert admin_client.get("/admin/labels/labelmembership/add/").status_code == 403
    admin_client.post("/admin/labels/labelmembership/add/", {"label": label.pk, "user": outsider.pk, "role": "owner"})
    admin_client.post(
        f"/admin/labels/labelmembership/{membership.pk}/change/",
        {"label": label.pk, "user": outsider.pk, "role": "owner"},
    )
    assert (
        admin_client.post(f"/admin/labels/labelmembership/{membership.pk}/delete/", {"post": "yes"}).status_code == 403
    )

    # The label's page: the memberships inline is read-only, so a submitted row adds nobody.
    page = admin_client.get(f"/admin/labels/label/{label.pk}/change/").content.decode()
    assert str(manager) in page and 'name="memberships-0-user"' not in page
    admin_client.post(
        f"/admin/labels/label/{label.pk}/change/",
        {
            "name": label.name,
            "slug": label.slug,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": outsider.pk,
            "memberships-0-role": "owner",
        },
    )
    assert admin_client.post(f"/admin/labels/label/{label.pk}/delete/", {"post": "yes"}).status_code == 403

    assert list(LabelMembership.objects.values_list("label_id", "user_id", "role")) == before
    assert not LabelMembership.objects.filter(user=outsider).exists()
    delegation.refresh_from_db()
    assert delegation.status == "active"
