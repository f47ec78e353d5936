"""The /api/v1 request and response bodies (pydantic v2, through django-ninja)."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import AwareDatetime, StringConstraints

from downstream.feed import CURSOR_PATTERN

SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"
MANIFEST_ID_PATTERN = r"^[0-9a-f]{64}$"
# Printable text only: PostgreSQL refuses NUL, and control characters have no
# place in names an artist reads.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
IdType = Literal["uuid", "isrc", "sha256"]
ID_MAX_LENGTH = 200
AnId = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX_LENGTH)]
Ids = Annotated[list[AnId], Field(min_length=1, max_length=settings.API_MAX_IDS)]
Cursor = Annotated[str, StringConstraints(pattern=CURSOR_PATTERN)]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN, strip_whitespace=True)]
Text500 = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=TEXT_PATTERN, strip_whitespace=True)]
ManifestIdStr = Annotated[str, StringConstraints(pattern=MANIFEST_ID_PATTERN)]
Reason = Literal[
    "not_granted", "not_found", "deleted", "not_processed", "ambiguous", "invalid_id", "not_in_manifest", "duplicate"
]


# --- Errors (RFC 9457) ------------------------------------------------------------------


class FieldProblem(Schema):
    field: str = Field(description="Where the problem is: a body member, query or path parameter, dotted.")
    message: str


class Problem(Schema):
    """application/problem+json."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(None, description="For 422: each invalid field.")


class IdRefusal(Schema):
    id: str
    reason: Reason


class AcceptedUse(Schema):
    id: str
    track: uuid.UUID


class UsageConflict(Problem):
    """409: some ids were refused. The accepted ones are recorded all the same."""

    accepted: list[AcceptedUse]
    refused: list[IdRefusal]
    recorded_at: datetime.datetime


# --- Reading consent ------------------------------------------------------------------------


class PurposeStateOut(Schema):
    allowed: bool
    since: datetime.datetime | None = Field(description="When the current answer was given (null: never asked).")
    event: str | None = Field(description="SHA-256 hash of the audit event that gave it.")


class TrackConsentOut(Schema):
    track: uuid.UUID
    isrc: str | None
    sha256: str | None = Field(description="SHA-256 of the uploaded audio file.")
    status: Literal["processing", "ready", "failed", "deleted"]
    as_of: datetime.datetime
    purposes: dict[str, PurposeStateOut] = Field(description="Only the purposes this client may read.")


class CheckIn(Schema):
    purpose: Slug
    id_type: IdType
    ids: Ids


class CheckResult(Schema):
    id: str
    allowed: bool
    track: uuid.UUID | None
    reason: Reason | None = Field(description="Why not allowed (null when allowed).")


class CheckOut(Schema):
    purpose: str
    as_of: datetime.datetime
    results: list[CheckResult]


class ChangeOut(Schema):
    cursor: Cursor = Field(description="Pass as `after` to resume after this change, or to acknowledge it.")
    track: uuid.UUID
    purpose: str
    allowed: bool
    at: datetime.datetime
    event: str = Field(description="SHA-256 hash of the audit event.")
    change: Literal["granted", "withdrawn", "deleted"]


class ChangesOut(Schema):
    changes: list[ChangeOut]
    next: Cursor = Field(description="Where to resume: the last change's cursor, or `after` if there was none.")
    has_more: bool


class AckIn(Schema):
    purpose: Slug
    cursor: Cursor


class AckOut(Schema):
    purpose: str
    cursor: Cursor = Field(description="Everything up to here is acknowledged (never moves back).")
    acknowledged_at: datetime.datetime
    withdrawals_acknowledged: int = Field(description="Withdrawals and deletions newly covered by this call.")


# --- Manifests, usage ------------------------------------------------------------------------------


class ManifestIn(Schema):
    purpose: Slug
    name: Text200
    id_type: IdType
    ids: Ids


class ManifestTrackOut(Schema):
    track: uuid.UUID
    sha256: str
    consent_event: str = Field(description="Hash of the audit event that granted this track for the purpose.")
    chain_head: str = Field(description="Hash of the head of the artist's audit chain when the manifest was made.")


class ManifestOut(Schema):
    id: ManifestIdStr = Field(description="SHA-256 of the RFC 8785 canonical JSON of every other member but signature.")
    issuer: str
    name: str
    purpose: str
    created_at: datetime.datetime
    tracks: list[ManifestTrackOut]
    excluded: list[IdRefusal]
    signature: str = Field(
        description="Compact JWS (Ed25519) with detached payload: the canonical bytes hashed for id."
    )


class WithdrawalOut(Schema):
    track: uuid.UUID
    sha256: str | None
    change: Literal["withdrawn", "deleted"]
    at: datetime.datetime
    event: str
    allowed_now: bool


class ManifestWithdrawalsOut(Schema):
    manifest: str
    purpose: str
    withdrawals: list[WithdrawalOut]


class UsageIn(Schema):
    purpose: Slug
    manifest: ManifestIdStr | None = None
    id_type: IdType
    ids: Ids
    description: Text500


class UsageOut(Schema):
    purpose: str
    recorded_at: datetime.datetime
    accepted: list[AcceptedUse]


class ClientOut(Schema):
    name: str
    purposes: list[str]
    can_write_manifests: bool
    can_write_usage: bool


class WebhookIn(Schema):
    url: Annotated[str, StringConstraints(pattern=r"^https://[^\s\x00-\x1f\x7f]+$", max_length=500)] = Field(
        description="An https:// URL: each change of this client's purposes is POSTed there."
    )


class WebhookOut(Schema):
    url: str | None
    secret: str | None = Field(
        description="The Standard Webhooks signing secret: returned only when issued (the first registration); keep it."
    )


class Jwk(Schema):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class Jwks(Schema):
    keys: list[Jwk]


AsOf = AwareDatetime
