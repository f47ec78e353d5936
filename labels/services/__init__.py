"""Writes for labels: memberships, delegations, artist invitations and proposals.

Consent itself is still written only by consent.services; these modules decide
what to ask of it and record the label's side. Callers import from here:
`managers` (labels and their managers), `delegations` (what an artist lets a
label do, audited), `invitations` (a label inviting artists by email),
`proposals` (a label asking an artist to grant), `errors`.
"""

from labels.services.delegations import (
    accept_invitation,
    approve_request,
    change_scopes,
    clean_scopes,
    decline,
    end_delegation,
    request_to_join,
)
from labels.services.errors import LabelError
from labels.services.invitations import (
    accept_artist_invitation,
    decline_artist_invitation,
    invitations_for,
    invite_artist,
)
from labels.services.managers import RESERVED_SLUGS, accept_manager_invitation, create_label, invite_manager, labels_of
from labels.services.proposals import decide_proposal, propose_grant

__all__ = [
    "RESERVED_SLUGS",
    "LabelError",
    "accept_artist_invitation",
    "accept_invitation",
    "accept_manager_invitation",
    "approve_request",
    "change_scopes",
    "clean_scopes",
    "create_label",
    "decide_proposal",
    "decline",
    "decline_artist_invitation",
    "end_delegation",
    "invitations_for",
    "invite_artist",
    "invite_manager",
    "labels_of",
    "propose_grant",
    "request_to_join",
]
