"""Labels and the people who manage them: creating a label, inviting and accepting managers."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from accounts.models import User
from labels.models import Label, LabelInvitation, LabelMembership
from labels.notices import invitation_notice
from labels.services.errors import LabelError
from notifications.services import queue_notice

RESERVED_SLUGS = {"delegations", "proposals", "invitations", "join"}


def create_label(*, owner: User, name: str) -> Label:
    name = (name or "").strip()
    if not name:
        raise LabelError(gettext("A label needs a name."))
    base = slugify(name)[:60] or "label"
    # These are paths of their own under /labels/.
    if base in RESERVED_SLUGS:
        base = f"{base}-label"
    slug = base
    with transaction.atomic():
        n = 1
        while Label.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        label = Label.objects.create(name=name[:150], slug=slug)
        LabelMembership.objects.create(label=label, user=owner, role=LabelMembership.Role.OWNER)
    return label


def invite_manager(*, actor: User, label: Label, email: str) -> LabelInvitation:
    """Only a label owner invites; the email carries a one-time link."""
    if not LabelMembership.objects.filter(label=label, user=actor, role=LabelMembership.Role.OWNER).exists():
        raise LabelError(gettext("Only an owner of the label can invite managers."))
    email = User.objects.normalize_email((email or "").strip())
    if LabelMembership.objects.filter(label=label, user__email__iexact=email).exists():
        raise LabelError(gettext("%(email)s already manages this label.") % {"email": email})
    with transaction.atomic():
        invitation = LabelInvitation.objects.create(
            label=label, email=email, token=secrets.token_urlsafe(32), invited_by=actor
        )
        queue_notice(invitation_notice(invitation))
    return invitation


def accept_manager_invitation(*, user: User, token: str) -> LabelMembership:
    with transaction.atomic():
        invitation = LabelInvitation.objects.select_for_update().select_related("label").filter(token=token).first()
        if invitation is None or invitation.accepted_at is not None:
            raise LabelError(gettext("This invitation link is not valid any more."))
        if invitation.email.lower() != user.email.lower():
            raise LabelError(gettext("This invitation was sent to another email address; sign in with that address."))
        membership, _ = LabelMembership.objects.get_or_create(
            label=invitation.label, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def labels_of(user: User) -> QuerySet[Label]:
    return Label.objects.filter(memberships__user=user)
