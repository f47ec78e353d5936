"""The only writer of consent state and of the audit log.

Every write here runs in one transaction that checks permission, locks the
artists' audit chains (which serialises writers per artist), writes the new
state set-based and appends one hash-chained audit event per fact that changed.
A call that changes nothing writes nothing.

One module per responsibility; callers import from here:
`permissions` (who may change what), `audit` (appending to the chains),
`writes` (consent on tracks), `uploads` (upload defaults and choices),
`track_events` (a track's arrival and deletion), `terms` (policy versions),
`delegation_events` (label delegations in the log), `erasure` (account deletion),
`errors` (refusals and the result of a write).
"""

from consent.services.delegation_events import DelegationChange, record_delegation_events
from consent.services.erasure import (
    AccountConsentSummary,
    delete_tracks_for_deletion,
    erase_personal_data,
    record_account_deleted,
    withdraw_everything_for_deletion,
)
from consent.services.errors import (
    GRANTED,
    NOT_GRANTED,
    ChangeResult,
    ConfirmationRequired,
    ConsentError,
    ConsentPermissionDenied,
    NoPolicyInForce,
    UnknownPurpose,
)
from consent.services.permissions import (
    SCOPE_GRANT_WITHDRAW,
    SCOPE_NONE,
    SCOPE_WITHDRAW,
    actor_kind_for,
    can_change_consent,
    delegated_scopes,
)
from consent.services.terms import acknowledge_policy, lapse_unconfirmed_grants, reconfirm_consent
from consent.services.track_events import record_track_deleted, record_track_uploaded, record_tracks_deleted
from consent.services.uploads import apply_upload_consent, set_upload_defaults
from consent.services.writes import change_consent, set_track_consents

__all__ = [
    "GRANTED",
    "NOT_GRANTED",
    "SCOPE_GRANT_WITHDRAW",
    "SCOPE_NONE",
    "SCOPE_WITHDRAW",
    "AccountConsentSummary",
    "ChangeResult",
    "ConfirmationRequired",
    "ConsentError",
    "ConsentPermissionDenied",
    "DelegationChange",
    "NoPolicyInForce",
    "UnknownPurpose",
    "acknowledge_policy",
    "actor_kind_for",
    "apply_upload_consent",
    "can_change_consent",
    "change_consent",
    "delegated_scopes",
    "delete_tracks_for_deletion",
    "erase_personal_data",
    "lapse_unconfirmed_grants",
    "reconfirm_consent",
    "record_account_deleted",
    "record_delegation_events",
    "record_track_deleted",
    "record_track_uploaded",
    "record_tracks_deleted",
    "set_track_consents",
    "set_upload_defaults",
    "withdraw_everything_for_deletion",
]
