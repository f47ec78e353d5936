"""Writes of the downstream app: clients, acknowledgements, manifests, the usage ledger.

Nothing here changes consent or the audit log; the API only reads them.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from consent.models import Consent, Purpose
from downstream import feed, selectors, signing
from downstream.models import (
    TOKEN_PREFIX,
    AckState,
    ApiClient,
    Manifest,
    ManifestTrack,
    SigningKey,
    UsageRecord,
    WithdrawalAck,
)
from downstream.models import (
    hash_token as hash_token,
)
from downstream.selectors import AuthenticatedClient, IdResult, Reason
from platformkit.sql import insert_rows, pk_in


class DownstreamError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Clients ------------------------------------------------------------------------------------


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _validate_webhook_url(url: str) -> str:
    url = (url or "").strip()
    if url and not url.lower().startswith("https://"):
        raise DownstreamError("A webhook endpoint must be an https:// URL.")
    return url


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    token: str
    webhook_secret: str


def create_client(
    *,
    name: str,
    contact: str,
    purposes: Collection[str],
    can_write_manifests: bool = False,
    can_write_usage: bool = False,
    webhook_url: str = "",
) -> IssuedClient:
    """Register a system. The token is returned once; only its hash is stored."""
    found = selectors.purposes_by_slug(purposes)
    unknown = sorted(set(purposes) - found.keys())
    if unknown:
        raise DownstreamError(f"Unknown purpose: {', '.join(unknown)}.")
    if ApiClient.objects.filter(name=name).exists():
        raise DownstreamError(f"A client named {name!r} already exists.")
    token = new_token()
    with transaction.atomic():
        client = ApiClient.objects.create(
            name=name,
            contact=contact,
            can_write_manifests=can_write_manifests,
            can_write_usage=can_write_usage,
            token_hash=hash_token(token),
            token_hint=token[:8],
        )
        client.purposes.set(found.values())
        secret = set_webhook(client=client, url=webhook_url) if webhook_url else ""
    return IssuedClient(client=client, token=token, webhook_secret=secret)


def issue_token(*, client: ApiClient) -> str:
    """A new token for the client; the old one stops working at once."""
    token = new_token()
    ApiClient.objects.filter(pk=client.pk).update(token_hash=hash_token(token), token_hint=token[:8])
    client.token_hash, client.token_hint = hash_token(token), token[:8]
    return token


def revoke_client(*, client: ApiClient) -> None:
    """The next request with the client's token is refused (401)."""
    ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def set_webhook(*, client: ApiClient, url: str) -> str:
    """Set (or clear) the endpoint; returns a new signing secret when one is issued, else "".

    Deliveries start from the feed's head: the backlog is for the feed, the
    webhook tells of what happens from now on.
    """
    url = _validate_webhook_url(url)
    secret = ""
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        if url and not locked.webhook_secret:
            secret = new_webhook_secret()
            locked.webhook_secret = secret
        if url and url != locked.webhook_url:
            head = selectors.head_position(list(locked.purposes.all()))
            locked.webhook_after_horizon, locked.webhook_after_event = head.horizon, head.event_id
        if not url:
            # A later registration gets a new secret.
            locked.webhook_secret = ""
        locked.webhook_url = url
        locked.save(update_fields=["webhook_url", "webhook_secret", "webhook_after_horizon", "webhook_after_event"])
    client.webhook_url, client.webhook_secret = locked.webhook_url, locked.webhook_secret
    return secret


def rotate_webhook_secret(*, client: ApiClient) -> str:
    secret = new_webhook_secret()
    ApiClient.objects.filter(pk=client.pk).update(webhook_secret=secret)
    client.webhook_secret = secret
    return secret


# --- Acknowledgements ---------------------------------------------------------------------------------


class CursorAhead(DownstreamError):
    pass


@dataclass(frozen=True)
class AckResult:
    purpose: str
    cursor: str
    acknowledged_at: Any
    withdrawals_acknowledged: int


def acknowledge(*, client: AuthenticatedClient, purpose: Purpose, position: feed.Position) -> AckResult:
    """Record that the client applied every change of `purpose` up to `position`.

    Each withdrawal (and deletion) newly covered gets the time of this
    acknowledgement, for the artist's page. Going back is a no-op.
    """
    if position > selectors.head_position([purpose]):
        raise CursorAhead("This cursor is ahead of the change feed: acknowledge only cursors the feed handed out.")
    now = timezone.now()
    with transaction.atomic():
        AckState.objects.get_or_create(client_id=client.id, purpose=purpose, defaults={"acknowledged_at": now})
        state = AckState.objects.select_for_update().get(client_id=client.id, purpose=purpose)
        previous = feed.Position(state.after_horizon, state.after_event)
        if position <= previous:
            return AckResult(purpose.slug, str(previous), state.acknowledged_at, 0)
        covered = feed.up_to(feed.after(selectors.withdrawal_events(purpose), previous), position)
        added = _insert_withdrawal_acks(client.id, purpose.pk, covered.order_by().values("id"), now)
        state.after_horizon, state.after_event, state.acknowledged_at = position.horizon, position.event_id, now
        state.save(update_fields=["after_horizon", "after_event", "acknowledged_at"])
    return AckResult(purpose.slug, str(position), now, added)


def _insert_withdrawal_acks(client_id: int, purpose_id: int, event_ids: QuerySet[Any], now: datetime.datetime) -> int:
    """One INSERT ... SELECT, however many withdrawals the acknowledgement covers."""
    select_sql, select_params = event_ids.query.sql_with_params()
    table = connection.ops.quote_name(WithdrawalAck._meta.db_table)
    # Table and column names come from _meta; values are bound parameters.
    sql = (
        f"INSERT INTO {table} (client_id, purpose_id, event_id, acknowledged_at) "  # noqa: S608
        f"SELECT %s, %s, covered.id, %s FROM ({select_sql}) covered WHERE true ON CONFLICT DO NOTHING"
    )
    acknowledged_at = WithdrawalAck._meta.get_field("acknowledged_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [client_id, purpose_id, acknowledged_at, *select_params])
        inserted: int = cursor.rowcount
        return max(inserted, 0)


# --- Manifests --------------------------------------------------------------------------------------


@dataclass
class Exclusion:
    id: str
    reason: str


def _split(results: Sequence[IdResult]) -> tuple[list[IdResult], list[Exclusion]]:
    """Allowed results (first of each track) and exclusions, in the order asked."""
    chosen: list[IdResult] = []
    excluded: list[Exclusion] = []
    seen: set[int] = set()
    for result in results:
        if not result.allowed or result.track_id is None:
            excluded.append(Exclusion(result.id, result.reason or Reason.NOT_GRANTED))
        elif result.track_id in seen:
            excluded.append(Exclusion(result.id, Reason.DUPLICATE))
        else:
            seen.add(result.track_id)
            chosen.append(result)
    return chosen, excluded


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def create_manifest(
    *, client: AuthenticatedClient, purpose: Purpose, name: str, id_type: str, ids: Sequence[str]
) -> dict[str, Any]:
    """Sign a manifest of the tracks allowed for `purpose` now, each citing the event that granted it."""
    chosen, excluded = _split(selectors.check_ids(purpose=purpose, id_type=id_type, ids=ids))
    # One statement reads grants, events and chain heads: one snapshot.
    grants = selectors.current_grants(purpose=purpose, track_ids=[r.track_id for r in chosen if r.track_id])
    tracks = []
    for result in chosen:
        grant = grants.get(result.track_id) if result.track_id is not None else None
        if grant is None:
            # Withdrawn between the check and the read of the grants.
            excluded.append(Exclusion(result.id, Reason.NOT_GRANTED))
            continue
        tracks.append(grant)
    pair, key = register_signing_key()
    core = {
        "issuer": settings.SITE_URL,
        "name": name,
        "purpose": purpose.slug,
        "created_at": _timestamp(timezone.now()),
        "tracks": [
            {
                "track": str(g.track_uuid),
                "sha256": g.sha256,
                "consent_event": g.event_hash,
                "chain_head": g.chain_head,
            }
            for g in tracks
        ],
        "excluded": [{"id": e.id, "reason": e.reason} for e in excluded],
    }
    payload = signing.canonical(core)
    manifest_id = signing.manifest_id(core)
    signature = signing.sign(payload, pair)
    with transaction.atomic():
        manifest = Manifest.objects.create(
            id=manifest_id,
            client_id=client.id,
            purpose=purpose,
            name=name,
            created_at=timezone.now(),
            canonical=payload.decode(),
            signature=signature,
            key=key,
            track_count=len(tracks),
        )
        insert_rows(
            ManifestTrack,
            [
                {
                    "manifest_id": manifest.id,
                    "track_id": g.track_id,
                    "track_uuid": g.track_uuid,
                    "sha256": g.sha256,
                    "artist_id": g.artist_id,
                    "consent_event_id": g.event_id,
                    "chain_seq": g.chain_seq,
                }
                for g in tracks
            ],
        )
    return manifest_document(manifest)


def register_signing_key() -> tuple[signing.SigningKeyPair, SigningKey]:
    """The current signing key, its public half published (kept for good, so old manifests stay verifiable)."""
    pair = signing.load_signing_key()
    key, _ = SigningKey.objects.get_or_create(kid=pair.kid, defaults={"public_jwk": pair.public_jwk})
    return pair, key


def manifest_document(manifest: Manifest) -> dict[str, Any]:
    return {**json.loads(manifest.canonical), "id": manifest.id, "signature": manifest.signature}


# --- Usage ledger -------------------------------------------------------------------------------------


@dataclass
class UsageResult:
    accepted: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    recorded_at: Any = None


def record_usage(
    *,
    client: AuthenticatedClient,
    purpose: Purpose,
    manifest: Manifest | None,
    id_type: str,
    ids: Sequence[str],
    description: str,
) -> UsageResult:
    """Append one ledger row per track allowed now; refuse the rest with a reason.

    The granted consent rows are locked while the rows are written, so a
    withdrawal either committed before (and the use is refused) or waits until
    the use is recorded.
    """
    chosen, excluded = _split(selectors.check_ids(purpose=purpose, id_type=id_type, ids=ids))
    result = UsageResult(refused=[{"id": e.id, "reason": e.reason} for e in excluded if e.reason != Reason.DUPLICATE])
    in_manifest: set[int] | None = None
    if manifest is not None:
        in_manifest = set(
            ManifestTrack.objects.filter(
                manifest=manifest, track_id__in=pk_in(r.track_id for r in chosen if r.track_id is not None)
            ).values_list("track_id", flat=True)
        )
    with transaction.atomic():
        candidates = [r for r in chosen if in_manifest is None or r.track_id in in_manifest]
        locked = set(
            Consent.objects.select_for_update(no_key=True)
            .filter(
                track_id__in=pk_in(r.track_id for r in candidates if r.track_id is not None),
                purpose=purpose,
                granted=True,
            )
            .values_list("track_id", flat=True)
        )
        grants = selectors.current_grants(purpose=purpose, track_ids=list(locked))
        now = timezone.now()
        rows = []
        for r in chosen:
            if in_manifest is not None and r.track_id not in in_manifest:
                result.refused.append({"id": r.id, "reason": Reason.NOT_IN_MANIFEST})
            elif r.track_id not in grants:
                result.refused.append({"id": r.id, "reason": Reason.NOT_GRANTED})
            else:
                grant = grants[r.track_id]
                rows.append(_usage_row(client, purpose, manifest, grant, description, now))
                result.accepted.append({"id": r.id, "track": str(grant.track_uuid)})
        insert_rows(UsageRecord, rows)
        result.recorded_at = now
    return result


def _usage_row(
    client: AuthenticatedClient,
    purpose: Purpose,
    manifest: Manifest | None,
    grant: Any,
    description: str,
    now: datetime.datetime,
) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "track_id": grant.track_id,
        "track_uuid": grant.track_uuid,
        "artist_id": grant.artist_id,
        "purpose_id": purpose.pk,
        "manifest_id": manifest.pk if manifest else None,
        "consent_event_id": grant.event_id,
        "description": description,
        "recorded_at": now,
    }


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- Staff notices -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overdue:
    client: ApiClient
    purpose: Purpose
    oldest_event_id: int
    oldest_at: Any
    count: int


def overdue_acknowledgements(*, now: datetime.datetime | None = None) -> list[Overdue]:
    """Per client and purpose: withdrawals past the deadline that the client has not acknowledged."""
    now = now or timezone.now()
    deadline = now - datetime.timedelta(hours=settings.API_ACK_DEADLINE_HOURS)
    states = {(s.client_id, s.purpose_id): s for s in AckState.objects.all()}
    found = []
    for client in ApiClient.objects.active().prefetch_related("purposes"):
        for purpose in client.purposes.all():
            state = states.get((client.pk, purpose.pk))
            position = feed.Position(state.after_horizon, state.after_event) if state else feed.START
            late = feed.after(selectors.withdrawal_events(purpose), position).filter(
                created_at__lt=deadline, created_at__gte=client.created_at
            )
            oldest = feed.in_order(late).values_list("id", "created_at").first()
            if oldest:
                found.append(Overdue(client, purpose, oldest[0], oldest[1], late.count()))
    return found


def notify_overdue_acks(*, now: datetime.datetime | None = None) -> int:
    """One notice per staff member per overdue backlog (keyed by its oldest withdrawal), through the outbox."""
    from django.contrib.auth import get_user_model

    from downstream.notices import ack_overdue_notices
    from notifications.services import queue_notice

    queued = 0
    staff = list(get_user_model().objects.filter(is_staff=True, is_active=True).only("pk", "email"))
    for item in overdue_acknowledgements(now=now):
        with transaction.atomic():
            for notice in ack_overdue_notices(item, staff=staff):
                queued += queue_notice(notice) is not None
    return queued
