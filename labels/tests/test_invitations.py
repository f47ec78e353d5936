"""Roster invitations go by email and tell the label nothing about who has an account."""

from __future__ import annotations

import re

from allauth.account.models import EmailAddress
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from consent.models import AuditEvent
from consent.selectors import verify_chains
from labels import services
from labels.models import ArtistInvitation, Delegation
from notifications.models import Notification

LINK = re.compile(r"https?://[^\s]+(/labels/join/[^\s/]+/)")
CONFIRM_LINK = re.compile(r"https?://[^\s]+(/accounts/confirm-email/[^\s]+/)")


def _invite(client, label, email: str):
    response = client.post(f"/labels/{label.slug}/roster/invite/artist/", {"email": email})
    said = tuple(str(m) for m in get_messages(response.wsgi_request))
    client.get(response["Location"])  # shows (and so uses up) the messages
    return response, said


def test_inviting_an_address_answers_the_same_whether_or_not_it_has_an_account(
    all_none, client, label_setup, make_user, make_tracks
):
    label, manager, delegate = label_setup
    member = make_user(email="has.account@example.test")
    make_tracks(2, owner=member)
    on_roster = make_user(email="already.here@example.test")
    delegate(on_roster, all_none)
    client.force_login(manager)

    before = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()
    answers = {}
    for email in ("has.account@example.test", "no.account@example.test", "already.here@example.test"):
        response, said = _invite(client, label, email)
        answers[email] = (response.status_code, response["Location"], tuple(m.replace(email, "<email>") for m in said))

    assert len(set(answers.values())) == 1, answers
    status, location, said = answers["no.account@example.test"]
    assert status == 302 and location == f"/labels/{label.slug}/roster/"
    assert said == ("Invitation emailed to <email>. If they accept, they choose what you may do.",)
    # Each address got the same kind of email, none of them addressed to an account.
    sent = Notification.objects.filter(pk__gt=before)
    assert set(sent.values_list("kind", flat=True)) == {Notification.Kind.LABEL_INVITATION}
    assert sorted(sent.values_list("to_email", flat=True)) == sorted(answers)
    assert not sent.filter(recipient__isnull=False).exists()
    assert {n.context["for_artist"] for n in sent} == {True}
    # Nothing is delegated, and nothing enters anyone's audit log, before an acceptance.
    assert not Delegation.objects.filter(artist=member).exists()
    assert not AuditEvent.objects.filter(artist=member).exists()
    # The roster shows every pending invitation the same way.
    roster = client.get(f"/labels/{label.slug}/roster/").content.decode()
    for email in answers:
        assert f'<th scope="row">{email}</th><td>Invitation emailed' in roster


def test_an_invited_address_without_an_account_signs_up_and_then_accepts(
    all_none, client, label_setup, password, mailoutbox, django_capture_on_commit_callbacks
):
    label, manager, _ = label_setup
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, label, "brand.new@example.test")
    [invitation_email] = [m for m in mailoutbox if m.to == ["brand.new@example.test"]]
    assert f"{label.name} invited you to its roster" in invitation_email.subject
    join_path = LINK.search(invitation_email.body).group(1)

    artist = Client()
    # Not signed in: the link leads to sign-in first.
    assert artist.get(join_path)["Location"].startswith(reverse("account_login"))
    with django_capture_on_commit_callbacks(execute=True):
        artist.post(
            reverse("account_signup"),
            {
                "email": "brand.new@example.test",
                "display_name": "Brand New",
                "password1": password,
                "password2": password,
            },
        )
    confirm = CONFIRM_LINK.search(mailoutbox[-1].body).group(1)
    artist.post(confirm)
    assert EmailAddress.objects.get(email="brand.new@example.test").verified

    page = artist.get(join_path).content.decode()
    assert f"Join the roster of {label.name}?" in page
    assert label.name in artist.get("/labels/delegations/").content.decode()
    invitation = ArtistInvitation.objects.get()
    prefix = f"i{invitation.pk}-"
    scopes = {f"{prefix}scope_{slug}": scope for slug, scope in all_none.items()}
    scopes[f"{prefix}scope_recommendation"] = "withdraw"
    with django_capture_on_commit_callbacks(execute=True):
        response = artist.post(f"{join_path}accept/", scopes)

    assert response.status_code == 302
    delegation = Delegation.objects.get(label=label)
    assert delegation.artist.email == "brand.new@example.test"
    assert delegation.status == Delegation.Status.ACTIVE and delegation.scopes["recommendation"] == "withdraw"
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None and invitation.delegation == delegation
    assert AuditEvent.objects.filter(artist=delegation.artist, label=label, new_value="active").count() == 1
    told = sorted(m.to[0] for m in mailoutbox if "joined the roster" in m.body)
    assert told == sorted(["brand.new@example.test", manager.email])
    assert verify_chains().ok
    # The link is used up.
    assert "Invitation not waiting for you" in artist.get(join_path).content.decode()


def test_an_invitation_is_answered_only_from_a_verified_copy_of_its_address(all_none, client, label_setup, make_user):
    label, manager, _ = label_setup
    invitation = services.invite_artist(actor=manager, label=label, email="Invited@Example.test")
    stranger = make_user(email="stranger@example.test")
    unverified = make_user(email="invited@example.test", verified=False)
    for user in (stranger, unverified):
        client.force_login(user)
        assert "Invitation not waiting for you" in client.get(f"/labels/join/{invitation.token}/").content.decode()
        data = {f"i{invitation.pk}-scope_{slug}": "none" for slug in all_none}
        client.post(f"/labels/join/{invitation.token}/accept/", data)
        client.post(f"/labels/join/{invitation.token}/decline/")
    invitation.refresh_from_db()
    assert invitation.pending and not Delegation.objects.exists()
    # Once the address is verified (case does not matter), the invitation is theirs.
    EmailAddress.objects.filter(user=unverified).update(verified=True)
    client.force_login(unverified)
    client.post(f"/labels/join/{invitation.token}/decline/")
    invitation.refresh_from_db()
    assert invitation.declined_at is not None and not Delegation.objects.exists()


def test_a_second_invitation_to_a_pending_address_is_refused_with_the_labels_own_record(client, label_setup):
    label, manager, _ = label_setup
    client.force_login(manager)
    _invite(client, label, "twice@example.test")
    _, said = _invite(client, label, "Twice@example.test")
    assert said == ("Twice@example.test already has an invitation from this label waiting.",)
    assert ArtistInvitation.objects.count() == 1
