from __future__ import annotations

import pytest

from consent.models import AuditEvent, Consent
from consent.selectors import verify_chains
from labels import services
from labels.models import Delegation
from labels.selectors import roster_tracks
from labels.services import LabelError
from labels.tests.conftest import granted
from notifications.models import Notification


def test_artist_accepting_an_invitation_chooses_scopes_and_both_sides_are_told(all_none, artist, label_setup):
    label, manager, delegate = label_setup
    delegation = delegate(artist, {**all_none, "recommendation": "grant_withdraw", "fraud_detection": "withdraw"})
    assert delegation.status == Delegation.Status.ACTIVE
    assert delegation.scopes["recommendation"] == "grant_withdraw"
    assert delegation.scopes["generative_training"] == "none"
    events = AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.DELEGATION_CHANGED, label=label)
    # The invitation itself went by email; the artist's log starts when they accept:
    # active, with two purposes gaining power.
    assert set(events.values_list("new_value", flat=True)) == {"active", "grant_withdraw", "withdraw"}
    assert Notification.objects.filter(kind=Notification.Kind.LABEL_INVITATION, to_email=artist.email).count() == 1
    notices = Notification.objects.filter(kind=Notification.Kind.DELEGATION_CHANGED)
    assert notices.filter(recipient=artist).count() == 1
    assert notices.filter(recipient=manager).count() == 1


def test_letting_a_label_grant_generative_training_needs_its_own_confirmation(all_none, artist, label_setup):
    label, manager, _ = label_setup
    invitation = services.invite_artist(actor=manager, label=label, email=artist.email)
    with pytest.raises(LabelError, match="needs its own confirmation"):
        services.accept_artist_invitation(
            artist=artist, invitation=invitation, scopes={**all_none, "generative_training": "grant_withdraw"}
        )
    invitation.refresh_from_db()
    assert invitation.pending and not Delegation.objects.exists()
    delegation = services.accept_artist_invitation(
        artist=artist,
        invitation=invitation,
        scopes={**all_none, "generative_training": "grant_withdraw"},
        confirmed={"generative_training"},
    )
    delegation.refresh_from_db()
    assert delegation.scopes["generative_training"] == "grant_withdraw"


def test_letting_the_label_grant_generative_training_is_a_separate_confirmation_page(
    all_none, client, artist, label_setup
):
    label, manager, _ = label_setup
    invitation = services.invite_artist(actor=manager, label=label, email=artist.email)
    client.force_login(artist)
    prefix = f"i{invitation.pk}-"
    data = {f"{prefix}scope_{slug}": "none" for slug in all_none}
    data[f"{prefix}scope_generative_training"] = "grant_withdraw"
    url = f"/labels/join/{invitation.token}/accept/"
    # The accept form itself has no box to tick: the first save leads to the confirmation page.
    page = client.get("/labels/delegations/").content.decode()
    assert f'type="hidden" name="{prefix}confirm_generative_training"' in page
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.templates[0].name == "labels/confirm_scope.html"
    body = response.content.decode()
    assert "without asking you first" in body
    assert f'name="{prefix}scope_generative_training" value="grant_withdraw"' in body
    assert not Delegation.objects.exists()
    assert not AuditEvent.objects.filter(artist=artist, new_value="grant_withdraw").exists()
    # Posting the page without its box shows it again; with it, the delegation starts.
    assert client.post(url, data).templates[0].name == "labels/confirm_scope.html"
    client.post(url, {**data, f"{prefix}confirm_generative_training": "on"})
    delegation = Delegation.objects.get(artist=artist, label=label)
    assert delegation.status == Delegation.Status.ACTIVE
    assert delegation.scopes["generative_training"] == "grant_withdraw"


def test_changing_other_scopes_does_not_ask_again_for_a_confirmed_grant_power(all_none, client, artist, label_setup):
    _, _, delegate = label_setup
    delegation = delegate(artist, {**all_none, "generative_training": "grant_withdraw"})
    client.force_login(artist)
    prefix = f"d{delegation.pk}-"
    data = {f"{prefix}scope_{slug}": "none" for slug in all_none}
    data[f"{prefix}scope_generative_training"] = "grant_withdraw"
    data[f"{prefix}scope_recommendation"] = "withdraw"
    response = client.post(f"/labels/delegations/{delegation.pk}/scopes/", data)
    assert response.status_code == 302
    delegation.refresh_from_db()
    assert delegation.scopes["recommendation"] == "withdraw"


def test_asking_to_join_with_generative_grant_goes_through_the_confirmation_page(all_none, client, artist, label_setup):
    label, _, _ = label_setup
    client.force_login(artist)
    data = {"label": label.slug, **{f"join-scope_{slug}": "none" for slug in all_none}}
    data["join-scope_generative_training"] = "grant_withdraw"
    response = client.post("/labels/delegations/join/", data)
    assert response.templates[0].name == "labels/confirm_scope.html"
    assert not Delegation.objects.exists()
    client.post("/labels/delegations/join/", {**data, "join-confirm_generative_training": "on"})
    assert Delegation.objects.get().scopes["generative_training"] == "grant_withdraw"


def test_ending_a_delegation_is_one_step_and_changes_no_consent(
    all_none, client, artist, label_setup, make_tracks, set_state
):
    label, _manager, delegate = label_setup
    tracks = make_tracks(3, owner=artist)
    set_state(artist, tracks, "recommendation", True)
    delegation = delegate(artist, {**all_none, "recommendation": "grant_withdraw"})
    before = list(Consent.objects.order_by("pk").values_list("pk", "granted", "changed_at"))
    client.force_login(artist)
    response = client.post(f"/labels/delegations/{delegation.pk}/end/")
    assert response.status_code == 302
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ENDED and delegation.ended_at is not None
    assert list(Consent.objects.order_by("pk").values_list("pk", "granted", "changed_at")) == before
    assert roster_tracks(label).count() == 0
    ended = AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.DELEGATION_CHANGED, new_value="ended")
    assert ended.count() == 1
    assert verify_chains().ok


def test_artist_request_to_join_becomes_active_when_the_label_approves(all_none, client, artist, label_setup):
    label, manager, _ = label_setup
    delegation = services.request_to_join(
        artist=artist, label=label, scopes={**all_none, "fraud_detection": "withdraw"}
    )
    assert delegation.status == Delegation.Status.REQUESTED
    assert roster_tracks(label).count() == 0
    client.force_login(manager)
    client.post(f"/labels/{label.slug}/roster/{delegation.pk}/approve/")
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ACTIVE
    assert delegation.scopes["fraud_detection"] == "withdraw"


def test_a_second_open_delegation_to_the_same_label_is_refused(all_none, artist, label_setup):
    label, manager, delegate = label_setup
    delegate(artist, all_none)
    # Inviting answers as for anyone; accepting is what is refused.
    invitation = services.invite_artist(actor=manager, label=label, email=artist.email)
    with pytest.raises(LabelError, match="already"):
        services.accept_artist_invitation(artist=artist, invitation=invitation, scopes=all_none)
    assert Delegation.objects.filter(artist=artist, label=label).count() == 1


def test_manager_invitation_link_makes_a_member_only_for_the_invited_address(client, make_user, label_setup):
    label, owner, _ = label_setup
    invitee = make_user(email="new.manager@example.test")
    stranger = make_user()
    invitation = services.invite_manager(actor=owner, label=label, email="new.manager@example.test")
    assert Notification.objects.filter(kind=Notification.Kind.LABEL_INVITATION, to_email=invitee.email).count() == 1
    client.force_login(stranger)
    client.post(f"/labels/invitations/{invitation.token}/")
    assert not label.memberships.filter(user=stranger).exists()
    client.force_login(invitee)
    response = client.post(f"/labels/invitations/{invitation.token}/")
    assert response.status_code == 302
    assert label.memberships.filter(user=invitee, role="manager").exists()
    # a used link does nothing
    assert client.get(f"/labels/invitations/{invitation.token}/").status_code == 200
    assert "not valid" in client.get(f"/labels/invitations/{invitation.token}/").content.decode()


def test_only_an_owner_invites_managers(make_user, label_setup):
    label, _owner, _ = label_setup
    manager = make_user()
    label.memberships.create(user=manager, role="manager")
    with pytest.raises(LabelError, match="Only an owner"):
        services.invite_manager(actor=manager, label=label, email="x@example.test")


def test_proposal_outside_scope_grants_nothing_until_the_artist_accepts(
    all_none, client, artist, label_setup, make_tracks, django_capture_on_commit_callbacks, mailoutbox
):
    label, manager, delegate = label_setup
    tracks = make_tracks(2, owner=artist)
    delegate(artist, {**all_none, "recommendation": "withdraw"})
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/labels/{label.slug}/bulk/preview/",
            {"all_matching": "1", "purpose": "recommendation", "action": "propose"},
        )
    assert not any(granted(t, "recommendation") for t in tracks)
    assert [m.to for m in mailoutbox] == [[artist.email]]
    proposal = artist.consent_proposals.get()
    client.force_login(artist)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/labels/proposals/{proposal.pk}/", {"decision": "accept"})
    assert all(granted(t, "recommendation") for t in tracks)
    event = AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.CONSENT_CHANGED).first()
    assert event.actor_id == artist.pk and event.actor_kind == "artist"


@pytest.fixture
def generative_proposal(all_none, artist, label_setup, make_tracks):
    """The artist's one track, on a roster delegated nothing, and the label's proposal of generative training."""
    from tracks.models import Track

    label, manager, delegate = label_setup
    tracks = make_tracks(1, owner=artist)
    delegate(artist, all_none)
    [proposal] = services.propose_grant(
        actor=manager, label=label, tracks=Track.objects.all(), purpose_slug="generative_training"
    )
    return tracks, proposal


def test_declining_a_proposal_changes_nothing(client, artist, generative_proposal):
    tracks, proposal = generative_proposal
    client.force_login(artist)
    client.post(f"/labels/proposals/{proposal.pk}/", {"decision": "decline"})
    proposal.refresh_from_db()
    assert proposal.status == "declined"
    assert not granted(tracks[0], "generative_training")


def test_accepting_a_generative_proposal_needs_the_confirmation_box(client, artist, generative_proposal):
    tracks, proposal = generative_proposal
    client.force_login(artist)
    client.post(f"/labels/proposals/{proposal.pk}/", {"decision": "accept"})
    assert not granted(tracks[0], "generative_training")
    client.post(f"/labels/proposals/{proposal.pk}/", {"decision": "accept", "confirm": "1"})
    assert granted(tracks[0], "generative_training")


def test_delegations_page_lists_pending_invitation_with_scope_form(client, artist, label_setup):
    label, manager, _ = label_setup
    services.invite_artist(actor=manager, label=label, email=artist.email)
    client.force_login(artist)
    body = client.get("/labels/delegations/").content.decode()
    assert label.name in body and "Accept" in body and "Grant and withdraw" in body


def test_delegation_events_show_in_the_artists_audit_log(all_none, client, artist, label_setup):
    _, _, delegate = label_setup
    delegate(artist, {**all_none, "recommendation": "grant_withdraw"})
    client.force_login(artist)
    response = client.get("/consent/log/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Label delegation changed" in body
    assert "label may: nothing →</span> grant and withdraw" in body
    assert "not allowed →" not in body
    assert "delegation: — →</span> active" in body
