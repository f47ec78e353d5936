"""Appending hash-chained events to the artists' audit chains, and the lookups every write starts with."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext, ngettext

from consent.chain import seal
from consent.confirmation import unconfirmed_grants
from consent.models import (
    GENESIS_HASH,
    AuditActorData,
    AuditChainHead,
    AuditEvent,
    AuditSubjectData,
    PolicyVersion,
    Purpose,
)
from consent.services.errors import (
    GRANTED,
    NOT_GRANTED,
    ConfirmationRequired,
    ConsentError,
    NoPolicyInForce,
    UnknownPurpose,
)
from consent.services.permissions import actor_kind_for
from platformkit.request_meta import RequestMeta
from platformkit.sql import insert_rows, pk_in

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source


def purposes_by_slug(slugs: Iterable[str]) -> dict[str, Purpose]:
    slugs = set(slugs)
    found = {p.slug: p for p in Purpose.objects.filter(slug__in=slugs)}
    unknown = sorted(slugs - found.keys())
    if unknown:
        raise UnknownPurpose(
            ngettext("Unknown purpose: %(slugs)s.", "Unknown purposes: %(slugs)s.", len(unknown))
            % {"slugs": ", ".join(unknown)}
        )
    return found


def policy_in_force() -> PolicyVersion:
    policy = PolicyVersion.objects.in_force()
    if policy is None:
        raise NoPolicyInForce(gettext("No published policy version is in force; consent cannot be recorded."))
    return policy


def require_confirmation(purposes: Iterable[Purpose], confirmed_purposes: Collection[str]) -> None:
    # Called with the purposes being granted.
    missing = unconfirmed_grants(purposes, {p.slug: True for p in purposes}, confirmed_purposes)
    if missing:
        raise ConfirmationRequired(missing)


def lock_chain_heads(artist_ids: Collection[int]) -> dict[int, AuditChainHead]:
    """Create missing chain heads, then lock all of them in artist order.

    The lock is what serialises concurrent writers for one artist: the second
    waits here, then reads the state the first committed.
    """
    insert_rows(
        AuditChainHead, [{"artist_id": a, "seq": 0, "hash": GENESIS_HASH} for a in artist_ids], ignore_conflicts=True
    )
    heads = AuditChainHead.objects.select_for_update().filter(artist_id__in=pk_in(artist_ids)).order_by("artist_id")
    return {head.artist_id: head for head in heads}


def append_events(heads: dict[int, AuditChainHead], events: list[dict[str, Any]]) -> None:
    """Chain the events (in list order per artist) onto their heads and insert them.

    The personal parts go to their erasable tables in the same transaction;
    the statement count stays constant whatever the number of events.
    """
    if not events:
        return
    touched: dict[int, AuditChainHead] = {}
    rows, actor_rows, subject_rows = [], [], []
    for event in events:
        head = heads[event["artist_id"]]
        head.seq += 1
        sealed = seal(event, seq=head.seq, prev_hash=head.hash)
        head.hash = sealed.row["hash"]
        touched[head.artist_id] = head
        rows.append(sealed.row)
        if sealed.actor_data:
            actor_rows.append(sealed.actor_data)
        if sealed.subject_data:
            subject_rows.append(sealed.subject_data)
    insert_rows(AuditEvent, rows)
    insert_rows(AuditActorData, actor_rows)
    insert_rows(AuditSubjectData, subject_rows)
    AuditChainHead.objects.bulk_update(list(touched.values()), ["seq", "hash"])


def head_summary(heads: dict[int, AuditChainHead], artist_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """artist id -> {"seq", "hash"} of each chain after a write: what a receipt and ChangeResult carry."""
    return {a: {"seq": heads[a].seq, "hash": heads[a].hash} for a in sorted(artist_ids)}


def event_row(
    *,
    artist_id: int,
    actor: User | None,
    kind: str,
    source: str,
    now: datetime.datetime,
    request_meta: RequestMeta | None,
    policy: PolicyVersion | None,
    receipt_id: uuid.UUID | None = None,
    track_id: int | None = None,
    track_uuid: uuid.UUID | None = None,
    track_title: str = "",
    purpose: Purpose | None = None,
    old_value: str = "",
    new_value: str = "",
    label_id: int | None = None,
    bulk_change_id: int | None = None,
) -> dict[str, Any]:
    meta = request_meta or RequestMeta()
    return {
        "artist_id": artist_id,
        "actor_id": actor.pk if actor is not None else None,
        "actor_kind": actor_kind_for(actor, artist_id),
        "source": str(source),
        "kind": str(kind),
        "track_id": track_id,
        "track_uuid": track_uuid,
        "track_title": (track_title or "")[:300],
        "purpose_id": purpose.pk if purpose else None,
        "purpose_slug": purpose.slug if purpose else "",
        "old_value": old_value,
        "new_value": new_value,
        "policy_version_id": policy.pk if policy else None,
        "ip": meta.ip,
        "user_agent": meta.user_agent[:512],
        "request_id": meta.request_id[:64],
        "receipt_id": receipt_id,
        "label_id": label_id,
        "bulk_change_id": bulk_change_id,
        "created_at": now,
    }


def state_value(granted: bool) -> str:
    return GRANTED if granted else NOT_GRANTED


def valid_source(source: str) -> str:
    if source not in Source.values:
        raise ConsentError(gettext("Unknown source %(source)r.") % {"source": source})
    return str(source)
